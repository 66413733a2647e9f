"""One settings object, read from SHOUWANG_* environment variables and an optional YAML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Everything the service can be told; see the README's configuration reference."""

    model_config = SettingsConfigDict(env_prefix="SHOUWANG_", env_nested_delimiter="__", extra="forbid")

    database_url: str = Field("sqlite:///var/shouwang.db", description="SQLAlchemy URL of the store.")
    registry_file: Path | None = Field(None, description="YAML/JSON file of communities, gateways, households, meters.")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str = Field("shouwang-ingest", description="Fixed, so the broker keeps our session.")
    mqtt_clean_session: bool = Field(False, description="Start a fresh session (demo); production keeps it.")
    mqtt_topic_prefix: str = "shouwang/v1"
    mqtt_embedded_fallback: bool = Field(True, description="Start an in-process broker if none is reachable.")

    timezone: str = Field("Asia/Shanghai", description="Zone of readings without an offset, unless the community says.")
    max_future_skew_s: int = Field(600, description="Readings further than this in the future are rejected.")
    batch_max_readings: int = 5000
    batch_max_delay_s: float = 0.02  # acks follow commits: a short wait keeps the broker sending (docs/benchmarks.md)

    inactivity_window_h: float = Field(48.0, description="no-change rule: hours without use before an alert.")
    meter_silence_h: float = Field(6.0, description="A meter not heard from for this long is a device problem.")
    activity_margin_kw: float = Field(0.05, description="Electricity above base load by this much is activity.")
    water_activity_m3: float = Field(0.001, description="Water increase that counts as activity (1 L).")
    tick_s: float = Field(5.0, description="Wall seconds between detector sweeps.")
    detectors: list[str] = Field(default_factory=lambda: ["routine", "water_running", "unusual_usage", "device"],
                                 description="Detectors to run; see docs/detectors.md for names and presets.")
    state_snapshot: Path | None = Field(None, description="File where learned routines are saved, so restarts "
                                        "keep them (set it in production, e.g. /data/state.npz).")
    snapshot_every_s: float = Field(600.0, description="Wall seconds between state snapshots.")

    webhook_urls: list[str] = Field(default_factory=list, description="Alert webhooks (HTTP POST of JSON).")
    webhook_timeout_s: float = 5.0
    notify_deadline_s: float = Field(300.0, description="Give up retrying a notification after this long.")

    secret_key: SecretStr = Field(SecretStr("dev-only-insecure-secret"),
                                  description="Signs acknowledge links; set a long random value in production.")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"

    clock_speed: float = Field(1.0, description="Event time runs this many times faster than wall time (demo).")
    clock_start: float | None = Field(None, description="Event time at start, epoch seconds (demo).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[Any] = [init_settings, env_settings]
        config_file = os.environ.get("SHOUWANG_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

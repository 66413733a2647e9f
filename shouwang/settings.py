"""One settings object, read from SHOUWANG_* environment variables and an optional YAML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

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
    batch_max_delay_s: float = 0.001  # acks follow commits: a short wait keeps the broker sending (docs/benchmarks.md)
    gc_gen0_threshold: int = Field(100_000, ge=0, description="Python's collector: allocations between young-"
                                   "generation collections, and start-up's objects frozen out of its sight "
                                   "(docs/decisions.md); 0 leaves the collector as Python sets it.")

    inactivity_window_h: float = Field(48.0, description="no-change rule: hours without use before an alert.")
    meter_silence_h: float = Field(6.0, description="A meter not heard from for this long is a device problem.")
    activity_margin_kw: float = Field(0.05, description="Electricity above base load by this much is activity.")
    water_activity_m3: float = Field(0.001, description="Water increase that counts as activity (1 L).")
    tick_s: float = Field(0.5, description="Wall seconds between detector sweeps when no readings arrive (alerts "
                          "made due by time passing); stretched to 3x the last sweep's duration under load.")
    sweep_debounce_s: float = Field(0.15, ge=0, description="After stored readings, the next sweep starts at "
                                    "least this long (and 3x the last sweep's duration) after the previous one.")
    detectors: list[str] = Field(default_factory=lambda: ["routine", "water_running", "unusual_usage", "device"],
                                 description="Detectors to run; see docs/detectors.md for names and presets.")
    state_snapshot: Path | None = Field(None, description="File where learned routines are saved, so restarts "
                                        "keep them (set it in production, e.g. /data/state.npz).")
    snapshot_every_s: float = Field(600.0, description="Wall seconds between state snapshots.")

    webhook_urls: list[str] = Field(default_factory=list, description="Alert webhooks (HTTP POST of JSON).")
    channel_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="JSON object NAME → value for ${NAME} references in channel URLs (people's "
        "channels, SHOUWANG_WEBHOOK_URLS), so bot keys stay out of the registry and the database; only ingest needs it.")
    webhook_timeout_s: float = 5.0
    notify_deadline_s: float = Field(300.0, description="Give up retrying a notification after this long.")

    secret_key: SecretStr = Field(SecretStr("dev-only-insecure-secret"),
                                  description="Signs acknowledge links; set a long random value in production.")

    session_days: float = Field(14.0, gt=0, le=365, description="How long a browser login lasts (a worker's "
                                "phone should not ask every day).")
    secure_cookies: bool = Field(False, description="Mark the session cookie Secure: turn on when the pages are "
                                 "served over HTTPS (behind a TLS proxy).")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object a line, with the "
                                                "household/meter/alert keys as fields (for log collectors).")
    demo_mode: bool = Field(False, description="Let `shouwang run` start with dev-only defaults (placeholder "
                            "secrets); never in production.")
    state_refresh_s: float = Field(10.0, description="`run --role api`: seconds between picking up newly stored "
                                   "readings and gateway statuses for the pages' live state.")
    state_feed: bool = Field(False, description="Ingest writes each stored batch to a feed that `run --role api` "
                             "follows, instead of the api re-reading the last 15 minutes of readings on every "
                             "refresh; set it for both roles when they run apart with many households.")
    state_feed_keep_s: float = Field(3600.0, description="How long ingest keeps the state feed's rows; an api "
                                     "process away for longer re-reads the readings instead.", ge=600)

    influxdb_url: str | None = Field(None, description="InfluxDB 2 base URL: stored readings are exported there "
                                     "for analysts (docs/storage.md); off when unset.")
    influxdb_token: SecretStr | None = Field(None, description="InfluxDB API token with write access to the "
                                             "bucket (never logged).")
    influxdb_org: str = Field("shouwang", description="InfluxDB organisation.")
    influxdb_bucket: str = Field("readings", description="InfluxDB bucket; its retention is set where it is made.")
    influxdb_measurement: str = Field("readings", description="InfluxDB measurement the readings are written to.")
    influxdb_batch_size: int = Field(5000, ge=1, description="Readings per InfluxDB write.")
    influxdb_max_lag: int = Field(2_000_000, ge=0, description="Stored readings not yet exported to InfluxDB "
                                  "above which ingest waits for the export (0: never wait; docs/storage.md).")

    shard_index: int = Field(0, ge=0, description="This ingest worker's shard, 0 .. shard_count-1: it owns the "
                             "communities whose CRC-32 modulo shard_count is its index (docs/deploy.md, scale-out).")
    shard_count: int = Field(1, ge=1, description="Ingest workers the communities are split across (1: one "
                             "worker owns all; PostgreSQL is required for more).")

    clock_speed: float = Field(1.0, description="Event time runs this many times faster than wall time (demo).")
    clock_start: float | None = Field(None, description="Event time at start, epoch seconds (demo).")

    @field_validator("channel_secrets", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return {} if value is None else value  # compose passes `null` when .env leaves it unset

    @field_validator("channel_secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        from alerts.channels.secrets import NAME

        bad = sorted(n for n in value if not NAME.fullmatch(n))
        if bad:
            raise ValueError(f"channel secret name {bad[0]!r} is not usable in a ${{NAME}} reference: use capital "
                             "letters, digits and _, starting with a letter")
        return value

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


PLACEHOLDERS = frozenset({"", "changeme", "change-me", "change_me", "secret", "password", "passwd", "placeholder",
                          "example", "default", "xxx", "todo", "test", "admin", "dev-only-insecure-secret"})
MIN_SECRET_KEY = 32


def _placeholder(value: str) -> bool:
    low = value.strip().lower()
    return low in PLACEHOLDERS or low.startswith("<") or ("change" in low and "me" in low) or "replace" in low


def insecure_settings(settings: Settings, *, broker: bool = True) -> list[str]:
    """What must be set before running outside demo mode (``broker``: this process connects to the broker)."""
    problems: list[str] = []
    key = settings.secret_key.get_secret_value()
    if _placeholder(key) or len(key) < MIN_SECRET_KEY:
        problems.append(f"SHOUWANG_SECRET_KEY is a placeholder or shorter than {MIN_SECRET_KEY} characters: set a "
                        "long random value (openssl rand -hex 32)")
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else ""
    if broker and (not settings.mqtt_username or _placeholder(password)):
        problems.append("SHOUWANG_MQTT_USERNAME / SHOUWANG_MQTT_PASSWORD: set the broker service account "
                        "(`shouwang gateway service-password` prints both)")
    problems += [f"SHOUWANG_CHANNEL_SECRETS: {name} is empty or a placeholder: set the real value"
                 for name, value in settings.channel_secrets.items() if _placeholder(value.get_secret_value())]
    for name, value in settings:
        env = f"SHOUWANG_{name.upper()}"
        if isinstance(value, SecretStr) and name not in ("secret_key", "mqtt_password"):
            if _placeholder(value.get_secret_value()):
                problems.append(f"{env} is empty or a placeholder: set the real value")
        elif name.endswith("_token") and value is None and getattr(settings, name[:-6] + "_url", None):
            problems.append(f"{env} is not set but {env[:-6]}_URL is: set the token")
        elif name.endswith("_url") and isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            if parts.scheme.startswith("postgresql") and parts.hostname and (
                    parts.password is None or _placeholder(parts.password)):
                problems.append(f"{env} has no password or a placeholder one: put the database password in it")
    return problems


ENV_HEADER = """\
# Shouwang's .env: docker compose substitutes it into docker-compose.yml, which hands each container only the
# variables its role reads (docs/deploy.md, "Who gets which secret"); no container gets the whole file.
# Copy to .env, fill in every empty secret below with a long random value (openssl rand -hex 32), keep the file
# out of version control (chmod 600). Compose refuses to start while one is empty; Shouwang refuses placeholders.
# Regenerate this file after changing shouwang/settings.py: `shouwang settings env-example > .env.example`.

# ---- secrets (required) ------------------------------------------------------------------------------------
# PostgreSQL password of the `shouwang` database user (compose builds SHOUWANG_DATABASE_URL from it).
POSTGRES_PASSWORD=
# Broker service account (read-only on the readings topics): `shouwang gateway service-password` prints it.
SHOUWANG_MQTT_PASSWORD=
# Signs the one-tap acknowledge links and sessions.
SHOUWANG_SECRET_KEY=
# InfluxDB token: created as the admin token on InfluxDB's first start and used by Shouwang and Grafana.
SHOUWANG_INFLUXDB_TOKEN=
# InfluxDB's and Grafana's admin passwords (web consoles).
INFLUXDB_ADMIN_PASSWORD=
GRAFANA_ADMIN_PASSWORD=

# ---- deployment (docker-compose.yml) ----------------------------------------------------------------------
# Where links in notifications point: the address workers' phones reach the API at (behind your TLS proxy).
SHOUWANG_PUBLIC_URL=https://shouwang.example.org
#SHOUWANG_IMAGE_TAG=latest
#INFLUXDB_ORG=shouwang
#INFLUXDB_BUCKET=readings
# How long InfluxDB keeps readings (0 = forever; e.g. 400d). The relational store keeps its own copy.
#INFLUXDB_RETENTION=0
#INFLUXDB_ADMIN_USER=admin
#GRAFANA_ADMIN_USER=admin
# Interfaces the published ports listen on: the API and Grafana only on the host (put a proxy in front).
#API_BIND=127.0.0.1
#GRAFANA_BIND=127.0.0.1
#MQTT_BIND=0.0.0.0

# ---- every Shouwang setting (shouwang/settings.py), with its default ---------------------------------------
# Commented out = the default applies. (compose) = docker-compose.yml sets it for its own services.
# Under docker compose the settings below reach no container from .env (SHOUWANG_WEBHOOK_URLS and
# SHOUWANG_CHANNEL_SECRETS reach ingest):
# put the ones you change, never a secret, in deploy/shouwang.env.
"""
COMPOSE_SET = frozenset({"database_url", "mqtt_host", "mqtt_port", "mqtt_username", "mqtt_password",
                         "mqtt_embedded_fallback", "secret_key", "registry_file", "state_snapshot", "api_host",
                         "api_port", "log_format", "influxdb_url", "influxdb_token", "influxdb_org",
                         "influxdb_bucket"})


def _env_value(value: Any) -> str:
    import json

    if isinstance(value, SecretStr):
        return ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def env_example() -> str:
    """The text of .env.example: the compose secrets, then every setting with its description and default."""
    lines = [ENV_HEADER]
    for name, field in Settings.model_fields.items():
        env = f"SHOUWANG_{name.upper()}"
        default = field.get_default(call_default_factory=True)
        note = " (compose)" if name in COMPOSE_SET else ""
        lines.append(f"# {env}{note}: {field.description or name.replace('_', ' ')}")
        lines.append(f"#{env}={_env_value(default)}")
    return "\n".join(lines) + "\n"

"""docker-compose.yml validates, refuses an empty secret and gives each container only its secrets; .env.example is
complete."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from shouwang.settings import COMPOSE_SET, Settings, env_example, insecure_settings

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "POSTGRES_PASSWORD": "pg-7c1d0f3a9b2e4d5f",
    "SHOUWANG_MQTT_PASSWORD": "mq-4b8e2a6c0d1f3e5a",
    "SHOUWANG_SECRET_KEY": "sk-" + "9f8e7d6c5b4a3928" * 3,
    "SHOUWANG_INFLUXDB_TOKEN": "ix-1a2b3c4d5e6f7081",
    "INFLUXDB_ADMIN_PASSWORD": "ia-0f1e2d3c4b5a6978",
    "GRAFANA_ADMIN_PASSWORD": "gr-5e4d3c2b1a0f9e8d",
}
LONG_RUNNING = {"mosquitto", "postgres", "influxdb", "grafana", "ingest", "api"}
SHOUWANG_SERVICES = ("migrate", "ingest", "api")
# not required by compose, but a secret all the same: channel URLs carry bot keys
WEBHOOK_URLS = '["https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wh-3c5e7a9b1d2f4860"]'
CHANNEL_SECRETS = '{"WECOM_GRID1": "cs-6d4f2b0a8e1c3579"}'  # values for ${NAME} in people's channel URLs
ALL_SECRETS = {**SECRETS, "SHOUWANG_WEBHOOK_URLS": WEBHOOK_URLS, "SHOUWANG_CHANNEL_SECRETS": CHANNEL_SECRETS}
TUNING_FILE = ROOT / "deploy" / "shouwang.env"


def _compose_command() -> list[str]:
    """`docker compose` if the plugin works, else Debian's `docker-compose`; CI must have one (.ci/run installs it)."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True, check=False).returncode == 0:
            return cmd
    if os.environ.get("CI"):
        pytest.fail("neither `docker compose` nor `docker-compose` works; .ci/run installs Debian's docker-compose")
    pytest.skip("no docker compose here (apt-get install docker-compose)")


def _filled_env(example: str, values: dict[str, str]) -> str:
    """.env.example with the given variables filled in (appended when the example has them commented out)."""
    out, filled = [], set()
    for line in example.splitlines():
        key = line.split("=", 1)[0]
        if key in values and not line.startswith("#"):
            out.append(f"{key}={values[key]}")
            filled.add(key)
        else:
            out.append(line)
    out += [f"{key}={value}" for key, value in values.items() if key not in filled]
    return "\n".join(out) + "\n"


def _config(tmp_path: Path, env_text: str) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    if TUNING_FILE.exists():  # the env_file of ingest and api
        (tmp_path / "deploy").mkdir(exist_ok=True)
        shutil.copy(TUNING_FILE, tmp_path / "deploy" / TUNING_FILE.name)
    (tmp_path / ".env").write_text(env_text)
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("SHOUWANG_")}
    return subprocess.run([*_compose_command(), "config"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def resolved_services(tmp_path: Path, values: dict[str, str] = ALL_SECRETS) -> dict[str, dict]:
    """The services as compose resolves them from .env.example filled with ``values``."""
    proc = _config(tmp_path, _filled_env((ROOT / ".env.example").read_text(), values))
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["services"]


def _secrets_in(service: dict) -> set[str]:
    """Which of ALL_SECRETS a service's resolved environment (names and values) holds."""
    env = service.get("environment") or {}
    text = "\n".join(f"{k}={v}" for k, v in env.items())
    return {name for name, value in ALL_SECRETS.items() if value in text}


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a container with exactly this environment reads."""
    for key in [k for k in os.environ if k.startswith("SHOUWANG_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return Settings()


def _documented_secrets() -> dict[str, set[str]]:
    """docs/deploy.md's table "service → the secrets it gets" (the section "Who gets which secret")."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## Who gets which secret", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for row in re.findall(r"^\| `([a-z]+)` \|([^|]*)\|", section, re.MULTILINE):
        table[row[0]] = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row[1]))
    return table


def test_compose_file_validates_with_a_filled_env(tmp_path, monkeypatch):
    proc = _config(tmp_path, _filled_env((ROOT / ".env.example").read_text(), SECRETS))
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    services = config["services"]
    assert set(services) == LONG_RUNNING | {"migrate"}
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["ingest"]["command"][-2:] == ["--role", "ingest"]
    assert services["api"]["command"][-2:] == ["--role", "api"]
    assert services["migrate"]["command"] == ["shouwang", "db", "upgrade"]
    for role in ("ingest", "api"):
        assert services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    env = services["ingest"]["environment"]
    assert env["SHOUWANG_SECRET_KEY"] == SECRETS["SHOUWANG_SECRET_KEY"]
    assert env["SHOUWANG_DATABASE_URL"] == f"postgresql://shouwang:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/shouwang"
    influx = services["influxdb"]["environment"]
    assert influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == SECRETS["SHOUWANG_INFLUXDB_TOKEN"]
    assert influx["DOCKER_INFLUXDB_INIT_MODE"] == "setup" and influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert any("grafana/provisioning" in str(v) for v in services["grafana"]["volumes"])
    assert any("8883" in str(p) for p in services["mosquitto"]["ports"])  # the TLS listener's port
    # what compose hands the service passes Shouwang's own refusal of placeholder secrets
    assert insecure_settings(_settings_from(env, monkeypatch)) == []


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_an_empty_secret(tmp_path, missing):
    values = {k: v for k, v in SECRETS.items() if k != missing}
    proc = _config(tmp_path, _filled_env((ROOT / ".env.example").read_text(), values))
    assert proc.returncode != 0
    assert missing in proc.stderr


def test_env_example_is_generated_from_the_settings():
    assert (ROOT / ".env.example").read_text() == env_example(), \
        "run `shouwang settings env-example > .env.example` after changing shouwang/settings.py"


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert re.search(rf"^#?SHOUWANG_{name.upper()}=", text, re.MULTILINE), name
    assert COMPOSE_SET - set(Settings.model_fields) <= {"influxdb_url", "influxdb_token", "influxdb_org",
                                                         "influxdb_bucket"}
    # every variable docker-compose.yml interpolates is in the example
    used = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    assert used <= set(re.findall(r"^#?([A-Z_]+)=", text, re.MULTILINE))


def test_no_default_secret_in_the_example():
    for line in (ROOT / ".env.example").read_text().splitlines():
        key, _, value = line.partition("=")
        if not line.startswith("#") and key in SECRETS:
            assert value == "", key


def test_api_gets_no_broker_password_channel_url_or_influxdb_token(tmp_path, monkeypatch):
    env = resolved_services(tmp_path)["api"]["environment"]
    assert _secrets_in({"environment": env}) == {"POSTGRES_PASSWORD", "SHOUWANG_SECRET_KEY"}
    assert not {"SHOUWANG_MQTT_PASSWORD", "SHOUWANG_WEBHOOK_URLS", "SHOUWANG_INFLUXDB_TOKEN",
                "SHOUWANG_CHANNEL_SECRETS"} & set(env)
    assert not [k for k, v in env.items() if "://" in str(v) and k != "SHOUWANG_DATABASE_URL"], env
    # what it does get passes Shouwang's own refusal for the api role (no broker account needed)
    assert insecure_settings(_settings_from(env, monkeypatch), broker=False) == []


def test_ingest_gets_the_broker_password_and_the_channels_and_no_admin_password(tmp_path):
    env = resolved_services(tmp_path)["ingest"]["environment"]
    assert env["SHOUWANG_MQTT_PASSWORD"] == SECRETS["SHOUWANG_MQTT_PASSWORD"]
    assert env["SHOUWANG_MQTT_USERNAME"] == "shouwang-ingest"
    assert env["SHOUWANG_WEBHOOK_URLS"] == WEBHOOK_URLS
    assert env["SHOUWANG_INFLUXDB_TOKEN"] == SECRETS["SHOUWANG_INFLUXDB_TOKEN"]
    assert _secrets_in({"environment": env}) == {"POSTGRES_PASSWORD", "SHOUWANG_SECRET_KEY", "SHOUWANG_MQTT_PASSWORD",
                                                 "SHOUWANG_INFLUXDB_TOKEN", "SHOUWANG_WEBHOOK_URLS",
                                                 "SHOUWANG_CHANNEL_SECRETS"}
    assert not {"POSTGRES_PASSWORD", "INFLUXDB_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} & set(env)


def test_ingest_reads_the_webhooks_and_without_them_an_empty_list(tmp_path, monkeypatch):
    env = resolved_services(tmp_path)["ingest"]["environment"]
    assert _settings_from(env, monkeypatch).webhook_urls == json.loads(WEBHOOK_URLS)
    (tmp_path / "none").mkdir()
    env = resolved_services(tmp_path / "none", SECRETS)["ingest"]["environment"]
    assert _settings_from(env, monkeypatch).webhook_urls == []


def test_ingest_reads_the_channel_secrets_and_without_them_none(tmp_path, monkeypatch):
    env = resolved_services(tmp_path)["ingest"]["environment"]
    secrets = _settings_from(env, monkeypatch).channel_secrets
    assert {k: v.get_secret_value() for k, v in secrets.items()} == json.loads(CHANNEL_SECRETS)
    (tmp_path / "none").mkdir()
    env = resolved_services(tmp_path / "none", SECRETS)["ingest"]["environment"]
    assert _settings_from(env, monkeypatch).channel_secrets == {}


def test_every_service_gets_exactly_the_secrets_docs_deploy_md_lists(tmp_path):
    services = resolved_services(tmp_path)
    documented = _documented_secrets()
    assert set(documented) == set(services), "docs/deploy.md's table names every service once"
    got = {name: _secrets_in(service) for name, service in services.items()}
    assert got == documented


def test_every_required_variable_is_in_the_env_template():
    compose = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", compose))
    template = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", template, re.MULTILINE))  # uncommented: to be filled in
    assert required, "docker-compose.yml requires its secrets with ${VAR:?message}"
    assert required <= listed, sorted(required - listed)
    # and the other way round: every secret the template leaves empty is one compose refuses to start without
    empty = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=$", template, re.MULTILINE))
    assert empty <= required, sorted(empty - required)


def test_no_shouwang_service_reads_the_whole_env_file():
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in SHOUWANG_SERVICES:
        files = raw[name].get("env_file") or []
        files = [files] if isinstance(files, str | dict) else files
        paths = [(ROOT / (f["path"] if isinstance(f, dict) else f)).resolve() for f in files]
        assert (ROOT / ".env").resolve() not in paths, name
        assert all(p.is_relative_to(ROOT / "deploy") for p in paths), (name, paths)
    assert "env_file" not in raw["migrate"]  # the schema upgrade needs the database URL only


def test_the_shared_tuning_file_holds_no_secret_and_nothing_compose_sets(tmp_path):
    services = resolved_services(tmp_path)
    set_by_compose = set(services["ingest"]["environment"]) | set(services["api"]["environment"])
    example = set((ROOT / ".env.example").read_text().splitlines())
    text = TUNING_FILE.read_text()
    names = re.findall(r"^#?SHOUWANG_([A-Z0-9_]+)=", text, re.MULTILINE)
    assert names, "deploy/shouwang.env lists the settings one may change"
    for name in names:
        field = Settings.model_fields.get(name.lower())
        assert field is not None, f"SHOUWANG_{name} is not a setting"
        assert field.annotation not in (SecretStr, SecretStr | None), f"SHOUWANG_{name} is a secret"
        assert name.lower() not in {"database_url", "webhook_urls"}, f"SHOUWANG_{name} can carry a secret"
        assert f"SHOUWANG_{name}" not in set_by_compose, f"compose sets SHOUWANG_{name}: the file's value is ignored"
    for line in text.splitlines():
        if line.startswith("#SHOUWANG_"):  # the defaults shown are .env.example's, generated from the settings
            assert line in example, line
    assert not any(v in text for v in ALL_SECRETS.values())

"""docker-compose.yml validates with a filled .env and refuses an empty secret; .env.example is complete."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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


def _compose_command() -> list[str]:
    """`docker compose` if the plugin works, else Debian's `docker-compose`; CI must have one (.ci/run installs it)."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True, check=False).returncode == 0:
            return cmd
    if os.environ.get("CI"):
        pytest.fail("neither `docker compose` nor `docker-compose` works; .ci/run installs Debian's docker-compose")
    pytest.skip("no docker compose here (apt-get install docker-compose)")


def _filled_env(example: str, values: dict[str, str]) -> str:
    """.env.example with the given variables filled in."""
    out = []
    for line in example.splitlines():
        key = line.split("=", 1)[0]
        out.append(f"{key}={values[key]}" if key in values and not line.startswith("#") else line)
    return "\n".join(out) + "\n"


def _config(tmp_path: Path, env_text: str) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text(env_text)
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("SHOUWANG_")}
    return subprocess.run([*_compose_command(), "config"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_compose_file_validates_with_a_filled_env(tmp_path):
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
    shouwang_env = {k.removeprefix("SHOUWANG_").lower(): v for k, v in env.items()
                    if k.startswith("SHOUWANG_") and k.removeprefix("SHOUWANG_").lower() in Settings.model_fields}
    assert insecure_settings(Settings(**shouwang_env)) == []


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

"""Probes and roles: readiness follows a real broker and a real database; `shouwang run --role …` end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PG_ADMIN_URL
from fastapi.testclient import TestClient
from receivers import free_port

from api.routes.health import probe_app
from ingest.broker import broker_reachable
from shouwang.clock import ManualClock
from shouwang.metrics import registry_for
from shouwang.registry import load_registry
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

REGISTRY = """
communities:
  - id: qd
    gateways: [GA]
    households:
      - id: H1
        meters: [{id: H1-W, kind: water, gateway: GA}, {id: H1-E, kind: electricity, gateway: GA}]
"""
NOW = 1_795_300_000
SECRET = "k" * 40


def _until(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll a condition until it holds or the deadline passes (the deadline only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class Mosquitto:
    """A private Mosquitto on a free port that a test can stop and start again."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"user root\nlistener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        assert _until(lambda: broker_reachable("127.0.0.1", self.port, 0.2)), "mosquitto did not start"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path)
    m.start()
    yield m
    m.stop()


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    return path


def _service(tmp_path: Path, registry_file: Path, port: int, database_url: str | None = None) -> Service:
    settings = Settings(database_url=database_url or f"sqlite:///{tmp_path}/probe.db", mqtt_port=port,
                        mqtt_client_id=f"probe-{uuid.uuid4().hex[:6]}", mqtt_clean_session=True, tick_s=3600,
                        mqtt_embedded_fallback=False)
    return Service(settings, open_store(settings.database_url), load_registry(registry_file), ManualClock(NOW),
                   watchers=[])


def _client(service: Service) -> TestClient:
    return TestClient(probe_app(service.store, health=service.health, liveness=service.liveness,
                                metrics_registry=registry_for(service)))


def test_ready_follows_a_real_broker_going_down_and_coming_back(tmp_path, registry_file, mosquitto):
    service = _service(tmp_path, registry_file, mosquitto.port)
    service.start()
    try:
        client = _client(service)
        assert _until(lambda: client.get("/api/health/ready").status_code == 200)
        body = client.get("/api/health/ready").json()
        assert body["status"] == "ok" and body["checks"]["broker"] and body["checks"]["store"]
        mosquitto.stop()
        assert _until(lambda: client.get("/api/health/ready").status_code == 503)
        body = client.get("/api/health/ready").json()
        assert body["checks"]["broker"] is False and body["checks"]["store"] is True
        assert client.get("/api/health/live").status_code == 200  # a restart would not bring the broker back
        assert "shouwang_broker_connected 0.0" in client.get("/metrics").text
        mosquitto.start()
        assert _until(lambda: client.get("/api/health/ready").status_code == 200, timeout=30)
    finally:
        service.stop()
        service.store.close()


def test_not_ready_when_no_broker_answers(tmp_path, registry_file):
    service = _service(tmp_path, registry_file, free_port())  # nothing listens there
    service.start()
    try:
        r = _client(service).get("/api/health/ready")
        assert r.status_code == 503 and r.json()["checks"]["broker"] is False
    finally:
        service.stop()
        service.store.close()


def test_not_ready_when_the_database_goes_away(tmp_path, registry_file, mosquitto, pg_url):
    service = _service(tmp_path, registry_file, mosquitto.port, database_url=pg_url)
    service.start()
    try:
        client = _client(service)
        assert _until(lambda: client.get("/api/health/ready").status_code == 200)
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{pg_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()
        r = client.get("/api/health/ready")
        assert r.status_code == 503
        assert r.json()["checks"]["store"] is False and r.json()["checks"]["broker"] is True
    finally:
        service.stop()
        service.store.close()


def test_metrics_cover_batch_writes_deliveries_by_channel_and_escalations(tmp_path, registry_file, mosquitto):
    import paho.mqtt.client as mqtt
    from receivers import WebhookReceiver

    from shouwang.domain import AlertCategory, Finding, Severity

    ok, refusing = WebhookReceiver(), WebhookReceiver("/json-hook")
    refusing.fail_next, refusing.status_on_fail = 100, 400  # a 4xx is not retried: the attempt failed
    service = _service(tmp_path, registry_file, mosquitto.port)
    service = Service(service.settings, service.store, service.registry, service.clock,
                      watchers=[ok.url, f"json://127.0.0.1:{refusing.port}/json-hook"])
    service.start()
    try:
        client = _client(service)
        assert _until(lambda: client.get("/api/health/ready").status_code == 200)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        pub.publish("shouwang/v1/qd/GA/readings", f'{{"meter": "H1-W", "kind": "water", "ts": {NOW - 60}, '
                    '"value": 12.5}', qos=1).wait_for_publish(5)
        pub.loop_stop()
        assert _until(lambda: service.stats.get("readings_stored") == 1)
        service.pipeline.run([Finding(AlertCategory.INACTIVITY, "test", Severity.CRITICAL, NOW - 3600, "quiet",
                                      household="H1")], NOW)
        service.outbox.wake()
        assert ok.wait_for(1) and _until(lambda: service.outbox.failed == 1)
        text = client.get("/metrics").text
        assert "shouwang_batch_write_seconds_count 1.0" in text
        assert "shouwang_state_errors_total 0.0" in text and "shouwang_fold_errors_total 0.0" in text
        assert 'shouwang_escalation_events_total{kind="escalation_step"} 1.0' in text
        assert 'shouwang_notification_attempts_total{channel="http",result="sent"} 1.0' in text
        assert 'shouwang_notification_attempts_total{channel="json",result="failed"} 1.0' in text
        assert 's3cr3t' not in text
        assert 'shouwang_open_alerts{category="inactivity"} 1.0' in text
    finally:
        service.stop()
        service.store.close()
        ok.close()
        refusing.close()


# ------------------------------------------------------------------ `shouwang run` as a deployment runs it
def _env(tmp_path: Path, registry_file: Path, mqtt_port: int, api_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env.update(SHOUWANG_DATABASE_URL=f"sqlite:///{tmp_path}/run.db", SHOUWANG_REGISTRY_FILE=str(registry_file),
               SHOUWANG_MQTT_PORT=str(mqtt_port), SHOUWANG_MQTT_USERNAME="shouwang-ingest",
               SHOUWANG_MQTT_PASSWORD="a-real-looking-password-1234", SHOUWANG_SECRET_KEY=SECRET,
               SHOUWANG_MQTT_EMBEDDED_FALLBACK="false", SHOUWANG_API_PORT=str(api_port),
               SHOUWANG_MQTT_CLIENT_ID=f"run-{uuid.uuid4().hex[:6]}", SHOUWANG_LOG_FORMAT="json", **extra)
    return env


def _run(env: dict[str, str], role: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shouwang.cli", "run", "--role", role], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def test_ingest_and_api_roles_run_as_separate_processes(tmp_path, registry_file, mosquitto):
    ingest_port, api_port = free_port(), free_port()
    ingest = _run(_env(tmp_path, registry_file, mosquitto.port, ingest_port), "ingest")
    api = _run(_env(tmp_path, registry_file, mosquitto.port, api_port), "api")
    try:
        assert _until(lambda: _get(f"http://127.0.0.1:{ingest_port}/api/health/ready") == 200, timeout=60)
        assert _until(lambda: _get(f"http://127.0.0.1:{api_port}/api/health/ready") == 200, timeout=60)
        assert _get(f"http://127.0.0.1:{api_port}/api/health/live") == 200
        # the ingest process serves probes and metrics, not the API; the API process serves no ingest metrics
        assert _get(f"http://127.0.0.1:{ingest_port}/api/households") == 404
        assert "shouwang_broker_connected 1.0" in httpx.get(f"http://127.0.0.1:{ingest_port}/metrics").text
        assert _get(f"http://127.0.0.1:{api_port}/docs") == 200
    finally:
        codes = [_stop(ingest), _stop(api)]
    assert [c for c, _ in codes] == [0, 0], [e[-2000:] for _, e in codes]
    assert '"level": "INFO"' in codes[0][1]  # SHOUWANG_LOG_FORMAT=json


@pytest.mark.parametrize(("override", "names"), [
    ({"SHOUWANG_SECRET_KEY": "dev-only-insecure-secret"}, ["SHOUWANG_SECRET_KEY"]),
    ({"SHOUWANG_SECRET_KEY": "", "SHOUWANG_MQTT_PASSWORD": "changeme"},
     ["SHOUWANG_SECRET_KEY", "SHOUWANG_MQTT_PASSWORD"]),
    ({"SHOUWANG_DATABASE_URL": "postgresql://shouwang:CHANGE_ME@db/shouwang"}, ["SHOUWANG_DATABASE_URL"]),
])
def test_refuses_to_start_with_a_placeholder_secret(tmp_path, registry_file, override, names):
    env = _env(tmp_path, registry_file, free_port(), free_port())
    env.update(override)
    proc = subprocess.run([sys.executable, "-m", "shouwang.cli", "run", "--role", "ingest"], env=env, check=False,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    refused = [line for line in proc.stderr.splitlines() if "refusing to start" in line]
    assert all(any(n in line for line in refused) for n in names), proc.stderr
    assert not (tmp_path / "run.db").exists()  # refused before touching anything


def test_demo_mode_runs_with_dev_defaults(tmp_path, registry_file, mosquitto):
    port = free_port()
    env = _env(tmp_path, registry_file, mosquitto.port, port, SHOUWANG_DEMO_MODE="true")
    for key in ("SHOUWANG_SECRET_KEY", "SHOUWANG_MQTT_PASSWORD", "SHOUWANG_MQTT_USERNAME"):
        env.pop(key)
    proc = _run(env, "all")
    try:
        assert _until(lambda: _get(f"http://127.0.0.1:{port}/api/health/ready") == 200, timeout=60)
    finally:
        code, err = _stop(proc)
    assert code == 0 and "demo mode" in err


# ------------------------------------------------------------------ the roles with only what compose gives them
def _as_on_this_host(container_env: dict, replace: dict[str, str]) -> dict[str, str]:
    """A container's environment from `docker compose config`, with its in-network addresses made local."""
    assert set(replace) <= set(container_env), sorted(set(replace) - set(container_env))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env.update({k: str(v) for k, v in container_env.items()}, **replace)
    return env


def test_migrate_api_and_ingest_start_with_only_the_environment_compose_gives_them(tmp_path, registry_file,
                                                                                   mosquitto, pg_url):
    from test_deploy_compose import SECRETS, resolved_services

    services = resolved_services(tmp_path)
    database = pg_url.rsplit("/", 1)[1]  # trust auth: the password compose puts in the URL is not checked here
    local_db = f"postgresql://postgres:{SECRETS['POSTGRES_PASSWORD']}@127.0.0.1:5432/{database}"
    assert services["migrate"]["environment"]["SHOUWANG_DATABASE_URL"].endswith("@postgres:5432/shouwang")
    migrate = _as_on_this_host(services["migrate"]["environment"], {"SHOUWANG_DATABASE_URL": local_db})
    proc = subprocess.run([sys.executable, "-m", "shouwang.cli", *services["migrate"]["command"][1:]], env=migrate,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    current = subprocess.run([sys.executable, "-m", "shouwang.cli", "db", "current"], env=migrate,
                             capture_output=True, text=True, timeout=60, check=False)
    assert current.returncode == 0 and "behind" not in current.stdout, current.stdout + current.stderr

    api_port, ingest_port = free_port(), free_port()
    running = {"SHOUWANG_DATABASE_URL": local_db, "SHOUWANG_REGISTRY_FILE": str(registry_file),
               "SHOUWANG_API_HOST": "127.0.0.1"}
    api = _run(_as_on_this_host(services["api"]["environment"], {**running, "SHOUWANG_API_PORT": str(api_port)}),
               "api")
    ingest = _run(_as_on_this_host(services["ingest"]["environment"], {
        **running, "SHOUWANG_API_PORT": str(ingest_port), "SHOUWANG_MQTT_HOST": "127.0.0.1",
        "SHOUWANG_MQTT_PORT": str(mosquitto.port), "SHOUWANG_INFLUXDB_URL": f"http://127.0.0.1:{free_port()}",
        "SHOUWANG_STATE_SNAPSHOT": str(tmp_path / "state.npz")}), "ingest")
    try:
        assert _until(lambda: _get(f"http://127.0.0.1:{api_port}/api/health/ready") == 200, timeout=60)
        assert _get(f"http://127.0.0.1:{api_port}/api/households") == 401  # the API itself, behind its login
        assert _until(lambda: _get(f"http://127.0.0.1:{ingest_port}/api/health/ready") == 200, timeout=60)
    finally:
        codes = [_stop(api), _stop(ingest)]
    assert [c for c, _ in codes] == [0, 0], [e[-2000:] for _, e in codes]

"""Fault-suite helpers: a Mosquitto of the test's own, an at-least-once publisher, the service as a child
process (`shouwang run`), a TCP proxy that can cut the store off, and the store's contents as a set."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from conftest import PG_ADMIN_URL
from receivers import TcpProxy, free_port  # noqa: F401 - TcpProxy is used by the fault tests
from sqlalchemy import create_engine, text

from ingest.broker import broker_reachable
from ingest.provision import SERVICE_USER, mosquitto_hash
from shouwang.domain import Registry
from shouwang.registry import dump_registry
from simulators.community import build_community

ROOT = Path(__file__).resolve().parent.parent
STEP = 900  # a 15-minute cadence
SUB_TOPICS = ("{p}/+/+/readings", "{p}/+/+/status")


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def mqtt_login(port: int, user: str, password: str, *, ca: Path | None = None,
               timeout: float = 10) -> tuple[mqtt.Client, list]:
    """A paho client logging in to the broker on ``port`` (over TLS with ``ca``), looping; and the CONNACK reason
    codes it got, waited for up to ``timeout`` (empty if none came)."""
    codes: list = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}")
    if ca is not None:
        import ssl

        c.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.username_pw_set(user, password)
    c.on_connect = lambda *a: codes.append(a[3])
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + timeout
    while not codes and time.monotonic() < deadline:
        time.sleep(0.02)
    return c, codes


class Mosquitto:
    """A real Mosquitto on a free port, as deploy/mosquitto/mosquitto.conf has it: persistent, password
    accounts (``service`` for Shouwang, ``gateway`` for the publishers), limits that never drop a QoS 1
    message for an offline persistent session. ``inflight``: unacknowledged QoS 1 messages it sends a client
    before it waits for acknowledgements."""

    def __init__(self, workdir: Path, persistence: bool = True, anonymous: bool = False, inflight: int = 1000) -> None:
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.accounts = {"service": (SERVICE_USER, secrets.token_hex(16)),
                         "gateway": ("fault-gateway", secrets.token_hex(16))}
        passwd = workdir / "passwd"
        passwd.write_text("".join(f"{u}:{mosquitto_hash(p)}\n" for u, p in self.accounts.values()))
        self.conf = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", f"allow_anonymous {str(anonymous).lower()}",
                 f"password_file {passwd}", "user root",
                 "max_queued_messages 1000000", f"max_inflight_messages {inflight}",
                 f"log_dest file {workdir / 'mosquitto.log'}"]
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/", "autosave_interval 1800"]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: broker_reachable("127.0.0.1", self.port, 0.2), 10, "mosquitto to listen")

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file (sessions, queued and in-flight messages) and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def client(self, account: str, client_id: str, clean_session: bool) -> mqtt.Client:
        """A paho client (MQTT 3.1.1) logged in as ``account``; not connected yet."""
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                        protocol=mqtt.MQTTv311)
        c.username_pw_set(*self.accounts[account])
        return c


# ---------------------------------------------------------------------------------------- the stream
@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message of the stream and the readings it carries."""

    topic: str
    payload: bytes
    readings: tuple[tuple[str, int, float], ...]


def stream_registry(households: int = 250) -> Registry:
    """25 gateways of 10 households (a water and an electricity meter each) for 250 households."""
    return build_community(households, community_id="fault", households_per_gateway=10)


def build_stream(registry: Registry, t0: int, rounds: int = 200, packed_gateways: int = 20,
                 span: int = 5, prefix: str = "shouwang/v1") -> list[Message]:
    """Every meter reports every 15 minutes from ``t0`` for ``rounds`` intervals.

    The first ``packed_gateways`` gateways upload ``span`` intervals of all their meters in one message (as
    concentrators and NB-IoT meters do: 100 readings a message); the others send one reading per message.
    Registers only rise, so every redelivery is either a duplicate or a late reading that fits."""
    by_gw: dict[str, list] = {}
    for m in registry.meters:
        by_gw.setdefault(m.gateway, []).append(m)
    gateways = sorted(by_gw)
    out: list[Message] = []

    def value(i: int, meter: str, k: int) -> float:
        return round(10.0 + i + 0.001 * k * (1 + i % 7), 3)

    index = {m.id: i for i, m in enumerate(registry.meters)}
    for r0 in range(0, rounds, span):
        for g, gw in enumerate(gateways):
            topic = f"{prefix}/fault/{gw}/readings"
            items = [(m, k) for m in by_gw[gw] for k in range(r0, min(r0 + span, rounds))]
            rows = [(m.id, str(m.kind), t0 + k * STEP, value(index[m.id], m.id, k)) for m, k in items]
            if g < packed_gateways:
                body = {"gateway": gw, "readings": [{"meter": a, "kind": b, "ts": c, "value": d}
                                                    for a, b, c, d in rows]}
                out.append(Message(topic, orjson.dumps(body), tuple((a, c, d) for a, _b, c, d in rows)))
            else:
                out += [Message(topic, orjson.dumps({"meter": a, "kind": b, "ts": c, "value": d}), ((a, c, d),))
                        for a, b, c, d in rows]
    return out


def expected_rows(messages: list[Message]) -> set[tuple[str, int, float]]:
    return {r for msg in messages for r in msg.readings}


class Publisher:
    """Gateways' side, at least once: QoS 1 on a persistent session; paho republishes whatever the broker
    has not acknowledged after a reconnect. ``acked`` counts PUBACKs received."""

    def __init__(self, broker: Mosquitto, rate_msgs: float = 4000.0) -> None:
        self.client = broker.client("gateway", f"fault-pub-{uuid.uuid4().hex[:8]}", clean_session=False)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)  # queue everything while the broker is away
        self.client.reconnect_delay_set(0.2, 2)
        self.rate = rate_msgs
        self._lock = threading.Lock()
        self.acked: set[int] = set()
        self.sent: list[int] = []
        self.published = 0  # messages handed to paho
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        self._thread: threading.Thread | None = None

    def _on_publish(self, _c, _u, mid: int, _rc, _p) -> None:
        with self._lock:
            self.acked.add(mid)

    def start(self, messages: list[Message]) -> None:
        """Publish the stream on a thread, paced at ``rate_msgs`` messages a second."""
        def run() -> None:
            t0 = time.monotonic()
            for i, msg in enumerate(messages):
                info = self.client.publish(msg.topic, msg.payload, qos=1)
                self.sent.append(info.mid)
                self.published = i + 1
                ahead = (i + 1) / self.rate - (time.monotonic() - t0)
                if ahead > 0.01:
                    time.sleep(ahead)

        self._thread = threading.Thread(target=run, name="fault-publisher", daemon=True)
        self._thread.start()

    def all_acked(self) -> bool:
        with self._lock:
            return self._thread is not None and not self._thread.is_alive() and self.acked.issuperset(self.sent)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def prepare_session(broker: Mosquitto, client_id: str, prefix: str = "shouwang/v1") -> None:
    """Create the service's persistent session and its subscriptions before anything is published, as a
    deployed service's session already exists: from then on the broker queues readings for it."""
    done = threading.Event()
    c = broker.client("service", client_id, clean_session=False)
    c.on_subscribe = lambda *_a: done.set()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.subscribe([(t.format(p=prefix), 1) for t in SUB_TOPICS])
    assert done.wait(10), "no SUBACK"
    c.disconnect()
    c.loop_stop()


def drain_session(broker: Mosquitto, client_id: str, quiet_s: float = 1.0) -> list[mqtt.MQTTMessage]:
    """Connect as ``client_id`` (persistent session) and take what the broker still holds for it: what the
    service never received, or received and did not acknowledge."""
    got: list[mqtt.MQTTMessage] = []
    c = broker.client("service", client_id, clean_session=False)
    c.on_message = lambda _c, _u, msg: got.append(msg)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    last = -1
    while last != len(got):
        last = len(got)
        time.sleep(quiet_s)
    c.disconnect()
    c.loop_stop()
    return got


# --------------------------------------------------------------------------------- the service, as a child
class ServiceProcess:
    """`shouwang run` in a child process, configured as an operator would (SHOUWANG_* variables)."""

    def __init__(self, workdir: Path, registry: Registry, broker: Mosquitto, database_url: str,
                 client_id: str, **settings: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        registry_file = workdir / "registry.yaml"
        registry_file.write_text(dump_registry(registry), encoding="utf-8")
        self.log = workdir / "service.log"
        self.env = {**os.environ, "SHOUWANG_REGISTRY_FILE": str(registry_file),
                    "SHOUWANG_DATABASE_URL": database_url, "SHOUWANG_MQTT_PORT": str(broker.port),
                    "SHOUWANG_MQTT_USERNAME": broker.accounts["service"][0],
                    "SHOUWANG_MQTT_PASSWORD": broker.accounts["service"][1],
                    "SHOUWANG_SECRET_KEY": secrets.token_hex(32),
                    "SHOUWANG_MQTT_CLIENT_ID": client_id, "SHOUWANG_MQTT_EMBEDDED_FALLBACK": "false",
                    "SHOUWANG_API_PORT": str(free_port()), "SHOUWANG_LOG_LEVEL": "WARNING",
                    "SHOUWANG_TICK_S": "5", **{f"SHOUWANG_{k.upper()}": v for k, v in settings.items()}}
        self.env.pop("SHOUWANG_CONFIG", None)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "shouwang.cli", "run"], env=self.env, cwd=ROOT,
                                         stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as systemd or Docker stop the service; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stored_at_least(self, view: StoreView, n: int):
        """A predicate for wait_until: ``view`` holds n readings; fails at once, with the log, if we died."""
        def check() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the service exited ({self.proc.returncode}):\n"
                                     + self.log.read_text()[-3000:])
            return view.count() >= n
        return check

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_stopped(self) -> None:
        if self.alive():
            self.kill()


# --------------------------------------------------------------------------------- the store, from outside
# Every stored reading: the recent table (SQLite's new readings, storage/sql_recent.py) and the main one.
ALL_READINGS = "(SELECT meter, ts, value FROM readings UNION ALL SELECT meter, ts, value FROM readings_recent) AS a"


class StoreView:
    """Reads the readings tables directly (SQLite or PostgreSQL), independently of the service's Store."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def count(self) -> int:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text(f"SELECT count(*) FROM {ALL_READINGS}")).scalar_one()
        except Exception:  # noqa: BLE001 - not created yet, or locked for a moment
            return 0

    def rows(self) -> list[tuple[str, int, float]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(f"SELECT meter, ts, value FROM {ALL_READINGS}"))]

    def distinct(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM (SELECT DISTINCT meter, ts FROM {ALL_READINGS}) d")).scalar_one()

    def rejections(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT reason, detail FROM rejections"))]

    def close(self) -> None:
        self.engine.dispose()


# --------------------------------------------------------------------------------------- a TCP proxy
# ------------------------------------------------------------------------------ a throw-away PostgreSQL
class ThrowawayPostgres:
    """A database of its own on the machine's PostgreSQL (``SHOUWANG_TEST_PG``), dropped on ``drop()``."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"shouwang_fault_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.name}"
        self.host = self.admin.url.host or "127.0.0.1"
        self.port = self.admin.url.port or 5432

    def url_via(self, port: int) -> str:
        """The database's URL through a proxy listening on ``port`` of the loopback."""
        # trust auth ignores the password, but `shouwang run` refuses a database URL without one
        u = self.admin.url.set(host="127.0.0.1", port=port, database=self.name,
                               password=self.admin.url.password or secrets.token_hex(12))
        return u.render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """For a fixture: a ThrowawayPostgres on ``SHOUWANG_TEST_PG``, dropped afterwards; without PostgreSQL the test
    is skipped (failed in CI)."""
    try:
        db = ThrowawayPostgres(PG_ADMIN_URL)
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}: {type(exc).__name__}")
    try:
        yield db
    finally:
        db.drop()

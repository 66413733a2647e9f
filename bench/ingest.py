"""Ingest benchmark (issue 7): the bare limits next to what Shouwang does on top of them.

One command, against one broker, in one run:

0. CPU per stage, one thread, no broker (handler, store, household state)        → µs per message/reading
1. a bare paho-mqtt subscriber (MQTT 3.1.1, QoS 1, persistent session) draining N single-reading
   messages                                                                      → msg/s
2. the full service (validate → store in SQLite → household state → detectors ticking) draining the
   same N messages, interleaved with (1) --repeat times                            → msg/s, % of (1)
3. batched gateway uploads (100 readings a message) end to end into a SQLite store that already holds
   10 M readings, shaped as live-gateway snapshots and as meter backlogs            → readings/s
   (next to a bare subscriber that only parses the same messages with orjson)
4. a bare SQLite insert baseline with the same (meter, ts) key, empty and at 10 M rows → rows/s
5. household state memory for 100,000 households; one sweep of the existing detectors over
   1,000,000 meters                                                              → MB, ms
6. latency from the reading that makes an alert due to its first notification leaving → p50/p99

Publishers run in a separate process and write pre-encoded MQTT packets straight to a socket, so their
CPU barely competes with the subscriber. Each run uses its own topic prefix and client ids, and removes its
broker sessions afterwards. Publishers are paced, never more than ``--window`` messages ahead of what the
subscriber has acknowledged, because Mosquitto drops QoS 1 messages for a slow subscriber beyond
``max_queued_messages`` (default 1000) instead of queueing them.

    .venv/bin/python bench/ingest.py            # the full run, about six minutes
    .venv/bin/python bench/ingest.py --quick    # a smoke run, under a minute
    .venv/bin/python bench/ingest.py --help

Not part of the test suite. Results and what limits them: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import logging
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import tracemalloc
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this file is called ingest.py: keep its own folder off the path so `import ingest` finds the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import numpy as np
import orjson

STEP = 900  # a 15-minute cadence
DEFAULT_GC_THRESHOLD = gc.get_threshold()  # as Python starts, before any service run tunes it
H = 3600
COMMUNITY = "bench"
log = logging.getLogger("bench")


# ====================================================================== workload
@dataclass(frozen=True)
class Workload:
    """A community of ``households`` (a water and an electricity meter each) behind gateways of
    ``meters_per_gateway`` meters, reporting every 15 minutes from ``t0`` for ``rounds`` intervals.

    Messages carry ``batch`` readings: with ``span`` 1, one gateway's meters at one instant (a live gateway's
    upload; with batch 1, single readings); with ``span`` k, k consecutive intervals of batch/k meters
    (a concentrator uploading its meters' backlog, as NB-IoT meters do)."""

    households: int
    meters_per_gateway: int = 100
    t0: int = 0
    first_step: int = 0  # value index of the first round (continues a pre-filled history)
    rounds: int = 1
    batch: int = 1
    span: int = 1

    @property
    def meters(self) -> int:
        return 2 * self.households

    @property
    def gateways(self) -> int:
        return -(-self.meters // self.meters_per_gateway)

    @property
    def readings(self) -> int:
        return self.rounds * self.meters

    @property
    def messages(self) -> int:
        return sum(1 for _ in self.groups())

    def groups(self):
        """(gateway, [(meter, round), ...]) of every message, in publishing order."""
        per = max(1, self.batch // self.span)
        for r0 in range(0, self.rounds, self.span):
            rs = range(r0, min(r0 + self.span, self.rounds))
            for g in range(self.gateways):
                lo, hi = g * self.meters_per_gateway, min((g + 1) * self.meters_per_gateway, self.meters)
                for b in range(lo, hi, per):
                    yield g, [(m, r) for m in range(b, min(b + per, hi)) for r in rs]

    def rows(self) -> list[tuple[str, int, float]]:
        """The readings as (meter, ts, value) rows, in publishing order."""
        ids = [meter_id(m) for m in range(self.meters)]
        return [(ids[m], self.t0 + r * STEP, meter_value(m, self.first_step + r))
                for _g, group in self.groups() for m, r in group]


def household_id(h: int) -> str:
    return f"H{h:07d}"


def meter_id(m: int) -> str:
    """Meter m belongs to household m // 2; even meters are water, odd ones electricity."""
    return f"{household_id(m // 2)}-{'W' if m % 2 == 0 else 'E'}"


def gateway_id(g: int) -> str:
    return f"GW{g:05d}"


def meter_value(m: int, step: int) -> float:
    """Cumulative register after ``step`` intervals: water rises 2 L, electricity 0.15 kWh an interval."""
    base = float(m % 997)
    return round(base + step * (0.002 if m % 2 == 0 else 0.15), 3)


def build_registry(households: int, meters_per_gateway: int = 100):
    from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Registry

    n_meters = 2 * households
    n_gw = -(-n_meters // meters_per_gateway)
    gws = tuple(Gateway(gateway_id(g), COMMUNITY) for g in range(n_gw))
    hhs = tuple(Household(household_id(h), COMMUNITY, f"Resident {h}", f"Bldg {h // 100}-{h % 100}", "grid-1")
                for h in range(households))
    meters = tuple(Meter(meter_id(m), household_id(m // 2), MeterKind.WATER if m % 2 == 0 else MeterKind.ELECTRICITY,
                         gateway_id(m // meters_per_gateway)) for m in range(n_meters))
    return Registry((Community(COMMUNITY, "Bench community", "Asia/Shanghai"),), gws, hhs, meters)


def workload_messages(w: Workload, prefix: str) -> list[tuple[str, bytes]]:
    """The (topic, payload) of every message, in publishing order."""
    topics = [f"{prefix}/{COMMUNITY}/{gateway_id(g)}/readings" for g in range(w.gateways)]
    ids = [meter_id(m) for m in range(w.meters)]
    kinds = ["water" if m % 2 == 0 else "electricity" for m in range(w.meters)]

    def one(m: int, r: int) -> dict:
        return {"meter": ids[m], "kind": kinds[m], "ts": w.t0 + r * STEP, "value": meter_value(m, w.first_step + r)}

    out: list[tuple[str, bytes]] = []
    for g, group in w.groups():
        if w.batch == 1:
            out.append((topics[g], orjson.dumps(one(*group[0]))))
        else:
            out.append((topics[g], orjson.dumps({"gateway": gateway_id(g),
                                                 "readings": [one(m, r) for m, r in group]})))
    return out


# ====================================================================== a raw MQTT 3.1.1 publisher
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, b = divmod(n, 128)
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_str(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def mqtt_connect_packet(client_id: str) -> bytes:
    body = _mqtt_str(b"MQTT") + bytes([4, 0x02]) + (0).to_bytes(2, "big") + _mqtt_str(client_id.encode())
    return b"\x10" + _varint(len(body)) + body  # clean session, keepalive off


def mqtt_publish_packet(topic: str, payload: bytes, pid: int) -> bytes:
    body = _mqtt_str(topic.encode()) + pid.to_bytes(2, "big") + payload
    return b"\x32" + _varint(len(body)) + body  # PUBLISH, QoS 1, not retained


class RawPublisher:
    """Pre-encoded QoS 1 PUBLISH packets written straight to a socket; PUBACKs are counted in bulk."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(mqtt_connect_packet(client_id))
        ack = self._recv_exact(4)
        if ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError(f"broker refused the publisher: CONNACK {ack.hex()}")
        self.sock.settimeout(None)
        self.acked = 0
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def _read(self) -> None:
        rest = 0
        while True:  # after CONNACK the broker sends nothing but 4-byte PUBACKs
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            rest += len(data)
            self.acked += rest // 4
            rest %= 4

    def send(self, packets: list[bytes]) -> None:
        self.sock.sendall(b"".join(packets))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def publisher_process(host: str, port: int, client_id: str, w: Workload | None, prefix: str, window: int,
                      received, ready, go, stop, results, timed: list[tuple[str, bytes]] | None = None,
                      gap_s: float = 0.0) -> None:
    """Child process: encode the workload, connect, wait for ``go``, publish paced by ``received``."""
    try:
        msgs = timed if timed is not None else workload_messages(w, prefix)
        packets = [mqtt_publish_packet(t, p, i % 65535 + 1) for i, (t, p) in enumerate(msgs)]
        del msgs
        pub = RawPublisher(host, port, client_id)
        ready.set()
        go.wait()
        sent_at: list[float] = []
        t_start = time.perf_counter()
        sent, n = 0, len(packets)
        if timed is not None:  # the latency run: one message every gap_s, each send time recorded
            for i, pkt in enumerate(packets):
                delay = t_start + i * gap_s - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sent_at.append(time.perf_counter())
                pub.send([pkt])
                sent += 1
        else:
            while sent < n and not stop.is_set():
                allowed = min(received.value + window - sent, n - sent, 200)
                if allowed <= 0:
                    time.sleep(0.0005)
                    continue
                pub.send(packets[sent:sent + allowed])
                sent += allowed
        t_sent = time.perf_counter()
        deadline = time.monotonic() + 30
        while pub.acked < sent and time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.001)
        results.put({"sent": sent, "acked": pub.acked, "publish_s": t_sent - t_start, "sent_at": sent_at})
        stop.wait(600)
        pub.close()
    except BaseException as exc:  # noqa: BLE001 - report to the parent instead of hanging it
        ready.set()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


class Publisher:
    """The parent's handle on one publisher process."""

    def __init__(self, args: argparse.Namespace, prefix: str, w: Workload | None,
                 timed: list[tuple[str, bytes]] | None = None, gap_s: float = 0.0) -> None:
        ctx = mp.get_context("spawn")  # the parent runs threads; never fork it
        self.received = ctx.RawValue("q", 0)
        self.ready, self.go, self.stop = ctx.Event(), ctx.Event(), ctx.Event()
        self.results = ctx.Queue()
        self.proc = ctx.Process(target=publisher_process, daemon=True, args=(
            args.host, args.port, f"{prefix.split('/')[0]}-pub", w, prefix, args.window, self.received,
            self.ready, self.go, self.stop, self.results, timed, gap_s))
        self.proc.start()
        deadline = time.monotonic() + 300
        while not self.ready.wait(0.2):
            if not self.proc.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("publisher did not get ready")
        self.result: dict | None = None

    def start(self) -> None:
        self.go.set()

    def finish(self, timeout: float = 60) -> dict:
        if self.result is None:
            try:
                self.result = self.results.get(timeout=timeout)
            except Exception:  # noqa: BLE001
                self.result = {"error": "publisher did not report"}
        self.stop.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
        if "error" in self.result:
            raise RuntimeError(f"publisher failed: {self.result['error']}")
        return self.result

    def abort(self) -> None:
        self.stop.set()
        self.go.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# ====================================================================== broker helpers
def paho_client(client_id: str, clean_session: bool, buffered: bool = False):
    """A plain paho-mqtt 2.x client (3.1.1), or with ``buffered`` the service's ``BufferedClient``."""
    import paho.mqtt.client as mqtt

    from ingest.paho_client import BufferedClient

    cls = BufferedClient if buffered else mqtt.Client
    return cls(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
               protocol=mqtt.MQTTv311)


def clear_session(host: str, port: int, client_id: str) -> None:
    """Connect once with a clean session so the broker forgets a persistent one (and anything queued)."""
    with contextlib.suppress(Exception):
        c = paho_client(client_id, clean_session=True)
        c.connect(host, port, keepalive=10)
        c.loop_start()
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()


def broker_info(host: str, port: int) -> dict:
    """Mosquitto's version ($SYS) and the outgoing in-flight window it grants a 3.1.1 subscriber."""
    prefix = f"bench-probe-{uuid.uuid4().hex[:8]}"
    got: list[int] = []
    version: list[str] = []

    def on_message(_c, _u, m):
        if m.topic.startswith("$SYS"):
            version.append(m.payload.decode())
        else:
            got.append(m.mid)

    sub = paho_client(f"{prefix}-sub", clean_session=True)
    sub.manual_ack_set(True)  # never acknowledge: count how many the broker sends before it waits
    sub.on_message = on_message
    sub.connect(host, port)
    sub.subscribe([(f"{prefix}/x", 1), ("$SYS/broker/version", 0)])
    sub.loop_start()
    time.sleep(0.3)
    pub = RawPublisher(host, port, f"{prefix}-pub")
    pub.send([mqtt_publish_packet(f"{prefix}/x", b"probe", i + 1) for i in range(1000)])
    time.sleep(0.7)
    pub.close()
    sub.disconnect()
    sub.loop_stop()
    return {"version": version[0] if version else "unknown", "inflight_window": len(got)}


@contextlib.contextmanager
def private_broker(conf_lines: list[str]):
    """A Mosquitto of our own on a free port (``--private-broker``), stopped by its pid afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tempfile.mkdtemp(prefix="bench-mosq-")
    conf = Path(d) / "mosquitto.conf"
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true", *conf_lines]) + "\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)


# ====================================================================== profiling (optional)
class Profiler:
    """py-spy on this process for the duration of one phase (``--profile DIR``)."""

    def __init__(self, out_dir: str | None, name: str) -> None:
        self.proc = None
        if not out_dir:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            print("  (py-spy not found; not profiling)")
            return
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(os.getpid()), "--rate", "250", "--nonblocking", "--threads", "--gil",
             "--format", "raw", "-o", str(Path(out_dir) / f"{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)


# ====================================================================== results
@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def add(self, name: str, value: str, target: str = "", note: str = "", **data) -> None:
        self.rows.append((name, value, target, note))
        self.data[name] = {"value": value, "target": target, "note": note, **data}
        print(f"  {name}: {value}" + (f"   [target {target}]" if target else "") + (f"   {note}" if note else ""),
              flush=True)

    def table(self) -> str:
        w = [max(len(r[i]) for r in [*self.rows, ("measure", "result", "target", "")]) for i in range(3)]
        lines = [f"{'measure':<{w[0]}}  {'result':>{w[1]}}  {'target':<{w[2]}}  note",
                 f"{'-' * w[0]}  {'-' * w[1]}  {'-' * w[2]}  ----"]
        lines += [f"{a:<{w[0]}}  {b:>{w[1]}}  {c:<{w[2]}}  {d}" for a, b, c, d in self.rows]
        return "\n".join(lines)


def fmt_rate(x: float, unit: str) -> str:
    return f"{x:,.0f} {unit}"


# ====================================================================== SQLite: schema, pre-fill, baseline
def create_store_file(path: Path) -> None:
    """The service's own schema (SqlStore creates it), in an empty file."""
    from storage.sql import open_store

    store = open_store(f"sqlite:///{path}")
    store.close()


def prefill(path: Path, meters: int, steps: int, t0: int) -> float:
    """``meters`` × ``steps`` 15-minute readings into the readings table, in key order, in one statement."""
    create_store_file(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")
    t = time.perf_counter()
    con.execute("BEGIN")
    con.execute("CREATE TEMP TABLE bench_meters (id TEXT PRIMARY KEY, base REAL, inc REAL) WITHOUT ROWID")
    con.executemany("INSERT INTO bench_meters VALUES (?, ?, ?)",
                    ((meter_id(m), float(m % 997), 0.002 if m % 2 == 0 else 0.15) for m in range(meters)))
    con.execute(
        "WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < ?) "
        "INSERT INTO readings (meter, ts, value) "
        "SELECT m.id, ? + s.k * ?, round(m.base + s.k * m.inc, 3) FROM bench_meters m, s ORDER BY m.id, s.k",
        (steps - 1, t0, STEP))
    con.execute("COMMIT")
    elapsed = time.perf_counter() - t
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    return elapsed


def sqlite_insert_rate(path: Path, rows: list[tuple[str, int, float]], per_txn: int) -> float:
    """Plain sqlite3 executemany into the readings table, WAL + synchronous=FULL like the service."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    t = time.perf_counter()
    for i in range(0, len(rows), per_txn):
        con.execute("BEGIN")
        con.executemany("INSERT INTO readings (meter, ts, value) VALUES (?, ?, ?)", rows[i:i + per_txn])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t
    con.close()
    return len(rows) / elapsed


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite database and its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def store_write_rate(path: Path, rows: list[tuple[str, int, float]], per_batch: int) -> dict:
    """SqlStore.write_readings in batches of ``per_batch`` as the batch writer makes them, each followed by a call
    to fold_readings (a slice of a fold when one is due), on one thread: the fold's whole cost is inside the rate.
    (The service folds on a thread of its own beside the writer, ingest/writer.py.)"""
    from shouwang.domain import Reading
    from storage.sql import open_store

    store = open_store(f"sqlite:///{path}")
    readings = [Reading(*r) for r in rows]
    write_s = fold_s = 0.0
    folded = slices = 0
    longest = 0.0
    try:
        for i in range(0, len(readings), per_batch):
            t = time.perf_counter()
            store.write_readings(readings[i:i + per_batch])
            t1 = time.perf_counter()
            moved = store.fold_readings()
            t2 = time.perf_counter()
            write_s, fold_s = write_s + t1 - t, fold_s + t2 - t1
            if moved or t2 - t1 > 0.01:  # a slice, or the start of a pass
                folded, slices, longest = folded + moved, slices + 1, max(longest, t2 - t1)
        recent = store.recent_count()
    finally:
        store.close()
    total = write_s + fold_s
    return {"rows": len(rows), "rows_per_s": len(rows) / total, "write_s": write_s, "fold_s": fold_s,
            "folded": folded, "fold_calls": slices, "longest_fold_call_s": longest, "recent_at_end": recent}


# ====================================================================== the service under test
class RecordingChannel:
    """A channel that records when each notification left (time.perf_counter()) and which household it
    is about (the bench's household ids, H + 7 digits, are found wherever the notification carries them)."""

    name = "recording"
    _HOUSEHOLD = re.compile(r"H\d{7}")

    def __init__(self) -> None:
        self.sent: list[tuple[float, str | None]] = []

    def send(self, notification) -> None:
        t = time.perf_counter()
        found = self._HOUSEHOLD.search(orjson.dumps(
            [notification.title, notification.text, notification.data], default=str).decode())
        self.sent.append((t, found.group(0) if found else None))
        if os.environ.get("BENCH_DEBUG"):
            print("notification:", notification.title, "|", notification.text[:120])


def make_service(args: argparse.Namespace, db: Path, registry, prefix: str, *, tick_s: float,
                 batch_delay_s: float | None, clock=None, channel=None):
    from shouwang.clock import SystemClock
    from shouwang.service import Service
    from shouwang.settings import Settings
    from storage.sql import open_store

    kw = {} if batch_delay_s is None else {"batch_max_delay_s": batch_delay_s}
    settings = Settings(
        database_url=f"sqlite:///{db}", mqtt_host=args.host, mqtt_port=args.port, mqtt_topic_prefix=prefix,
        mqtt_client_id=f"{prefix.split('/')[0]}-svc", mqtt_embedded_fallback=False, tick_s=tick_s, **kw)
    store = open_store(settings.database_url)
    channel = channel or RecordingChannel()
    if "channels" in inspect.signature(Service.__init__).parameters:  # notifier with a list of channels
        svc = Service(settings, store, registry, clock or SystemClock(), channels=[channel])
    else:  # escalation + outbox: every watcher URL becomes the recording channel
        svc = Service(settings, store, registry, clock or SystemClock(), watchers=["bench://record"],
                      make_channel=lambda _url: channel)
    return svc, store


def start_service(svc) -> None:
    subscribed = threading.Event()
    svc.ingest.client.on_subscribe = lambda *_a: subscribed.set()
    svc.start()
    if not subscribed.wait(10):
        raise RuntimeError("the service did not subscribe")


def stop_service(args: argparse.Namespace, svc, store) -> None:
    svc.stop()
    store.close()
    clear_session(args.host, args.port, svc.settings.mqtt_client_id)
    restore_collector()


def restore_collector() -> None:
    """Undo what ``Service.start`` did to Python's collector (``tune_collector``), so that the bare subscriber
    runs after a service run in this process measure paho with Python's defaults, as the first one does, and the
    next service run tunes it again as a fresh process would."""
    import shouwang.service

    gc.unfreeze()
    gc.set_threshold(*DEFAULT_GC_THRESHOLD)
    shouwang.service._collector_tuned = False


def count_messages(svc, counter) -> list[float]:
    """Note when the first message reaches the service, and count acknowledgements for the publisher's
    pacing: the broker holds every message it has sent until the acknowledgement (sent only after the
    store commits), so pacing on anything earlier lets the broker's queue overflow and drop messages."""
    inner, inner_ack = svc.ingest.client.on_message, svc.writer.acknowledge
    first: list[float] = []

    def on_message(client, userdata, msg):
        first.append(time.perf_counter())
        client.on_message = inner  # from the second message on, the service's own callback alone
        inner(client, userdata, msg)

    def acknowledge(acks):
        sent = inner_ack(acks)
        counter.value += sent
        return sent

    svc.ingest.client.on_message = on_message
    svc.writer.acknowledge = acknowledge
    return first


def watch_flushes(svc) -> list[list[float]]:
    """Record [messages, readings, seconds, of which store.write_readings, state.apply's seconds since the last
    record] of every store transaction the batch writer makes (a large batch is applied on a thread of its own,
    beside the next transaction, so the mean of the last over the records is the state's mean per batch)."""
    inner, inner_write, inner_apply = svc.writer._flush, svc.writer.store.write_readings, svc.writer.state.apply
    log_: list[list[float]] = []
    parts = [0.0, 0.0]

    def timed(fn, i):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                parts[i] += time.perf_counter() - t
        return wrapper

    def flush(batch):
        parts[0] = 0.0
        t = time.perf_counter()
        inner(batch)
        applied, parts[1] = parts[1], 0.0
        log_.append([len(batch), sum(len(p.result.readings) for p in batch), time.perf_counter() - t, parts[0],
                     applied])

    svc.writer._flush = flush
    svc.writer.store.write_readings = timed(inner_write, 0)
    svc.writer.state.apply = timed(inner_apply, 1)
    return log_


def flush_summary(flushes: list[list[float]]) -> dict:
    if not flushes:
        return {}
    return {"flushes": len(flushes), "messages_per_flush": statistics.mean(f[0] for f in flushes),
            "readings_per_flush": statistics.mean(f[1] for f in flushes),
            "flush_ms": 1000 * statistics.mean(f[2] for f in flushes),
            "store_ms": 1000 * statistics.mean(f[3] for f in flushes),
            "state_ms": 1000 * statistics.mean(f[4] for f in flushes),
            "flush_busy_s": sum(f[2] for f in flushes)}


def new_prefix() -> str:
    return f"bench-{uuid.uuid4().hex[:10]}/v1"


# ====================================================================== phase 1: bare subscriber
def bare_drain(args: argparse.Namespace, w: Workload, parse: bool, label: str, buffered: bool = False) -> dict:
    """A paho-mqtt 2.x subscriber like the service's (3.1.1, QoS 1, persistent session) that only counts
    (or also parses with orjson); paho acknowledges each message as it arrives. ``buffered``: with the service's
    buffered socket reads (``ingest.paho_client``) instead of paho's own."""
    prefix = new_prefix()
    n = w.messages
    pub = Publisher(args, prefix, w)
    client_id = f"{prefix.split('/')[0]}-bare"
    sub = paho_client(client_id, clean_session=False, buffered=buffered)
    sub.max_inflight_messages_set(1000)
    state = {"n": 0, "readings": 0, "t0": 0.0, "t1": 0.0, "tl": 0.0}
    done = threading.Event()
    received = pub.received
    loads = orjson.loads

    def on_message(_c, _u, msg):
        if state["n"] == 0:
            state["t0"] = time.perf_counter()
        if parse:
            state["readings"] += len(loads(msg.payload)["readings"])
        state["n"] += 1
        state["tl"] = time.perf_counter()
        received.value += 1
        if state["n"] == n:
            state["t1"] = time.perf_counter()
            done.set()

    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect(args.host, args.port, keepalive=30)
    sub.subscribe(f"{prefix}/+/+/readings", 1)
    sub.loop_start()
    try:
        if not subscribed.wait(10):
            raise RuntimeError("bare subscriber did not subscribe")
        pub.start()
        complete = done.wait(args.phase_timeout)
        t1 = state["t1"] if complete else state["tl"]
        res = pub.finish() if complete else (pub.abort() or {})
    finally:
        sub.disconnect()
        sub.loop_stop()
        clear_session(args.host, args.port, client_id)
    got = state["n"]
    elapsed = t1 - state["t0"]
    out = {"messages": got, "of": n, "seconds": elapsed, "msgs_per_s": got / elapsed if elapsed else 0.0,
           "readings_per_s": state["readings"] / elapsed if elapsed else 0.0, "complete": complete,
           "publisher": {k: v for k, v in res.items() if k != "sent_at"}}
    print(f"    {label}: {got:,}/{n:,} messages in {elapsed:.2f} s"
          + ("" if complete else f" — {n - got:,} missing at the time-out (too slow, or dropped by the broker)"), flush=True)
    return out


# ====================================================================== phase 2/3: the service
def service_drain(args: argparse.Namespace, w: Workload, db: Path, registry, *, batch_delay_s: float | None,
                  label: str, profile_name: str | None = None) -> dict:
    """Start the whole service on ``db``, publish the workload, time until every message is stored and
    acknowledged."""
    prefix = new_prefix()
    n = w.messages
    pub = Publisher(args, prefix, w)
    t = time.perf_counter()
    svc, store = make_service(args, db, registry, prefix, tick_s=args.tick_s, batch_delay_s=batch_delay_s)
    startup_s = time.perf_counter() - t
    first = count_messages(svc, pub.received)
    flushes = watch_flushes(svc)
    start_service(svc)
    prof = Profiler(args.profile, profile_name) if profile_name else None
    try:
        stored_before = svc.stats.get("readings_stored")
        cpu0 = time.process_time()
        t_pub = time.perf_counter()
        pub.start()
        deadline = time.perf_counter() + args.phase_timeout
        seen, t1 = 0, time.perf_counter()
        while seen < n and time.perf_counter() < deadline:
            time.sleep(0.002)
            if (now_seen := svc.stats.get("messages")) != seen:
                seen, t1 = now_seen, time.perf_counter()  # time of the last progress
        complete = seen >= n
        cpu = time.process_time() - cpu0
        if prof:
            prof.stop()
        res = pub.finish() if complete else (pub.abort() or {})
        stats = svc.stats.snapshot()
        turns = getattr(svc.writer.store, "_turns", None)  # SQLite: batch writes and fold slices take turns
        waits = (turns.write_wait_s, turns.fold_held_s) if turns is not None else None
    finally:
        if prof:
            prof.stop()
        stop_service(args, svc, store)
    elapsed = t1 - first[0] if first else float("nan")
    got = stats.get("messages", 0)
    readings = stats.get("readings_stored", 0) - stored_before
    rejected = {k: v for k, v in stats.items() if k.startswith("rejected.")}
    if rejected or (complete and readings != w.readings):
        print(f"    WARNING: {readings:,} readings stored of {w.readings:,}; rejections {rejected}")
    fs = flush_summary(flushes)
    if stats.get("readings_folded"):
        print(f"    fold of recent readings during the run: {stats['readings_folded']:,} moved into the main table")
    if waits:
        print(f"    SQLite's write lock: batches waited {waits[0]:.1f} s for their turn; fold slices held it "
              f"{waits[1]:.1f} s")
    print(f"    {label}: {got:,}/{n:,} messages, {readings:,} readings stored in {elapsed:.2f} s"
          + ("" if complete else f" — {n - got:,} missing at the time-out (too slow, or dropped by the broker)")
          + f"; service start-up {startup_s:.1f} s", flush=True)
    cores = cpu / (t1 - t_pub) if t1 > t_pub else 0.0
    print(f"    CPU of the service process: {cores:.2f} cores (Python's threads share one GIL; SQLite's own "
          f"work runs outside it)", flush=True)
    if fs:
        from ingest.writer import APPLY_BESIDE_MIN

        print(f"    writer: {fs['flushes']:,} transactions of {fs['messages_per_flush']:.1f} messages / "
              f"{fs['readings_per_flush']:.0f} readings, {fs['flush_ms']:.1f} ms each (store "
              f"{fs['store_ms']:.1f} + acks and the rest), busy {fs['flush_busy_s'] / elapsed:.0%} of the time; "
              f"the state {fs['state_ms']:.1f} ms a batch (beside the writer from {APPLY_BESIDE_MIN:,} readings a "
              f"batch, in it below)", flush=True)
    return {"messages": got, "of": n, "readings": readings, "seconds": elapsed, "complete": complete,
            "msgs_per_s": got / elapsed, "readings_per_s": readings / elapsed, "startup_s": startup_s,
            "cpu_cores": cores, "writer": fs, "stats": stats, "publisher": {k: v for k, v in res.items() if k != "sent_at"}}


# ====================================================================== phase 0: CPU per stage
def stage_costs(workdir: Path) -> dict:
    """Single-threaded µs per message and per reading of each stage, without a broker: what the writer
    thread and the MQTT thread each have to do."""
    from ingest.handler import MessageHandler
    from shouwang.state import ActivityModel, HouseholdState
    from storage.sql import open_store

    now = int(time.time())
    out: dict[str, float] = {}

    def best(fn) -> float:  # the fastest of 5 runs
        return min(timeit.repeat(fn, number=1, repeat=5))

    for label, w in (("single", Workload(2500, t0=now - 4 * STEP, rounds=4)),
                     ("batch100", Workload(2500, t0=now - 4 * STEP, rounds=4, batch=100))):
        registry = build_registry(w.households)
        msgs = workload_messages(w, "bench/v1")
        n_read = w.readings
        out[f"{label}: orjson.loads, µs/message"] = \
            best(lambda msgs=msgs: [orjson.loads(p) for _t, p in msgs]) / len(msgs) * 1e6

        def handle_all(registry=registry, msgs=msgs):
            h = MessageHandler(registry, "bench/v1", "Asia/Shanghai", 600)
            return [h.handle(t, p, now) for t, p in msgs]

        results = handle_all()
        assert sum(len(r.readings) for r in results) == n_read, "bench workload was not accepted"
        per_msg = best(handle_all) / len(msgs) * 1e6
        out[f"{label}: handler.handle, µs/message"] = per_msg
        out[f"{label}: handler.handle, µs/reading"] = per_msg * len(msgs) / n_read
    readings = [r for res in results for r in res.readings]
    registry = build_registry(2500)
    state = HouseholdState(registry, ActivityModel(), started_at=now - 5 * STEP)
    t = time.perf_counter()
    for i in range(0, len(readings), 5000):
        state.apply(readings[i:i + 5000])
    out["state.apply, 5,000 a call, µs/reading"] = (time.perf_counter() - t) / len(readings) * 1e6
    for per in (5000, 20):
        path = workdir / f"stage-{per}.db"
        store = open_store(f"sqlite:///{path}")
        t = time.perf_counter()
        for i in range(0, len(readings), per):
            store.write_readings(readings[i:i + per])
        out[f"store.write_readings, {per:,} a transaction, µs/reading"] = \
            (time.perf_counter() - t) / len(readings) * 1e6
        store.close()
        remove_sqlite(path)
    return out


# ====================================================================== phase 5: memory and sweep
def state_memory(households: int) -> dict:
    from ingest.handler import MessageHandler
    from shouwang.domain import Reading
    from shouwang.state import ActivityModel, HouseholdState

    registry = build_registry(households)
    now = int(time.time())
    gc.collect()
    tracemalloc.start()
    state = HouseholdState(registry, ActivityModel(), started_at=now)
    after_init = tracemalloc.get_traced_memory()[0]
    readings = [Reading(m.id, now - STEP * k, 10.0 + k * 0.01) for k in (2, 1) for m in registry.meters]
    base = tracemalloc.get_traced_memory()[0]
    state.apply(readings)
    applied = tracemalloc.get_traced_memory()[0] - base + after_init
    del readings
    handler_base = tracemalloc.get_traced_memory()[0]
    handler = MessageHandler(registry, "shouwang/v1", "Asia/Shanghai", 600)
    handler.prime({m.id: Reading(m.id, now, 1.0) for m in registry.meters})
    handler_bytes = tracemalloc.get_traced_memory()[0] - handler_base
    tracemalloc.stop()
    arrays = state.array_bytes()
    del state, handler
    return {"households": households, "meters": len(registry.meters), "state_bytes": after_init,
            "state_bytes_after_readings": applied, "array_bytes": arrays, "handler_bytes": handler_bytes}


def detector_sweep(meters: int, repeats: int) -> dict:
    from detectors import DeviceDetector, NoChangeDetector
    from shouwang.state import ActivityModel, HouseholdState

    households = meters // 2
    t = time.perf_counter()
    registry = build_registry(households)
    now = int(time.time())
    state = HouseholdState(registry, ActivityModel(), started_at=now - 30 * 86400)
    setup_s = time.perf_counter() - t
    rng = np.random.default_rng(7)
    n = len(state.meter_ids)
    state.first_ts[:] = now - 30 * 86400
    state.last_ts[:] = now - rng.integers(0, STEP, n)
    state.last_value[:] = rng.random(n) * 1000
    state.base_rate[:] = np.where(state.meter_kind == 1, 0.08, np.inf)
    state.last_activity[:] = now - rng.integers(0, 20 * H, n)
    quiet = rng.choice(households, households // 1000, replace=False)  # 0.1 % inactive for 50 h
    for h in quiet:
        state.last_activity[2 * h:2 * h + 2] = now - 50 * H
    silent = rng.choice(n, n // 10_000, replace=False)  # 0.01 % of meters silent for 7 h
    state.last_ts[silent] = now - 7 * H
    state.gateway_online[rng.choice(len(state.gateway_ids), 5, replace=False)] = False
    state.touch()  # the first sweep reduces over every meter; each later one after 1 % of households changed
    dets = [NoChangeDetector(window_s=48 * H, max_staleness_s=6 * H), DeviceDetector(silence_s=6 * H)]
    times: dict[str, list[float]] = {d.name: [] for d in dets}
    times["sweep"] = []
    findings = {}
    for r in range(repeats):
        if r:
            state.touch(rng.choice(households, households // 100, replace=False))
        t_sweep = time.perf_counter()
        for d in dets:
            t = time.perf_counter()
            f = d.evaluate(state, now)
            times[d.name].append((time.perf_counter() - t) * 1000)
            findings[d.name] = len(f)
        times["sweep"].append((time.perf_counter() - t_sweep) * 1000)
    return {"meters": n, "households": households, "gateways": len(state.gateway_ids), "setup_s": setup_s,
            "findings": findings, "ms": {k: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                                         for k, v in times.items()}}


# ====================================================================== phase 6: alert latency
def alert_latency(args: argparse.Namespace, workdir: Path, alerts: int, tick_s: float,
                  batch_delay_s: float | None, gap_s: float | None = None) -> dict:
    """``alerts`` households whose meters have been flat for 48 h minus one interval; the reading that
    completes the 48 h arrives for each in turn, spread over a few detector ticks."""
    from shouwang.clock import ManualClock

    registry = build_registry(alerts, meters_per_gateway=20)
    now = int(time.time())
    t_due = now - 60  # event time at which each household's 48 h of no use is complete
    t_first = t_due - 48 * H
    steps = 48 * H // STEP  # history: t_first … t_due - 15 min, flat registers
    db = workdir / f"latency-{uuid.uuid4().hex[:8]}.db"
    create_store_file(db)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN")
    con.executemany("INSERT INTO readings (meter, ts, value) VALUES (?, ?, ?)",
                    ((m.id, t_first + k * STEP, 100.0) for m in registry.meters for k in range(steps)))
    con.execute("COMMIT")
    con.close()

    prefix = new_prefix()
    gateway_of = {m.household: m.gateway for m in registry.meters}
    msgs, order = [], []
    for h in registry.households:  # the completing message: both meters at t_due, still flat
        gw = gateway_of[h.id]
        payload = orjson.dumps({"readings": [{"meter": f"{h.id}-W", "kind": "water", "ts": t_due, "value": 100.0},
                                             {"meter": f"{h.id}-E", "kind": "electricity", "ts": t_due,
                                              "value": 100.0}]})
        msgs.append((f"{prefix}/{COMMUNITY}/{gw}/readings", payload))
        order.append(h.id)
    rng = np.random.default_rng(3)
    perm = rng.permutation(len(msgs))
    msgs, order = [msgs[i] for i in perm], [order[i] for i in perm]
    if gap_s is None:  # a burst spread over ~3 ticks, so every phase of the timer is sampled
        gap_s = max(0.01, 3.0 * tick_s / len(msgs))
    pub = Publisher(args, prefix, None, timed=msgs, gap_s=gap_s)
    channel = RecordingChannel()
    svc, store = make_service(args, db, registry, prefix, tick_s=tick_s, batch_delay_s=batch_delay_s,
                              clock=ManualClock(now), channel=channel)
    received_at: dict[str, float] = {}
    inner = svc.ingest.client.on_message

    def on_message(client, userdata, msg):
        t = time.perf_counter()
        with contextlib.suppress(Exception):
            received_at.setdefault(orjson.loads(msg.payload)["readings"][0]["meter"][:-2], t)
        inner(client, userdata, msg)

    svc.ingest.client.on_message = on_message
    # where the time goes: stored (writer), found (detector sweep opened the alert), sweep durations
    stored_at: dict[str, float] = {}
    opened_at: dict[str, float] = {}
    sweeps: list[tuple[float, float]] = []
    inner_flush, inner_run, inner_tick = svc.writer._flush, svc.pipeline.run, svc.tick

    def flush(batch):
        inner_flush(batch)
        t = time.perf_counter()
        for p in batch:
            for r in p.result.readings:
                stored_at.setdefault(r.meter[:-2], t)

    def run_pipeline(findings, now_):
        opened = inner_run(findings, now_)
        t = time.perf_counter()
        for a in opened:
            if a.household:
                opened_at.setdefault(a.household, t)
        return opened

    def tick(now_=None):
        t = time.perf_counter()
        try:
            return inner_tick(now_)
        finally:
            sweeps.append((t, time.perf_counter() - t))

    svc.writer._flush, svc.pipeline.run, svc.tick = flush, run_pipeline, tick
    start_service(svc)
    try:
        pub.start()
        res = pub.finish(timeout=gap_s * len(msgs) + 60)
        deadline = time.perf_counter() + 2 * tick_s + 10
        while time.perf_counter() < deadline and len(channel.sent) < len(msgs):
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        stop_service(args, svc, store)
        remove_sqlite(db)
    sent_at = dict(zip(order, res["sent_at"], strict=True))
    first_note: dict[str, float] = {}
    other = 0
    for t, household in channel.sent:
        if household in sent_at:
            first_note.setdefault(household, t)
        else:
            other += 1
    from_recv = sorted((first_note[h] - received_at[h]) * 1000 for h in first_note if h in received_at)
    from_pub = sorted((first_note[h] - sent_at[h]) * 1000 for h in first_note)

    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))] if xs else float("nan")

    def dist(xs: list[float]) -> dict:
        return {"p50": pct(xs, 50), "p99": pct(xs, 99), "max": pct(xs, 100)}

    hs = [h for h in first_note if h in received_at and h in stored_at and h in opened_at]
    sweep_ms = [d * 1000 for _t, d in sweeps]
    return {"alerts": len(first_note), "expected": len(msgs), "other_notifications": other, "tick_s": tick_s,
            "gap_ms": gap_s * 1000, "from_receipt_ms": dist(from_recv), "from_publish_ms": dist(from_pub),
            "parts_ms": {"receipt → stored": dist([(stored_at[h] - received_at[h]) * 1000 for h in hs]),
                         "stored → alert opened by a sweep": dist([(opened_at[h] - stored_at[h]) * 1000 for h in hs]),
                         "opened → notification left": dist([(first_note[h] - opened_at[h]) * 1000 for h in hs])},
            "sweep_ms": dist(sweep_ms), "sweeps": len(sweeps)}


# ====================================================================== machine
def machine() -> dict:
    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    import paho.mqtt
    import sqlalchemy

    mem = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), "?")
    cpu = next((ln.split(":", 1)[1].strip() for ln in run(["lscpu"]).splitlines() if ln.startswith("Model name")),
               platform.processor())
    return {"nproc": run(["nproc"]), "cpu": cpu, "memory": mem, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "paho": paho.mqtt.__version__, "sqlalchemy": sqlalchemy.__version__,
            "numpy": np.__version__, "orjson": orjson.__version__, "kernel": platform.release()}


# ====================================================================== main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--private-broker", action="store_true",
                   help="run everything against a Mosquitto of our own started with deploy/mosquitto's limits "
                        "(max_inflight_messages 1000, max_queued_messages 1000000) instead of --host/--port")
    p.add_argument("--quick", action="store_true", help="small sizes: a ~30 s smoke run")
    p.add_argument("--messages", type=int, help="single-reading messages for phases 1 and 2 (default 30,000)")
    p.add_argument("--batch-delay", default="default,0.02,0",
                   help="comma-separated SHOUWANG_BATCH_MAX_DELAY_S values for phase 2 ('default' = the setting's "
                        "default, 0.2 s); each is one run of the service")
    p.add_argument("--prefill", type=int, help="readings already in the store for phase 3 (default 10,000,000)")
    p.add_argument("--upload-meters", type=int, help="meters reporting in phase 3 (default 100,000)")
    p.add_argument("--upload-rounds", type=int, help="15-minute intervals uploaded in phase 3 (default 10)")
    p.add_argument("--batch-size", type=int, default=100, help="readings per gateway message in phase 3")
    p.add_argument("--upload-shapes", default="snapshot,backlog",
                   help="phase 3 message shapes: snapshot (one gateway's meters at one instant) and/or backlog "
                        "(a few meters × --backlog-span consecutive intervals)")
    p.add_argument("--backlog-span", type=int, default=25, help="intervals per meter in a backlog message")
    p.add_argument("--repeat", type=int, help="interleaved repetitions of phases 1 and 2 (default 3); the "
                   "median is reported")
    p.add_argument("--sqlite-rows", type=int, help="rows per SQLite baseline measurement (default 500,000)")
    p.add_argument("--state-households", type=int, default=100_000)
    p.add_argument("--sweep-meters", type=int, default=1_000_000)
    p.add_argument("--alerts", type=int, help="alerts in the latency phase (default 300)")
    p.add_argument("--latency-ticks", default="default,5",
                   help="comma-separated SHOUWANG_TICK_S values for the latency phase ('default' = the setting's "
                   "default, 0.5 s; 5 s was the default before sweeps followed stored readings)")
    p.add_argument("--trickle-alerts", type=int, help="also measure this many alerts arriving one at a time "
                   "(every 1.2 ticks, at the shortest tick of --latency-ticks; default 40, 0 to skip)")
    p.add_argument("--tick-s", type=float, default=1.0, help="detector tick during the throughput phases")
    p.add_argument("--window", type=int, default=500,
                   help="publisher runs at most this many messages ahead of the subscriber")
    p.add_argument("--phase-timeout", type=float, help="stop waiting for a drain after this many seconds; the "
                   "rate is then over what arrived, marked incomplete (default 60)")
    p.add_argument("--switch-interval", type=float,
                   help="sys.setswitchinterval for this process (Python's default is 0.005 s)")
    p.add_argument("--phases", default="0,1,2,3,4,5,6", help="which phases to run (0 = CPU per stage)")
    p.add_argument("--workdir", help="directory for the databases (default: a temporary one, removed)")
    p.add_argument("--profile", metavar="DIR", help="record py-spy raw profiles of phases 2 and 3 into DIR")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    a = p.parse_args(argv)
    q = a.quick
    a.messages = a.messages or (10_000 if q else 30_000)
    a.prefill = a.prefill if a.prefill is not None else (1_000_000 if q else 10_000_000)
    a.upload_meters = a.upload_meters or (20_000 if q else 100_000)
    a.upload_rounds = a.upload_rounds or (5 if q else 10)
    a.repeat = a.repeat or (1 if q else 3)
    a.upload_shapes = {x.strip() for x in a.upload_shapes.split(",") if x.strip()}
    a.sqlite_rows = a.sqlite_rows or (100_000 if q else 500_000)
    a.alerts = a.alerts or (100 if q else 300)
    a.trickle_alerts = a.trickle_alerts if a.trickle_alerts is not None else (0 if q else 40)
    a.phase_timeout = a.phase_timeout or (15.0 if q else 60.0)
    if q:
        a.latency_ticks = a.latency_ticks if a.latency_ticks != "default,0.5" else "0.5"
        a.state_households = min(a.state_households, 20_000)
        a.sweep_meters = min(a.sweep_meters, 200_000)
    a.phases = {int(x) for x in a.phases.split(",") if x.strip()}
    return a


def _floats(spec: str) -> list[float | None]:
    return [None if x.strip() == "default" else float(x) for x in spec.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ingest.subscriber").setLevel(logging.ERROR)  # "disconnected" at every service stop
    if args.private_broker:
        with private_broker(["max_inflight_messages 1000", "max_queued_messages 1000000"]) as port:
            args.host, args.port = "127.0.0.1", port
            return run(args)
    return run(args)


def _median_run(runs: list[dict], key: str) -> dict:
    """The run with the median ``key`` (an actual run, so its other figures belong together)."""
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def run(args: argparse.Namespace) -> int:
    from shouwang.settings import Settings

    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)

    defaults = Settings()
    res = Results()
    m = machine()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="shouwang-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    load0 = os.getloadavg()
    print(f"machine: {m['nproc']} × {m['cpu']}, {m['memory']}, Python {m['python']}, SQLite {m['sqlite']}, "
          f"paho-mqtt {m['paho']}; load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    if load0[0] > 0.5:
        print("  NOTE: something else is using the CPU; on 2 cores that shows in every rate below")
    b = broker_info(args.host, args.port)
    print(f"broker {args.host}:{args.port}: {b['version']}, sends a 3.1.1 subscriber {b['inflight_window']} "
          f"unacknowledged QoS 1 messages before it waits; publishers run at most {args.window} messages "
          f"ahead of the subscriber")
    res.data["machine"], res.data["broker"] = m, {**b, "host": args.host, "port": args.port}
    res.data["args"] = {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()}
    res.data["load_start"] = load0
    now = int(time.time())
    try:
        if 0 in args.phases:
            print("\n[0] CPU per stage, one thread, no broker (best of 5)")
            costs = stage_costs(workdir)
            for k, v in costs.items():
                print(f"  {k}: {v:,.1f}")
            res.data["stage_costs"] = costs

        if args.phases & {1, 2}:
            households = max(100, -(-args.messages // 10))  # 5 rounds over 2 × households meters
            rounds = -(-args.messages // (2 * households))
            single = Workload(households, t0=now - rounds * STEP, rounds=rounds)
            registry = build_registry(single.households)
            delays = _floats(args.batch_delay) if 2 in args.phases else []
            bares: list[dict] = []
            buffered: list[dict] = []  # the same bare subscriber with the service's buffered reads
            services: dict[float | None, list[dict]] = {d: [] for d in delays}
            print(f"\n[1, 2] {single.messages:,} single-reading QoS 1 messages from {single.meters:,} meters; "
                  f"bare subscriber and service runs interleaved, {args.repeat} time(s)")
            for rep in range(args.repeat):
                bares.append(bare_drain(args, single, parse=False, label="bare"))
                buffered.append(bare_drain(args, single, parse=False, label="bare, buffered reads", buffered=True))
                for delay in delays:
                    d = defaults.batch_max_delay_s if delay is None else delay
                    services[delay].append(service_drain(
                        args, single, workdir / f"single-{d:g}-{rep}.db", registry, batch_delay_s=delay,
                        label=f"service, batch delay {d:g} s",
                        profile_name=f"single-delay-{d:g}" if rep == 0 else None))
            bare = _median_run(bares, "msgs_per_s")
            spread = ", ".join(f"{r['msgs_per_s']:,.0f}" for r in bares)
            res.add("1 bare subscriber, single readings", fmt_rate(bare["msgs_per_s"], "msg/s"),
                    "reference (~15,000)", (f"median of {spread}" if len(bares) > 1 else "")
                    + ("" if all(r["complete"] for r in bares) else "; INCOMPLETE (see the log)"),
                    runs=bares)
            bare_b = _median_run(buffered, "msgs_per_s")
            res.add("1b bare subscriber with the service's buffered reads", fmt_rate(bare_b["msgs_per_s"], "msg/s"),
                    "—", "median of " + ", ".join(f"{r['msgs_per_s']:,.0f}" for r in buffered)
                    + ("" if all(r["complete"] for r in buffered) else "; INCOMPLETE (see the log)"),
                    runs=buffered)
            for delay, runs in services.items():
                d = defaults.batch_max_delay_s if delay is None else delay
                same = [r["msgs_per_s"] / br["msgs_per_s"] for r, br in zip(runs, buffered, strict=True)]
                res.add(f"2b service against 1b, batch delay {d:g} s", f"{statistics.median(same):.0%} of 1b", "—",
                        f"ratios {', '.join(f'{x:.0%}' for x in same)}: what Shouwang's own work costs next to the "
                        "same client", ratios=same)
                ratios = [r["msgs_per_s"] / br["msgs_per_s"] for r, br in zip(runs, bares, strict=True)]
                out = _median_run(runs, "msgs_per_s")
                ratio = statistics.median(ratios)
                w = out.get("writer", {})
                res.add(f"2 service, single readings, batch delay {d:g} s{' (default)' if delay is None else ''}",
                        f"{fmt_rate(out['msgs_per_s'], 'msg/s')} = {ratio:.0%} of bare", "≥ 70 % of bare",
                        f"ratios {', '.join(f'{x:.0%}' for x in ratios)}; "
                        f"{w.get('messages_per_flush', 0):.0f} messages a transaction"
                        + ("" if all(r["complete"] for r in runs) else "; INCOMPLETE (see the log)"),
                        ratio=ratio, ratios=ratios, runs=runs)

        big = None
        shapes = {"snapshot": 1, "backlog": args.backlog_span}
        if args.phases & {3, 4}:
            steps = max(1, args.prefill // args.upload_meters)
            households = args.upload_meters // 2
            t_pre = now - 4 * 86400 - steps * STEP  # history older than the service's 72 h restore window
            big = workdir / f"prefilled-{args.upload_meters}x{steps}.db"
            if not big.exists():
                print(f"\n[pre-fill] {args.upload_meters:,} meters × {steps} readings = "
                      f"{args.upload_meters * steps:,} rows")
                tmp = big.with_suffix(".tmp")
                tmp.unlink(missing_ok=True)
                secs = prefill(tmp, args.upload_meters, steps, t_pre)
                tmp.rename(big)
                print(f"  {args.upload_meters * steps:,} rows in {secs:.1f} s "
                      f"({args.upload_meters * steps / secs:,.0f} rows/s, one INSERT … SELECT), "
                      f"{big.stat().st_size / 1e6:,.0f} MB")
            prefilled = args.upload_meters * steps
            res.data["prefill"] = {"rows": prefilled, "meters": args.upload_meters, "steps": steps,
                                   "bytes": big.stat().st_size}
            uploads = {shape: Workload(households, t0=now - args.upload_rounds * STEP, first_step=steps + 400,
                                       rounds=args.upload_rounds, batch=args.batch_size, span=span)
                       for shape, span in shapes.items() if shape in args.upload_shapes}
            size = f"{prefilled / 1e6:g} M"

        if 4 in args.phases:
            assert big is not None
            per = defaults.batch_max_readings
            print(f"\n[4] bare SQLite inserts (sqlite3 executemany, WAL, synchronous=FULL, {per:,} rows a "
                  f"transaction), rows shaped like the uploads")
            small_meters = min(args.upload_meters, args.sqlite_rows)
            w_small = Workload(small_meters // 2, t0=now - 86400, rounds=max(1, args.sqlite_rows // small_meters),
                               batch=args.batch_size)
            small = workdir / "baseline-small.db"
            create_store_file(small)
            rows = w_small.rows()[:args.sqlite_rows]
            r_small = sqlite_insert_rate(small, rows, per)
            res.add("4 SQLite insert, empty table", fmt_rate(r_small, "rows/s"), "reference (~200,000)",
                    f"{len(rows):,} rows, {small_meters:,} meters × {w_small.rounds} instants", rows_per_s=r_small)
            small.unlink()
            for shape, upload in uploads.items():
                copy = workdir / "baseline-big.db"
                shutil.copyfile(big, copy)
                rows = upload.rows()[:args.sqlite_rows]
                r_big = sqlite_insert_rate(copy, rows, per)
                res.add(f"4 SQLite insert, {size} rows, {shape}", fmt_rate(r_big, "rows/s"), "reference (~60,000)",
                        f"{len(rows):,} rows in the order of the {shape} uploads", rows_per_s=r_big)
                remove_sqlite(copy)
                shutil.copyfile(big, copy)
                rows = upload.rows()
                st = store_write_rate(copy, rows, per)
                res.add(f"4 SqlStore.write_readings + fold, {size} rows, {shape}", fmt_rate(st["rows_per_s"], "rows/s"),
                        "≥ 100,000 rows/s",
                        f"{len(rows):,} rows; writes {st['write_s']:.1f} s, fold {st['fold_s']:.1f} s moving "
                        f"{st['folded']:,} in {st['fold_calls']} calls (longest {st['longest_fold_call_s']:.2f} s); "
                        f"{st['recent_at_end']:,} left recent", **st)
                remove_sqlite(copy)

        if 3 in args.phases:
            assert big is not None
            registry = build_registry(households)
            for shape, upload in uploads.items():
                what = ("one gateway's 100 meters at one instant" if upload.span == 1 else
                        f"{upload.batch // upload.span} meters × {upload.span} intervals")
                print(f"\n[3] batched uploads, {shape} ({what}): {upload.messages:,} messages × {args.batch_size} "
                      f"readings = {upload.readings:,} readings from {upload.gateways:,} gateways, into {size} rows")
                bare_b = bare_drain(args, upload, parse=True, label="bare + orjson")
                res.add(f"3 bare subscriber + orjson, {shape}", fmt_rate(bare_b["readings_per_s"], "readings/s"),
                        "reference (~550,000)", "" if bare_b["complete"] else "INCOMPLETE (see the log)", **bare_b)
                work = workdir / "uploads.db"
                shutil.copyfile(big, work)
                out = service_drain(args, upload, work, registry, batch_delay_s=None, label="service",
                                    profile_name=f"batched-{shape}")
                w = out.get("writer", {})
                res.add(f"3 service, batches of {args.batch_size}, {shape}, store at {size} rows",
                        fmt_rate(out["readings_per_s"], "readings/s"), "≥ 100,000 readings/s",
                        ("" if out["complete"] else "INCOMPLETE (see the log); ")
                        + f"{w.get('readings_per_flush', 0):,.0f} readings a transaction; "
                        f"service start-up on this store {out['startup_s']:.0f} s", **out)
                remove_sqlite(work)

        if 5 in args.phases:
            print(f"\n[5] household state for {args.state_households:,} households; detector sweep over "
                  f"{args.sweep_meters:,} meters")
            repeats = 3 if args.quick else 7
            try:  # the detectors' own measurement (realistic four-week state for every detector), if present
                from detectors import measure
            except ImportError:
                measure = None
            mem = state_memory(args.state_households)
            if measure is not None:
                own = measure.memory(args.state_households)
                mem.update(state_bytes=own["traced_bytes"], array_bytes=own["array_bytes"],
                           source="detectors.measure.memory")
            res.add(f"5 household state, {mem['households']:,} households",
                    f"{mem['state_bytes'] / 1e6:,.1f} MB", "< 1 GB",
                    f"numpy arrays {mem['array_bytes'] / 1e6:.1f} MB; ingest's last reading per meter "
                    f"{mem['handler_bytes'] / 1e6:.1f} MB more", **mem)
            if measure is not None:
                from detectors import DEFAULT_DETECTORS

                sw = measure.sweep(args.sweep_meters, repeats)
                ms = {k: v * 1000 for k, v in sw["seconds"].items()}
                default_ms = sw["default_sweep_s"] * 1000
                parts = " + ".join(f"{k} {ms[k]:.0f}" for k in DEFAULT_DETECTORS)
                others = ", ".join(f"{k} {v:.0f}" for k, v in ms.items() if k not in DEFAULT_DETECTORS)
                res.add(f"5 detector sweep, {sw['meters']:,} meters", f"{default_ms:,.0f} ms", "< 100 ms",
                        f"default detectors: {parts} ms (best of {repeats}, detectors.measure state, 1 % of households "
                        f"changed between sweeps; the first sweep after start-up {sw['first_sweep_s'] * 1000:.0f} ms)"
                        + (f"; presets not on by default: {others} ms" if others else ""), ms=ms,
                        default_ms=default_ms, first_ms=sw["first_sweep_s"] * 1000, findings=sw["findings"],
                        meters=sw["meters"])
            else:
                sweep = detector_sweep(args.sweep_meters, repeats=repeats)
                ms = sweep["ms"]
                parts = " + ".join(f"{k} {v['median']:.0f} ms" for k, v in ms.items() if k != "sweep")
                res.add(f"5 detector sweep, {sweep['meters']:,} meters", f"{ms['sweep']['median']:,.0f} ms",
                        "< 100 ms", f"{parts} (median of {repeats}); findings {sweep['findings']}", **sweep)

        if 6 in args.phases:
            runs = [(tick, args.alerts, None) for tick in _floats(args.latency_ticks)]
            if args.trickle_alerts:
                short = min(defaults.tick_s if x is None else x for x in _floats(args.latency_ticks))
                runs.append((short, args.trickle_alerts, 1.2 * short))
            for tick, n_alerts, gap in runs:
                t = defaults.tick_s if tick is None else tick
                kind = "burst" if gap is None else "trickle"
                print(f"\n[6] alert latency, {kind}: {n_alerts} alerts "
                      + ("within ~3 ticks" if gap is None else f"one every {gap:g} s")
                      + f", detector tick {t:g} s")
                lat = alert_latency(args, workdir, n_alerts, t, None, gap)
                fr, fp = lat["from_receipt_ms"], lat["from_publish_ms"]
                for part, d in lat["parts_ms"].items():
                    print(f"    {part}: p50 {d['p50']:,.0f} ms, p99 {d['p99']:,.0f} ms")
                sw = lat["sweep_ms"]
                print(f"    one tick (sweep + alert pipeline + escalations), {lat['sweeps']} ticks: "
                      f"p50 {sw['p50']:,.0f} ms, max {sw['max']:,.0f} ms")
                res.add(f"6 alert latency, {kind}, tick {t:g} s{' (default)' if tick is None else ''}",
                        f"p50 {fr['p50']:,.0f} ms, p99 {fr['p99']:,.0f} ms", "p99 < 1,000 ms",
                        f"from receipt; from publish p99 {fp['p99']:,.0f} ms; {lat['alerts']}/{lat['expected']} "
                        f"alerts" + (f"; {lat['other_notifications']} other notifications"
                                     if lat["other_notifications"] else ""), **lat)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    load1 = os.getloadavg()
    res.data["load_end"] = load1
    print(f"\nbroker {b['version']} at {args.host}:{args.port}; load average at the end {load1[0]:.2f}; "
          f"total {time.perf_counter() - t_all:.0f} s\n")
    print(res.table())
    if args.json:
        Path(args.json).write_text(json.dumps(res.data, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

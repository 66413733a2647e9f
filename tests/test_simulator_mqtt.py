"""Simulator against the real Mosquitto on 127.0.0.1:1883: what arrives, wills, retained status, garbage."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shouwang.clock import ScaledClock
from simulators.community import build_community
from simulators.publisher import Simulator
from simulators.scenario import GARBAGE_KINDS, parse_scenario

HOST, PORT = "127.0.0.1", 1883
START = datetime(2026, 11, 2, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
DAY, H = 86400.0, 3600.0


class Collector:
    """A subscriber that keeps every message it receives."""

    def __init__(self, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{uuid.uuid4().hex[:10]}",
                                  protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(HOST, PORT)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(5), "no SUBACK from the broker"

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.messages), timeout)

    def readings(self) -> list[dict]:
        out = []
        for topic, payload, _ in self.messages:
            if topic.endswith("/readings"):
                body = json.loads(payload)
                out.extend(body.get("readings", [body]))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module", autouse=True)
def broker():
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail(f"Mosquitto must listen on {HOST}:{PORT}")
        pytest.skip(f"no MQTT broker on {HOST}:{PORT}")


@pytest.fixture
def prefix():
    """A topic prefix of this test's own; retained status messages are cleared afterwards."""
    p = f"test-sim-{uuid.uuid4().hex[:8]}/v1"
    yield p
    cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cleaner-{uuid.uuid4().hex[:10]}")
    cleaner.connect(HOST, PORT)
    cleaner.loop_start()
    for g in range(1, 4):
        cleaner.publish(f"{p}/demo/GW-{g:02d}/status", b"", qos=1, retain=True).wait_for_publish(5)
    cleaner.disconnect()
    cleaner.loop_stop()


def _sim(registry, scenario_yaml: str | None, prefix: str, **kw) -> Simulator:
    scenario = parse_scenario(scenario_yaml) if scenario_yaml else None
    return Simulator(registry, scenario, HOST, PORT, start=START, seed=3, mqtt_prefix=prefix,
                     client_id_prefix=f"sim-{prefix[9:17]}", **kw)


def _retained(topic: str) -> tuple[bytes, bool]:
    """What a new subscriber gets on a topic right away."""
    c = Collector(topic)
    try:
        assert c.wait_for(lambda m: len(m) >= 1, 5), f"nothing retained on {topic}"
        _, payload, retain = c.messages[0]
        return payload, retain
    finally:
        c.close()


def test_one_day_twenty_households_with_gateway_outages(prefix):
    reg = build_community(20, seed=3)
    watch = Collector(f"{prefix}/#")
    sim = _sim(reg, """
incidents:
  - {kind: gateway_offline, gateway: GW-02, at: day 1 06:00, duration: 6h}
  - {kind: gateway_offline, gateway: GW-01, at: day 1 20:00, duration: 2h, backfill: true}
""", prefix)
    try:
        first = sim.step_to(START + 9 * H)
        # GW-02 dropped its connection without DISCONNECT: the broker published its last will, retained
        assert watch.wait_for(lambda m: (f"{prefix}/demo/GW-02/status", b"offline", False) in m)
        assert _retained(sim.status_topic("GW-02")) == (b"offline", True)
        assert _retained(sim.status_topic("GW-01")) == (b"online", True)
        rest = sim.step_to(START + DAY)
    finally:
        sim.close(announce_offline=False)

    ticks, meters = 97, 40  # 00:00 .. 24:00 every 15 minutes, 20 water + 20 electricity meters
    lost = 24 * 20  # GW-02's meters 06:00 .. 11:45
    assert first.readings + rest.readings == ticks * meters - lost
    assert first.dropped + rest.dropped == lost
    assert rest.backfilled == 8 * 20  # GW-01's 20:00 .. 21:45 uploaded when it came back
    assert first.status_messages == 2 + 1 and rest.status_messages == 1 + 2  # connect, wills, returns
    assert watch.wait_for(lambda m: len(watch.readings()) >= ticks * meters - lost)
    watch.close()

    readings = watch.readings()
    assert len(readings) == ticks * meters - lost
    assert len({(r["meter"], r["ts"]) for r in readings}) == len(readings)
    assert {type(r["ts"]) for r in readings} == {int, str}
    assert all(r["ts"].endswith("+08:00") for r in readings if isinstance(r["ts"], str))
    status = [(t.split("/")[-2], p) for t, p, _ in watch.messages if t.endswith("/status")]
    assert [p for g, p in status if g == "GW-02"] == [b"online", b"offline", b"online"]
    assert [p for g, p in status if g == "GW-01"] == [b"online", b"offline", b"online"]
    batches = [json.loads(p) for t, p, _ in watch.messages if t.endswith("/readings")]
    assert all(b["gateway"] in ("GW-01", "GW-02") for b in batches)
    assert sorted({len(b["readings"]) for b in batches}) == [20, 160]
    assert _retained(sim.status_topic("GW-02")) == (b"online", True)


def test_single_reading_messages_and_clean_close(prefix):
    reg = build_community(10, seed=3)
    watch = Collector(f"{prefix}/#")
    with _sim(reg, None, prefix, batch=False) as sim:
        stats = sim.step_to(START + 6 * H)
        assert stats.messages == stats.readings == 25 * 20
    assert watch.wait_for(lambda m: len(m) >= 1 + 500 + 1)  # online, readings, offline on close
    watch.close()
    bodies = [json.loads(p) for t, p, _ in watch.messages if t.endswith("/readings")]
    assert all(set(b) == {"meter", "kind", "ts", "value"} for b in bodies)
    assert _retained(f"{prefix}/demo/GW-01/status") == (b"offline", True)


def test_garbage_arrives_as_published(prefix):
    reg = build_community(20, seed=3)
    watch = Collector(f"{prefix}/#")
    sim = _sim(reg, "incidents: [{kind: garbage, at: day 1 10:00}, {kind: garbage, gateway: GW-02, "
                    "at: day 1 11:00, kinds: [bad_json, register_backwards]}]", prefix)
    try:
        stats = sim.step_to(START + 12 * H)
    finally:
        sim.close(announce_offline=False)
    assert stats.garbage_messages == len(GARBAGE_KINDS) + 2
    assert stats.readings == 49 * 40 and stats.garbage_good_readings == 2
    payloads = {g.payload for g in sim.garbage_log}
    assert watch.wait_for(lambda m: payloads <= {p for _, p, _ in m})
    watch.close()
    kinds = [(g.gateway, g.kind) for g in sim.garbage_log]
    assert kinds == [("GW-01", k) for k in GARBAGE_KINDS] + [("GW-02", "bad_json"),
                                                             ("GW-02", "register_backwards")]


def test_run_follows_a_scaled_clock(prefix):
    reg = build_community(10, seed=3)
    watch = Collector(f"{prefix}/demo/+/readings")
    sim = _sim(reg, None, prefix)
    stop = threading.Event()
    result = {}
    clock = ScaledClock(START, 4 * 3600)  # four simulated hours per wall second
    runner = threading.Thread(target=lambda: result.update(stats=sim.run(clock, stop)), daemon=True)
    runner.start()
    try:
        assert watch.wait_for(lambda m: len(m) >= 12, timeout=10)  # the first 12 quarter-hours of GW-01
    finally:
        stop.set()
        runner.join(10)
        sim.close(announce_offline=False)
    watch.close()
    assert not runner.is_alive()
    assert result["stats"].readings >= 12 * 20
    ts = [json.loads(p)["readings"][0]["ts"] for _, p, _ in watch.messages[:12]]
    epochs = [t if isinstance(t, int) else datetime.fromisoformat(t).timestamp() for t in ts]
    assert epochs == [START + 900 * k for k in range(12)]


def test_close_can_clear_retained_status(prefix):
    reg = build_community(20, seed=3)
    sim = _sim(reg, "incidents: [{kind: gateway_offline, gateway: GW-02, at: day 1 01:00}]", prefix)
    sim.step_to(START + 2 * H)
    sim.close(clear_retained=True)
    sentinel = f"{prefix}/zz/sentinel"
    c = Collector(sentinel)
    c.client.publish(sentinel, b"x", qos=1, retain=True).wait_for_publish(5)
    c.close()
    watch = Collector(f"{prefix}/#")  # retained messages arrive together when subscribing
    try:
        assert watch.wait_for(lambda m: any(t == sentinel for t, _, _ in m), 5)
        assert [t for t, _, _ in watch.messages] == [sentinel]
        watch.client.publish(sentinel, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        watch.close()

"""Alert latency (issue 7): stored readings wake the detector sweep, and new alerts wake the outbox at once.

Real Mosquitto, a real HTTP webhook as the watcher channel. The tick is an hour of wall time in the event-driven
tests, so a notification that arrives at all proves the reading, not the timer, started the sweep; no test
asserts on how long anything took (the figures are in docs/benchmarks.md, from bench/ingest.py).
"""

from __future__ import annotations

import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from conftest import small_registry

from ingest.broker import broker_reachable
from shouwang.clock import ManualClock
from shouwang.service import SWEEP_LOAD, Service, sweep_schedule
from shouwang.settings import Settings
from storage.sql import open_store

BROKER = ("127.0.0.1", 1883)
NOW = 1_790_000_000
STEP = 900
T_DUE = NOW - 60  # the reading at this time completes H1's 48 h without any use
HISTORY = range(T_DUE - 48 * 3600, T_DUE, STEP)  # flat registers, stored before the service starts


@pytest.fixture
def service(tmp_path, receiver):
    if not broker_reachable(*BROKER):
        pytest.fail("Mosquitto must listen on 127.0.0.1:1883 (.ci/run starts it)")
    made: list[Service] = []

    def make(clock: ManualClock, prepare=None, **settings) -> Service:
        prefix = f"lat-{uuid.uuid4().hex[:8]}/v1"
        s = Settings(database_url=f"sqlite:///{tmp_path}/lat-{len(made)}.db", mqtt_host=BROKER[0],
                     mqtt_port=BROKER[1], mqtt_topic_prefix=prefix, mqtt_client_id=f"lat-{uuid.uuid4().hex[:8]}",
                     mqtt_clean_session=True, mqtt_embedded_fallback=False, detectors=["no-change"], **settings)
        store = open_store(s.database_url)
        from shouwang.domain import Reading

        store.write_readings([Reading(m, t, 100.0) for m in ("H1-W", "H1-E") for t in HISTORY])
        svc = Service(s, store, small_registry(2), clock, watchers=[receiver.url])
        if prepare is not None:
            prepare(svc)
        svc.start()
        made.append(svc)
        assert svc.ingest.subscribed.wait(10), "the service did not subscribe"
        return svc

    yield make
    for svc in made:
        svc.stop()
        svc.store.close()


def _publish_completing_reading(svc: Service) -> None:
    """Both of H1's meters at T_DUE, still flat: with it the data covers 48 h without use."""
    import orjson

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gw-{uuid.uuid4().hex[:6]}")
    client.connect(*BROKER)
    client.loop_start()
    payload = orjson.dumps({"readings": [{"meter": "H1-W", "kind": "water", "ts": T_DUE, "value": 100.0},
                                         {"meter": "H1-E", "kind": "electricity", "ts": T_DUE, "value": 100.0}]})
    client.publish(f"{svc.settings.mqtt_topic_prefix}/c1/G1/readings", payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def test_a_stored_reading_starts_a_sweep_without_waiting_for_the_tick(service, receiver):
    svc = service(ManualClock(NOW), tick_s=3600)
    assert svc.store.unresolved_alerts() == [] and svc.sweeps == 0
    _publish_completing_reading(svc)
    bodies = receiver.wait_for(1, timeout=30)  # the tick is an hour away: only the stored reading can do this
    assert [(b["alert"]["household"], b["alert"]["category"]) for b in bodies] == [("H1", "inactivity")]
    assert svc.sweeps >= 1
    (alert,) = svc.store.unresolved_alerts()
    assert alert.household == "H1" and alert.since == HISTORY[0]


def test_the_outbox_sends_a_new_alert_before_the_sweep_goes_on(service, receiver):
    def only_when_woken(svc: Service) -> None:
        svc.outbox.poll_s = 3600  # from its first look on, the outbox looks again only when woken

    svc = service(ManualClock(NOW), only_when_woken, tick_s=3600)
    sent_before_escalations: list[bool] = []
    inner = svc.escalator.tick

    def escalator_tick(now: int, alerts=None) -> None:  # the part of the sweep after the new alerts are recorded
        sent_before_escalations.append(len(receiver.wait_for(1, timeout=20)) >= 1)
        inner(now, alerts)

    svc.escalator.tick = escalator_tick
    _publish_completing_reading(svc)
    receiver.wait_for(1, timeout=30)
    deadline = time.monotonic() + 30
    while not sent_before_escalations and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent_before_escalations[:1] == [True]


def test_time_passing_without_readings_still_makes_alerts_due(service, receiver):
    clock = ManualClock(T_DUE - 300)  # the reading is in (300 s ahead is allowed), but 48 h are not over yet
    svc = service(clock, tick_s=0.05)
    _publish_completing_reading(svc)
    deadline = time.monotonic() + 30
    while svc.stats.get("readings_stored") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    start = svc.sweeps
    while svc.sweeps < start + 2 and time.monotonic() < deadline:  # sweeps that saw the reading found nothing due
        time.sleep(0.01)
    assert svc.store.unresolved_alerts() == []
    clock.set(NOW)  # no reading: only the clock moved
    bodies = receiver.wait_for(1, timeout=30)
    assert [b["alert"]["household"] for b in bodies] == ["H1"]


def test_sweep_schedule_keeps_sweeps_to_a_third_of_the_time():
    # fast sweeps: every tick_s without readings, debounce_s after the last one with them
    assert sweep_schedule(100.0, 0.01, 0.5, 0.15) == (100.5, 100.15)
    # a slow sweep (1 s) pushes both to 3 s after its start
    assert sweep_schedule(100.0, 1.0, 0.5, 0.15) == (100.0 + SWEEP_LOAD, 100.0 + SWEEP_LOAD)
    # a debounce longer than the tick never delays a sweep past the tick
    assert sweep_schedule(100.0, 0.0, 0.1, 0.15) == (100.1, 100.1)

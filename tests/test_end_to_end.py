"""End to end: simulator → real Mosquitto → ingest → store → detectors → alert → real HTTP webhook, in event time."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from accounts_support import api_client

from api.app import create_app
from ingest.broker import broker_reachable
from shouwang.clock import ManualClock
from shouwang.domain import WELFARE_CATEGORIES, AlertCategory
from shouwang.service import Service
from shouwang.settings import Settings
from simulators.community import build_community
from simulators.publisher import Simulator
from simulators.scenario import parse_scenario
from storage import open_store

BROKER = ("127.0.0.1", 1883)
START = datetime(2026, 11, 2, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
H = 3600


@pytest.fixture
def mosquitto():
    if not broker_reachable(*BROKER):
        pytest.fail("Mosquitto must listen on 127.0.0.1:1883 (.ci/run starts it)")
    return BROKER


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own, so concurrent runs on the shared broker never meet."""
    return f"test-{uuid.uuid4().hex[:8]}/v1"


@pytest.fixture
def community():
    return build_community(40, households_per_gateway=10, seed=3)


@pytest.fixture
def service(tmp_path, mosquitto, prefix, community, receiver):
    clock = ManualClock(START)
    settings = Settings(database_url=f"sqlite:///{tmp_path}/e2e.db", mqtt_host=mosquitto[0], mqtt_port=mosquitto[1],
                        mqtt_topic_prefix=prefix, mqtt_client_id=f"e2e-{uuid.uuid4().hex[:8]}",
                        mqtt_clean_session=True, tick_s=3600)
    store = open_store(settings.database_url)
    svc = Service(settings, store, community, clock, watchers=[receiver.url])
    svc.start()
    deadline = time.monotonic() + 10
    while not svc.ingest.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let the subscription land before the first publish
    yield svc
    svc.stop()
    store.close()


def _drive(svc: Service, sim: Simulator, until: float, step: float = H) -> None:
    """Advance event time hour by hour: publish, wait until the service has stored it all, sweep."""
    t = START
    published = 0
    while t < until:
        t = min(t + step, until)
        svc.clock.set(t)
        stats = sim.step_to(t)
        published += stats.messages + stats.status_messages
        deadline = time.monotonic() + 20
        while svc.stats.get("messages") < published and time.monotonic() < deadline:
            time.sleep(0.01)
        assert svc.stats.get("messages") >= published, "service did not receive what the simulator published"
        assert svc.writer.wait_idle(10)
        svc.tick(int(t))


def test_stalled_household_alerted_gateway_outage_is_a_device_alert(service, community, prefix, receiver):
    scenario = parse_scenario({"incidents": [
        {"kind": "stall", "household": "H007", "at": "day 2 08:00"},
        {"kind": "gateway_offline", "gateway": "GW-04", "at": "day 2 12:00", "duration": "1d"},
    ]})
    stall_at = START + 86400 + 8 * H
    with Simulator(community, scenario, *BROKER, start=START, seed=11, mqtt_prefix=prefix,
                   client_id_prefix=f"sim-{prefix[5:13]}") as sim:
        _drive(service, sim, stall_at + 48 * H + 2 * H)
        sim.close(clear_retained=True)

    alerts = service.store.alerts(limit=1000)
    welfare = [a for a in alerts if a.category in WELFARE_CATEGORIES]
    assert [(a.household, a.category) for a in welfare] == [("H007", AlertCategory.INACTIVITY)]
    (a,) = welfare
    # the last activity is at the stall, or the evening before if the person was not up yet
    assert stall_at - 14 * H <= a.since <= stall_at
    assert a.since + 48 * H <= a.opened_at <= a.since + 48 * H + 2 * H

    device = [a for a in alerts if a.category == AlertCategory.DEVICE]
    assert [d.gateway for d in device] == ["GW-04"]
    assert device[0].opened_at <= START + 86400 + 13 * H  # known at once through the last will
    assert device[0].outcome == "device_recovered"  # back after a day, resolved by the service

    bodies = receiver.wait_for(3)
    assert any(b["alert"]["household"] == "H007" and b["alert"]["category"] == "inactivity" for b in bodies)
    assert not any(b["alert"]["category"] in {"inactivity", "water_running"} and b["alert"]["household"] != "H007"
                   for b in bodies)


def test_garbage_beside_good_readings_is_rejected_and_visible(service, community, prefix):
    import json

    import paho.mqtt.client as mqtt

    service.clock.set(START + 3600)
    topic = f"{prefix}/demo/GW-01/readings"
    batch = {"readings": [
        {"meter": "H001-W", "kind": "water", "ts": int(START + 900), "value": 1.25},
        {"meter": "H001-W", "kind": "water", "ts": int(START + 1800), "value": "lots"},
        {"meter": "H001-E", "kind": "electricity", "ts": "2026-11-02 00:30:00", "value": 88.5},
        {"meter": "H099-W", "kind": "water", "ts": int(START + 1800), "value": 2.0},
        {"meter": "H002-E", "kind": "electricity", "ts": int(START + 86400 * 365), "value": 2.0},
    ]}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"garbage-{uuid.uuid4().hex[:6]}")
    client.connect(*BROKER)
    client.loop_start()
    client.publish(topic, json.dumps(batch), qos=1).wait_for_publish(5)
    client.publish(topic, b"\x00not json at all", qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    deadline = time.monotonic() + 10
    while service.stats.get("messages") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service.writer.wait_idle(10)

    api = api_client(create_app(service.store, service.state, service.clock))
    stored = api.get("/api/households/H001/readings").json()
    assert sorted((r["meter"], r["value"]) for r in stored) == [("H001-E", 88.5), ("H001-W", 1.25)]
    body = api.get("/api/rejections").json()
    assert body["counts"] == {"invalid_field": 1, "unknown_meter": 1, "future_timestamp": 1, "bad_json": 1}
    reasons = {r["reason"]: r for r in body["items"]}
    assert "lots" in reasons["invalid_field"]["payload"] and reasons["unknown_meter"]["meter"] == "H099-W"


def test_metrics_report_what_ingest_and_alerts_did(service):

    from shouwang.metrics import registry_for

    service.stats.add("rejected.bad_json", 2)
    service.stats.add("readings_accepted", 5)
    api = api_client(create_app(service.store, service.state, service.clock, metrics_registry=registry_for(service)))
    text = api.get("/metrics").text
    assert 'shouwang_rejections_total{reason="bad_json"} 2.0' in text
    assert "shouwang_readings_accepted_total 5.0" in text
    assert "shouwang_broker_connected 1.0" in text and "shouwang_escalations_active 0.0" in text

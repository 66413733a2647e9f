"""Scale-out (issue 7): communities sharded across ingest workers over one PostgreSQL and the real Mosquitto."""

from __future__ import annotations

import threading
import time
import uuid
import zlib
from collections import Counter

import orjson
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from ingest.broker import broker_reachable
from shouwang.clock import ManualClock
from shouwang.domain import (
    AlertCategory,
    Assignment,
    Community,
    Escalation,
    Finding,
    Gateway,
    Household,
    Meter,
    MeterKind,
    OutboxItem,
    Person,
    Reading,
    Registry,
    Role,
    Severity,
    Target,
)
from shouwang.service import Service
from shouwang.settings import Settings
from shouwang.sharding import AlertScope, Shard, community_shard, topic_filters
from storage import schema as t
from storage.sql import open_store

BROKER = ("127.0.0.1", 1883)
NOW = 1_790_000_000
STEP = 900
T_DUE = NOW - 60


RECEIVER_PATH = ""  # the receiver fixture (conftest) at its bare address: each person's channel is <url>/<person>


def split_communities(per_shard: int = 2, count: int = 2) -> list[list[str]]:
    """Community ids, ``per_shard`` of them owned by each of ``count`` shards."""
    out: list[list[str]] = [[] for _ in range(count)]
    for i in range(1000):
        c = f"comm-{i}"
        if len(out[community_shard(c, count)]) < per_shard:
            out[community_shard(c, count)].append(c)
    return out


def city(url: str, communities: list[str]) -> Registry:
    """Two households a community behind one gateway; a family member each, one micro-team member a community;
    each person's channel is the receiver at <url>/<person>."""
    hh, meters, people, care = [], [], [], []
    for c in communities:
        for k in (1, 2):
            h = f"H-{c}-{k}"
            hh.append(Household(h, c, h, "", "g"))
            meters += [Meter(f"{h}-W", h, MeterKind.WATER, f"G-{c}"), Meter(f"{h}-E", h, MeterKind.ELECTRICITY, f"G-{c}")]
            people.append(Person(f"fam-{h}", "family", Role.FAMILY, "en", "", (f"{url}/fam-{h}",)))
            care.append(Assignment(Target.FAMILY, f"fam-{h}", household=h))
            care.append(Assignment(Target.TEAM, f"team-{c}", household=h))
        people.append(Person(f"team-{c}", "team", Role.PROPERTY, "en", "", (f"{url}/team-{c}",)))
    return Registry(tuple(Community(c) for c in communities), tuple(Gateway(f"G-{c}", c) for c in communities),
                    tuple(hh), tuple(meters), tuple(people), tuple(care))


# ---------------------------------------------------------------------------------------------- the shard itself
def test_a_community_belongs_to_exactly_one_shard_and_the_split_is_stable():
    assert community_shard("comm-0", 2) == zlib.crc32(b"comm-0") % 2  # the documented hash, nothing per-process
    reg = city("http://x", [c for cs in split_communities(3, 3) for c in cs])
    parts = [Shard(i, 3).restrict(reg) for i in range(3)]
    for field in ("communities", "gateways", "households", "meters", "assignments"):
        got = [x for p in parts for x in getattr(p, field)]
        assert sorted(got, key=repr) == sorted(getattr(reg, field), key=repr), field  # each exactly once
    for i, p in enumerate(parts):
        assert [community_shard(c.id, 3) for c in p.communities] == [i] * 3
        assert {m.household for m in p.meters} == {h.id for h in p.households}
        assert p.people == reg.people
    assert Shard().restrict(reg) is reg and Shard().client_id("ingest") == "ingest"
    assert Shard(1, 3).client_id("ingest") == "ingest-shard1of3"
    with pytest.raises(ValueError):
        Shard(2, 2)


def test_topic_filters_name_only_the_shards_communities():
    assert topic_filters("p/v1", None) == ["p/v1/+/+/readings", "p/v1/+/+/status"]
    assert topic_filters("p/v1", ["b", "a"]) == ["p/v1/a/+/readings", "p/v1/a/+/status", "p/v1/b/+/readings",
                                                 "p/v1/b/+/status"]


# ---------------------------------------------------------------------------------------------- the store's sweeps
def _alert(store, household: str | None, gateway: str | None = None) -> int:
    f = Finding(AlertCategory.DEVICE if gateway else AlertCategory.INACTIVITY, "t", Severity.WARNING, NOW,
                "test", household=household, gateway=gateway)
    a = store.open_alert(f, NOW)
    assert a is not None
    return a.id


def _queue(store, alert_id: int, community: str) -> None:
    esc = Escalation(alert_id, community, 0, NOW + 600, notified=())
    item = OutboxItem((alert_id,), "console://", "opened", "t", "x", {}, None, 0, 0, 1000.0, 2000.0)
    store.save_escalation_steps([(esc, False)], [item], [])


def test_store_sweeps_are_limited_to_a_shards_communities(any_store):
    a, b = split_communities(1)
    reg = city("http://x", [a[0], b[0]])
    any_store.upsert_registry(reg)
    ha, gb = _alert(any_store, f"H-{a[0]}-1"), _alert(any_store, None, gateway=f"G-{b[0]}")
    _queue(any_store, ha, a[0])
    _queue(any_store, gb, b[0])
    assert [e.alert_id for e in any_store.active_escalations([a[0]])] == [ha]
    assert [e.alert_id for e in any_store.active_escalations([b[0]])] == [gb]
    assert len(any_store.active_escalations()) == 2
    (mine,) = any_store.claim_due(1500.0, 50, [b[0]])  # a gateway's alert: its community through the gateway
    assert mine.alert_ids == (gb,)
    assert any_store.requeue_interrupted([a[0]]) == 0  # the other shard's message is being sent: not requeued
    assert [i.alert_ids for i in any_store.claim_due(1500.0, 50, [a[0]])] == [(ha,)]
    assert any_store.claim_due(1500.0, 50) == []
    assert any_store.requeue_interrupted([a[0]]) == 1
    scope = AlertScope(Shard(community_shard(a[0], 2), 2).restrict(reg))
    assert [x.id for x in any_store.unresolved_alerts() if x in scope] == [ha]


def test_a_claim_skips_messages_another_worker_is_claiming(pg_url):
    """Two processes polling one outbox: rows another transaction holds are skipped, never sent twice."""
    first, second = open_store(pg_url), open_store(pg_url)
    try:
        (c,), _ = split_communities(1)
        first.upsert_registry(city("http://x", [c]))
        for k in (1, 2):
            _queue(first, _alert(first, f"H-{c}-{k}"), c)
        ids = [i.id for i, _s in first.outbox_items()]
        with first.engine.connect() as other:  # another worker in the middle of its claim of the first message
            tx = other.begin()
            other.execute(select(t.outbox.c.id).where(t.outbox.c.id == ids[0]).with_for_update())
            got: list = []
            claim = threading.Thread(target=lambda: got.append(second.claim_due(1500.0, 50)))
            claim.start()
            claim.join(20)
            assert not claim.is_alive(), "the claim waited for the other worker's lock instead of skipping it"
            tx.rollback()
        assert [i.id for i in got[0]] == ids[1:]
        assert [i.id for i in first.claim_due(1500.0, 50)] == ids[:1]
        assert first.claim_due(1500.0, 50) == [] and second.claim_due(1500.0, 50) == []
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------------------------------------- two workers
def _history(store, registry: Registry) -> int:
    """48 h less one interval of readings: flat (no use) for each community's household 1, 10 litres or 10 Wh
    every 15 minutes for household 2."""
    rows = []
    for m in registry.meters:
        rising = m.household.endswith("-2")
        rows += [Reading(m.id, ts, 100.0 + (0.01 * k if rising else 0)) for k, ts in
                 enumerate(range(T_DUE - 48 * 3600, T_DUE, STEP))]
    store.write_readings(rows)
    return len(rows)


def _publish(prefix: str, registry: Registry) -> int:
    """Every meter's reading at T_DUE, one message a gateway; returns how many readings."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gw-{uuid.uuid4().hex[:6]}")
    client.connect(*BROKER)
    client.loop_start()
    n = 0
    for g in registry.gateways:
        readings = [{"meter": m.id, "kind": str(m.kind), "ts": T_DUE,
                     "value": 100.0 + (0.01 * 192 if m.household.endswith("-2") else 0)}
                    for m in registry.meters if m.gateway == g.id]
        n += len(readings)
        client.publish(f"{prefix}/{g.community}/{g.id}/readings", orjson.dumps({"readings": readings}),
                       qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    return n


def _until(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_two_workers_each_store_and_alert_only_their_communities(pg_url, receiver):
    if not broker_reachable(*BROKER):
        pytest.fail("Mosquitto must listen on 127.0.0.1:1883 (.ci/run starts it)")
    owned = split_communities(2)
    registry = city(receiver.url, [c for cs in owned for c in cs])
    setup = open_store(pg_url)
    stored_before = _history(setup, registry)
    setup.close()
    prefix, base = f"shard-{uuid.uuid4().hex[:8]}/v1", f"shard-{uuid.uuid4().hex[:8]}"
    clocks = [ManualClock(NOW), ManualClock(NOW)]
    workers, opened_by = [], [Counter(), Counter()]
    for i in (0, 1):
        s = Settings(database_url=pg_url, mqtt_topic_prefix=prefix, mqtt_client_id=base, mqtt_clean_session=True,
                     mqtt_embedded_fallback=False, tick_s=3600, sweep_debounce_s=0, detectors=["no-change", "device"],
                     shard_index=i, shard_count=2)
        svc = Service(s, open_store(pg_url), registry, clocks[i], watchers=[])
        inner = svc.pipeline.run

        def run(findings, now, inner=inner, seen=opened_by[i]):
            opened = inner(findings, now)
            seen.update(a.household for a in opened)
            return opened

        svc.pipeline.run = run
        workers.append((svc, svc.ingest.subscribed))
    try:
        for svc, subscribed in workers:
            svc.start()
            assert subscribed.wait(10)
        assert [w.ingest.client_id for w, _ in workers] == [f"{base}-shard0of2", f"{base}-shard1of2"]
        for i, (svc, _) in enumerate(workers):
            assert sorted(c for c in svc.state.community_ids) == sorted(owned[i])
            assert len(svc.state.household_ids) == 4

        published = _publish(prefix, registry)
        store = workers[0][0].store
        assert _until(lambda: store.count_readings() == stored_before + published)
        for i, (svc, _) in enumerate(workers):  # each took exactly its communities' readings, nothing else
            assert _until(lambda svc=svc: svc.stats.get("readings_accepted") == published // 2)
            assert svc.stats.get("readings_stored") == published // 2
            assert svc.stats.get("messages") == 2 and not svc.store.rejections()

        # the reading completed 48 h without use for household 1 of every community: one alert each, by its owner
        assert _until(lambda: len(receiver.received) >= 4)
        for i, (_svc, _) in enumerate(workers):
            assert opened_by[i] == Counter({f"H-{c}-1": 1 for c in owned[i]})
        alerts = store.unresolved_alerts()
        assert sorted(a.household for a in alerts) == sorted(f"H-{c}-1" for cs in owned for c in cs)

        # ten minutes on, both workers sweep at once, twice: each escalation takes step 2 once, by its owner
        for c in clocks:
            c.set(NOW + 11 * 60)
        sweeps = [threading.Thread(target=svc.tick) for svc, _ in workers for _ in range(2)]
        for th in sweeps:
            th.start()
        for th in sweeps:
            th.join(30)
        assert _until(lambda: len(receiver.received) >= 8)
        assert _until(lambda: not store.outbox_items("pending") and not store.outbox_items("sending"))
        for a in alerts:
            steps = [e.detail for e in store.alert_events(a.id) if e.kind == "escalation_step"]
            assert [s.split(" (")[0] for s in steps] == ["step 1", "step 2"], (a.household, steps)
        assert Counter(receiver.paths) == Counter(
            [f"/fam-H-{c}-1" for cs in owned for c in cs] + [f"/team-{c}" for cs in owned for c in cs])
        assert len(store.outbox_items("sent")) == 8
    finally:
        for svc, _ in workers:
            svc.stop()
            svc.store.close()


def test_run_refuses_role_all_with_several_shards(monkeypatch, tmp_path):
    from shouwang.cli import main

    monkeypatch.setenv("SHOUWANG_SHARD_COUNT", "2")
    monkeypatch.setenv("SHOUWANG_DEMO_MODE", "true")
    monkeypatch.setenv("SHOUWANG_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["run", "--role", "all"]) == 2
    assert not (tmp_path / "x.db").exists()  # refused before touching anything

"""`run --role api`'s StateFollower: it keeps the pages' state in step with what ingest stored, by re-reading the
recent readings (the default) or by following the state feed (SHOUWANG_STATE_FEED), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest
from conftest import small_registry
from sqlalchemy import insert

from shouwang.clock import ManualClock
from shouwang.domain import GatewayStatus, Reading
from shouwang.service import StateFollower
from shouwang.settings import Settings
from shouwang.state import HouseholdState
from storage import schema as t

T0 = 1_790_000_000
LIVE = ("last_ts", "last_value", "last_activity", "base_rate", "use_total", "hh_last_ts", "gateway_online")


def rounds(first: int, n: int) -> list[list[Reading]]:
    """Batches as ingest stores them: every meter once a 15-minute round, water and electricity moving."""
    meters = [m.id for m in small_registry(4).meters]
    return [[Reading(m, T0 + r * 900, 100.0 + r * (0.002 if m.endswith("W") else 0.2)) for m in meters]
            for r in range(first, first + n)]


def ingest(store, state: HouseholdState, batches: list[list[Reading]]) -> None:
    """What ingest's writer does with each batch: store it, then fold it into its own state."""
    for b in batches:
        store.write_readings(b)
        state.apply(b)


def same(a: HouseholdState, b: HouseholdState) -> None:
    for k in LIVE:
        x, y = getattr(a, k), getattr(b, k)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k


@pytest.mark.parametrize("feed", [False, True], ids=["re-read", "feed"])
def test_the_follower_keeps_in_step_with_ingest(any_store, feed):
    settings = Settings(state_feed=feed, inactivity_window_h=48)
    any_store.upsert_registry(small_registry(4))
    any_store.feed = feed  # ingest's store (Service sets it from the same setting)
    truth = HouseholdState(small_registry(4), started_at=T0)
    ingest(any_store, truth, rounds(0, 8))
    follower = StateFollower(settings, any_store, small_registry(4), ManualClock(T0 + 8 * 900))
    assert follower.refresh() == 8 * 8  # the window's readings at start, whichever way it follows
    same(follower.state, truth)
    ingest(any_store, truth, rounds(8, 3))
    any_store.set_gateway_status(GatewayStatus("G2", False, T0 + 11 * 900))
    truth.set_gateway_status(GatewayStatus("G2", False, T0 + 11 * 900))
    read = follower.refresh()
    assert read == (3 * 8 if feed else 5 * 8)  # re-reading reads again the rounds within LATE_S of the newest
    same(follower.state, truth)
    assert follower.health() == {"state": True}


def test_a_batch_committed_out_of_order_is_still_applied_once(any_store):
    """Another shard's batch may become visible after a newer one: it is found in the overlap, and not twice."""
    any_store.feed = True
    truth = HouseholdState(small_registry(4), started_at=T0)
    follower = StateFollower(Settings(state_feed=True), any_store, small_registry(4), ManualClock(T0))
    follower.refresh()
    ingest(any_store, truth, rounds(0, 2))
    assert follower.refresh() == 16
    late = rounds(2, 1)[0]
    newest = max(at for _, at in any_store.feed_since(0))
    with any_store.engine.begin() as conn:  # stamped 30 s before what the follower has seen
        conn.execute(insert(t.state_feed), {"stored_at": newest - 30, "readings": orjson.dumps(
            [(r.meter, r.ts, r.value) for r in late])})
    any_store.feed = False  # its readings, without a second feed row
    any_store.write_readings(late)
    truth.apply(late)
    assert follower.refresh() == 8
    assert follower.refresh() == 0  # nothing new: nothing applied again
    same(follower.state, truth)


def test_after_a_longer_absence_than_the_feed_keeps_it_re_reads(any_store, caplog):
    any_store.feed = True
    settings = Settings(state_feed=True, state_feed_keep_s=600)
    truth = HouseholdState(small_registry(4), started_at=T0)
    follower = StateFollower(settings, any_store, small_registry(4), ManualClock(T0 + 4 * 900))
    follower.refresh()
    ingest(any_store, truth, rounds(0, 4))
    any_store.trim_feed(int(time.time()) + 1)  # ingest trimmed everything while this process was away
    follower._feed_read -= 600  # its last look was as long ago as the feed keeps rows
    assert follower.refresh() == 4 * 8  # re-read from the store
    assert "re-reading the readings" in caplog.text
    same(follower.state, truth)


def test_ingest_writes_the_feed_and_trims_what_is_older_than_it_keeps(tmp_path):
    import uuid

    from faults_support import wait_until

    from shouwang.service import Service
    from storage import open_store

    settings = Settings(state_feed=True, state_feed_keep_s=600, database_url=f"sqlite:///{tmp_path}/s.db",
                        mqtt_client_id=f"feed-{uuid.uuid4().hex[:6]}", mqtt_clean_session=True,
                        mqtt_topic_prefix=f"feed-{uuid.uuid4().hex[:6]}/v1", tick_s=0.2)
    store = open_store(settings.database_url)
    with store.engine.begin() as conn:  # a row from before the keep time, and one within it
        conn.execute(insert(t.state_feed), [{"stored_at": int(time.time()) - 700, "readings": b"[]"},
                                            {"stored_at": int(time.time()) - 100, "readings": b"[]"}])
    svc = Service(settings, store, small_registry(4), ManualClock(T0), watchers=[])
    assert store.feed  # the setting turns the store's feed on
    svc.start()
    try:
        wait_until(lambda: len(store.feed_since(0)) == 1, 10, "the old feed row to be trimmed")
        svc.writer.store.write_readings(rounds(0, 1)[0])
        assert len(store.feed_since(0)) == 2
    finally:
        svc.stop()

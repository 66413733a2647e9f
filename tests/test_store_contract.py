"""The contract every Store backend keeps (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from conftest import just_before_update, small_registry
from sqlalchemy import text

from shouwang.domain import Alert, AlertCategory, AlertStatus, Finding, Outcome, Reading, Rejection, Severity
from storage import open_store
from storage.base import AlertConflict, NotFound


@pytest.fixture
def loaded(any_store):
    any_store.upsert_registry(small_registry())
    return any_store


def test_registry_roundtrip_and_upsert(loaded):
    assert [h.id for h in loaded.households()] == ["H1", "H2", "H3", "H4"]
    assert {m.id for m in loaded.meters("H2")} == {"H2-W", "H2-E"}
    assert loaded.meter("H1-W").gateway == "G1"
    assert loaded.gateway("G1") == next(g for g in loaded.gateways() if g.id == "G1")
    with pytest.raises(NotFound):
        loaded.gateway("nope")
    loaded.upsert_registry(small_registry())  # idempotent
    assert len(loaded.households()) == 4
    with pytest.raises(NotFound):
        loaded.household("nope")


def test_readings_are_idempotent_by_meter_and_ts(loaded):
    rs = [Reading("H1-W", 1000 + i * 900, 1.0 + i * 0.01) for i in range(10)]
    assert loaded.write_readings(rs) == 10
    assert loaded.write_readings(rs[5:] + [Reading("H1-W", 99_000, 2.0)]) == 1
    assert loaded.count_readings() == 11
    got = loaded.readings("H1-W", start=1000 + 2 * 900, end=1000 + 5 * 900)
    assert [r.ts for r in got] == [2800, 3700, 4600]
    assert loaded.latest_readings()["H1-W"] == Reading("H1-W", 99_000, 2.0)


def test_readings_since_streams_in_event_time_order(loaded):
    rs = [Reading(m, ts, 1.0) for ts in (300, 100, 200) for m in ("H2-E", "H1-W")]
    loaded.write_readings(rs)
    assert [(r.ts, r.meter) for r in loaded.readings_since(150)] == [
        (200, "H1-W"), (200, "H2-E"), (300, "H1-W"), (300, "H2-E")]


def test_readings_since_crosses_windows_and_gaps_without_losing_or_repeating_any(loaded):
    # readings_since reads a slice of event time per query: boundaries, a 3-day outage, lone late readings
    times = [1000, 1899, 1900, 1901, 2799, 2800, 2800 + 3 * 86_400, 2800 + 3 * 86_400 + 1, 2800 + 5 * 86_400 - 1]
    rs = [Reading(m, ts, float(i)) for i, ts in enumerate(times) for m in ("H1-W", "H2-E")]
    loaded.write_readings(rs)
    want = sorted((r.ts, r.meter) for r in rs if r.ts >= 1001)
    assert [(r.ts, r.meter) for r in loaded.readings_since(1001)] == want
    assert list(loaded.readings_since(times[-1] + 1)) == []


def test_state_feed_holds_each_stored_batch_when_on(loaded):
    loaded.write_readings([Reading("H1-W", 100, 1.0)])
    assert loaded.feed_since(0) == []  # off by default: nothing written
    loaded.feed = True
    first = [Reading("H1-W", 1000, 1.0), Reading("H2-E", 1000, 2.5)]
    loaded.write_readings(first)
    loaded.write_readings([Reading("H1-W", 1900, 1.5), Reading("H1-W", 1000, 1.0)])  # one new, one duplicate
    rows = loaded.feed_since(0)
    assert len(rows) == 2 and rows[0][0] < rows[1][0] and rows[0][1] <= rows[1][1]
    assert loaded.feed_batches([rows[1][0], rows[0][0]]) == [  # in id order, every reading of the batch
        (rows[0][0], first), (rows[1][0], [Reading("H1-W", 1900, 1.5), Reading("H1-W", 1000, 1.0)])]
    assert loaded.feed_since(rows[1][1] + 1) == []
    assert loaded.trim_feed(rows[0][1]) == 0  # stored before: strictly older only
    assert loaded.trim_feed(rows[1][1] + 1) == 2 and loaded.feed_since(0) == []
    assert loaded.feed_batches([rows[0][0]]) == []  # trimmed rows are left out


def test_rejections_are_kept_with_counts(loaded):
    loaded.add_rejections([Rejection(5, "t", "bad_json", "x", "{{"), Rejection(6, "t", "unknown_meter", "", "{}", "M9"),
                           Rejection(7, "t", "bad_json", "", "[")])
    assert loaded.rejection_counts() == {"bad_json": 2, "unknown_meter": 1}
    assert [r.received_at for r in loaded.rejections()] == [7, 6, 5]
    assert loaded.rejections(reason="unknown_meter")[0].meter == "M9"


def test_a_rejection_is_kept_whatever_text_it_holds(loaded):
    """NUL, a lone surrogate, a topic past its column, a meter id past its column: kept cleaned, never refused."""
    loaded.add_rejections([Rejection(5, "t/\x00/" + "g" * 400, "bad_json", "at \ud800", "{\x00\ud800", "M\ud800"),
                           Rejection(6, "t", "invalid_field", "", "{}", "M" * 65)])
    first, second = loaded.rejections()[::-1]
    assert first.topic.startswith("t/\ufffd/g") and len(first.topic) == 300 and first.detail == "at ?"
    assert first.payload == "{\ufffd?" and first.meter is None and second.meter is None


def _finding(household="H1", category=AlertCategory.INACTIVITY):
    return Finding(category, "no-change-48h", Severity.CRITICAL, 100, "quiet", household=household)


def test_one_unresolved_alert_per_key_and_lifecycle(loaded):
    a = loaded.open_alert(_finding(), 500)
    assert a is not None and a.status == AlertStatus.OPEN
    assert loaded.open_alert(_finding(), 600) is None
    device = loaded.open_alert(_finding(category=AlertCategory.DEVICE), 600)
    assert device is not None
    acked = loaded.acknowledge_alert(a.id, "worker-1", 700, "on my way")
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_at) == (AlertStatus.ACKNOWLEDGED, "worker-1", 700)
    with pytest.raises(AlertConflict):
        loaded.acknowledge_alert(a.id, "worker-2", 710)
    done = loaded.resolve_alert(a.id, Outcome.AWAY, "worker-1", 800, "at her son's")
    assert (done.status, done.outcome, done.note) == (AlertStatus.RESOLVED, Outcome.AWAY, "at her son's")
    assert [e.kind for e in loaded.alert_events(a.id)] == ["opened", "acknowledged", "resolved"]
    again = loaded.open_alert(  # a resolved alert does not block a new episode of the same condition
        Finding(AlertCategory.INACTIVITY, "no-change-48h", Severity.CRITICAL, 850, "quiet", household="H1"), 900)
    assert again is not None and again.id != a.id
    assert {x.id for x in loaded.unresolved_alerts()} == {again.id, device.id}
    with pytest.raises(NotFound):
        loaded.alert(10_000)


@contextmanager
def _elsewhere_just_before_writing(store, table: str, act):
    """Run ``act`` once, on a second store of the same database (another process, say), just before ``store``
    sends its first UPDATE of ``table``; yields the list ``act``'s result lands in."""
    other = open_store(store.engine.url.render_as_string(hide_password=False))
    try:
        with just_before_update(store, table, lambda: act(other)) as done:
            yield done
    finally:
        other.close()


def test_a_resolution_made_elsewhere_meanwhile_is_never_written_over(loaded):
    """A manager resolves a case while a worker's acknowledgement of it is on its way in: the case stays resolved
    and the acknowledgement is refused as a conflict, on both backends."""
    a = loaded.open_alert(_finding("H2"), 500)
    with (_elsewhere_just_before_writing(loaded, "alerts",
                                         lambda other: other.resolve_alert(a.id, Outcome.SAFE, "manager", 600)) as done,
          pytest.raises(AlertConflict, match="is resolved")):
        loaded.acknowledge_alert(a.id, "worker-1", 610, "on my way")
    got = loaded.alert(a.id)
    assert done and (got.status, got.outcome, got.resolved_by, got.acknowledged_by) == (
        AlertStatus.RESOLVED, Outcome.SAFE, "manager", None)
    assert [e.kind for e in loaded.alert_events(a.id)] == ["opened", "resolved"]


def test_an_away_period_cancelled_elsewhere_meanwhile_is_cancelled_once(loaded):
    from shouwang.away import AwayPeriod

    p = loaded.add_away(AwayPeriod("H1", 1000, 5000, "family"))
    with (_elsewhere_just_before_writing(loaded, "away_periods", lambda other: other.cancel_away(p.id, 2500)) as done,
          pytest.raises(NotFound)):
        loaded.cancel_away(p.id, 2600)
    with loaded.engine.connect() as conn:
        stored = conn.execute(text("SELECT cancelled_at FROM away_periods WHERE id = :id"), {"id": p.id}).scalar()
    assert done and stored == 2500


def test_an_alert_reads_back_with_every_field_as_written(loaded):
    """Every field of an alert survives the store, whichever way it is read (rows are unpacked by position)."""
    from dataclasses import fields

    from storage import schema

    assert [c.name for c in schema.alerts.c] == [f.name for f in fields(Alert)]
    f = Finding(AlertCategory.DEVICE, "device", Severity.WARNING, 120, "meter M1 is not reporting", household="H1",
                gateway="G1", meter="H1-W")
    a = loaded.open_alert(f, 500)
    loaded.clear_alert(a.id, 550)
    loaded.acknowledge_alert(a.id, "worker-1", 600, "on my way")
    done = loaded.resolve_alert(a.id, Outcome.DEVICE_RECOVERED, "worker-1", 700, "battery replaced")
    want = Alert(a.id, f.key, AlertCategory.DEVICE, "device", Severity.WARNING, AlertStatus.RESOLVED,
                 "meter M1 is not reporting", 120, 500, "H1", "G1", "H1-W", "worker-1", 600, 700, "worker-1",
                 Outcome.DEVICE_RECOVERED, "battery replaced", 550)
    assert done == want and loaded.alert(a.id) == want
    assert loaded.alerts(household="H1")[0] == want
    b = loaded.open_alert(_finding("H4"), 800)
    assert loaded.unresolved_alerts() == [loaded.alert(b.id)] and b.outcome is None and b.cleared_at is None


def test_clear_marks_but_keeps_alert_open(loaded):
    a = loaded.open_alert(_finding("H2"), 500)
    c = loaded.clear_alert(a.id, 650)
    assert c.cleared_at == 650 and c.status == AlertStatus.OPEN
    assert loaded.alerts(status=AlertStatus.OPEN, household="H2")[0].id == a.id


def test_gateway_status_persists(loaded):
    from shouwang.domain import GatewayStatus

    loaded.set_gateway_status(GatewayStatus("G2", False, 1234))
    assert loaded.gateway_statuses() == [GatewayStatus("G2", False, 1234)]


def test_away_periods(loaded):
    from shouwang.away import AwayPeriod

    a = loaded.add_away(AwayPeriod("H1", 1000, 5000, "family", "at her son's"))
    b = loaded.add_away(AwayPeriod("H2", 2000, None, "alert:3"))
    assert a.id is not None and b.id != a.id
    assert [p.household for p in loaded.away_periods(active_at=3000)] == ["H1", "H2"]
    assert [p.household for p in loaded.away_periods(active_at=6000)] == ["H2"]
    assert loaded.away_periods(household="H1")[0].note == "at her son's"
    loaded.cancel_away(b.id, 2500)
    assert loaded.away_periods(active_at=3000) == [a]
    with pytest.raises(NotFound):
        loaded.cancel_away(b.id, 2600)
    with pytest.raises(NotFound):
        loaded.add_away(AwayPeriod("nobody", 1, 2))


def test_a_resolved_episode_is_not_reopened(loaded):
    a = loaded.open_alert(_finding("H3"), 500)
    loaded.resolve_alert(a.id, Outcome.SAFE, "worker", 600)
    assert loaded.open_alert(_finding("H3"), 700) is None  # same condition, same start: the case is closed
    later = Finding(AlertCategory.INACTIVITY, "no-change-48h", Severity.CRITICAL, 650, "quiet again", household="H3")
    assert loaded.open_alert(later, 800) is not None


def test_a_sweeps_alerts_open_together_as_one_at_a_time_would(loaded):
    """open_alerts: in order, in one transaction; None for a key already open (before or earlier in the same call)
    and for a closed episode, as open_alert gives it."""
    first = loaded.open_alert(_finding("H1"), 500)
    closed = loaded.open_alert(_finding("H3"), 500)
    loaded.resolve_alert(closed.id, Outcome.SAFE, "worker", 550)
    got = loaded.open_alerts([_finding("H1"), _finding("H2"), _finding("H2"), _finding("H3"),
                              _finding("H2", AlertCategory.DEVICE)], 600)
    assert [a is None for a in got] == [True, False, True, True, False]
    h2, dev = got[1], got[4]
    assert (h2.household, h2.category, h2.opened_at, h2.status) == ("H2", AlertCategory.INACTIVITY, 600,
                                                                    AlertStatus.OPEN)
    assert dev.category == AlertCategory.DEVICE and dev.id != h2.id
    assert loaded.alert(h2.id) == h2 and [e.kind for e in loaded.alert_events(dev.id)] == ["opened"]
    assert {a.id for a in loaded.unresolved_alerts()} == {first.id, h2.id, dev.id}
    assert loaded.open_alerts([], 700) == []


def test_a_finding_whose_key_is_open_costs_no_insert(loaded):
    """A sweep finds standing conditions again every time; only the findings without an open alert are tried."""
    from sqlalchemy import event

    acked = loaded.open_alert(_finding("H1"), 500)
    loaded.acknowledge_alert(acked.id, "worker", 510)  # acknowledged is still open
    loaded.open_alert(_finding("H2"), 500)
    closed = loaded.open_alert(_finding("H3"), 500)
    loaded.resolve_alert(closed.id, Outcome.SAFE, "worker", 520)
    tried: list[str] = []
    event.listen(loaded.engine, "before_cursor_execute",
                 lambda *a: tried.append(a[2]) if a[2].startswith("INSERT INTO alerts ") else None)
    later = Finding(AlertCategory.INACTIVITY, "no-change-48h", Severity.CRITICAL, 530, "quiet again", household="H3")
    got = loaded.open_alerts([_finding("H1"), _finding("H2"), _finding("H3"), later, _finding("H4")], 600)
    assert [a is not None for a in got] == [False, False, False, True, True]
    assert len(tried) == 3  # H3's closed episode, H3's new one, H4
    tried.clear()
    assert loaded.open_alerts([_finding("H1"), _finding("H2"), _finding("H4")], 700) == [None, None, None]
    assert tried == []


def test_people_care_and_policies(any_store, tmp_path):
    from test_registry import GOOD

    from shouwang.domain import Assignment, Person, Role, Target
    from shouwang.registry import load_registry

    path = tmp_path / "r.yaml"
    path.write_text(GOOD, encoding="utf-8")
    reg = load_registry(path)
    any_store.upsert_registry(reg)
    any_store.upsert_registry(reg)  # idempotent, assignments are not doubled
    assert [p.id for p in any_store.people()] == sorted(p.id for p in reg.people)
    assert any_store.person("p-son").channels == ("json://127.0.0.1:9/x",)
    assert sorted((a.target, a.person) for a in any_store.assignments(household="H1")) == [
        (Target.FAMILY, "p-son"), (Target.TEAM, "p-prop"), (Target.VOLUNTEER, "p-vol")]
    assert {a.target for a in any_store.assignments(community="c1")} == {Target.COMMITTEE, Target.STREET}
    assert any_store.community_policy("c1")["reminder_every"] == "1h"
    assert any_store.household("H1").notes == "hard of hearing"
    any_store.upsert_person(Person("p-new", "New volunteer", Role.VOLUNTEER, "en"))
    any_store.set_household_care("H1", [Assignment(Target.VOLUNTEER, "p-new")])
    assert [(a.target, a.person) for a in any_store.assignments(household="H1")] == [(Target.VOLUNTEER, "p-new")]


# ------------------------------------------------------------------ recent readings and their fold (sql_recent.py)
# On SQLite new readings go to readings_recent and a fold moves them into readings; PostgreSQL writes to readings
# and folds nothing. Every assertion on what the store returns holds for both.
def _day(meter: str, first: int, n: int, value: float = 1.0) -> list[Reading]:
    return [Reading(meter, first + i * 900, value + i) for i in range(n)]


def _recent_left(store, sqlite_rows: int) -> int:
    return sqlite_rows if store.layered else 0


def test_a_folded_reading_redelivered_is_not_stored_again(loaded):
    old = _day("H1-W", 10_000, 6) + _day("H2-E", 10_000, 6)
    assert loaded.write_readings(old) == 12
    loaded.fold_keep_s = 900  # the newest 15 minutes stay recent
    assert loaded.fold_all() == _recent_left(loaded, 10)
    assert loaded.recent_count() == _recent_left(loaded, 2)
    newer = _day("H1-W", 10_000 + 6 * 900, 2, value=7.0)
    assert loaded.write_readings(old + newer + old[:3]) == 2  # folded, still recent, in one batch twice
    assert loaded.count_readings() == 14
    assert loaded.readings("H1-W") == _day("H1-W", 10_000, 8)
    assert loaded.latest_readings() == {"H1-W": newer[-1], "H2-E": old[-1]}


def test_a_late_reading_below_the_watermark_is_stored_once(loaded):
    loaded.write_readings(_day("H1-W", 10_000, 4) + _day("H2-E", 10_000, 4))
    loaded.fold_keep_s = 0
    loaded.fold_all()
    late = [Reading("H1-W", 10_000 + 450, 7.5), Reading("H2-W", 9_000, 3.0)]  # between folded ones; a new meter
    assert loaded.write_readings(late) == 2
    assert loaded.write_readings(late) == 0
    assert loaded.recent_count() == _recent_left(loaded, 2)
    loaded.fold_all()
    assert loaded.write_readings(late + [Reading("H1-W", 10_000, 99.0)]) == 0  # a changed value is a duplicate too
    assert loaded.recent_count() == 0 and loaded.count_readings() == 10
    assert [r.ts for r in loaded.readings("H1-W", start=10_000, end=11_000)] == [10_000, 10_450, 10_900]
    assert loaded.readings("H1-W", limit=1) == [Reading("H1-W", 12_700, 4.0)]


def test_reads_span_both_tables_with_the_same_results(loaded):
    rs = [r for m in ("H1-W", "H2-E", "H3-W") for r in _day(m, 100_000, 8)]
    loaded.write_readings(rs)
    before = (loaded.readings("H2-E", 100_900, 105_000, limit=3), list(loaded.readings_since(101_000)),
              loaded.latest_readings(), loaded.latest_readings(["H3-W"]), loaded.count_readings())
    loaded.fold_keep_s = 4 * 900  # the first four readings of each meter go, the last four stay
    loaded.fold_all()
    assert loaded.recent_count() == _recent_left(loaded, 12)
    after = (loaded.readings("H2-E", 100_900, 105_000, limit=3), list(loaded.readings_since(101_000)),
             loaded.latest_readings(), loaded.latest_readings(["H3-W"]), loaded.count_readings())
    assert after == before
    loaded.write_readings([Reading("H4-E", 50_000, 1.0)])  # a meter only in the recent table, long before
    assert [r.ts for r in before[0]] == [102_700, 103_600, 104_500]  # the newest three of the range, oldest first
    assert [(r.ts, r.meter) for r in loaded.readings_since(0)][:2] == [(50_000, "H4-E"), (100_000, "H1-W")]
    assert loaded.latest_readings()["H4-E"] == Reading("H4-E", 50_000, 1.0)


def test_a_fold_moves_a_slice_a_call_and_readings_written_meanwhile_stay(loaded):
    rs = [r for m in ("H1-W", "H1-E", "H2-W", "H2-E") for r in _day(m, 20_000, 5)]
    loaded.write_readings(rs)
    loaded.fold_keep_s, loaded.fold_slice_rows = 0, 6
    # the pass's first six readings (H1-E's five, H1-W's first) name meters H1-E..H1-W at five timestamps: ten go
    assert loaded.fold_readings(force=True) == _recent_left(loaded, 10)
    late = [Reading("H1-E", 20_100, 0.5), Reading("H2-W", 20_100, 0.5), Reading("H3-W", 30_000, 1.0),
            Reading("H1-X", 20_000, 2.0)]  # the last one at a timestamp and in the meters of the next slice
    assert loaded.write_readings(late + rs[:3]) == 4
    assert loaded.count_readings() == 24 and loaded.readings("H1-E")[:2] == [Reading("H1-E", 20_000, 1.0), late[0]]
    moved = [loaded.fold_readings() for _ in range(4)]  # H1-X and H2-E's five, H2-W's five, nothing left, no pass
    assert moved == ([6, 5, 0, 0] if loaded.layered else [0, 0, 0, 0])
    assert loaded.recent_count() == _recent_left(loaded, 3)  # at timestamps the pass did not have
    assert loaded.count_readings() == 24 and list(loaded.readings_since(0)) == sorted(rs + late, key=lambda r: (r.ts, r.meter))
    loaded.fold_all()
    assert loaded.recent_count() == 0 and loaded.write_readings(rs + late) == 0


def test_a_fold_queues_nothing_again_for_export(any_store):
    from storage.influx_feed import ExportQueue
    from storage.sql import open_store

    store = open_store(any_store.engine.url.render_as_string(hide_password=False), upgrade=True, export=True)
    try:
        queue = ExportQueue(store.engine)
        rs = _day("H1-W", 10_000, 5)
        store.write_readings(rs)
        store.fold_keep_s = 900
        store.fold_all()
        assert store.write_readings(rs + [Reading("H1-W", 9_000, 1.0)]) == 1  # one late reading, below the fold
        store.fold_all()
        assert store.recent_count() == _recent_left(store, 1)
        assert sorted((r.meter, r.ts) for r in queue.oldest(100)) == sorted(
            [("H1-W", 9_000)] + [(r.meter, r.ts) for r in rs])
    finally:
        store.close()


def test_a_new_store_on_the_same_database_keeps_the_watermark(any_store):
    from storage.sql import open_store

    url = any_store.engine.url.render_as_string(hide_password=False)
    rs = _day("H1-W", 10_000, 6)
    any_store.write_readings(rs)
    any_store.fold_keep_s = 900
    any_store.fold_readings(force=True)  # the whole pass in one slice
    any_store.close()
    again = open_store(url, upgrade=True)
    try:
        assert again.recent_count() == _recent_left(again, 1)
        assert again.write_readings(rs + [Reading("H1-W", 10_000 + 450, 0.5)]) == 1
        assert again.count_readings() == 7 and again.readings("H1-W")[:2] == [rs[0], Reading("H1-W", 10_450, 0.5)]
    finally:
        again.close()


def test_batches_and_a_fold_on_two_threads_store_every_reading_once(loaded):
    """What ingest does: the writer's batches on one thread, fold slices on another (ingest/writer.py)."""
    loaded.fold_keep_s, loaded.fold_rows, loaded.fold_slice_rows = 0, 40, 25
    meters = ["H1-W", "H1-E", "H2-W", "H2-E", "H3-W"]
    batches = [[Reading(m, 1_000 + step * 900, float(step)) for step in range(b * 4, b * 4 + 4) for m in meters]
               for b in range(30)]
    done, moved = threading.Event(), []

    def fold() -> None:
        while not done.is_set():
            moved.append(loaded.fold_readings())

    folder = threading.Thread(target=fold)
    folder.start()
    try:
        stored = [loaded.write_readings(b + b[:3]) for b in batches]  # a redelivered reading in every batch
    finally:
        done.set()
        folder.join()
    assert stored == [20] * 30
    assert sum(moved) > 0 if loaded.layered else sum(moved) == 0
    loaded.fold_all()
    assert loaded.count_readings() == 600 and loaded.recent_count() == 0
    assert list(loaded.readings_since(0)) == sorted((r for b in batches for r in b), key=lambda r: (r.ts, r.meter))


def test_an_escalation_is_written_only_over_the_version_it_was_read_at(loaded):
    """A step computed from a row another write has changed since (a reopen, a tier set) is refused whole: no step,
    no message, no timeline entry."""
    from shouwang.domain import AlertEvent, Escalation, OutboxItem
    from storage.base import StaleEscalation

    a = loaded.open_alert(_finding(), 500)
    loaded.save_escalation_steps([(Escalation(a.id, "c1", 0, 600), False)], [], [])
    read = loaded.escalation(a.id)
    loaded.set_escalation_tier(a.id, "hard", 9_000, AlertEvent(a.id, 550, "tier", "manager", "hard"))
    item = OutboxItem((a.id,), "json://x", "escalated", "t", "x", {}, "p1", 0, 0, 0.0, 60.0)
    with pytest.raises(StaleEscalation):
        loaded.save_escalation_steps([(Escalation(a.id, "c1", 1, 900, version=read.version), False)], [item],
                                     [AlertEvent(a.id, 600, "escalation_step", "escalation", "step 2")])
    now = loaded.escalation(a.id)
    assert (now.step, now.tier, now.sla_at, now.version) == (0, "hard", 9_000, read.version + 1)
    assert loaded.outbox_items() == [] and [e.kind for e in loaded.alert_events(a.id)] == ["opened", "tier"]
    loaded.save_escalation_steps([(Escalation(a.id, "c1", 1, 900, tier="hard", version=now.version), False)], [], [])
    assert loaded.escalation(a.id).step == 1


def test_stored_values_are_found_in_either_table_a_chunk_at_a_time(loaded, monkeypatch):
    """The writer's check of late readings: the value stored at each asked (meter, ts), folded or recent, and
    nothing for a time or a meter-and-time pair not stored (though its meter and its time are, apart)."""
    import storage.sql

    rs = [r for m in ("H1-W", "H2-W") for r in _day(m, 20_000, 5)]
    loaded.write_readings(rs)
    loaded.fold_keep_s, loaded.fold_slice_rows = 0, 4
    loaded.fold_readings(force=True)  # some in readings, the rest still recent (on SQLite)
    monkeypatch.setattr(storage.sql, "STORED_VALUES_CHUNK", 3)
    asked = [(r.meter, r.ts) for r in rs] + [("H1-W", 1), ("H9-W", rs[0].ts)]
    assert loaded.stored_values(asked) == {(r.meter, r.ts): r.value for r in rs}
    assert loaded.stored_values([]) == {}

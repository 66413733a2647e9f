"""The export queue the InfluxDB exporter drains: filled only with export on, new readings only, in the storing
transaction; deletes exactly what was exported (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from conftest import _postgres_url, small_registry
from sqlalchemy import inspect, text

from shouwang.domain import Reading
from storage import open_store
from storage import schema as t
from storage.influx_feed import ExportQueue, id_runs
from storage.migrations import upgrade
from storage.sql import SqlStore, make_engine

T0 = 1_790_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/feed.db"
    else:
        yield from _postgres_url()


@pytest.fixture
def exporting(any_store: SqlStore) -> SqlStore:
    """Each backend's store with export on and the small registry."""
    any_store.upsert_registry(small_registry())
    any_store.export = True
    return any_store


def test_nothing_is_queued_while_export_is_off(any_store) -> None:
    queue = ExportQueue(any_store.engine)
    assert any_store.write_readings([Reading("H1-W", T0 + i * 60, float(i)) for i in range(400)]) == 400
    assert queue.count() == 0 and queue.backlog() == 0 and queue.oldest(10) == []
    any_store.export = True
    any_store.write_readings([Reading("H1-W", T0 - 60, 9.0)])
    any_store.export = False  # and off again: the same pooled connection must stop queueing
    any_store.write_readings([Reading("H1-W", T0 - 120, 8.0)])
    assert [(r.ts, r.value) for r in queue.oldest(10)] == [(T0 - 60, 9.0)]


def test_readings_are_queued_in_storing_order_and_carry_their_tags(exporting) -> None:
    queue = ExportQueue(exporting.engine)
    exporting.write_readings([Reading("H2-E", T0 + 900, 5.0), Reading("H1-W", T0, 1.0)])
    exporting.write_readings([Reading("H1-W", T0 - 900, 0.5)])  # late in event time, last stored
    rows = queue.oldest(10)
    assert {(r.meter, r.ts) for r in rows[:2]} == {("H2-E", T0 + 900), ("H1-W", T0)}  # one batch, any order
    assert (rows[2].meter, rows[2].ts) == ("H1-W", T0 - 900)  # a later transaction: a higher id
    assert [r.id for r in rows] == sorted({r.id for r in rows})
    e = next(r for r in rows if r.meter == "H2-E")
    assert (e.household, e.community, e.kind, e.value, e.ts) == ("H2", "c1", "electricity", 5.0, T0 + 900)
    assert queue.oldest(1) == rows[:1]
    assert queue.count() == queue.backlog() == 3


def test_only_new_readings_are_queued_not_redeliveries(exporting) -> None:
    queue = ExportQueue(exporting.engine)
    first = [Reading("H1-W", T0 + i * 60, float(i)) for i in range(0, 700, 2)]  # more than one SQLite INSERT
    assert exporting.write_readings(first) == 350
    again = [Reading("H1-W", T0 + i * 60, float(i)) for i in range(700)]  # half of them stored already
    again += [Reading("H1-W", T0 + 60, 1.0)]  # and one twice in the same batch
    assert exporting.write_readings(again) == 350
    rows = queue.oldest(10_000)
    assert len(rows) == 700 == exporting.count_readings()
    assert sorted((r.ts, r.value) for r in rows) == [(T0 + i * 60, float(i)) for i in range(700)]


def test_a_failed_write_queues_nothing(exporting) -> None:
    """The queue rows are in the readings' transaction: a batch that fails stores and queues nothing."""
    batch = [Reading("H1-W", T0 + i * 60, float(i)) for i in range(500)]
    batch[450] = Reading("H1-W", T0 + 450 * 60, None)  # type: ignore[arg-type]  # NOT NULL, in a later chunk
    with pytest.raises(Exception, match="(?i)null"):
        exporting.write_readings(batch)
    assert exporting.count_readings() == 0 and ExportQueue(exporting.engine).count() == 0


def test_delete_removes_exactly_the_ids_given(exporting) -> None:
    queue = ExportQueue(exporting.engine)
    exporting.write_readings([Reading("H1-W", T0 + i * 60, float(i)) for i in range(10)])
    ids = [r.id for r in queue.oldest(10)]
    gone = [ids[0], ids[1], ids[2], ids[5], ids[7]]
    assert queue.delete(gone) == 5
    assert [r.id for r in queue.oldest(10)] == [ids[3], ids[4], ids[6], ids[8], ids[9]]  # never "all below N"
    assert queue.backlog() == ids[9] - ids[3] + 1 >= queue.count() == 5
    assert queue.delete([]) == 0 and queue.delete(gone) == 0


def test_id_runs() -> None:
    assert id_runs([7, 1, 3, 2, 2, 9, 8]) == [(1, 3), (7, 9)]
    assert id_runs([]) == []


def test_an_exporter_deleting_what_it_read_beside_concurrent_writers_sees_every_reading_exactly_once(
        exporting) -> None:
    writers, batches, per = 3, 15, 40
    queue = ExportQueue(exporting.engine)
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def write(w: int) -> None:
        for b in range(batches):
            exporting.write_readings([Reading(f"W{w}", T0 + (b * per + i) * 60, 1.0) for i in range(per)])

    def drain() -> None:
        while True:
            last_look = done.is_set()
            rows = queue.oldest(25)
            seen.extend((r.meter, r.ts) for r in rows)
            queue.delete(r.id for r in rows)
            if last_look and not rows:
                return

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    drainer = threading.Thread(target=drain)
    drainer.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    done.set()
    drainer.join(60)
    assert len(seen) == writers * batches * per
    assert len(set(seen)) == len(seen)
    assert queue.count() == 0


def test_postgresql_a_lower_id_committed_after_a_higher_one_is_still_exported(pg_url) -> None:
    """On PostgreSQL ids are taken at insert time: id 1 can commit after id 2 was exported and deleted (SQLite
    writers are serialised, so there ids commit in order)."""
    store = open_store(pg_url, upgrade=True, export=True)
    queue = ExportQueue(store.engine)
    try:
        with store.engine.connect() as slow, slow.begin():  # a writer as write_readings does it, held open
            slow.execute(t.readings.insert(), {"meter": "A", "ts": T0, "value": 1.0})
            slow.execute(t.export_queue.insert(), {"meter": "A", "ts": T0, "value": 1.0})  # takes id 1
            store.write_readings([Reading("B", T0, 2.0)])  # id 2, committed first
            (row,) = queue.oldest(10)
            assert (row.id, row.meter) == (2, "B")
            assert queue.delete([row.id]) == 1
        (late,) = queue.oldest(10)
        assert (late.id, late.meter, late.ts, late.value) == (1, "A", T0, 1.0)
    finally:
        store.close()


def test_migration_queues_what_the_exporter_had_not_sent_and_drops_the_numbers(any_store_url) -> None:
    engine = make_engine(any_store_url)
    try:
        upgrade(engine, "0003")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO readings (meter, ts, value, seq) VALUES ('B', :t, 2, 3), ('A', :t, 1, 2), "
                              "('A', :t0, 0, 1)"), {"t": T0 + 60, "t0": T0})
            conn.execute(text("UPDATE counters SET value = 3 WHERE name = 'readings.seq'"))
            conn.execute(text("INSERT INTO counters (name, value) VALUES ('export.influxdb', 1)"))
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        columns = {c["name"] for c in inspect(engine).get_columns("readings")}
    finally:
        engine.dispose()
    assert "counters" not in tables and "export_queue" in tables and columns == {"meter", "ts", "value"}
    store = open_store(any_store_url, upgrade=True, export=True)
    try:
        store.write_readings([Reading("A", T0 + 120, 3.0)])
        rows = ExportQueue(store.engine).oldest(10)
        assert [(r.meter, r.ts) for r in rows] == [("A", T0 + 60), ("B", T0 + 60), ("A", T0 + 120)]
    finally:
        store.close()


def test_migration_queues_nothing_where_no_exporter_ever_ran(any_store_url) -> None:
    engine = make_engine(any_store_url)
    try:
        upgrade(engine, "0003")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO readings (meter, ts, value, seq) VALUES ('A', :t0, 0, 1)"), {"t0": T0})
        upgrade(engine)
    finally:
        engine.dispose()
    store = open_store(any_store_url, upgrade=True)
    try:
        assert ExportQueue(store.engine).count() == 0 and store.count_readings() == 1
    finally:
        store.close()

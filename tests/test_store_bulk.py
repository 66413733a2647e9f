"""Readings are written in bulk (SQLite: multi-row statements; PostgreSQL: COPY): counts and contents stay those of one
row at a time, duplicates included."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from shouwang.domain import Reading
from storage.sql import SQLITE_ROWS_PER_INSERT


@pytest.fixture
def store(any_store):
    return any_store


def test_batches_across_statement_boundaries_store_each_reading_once(store):
    n = 3 * SQLITE_ROWS_PER_INSERT + 17
    rs = [Reading(f"M{i % 7}", 1_000 + i, float(i)) for i in range(n)]
    assert store.write_readings(rs) == n
    # redelivered readings, a duplicate inside one statement, and one new reading
    again = rs[SQLITE_ROWS_PER_INSERT - 5:] + rs[:10] + [Reading("M0", 99_000, 1.0), Reading("M0", 99_000, 1.0)]
    assert store.write_readings(again) == 1
    assert store.count_readings() == n + 1
    assert [(r.ts, r.value) for r in store.readings("M3")][:3] == [(1_003, 3.0), (1_010, 10.0), (1_017, 17.0)]
    assert store.write_readings([]) == 0


def test_postgresql_copies_straight_in_until_a_duplicate_and_again_after_a_clean_batch(pg_url):
    from storage.influx_feed import ExportQueue
    from storage.sql import open_store

    store = open_store(pg_url, upgrade=True, export=True)
    careful: list[int] = []  # the batch numbers that went through INSERT … ON CONFLICT
    batch = [0]
    event.listen(store.engine, "before_cursor_execute",
                 lambda *a: careful.append(batch[0]) if "ON CONFLICT" in a[2] else None)

    def write(rs: list[Reading]) -> int:
        batch[0] += 1
        return store.write_readings(rs)

    try:
        first = [Reading("M1", 1_000 + i, float(i)) for i in range(50)]
        assert write(first) == 50
        redelivered = first[40:] + [Reading("M2", 5, 1.0), Reading("M2", 5, 2.0)]  # and a duplicate within the batch
        assert write(redelivered) == 1
        assert write([Reading("M1", 1_049, 9.0), Reading("M3", 5, 1.0)]) == 1  # careful while duplicates come
        clean = [Reading("M4", t, 1.0) for t in range(20)]
        assert write(clean) == 20  # careful, and without a duplicate: the next batch goes straight again
        assert write([Reading("M4", 100, 1.0)]) == 1
        assert careful == [2, 3, 4]
        assert store.count_readings() == 50 + 1 + 1 + 20 + 1
        assert store.readings("M1")[-1] == first[-1] and store.readings("M2") == [Reading("M2", 5, 1.0)]
        queued = sorted((r.meter, r.ts) for r in ExportQueue(store.engine).oldest(1_000))
        want = first + [Reading("M2", 5, 1.0), Reading("M3", 5, 1.0)] + clean + [Reading("M4", 100, 1.0)]
        assert queued == sorted((r.meter, r.ts) for r in want)  # each new reading queued once, whichever way
    finally:
        store.close()

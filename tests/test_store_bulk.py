"""The SQLite store writes readings in multi-row statements: counts and contents stay those of one row at a time."""

from __future__ import annotations

from shouwang.domain import Reading
from storage.sql import SQLITE_ROWS_PER_INSERT


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

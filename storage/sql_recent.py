"""Recent readings on SQLite: written clustered by time (``readings_recent``), folded into ``readings`` in key order.

Snapshot uploads (a gateway's meters at one instant) put every reading on a different leaf of ``readings``, keyed
(meter, ts), so each commit wrote about a page per reading. ``readings_recent`` is keyed (ts, meter): the same
readings append at its right edge. A fold pass later moves the readings older than a horizon into ``readings`` in
(meter, ts) order, so each leaf there is written once for all of a meter's readings in the pass, a slice of
``fold_slice_rows`` readings a transaction (insert into ``readings`` and delete from the recent table together).

A reading is in one table or the other, never both. ``readings`` holds nothing newer than its own highest ``ts``
(the watermark, read from its ts index inside each INSERT), so a new reading above it is looked up in the recent
table only; one at or below it (late, or redelivered after its fold) is also looked up in ``readings``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text

from storage import schema as t

log = logging.getLogger(__name__)

FOLD_ROWS = 1_000_000  # a pass starts once the recent table has grown by this many readings since the last one
FOLD_SPAN_S = 6 * 3600  # ... or once its oldest reading is this much older than its newest
FOLD_KEEP_S = 3600  # a pass leaves the newest hour of event time in the recent table
FOLD_SLICE_ROWS = 50_000  # readings moved per transaction
SPAN_CHECK_EVERY_S = 60.0  # how often fold_readings looks at the span (two index look-ups)
CHECKPOINT_EVERY_S = 0.5  # between fold slices, fold_readings copies the WAL into the database this often

_R, _M = t.readings_recent.name, t.readings.name
_PASS_TABLE = "fold_pass"  # the pass's readings in (meter, ts) order, rowid = position; on the pass's connection
_PASS_FILL = (f"CREATE TEMP TABLE {_PASS_TABLE} AS SELECT meter, ts, value FROM main.{_R} WHERE ts <= ? "
              "ORDER BY meter, ts")
# A slice: the recent readings of the meters from the pass's row :lo + 1 to its row :hi, at the timestamps of those
# rows (a range of meters within each timestamp: the recent table's key order). Insert and delete name the same
# readings in one transaction, so each moves exactly once, a reading stored since the pass began included.
_SLICE = (f"ts IN (SELECT ts FROM temp.{_PASS_TABLE} WHERE rowid > :lo AND rowid <= :hi) AND meter BETWEEN "
          f"(SELECT meter FROM temp.{_PASS_TABLE} WHERE rowid = :lo + 1) AND "
          f"(SELECT meter FROM temp.{_PASS_TABLE} WHERE rowid = :hi)")
_SLICE_INSERT = (f"INSERT INTO main.{_M} (meter, ts, value) SELECT meter, ts, value FROM main.{_R} WHERE {_SLICE} "
                 "ORDER BY meter, ts ON CONFLICT (meter, ts) DO NOTHING")
_SLICE_DELETE = f"DELETE FROM main.{_R} WHERE {_SLICE}"

def sqlite_insert_recent(rows: int) -> str:
    """One INSERT of ``rows`` readings into the recent table, each stored once across both tables.

    ``readings`` is consulted only for a reading at or below its highest ts (one index look-up per statement);
    ON CONFLICT skips one already in the recent table. rowcount is the number of readings stored.
    """
    values = ", ".join(["(?, ?, ?)"] * rows)
    return (f"INSERT INTO {_R} (meter, ts, value) SELECT v.column1, v.column2, v.column3 FROM (VALUES {values}) AS v "
            f"WHERE v.column2 > (SELECT max(ts) FROM {_M}) "
            f"OR NOT EXISTS (SELECT 1 FROM {_M} AS f WHERE f.meter = v.column1 AND f.ts = v.column2) "
            "ON CONFLICT (ts, meter) DO NOTHING")


class WritersFirst:
    """Turns at SQLite's one write lock between batch writes and the fold: a fold slice starts only while no batch
    waits, and a batch waits for at most the slice under way.

    Left to SQLite, a batch that finds the fold writing sleeps in the busy handler (1, 2, 5, 10 ms ... at a time)
    and the messages it carries stay unacknowledged; here it is woken the moment the slice commits.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._writes_waiting = 0
        self.write_wait_s = 0.0  # how long batch writes have waited for their turn, in all
        self.fold_held_s = 0.0  # how long fold slices have held the turn, in all

    @property
    def writes_waiting(self) -> int:
        """Batch writes waiting for their turn now."""
        with self._cond:
            return self._writes_waiting

    @contextmanager
    def write(self) -> Iterator[None]:
        """A batch's turn: as soon as the write lock is free."""
        t = time.perf_counter()
        with self._cond:
            self._writes_waiting += 1
            self._cond.wait_for(lambda: not self._busy)
            self._writes_waiting -= 1
            self._busy = True
            self.write_wait_s += time.perf_counter() - t
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def fold(self) -> Iterator[None]:
        """A fold slice's turn: once the write lock is free and no batch is waiting for it."""
        with self._cond:
            self._cond.wait_for(lambda: not self._busy and self._writes_waiting == 0)
            self._busy = True
        t = time.perf_counter()
        try:
            yield
        finally:
            self.fold_held_s += time.perf_counter() - t
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


def _close_pass_connection(conn: Any) -> None:
    """Give a pass's connection back to the pool as ``_sqlite_pragmas`` made it (``synchronous=FULL``, so batches
    written on it later are durable), or drop it if that cannot be done."""
    try:
        conn.rollback()
        conn.exec_driver_sql("PRAGMA synchronous=FULL")
    except Exception:  # noqa: BLE001 - never back to the pool with NORMAL
        conn.invalidate()
    finally:
        conn.close()


@dataclass
class FoldPass:
    """A fold under way: its own connection (the temp table lives there), the horizon and how far it has got."""

    conn: Any
    horizon: int
    rows: int
    done: int = 0


class RecentReadingsMixin:
    """SqlStore's part for the recent table and its fold (SQLite only; on PostgreSQL ``fold_readings`` does nothing)."""

    engine: Engine
    fold_rows = FOLD_ROWS
    fold_span_s = FOLD_SPAN_S
    fold_keep_s = FOLD_KEEP_S
    fold_slice_rows = FOLD_SLICE_ROWS

    def _init_recent(self) -> None:
        self.layered = self.engine.dialect.name == "sqlite"  # new readings go to the recent table first
        self._recent_rows: int | None = None  # readings in the recent table, as far as this process knows
        self._recent_floor = 0  # what the last pass left there
        self._span_checked = float("-inf")
        self._fold: FoldPass | None = None
        self._turns = WritersFirst()  # batch writes and fold slices take turns (they run on different threads)
        self._checkpointed = float("-inf")

    def _recent_added(self, n: int) -> None:
        if self._recent_rows is not None:
            self._recent_rows += n

    def recent_count(self) -> int:
        """Readings in the recent table now (a full count)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.readings_recent)).scalar_one()

    def fold_readings(self, *, force: bool = False) -> int:
        """When a fold is due (or ``force``), move one slice of recent readings older than the horizon into
        ``readings``; return how many moved (0 when nothing is due). The batch writer calls it after each batch."""
        if not self.layered:
            return 0
        if self._fold is None:
            if not (force or self._fold_due()):
                self._checkpoint()
                return 0
            self._fold = self._start_pass()
            if self._fold is None:
                return 0
        moved = self._fold_slice(self._fold)
        self._checkpoint()
        return moved

    def _checkpoint(self) -> None:
        """Copy what the WAL holds into the database file (a passive checkpoint: it waits for no one), outside
        the turns, at most every CHECKPOINT_EVERY_S.

        Left to SQLite, the commit that takes the WAL past ``wal_autocheckpoint`` pages does it, inside its own
        turn, so a batch (and every batch waiting behind a fold slice) waits for it. With the fold thread calling
        this, the WAL rarely reaches the pragma's larger threshold, which stays for processes that never fold.
        """
        now = time.monotonic()
        if now - self._checkpointed < CHECKPOINT_EVERY_S:
            return
        self._checkpointed = now
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()

    def fold_all(self) -> int:
        """Finish a pass under way, then fold everything older than the horizon now, slice by slice (tools and
        tests); return how many moved."""
        moved = 0
        while self._fold is not None:
            moved += self.fold_readings()
        moved += self.fold_readings(force=True)
        while self._fold is not None:
            moved += self.fold_readings()
        return moved

    def _fold_due(self) -> bool:
        if self._recent_rows is None:
            self._recount()
        if self._recent_rows - self._recent_floor >= self.fold_rows:
            return True
        now = time.monotonic()
        if now - self._span_checked < SPAN_CHECK_EVERY_S:
            return False
        self._span_checked = now
        c = t.readings_recent.c
        with self.engine.connect() as conn:
            oldest, newest = conn.execute(select(func.min(c.ts), func.max(c.ts))).one()
        return oldest is not None and newest - oldest > self.fold_span_s

    def _start_pass(self) -> FoldPass | None:
        """Copy the readings to fold, in key order, into a temp table of a connection kept for the pass (reading
        the recent table does not block writers). Leave temp_store alone: changing it drops the connection's temp
        objects, the export trigger among them."""
        conn = self.engine.connect()
        try:
            # A slice's commit need not reach the disk: if it is lost, its readings are still in the recent table,
            # and the next batch's commit (synchronous=FULL) syncs the WAL with the slice's pages in it.
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            newest = conn.execute(select(func.max(t.readings_recent.c.ts))).scalar()
            if newest is None:
                _close_pass_connection(conn)
                return None
            horizon = newest - self.fold_keep_s
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_PASS_TABLE}")
            conn.exec_driver_sql(_PASS_FILL, (horizon,))
            rows = conn.exec_driver_sql(f"SELECT max(rowid) FROM temp.{_PASS_TABLE}").scalar() or 0
            conn.commit()
        except Exception:
            _close_pass_connection(conn)
            raise
        if rows == 0:
            self._end_pass(FoldPass(conn, horizon, 0))
            return None
        log.info("folding %d recent readings up to ts %d into readings", rows, horizon)
        return FoldPass(conn, horizon, rows)

    def _fold_slice(self, fold: FoldPass) -> int:
        span = {"lo": fold.done, "hi": min(fold.done + self.fold_slice_rows, fold.rows)}
        try:
            with self._turns.fold(), fold.conn.begin():
                fold.conn.execute(text(_SLICE_INSERT), span)
                moved = max(fold.conn.execute(text(_SLICE_DELETE), span).rowcount, 0)
                if self._recent_rows is not None:
                    self._recent_rows -= moved
        except Exception:
            self._end_pass(fold)  # the next pass starts over from what the recent table holds then
            raise
        fold.done = span["hi"]
        if fold.done >= fold.rows:
            self._end_pass(fold)
        return moved

    def _end_pass(self, fold: FoldPass) -> None:
        self._fold = None
        try:
            fold.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_PASS_TABLE}")
            fold.conn.commit()
        finally:
            _close_pass_connection(fold.conn)
        self._recount()

    def _recount(self) -> None:
        """Count the recent table afresh; between batches, so none is added to the count while it is taken."""
        with self._turns.fold():
            self._recent_rows = self._recent_floor = self.recent_count()

    def _close_recent(self) -> None:
        if self._fold is not None:
            self._end_pass(self._fold)

"""ExportQueue: readings waiting for an exporter, queued by the store in the transaction that stored them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, func, or_, select

from storage import schema as t

RUNS_PER_DELETE = 400  # two bound parameters a run: under the 999 that older SQLite builds allow


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """One queued reading with its queue id and the registry tags it is exported with."""

    id: int
    meter: str
    ts: int
    value: float
    household: str | None
    community: str | None
    kind: str | None


def id_runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """The ids as runs of consecutive numbers, (first, last) each: ``[1, 2, 3, 7]`` → ``[(1, 3), (7, 7)]``."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


class ExportQueue:
    """The ``export_queue`` table: the store adds what it newly stores (when opened with ``export``), the exporter
    reads the oldest, writes them and deletes exactly those ids.

    Deleting is the durable cursor. It never deletes "everything below" an id: on PostgreSQL ids are taken at
    insert time, so a batch may commit id 7 before another commits id 6; id 6 then waits for the next read.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def oldest(self, limit: int) -> list[QueuedReading]:
        """Up to ``limit`` queued readings, lowest ids first, with their tags (None for an unregistered meter)."""
        q, m, h = t.export_queue, t.meters, t.households
        stmt = (select(q.c.id, q.c.meter, q.c.ts, q.c.value, m.c.household, h.c.community, m.c.kind)
                .select_from(q.outerjoin(m, m.c.id == q.c.meter).outerjoin(h, h.c.id == m.c.household))
                .order_by(q.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [QueuedReading(*row) for row in conn.execute(stmt)]

    def delete(self, ids: Iterable[int]) -> int:
        """Durably remove exactly these ids (ranges of consecutive ids, a few hundred a statement); return how
        many went."""
        runs, c, gone = id_runs(ids), t.export_queue.c, 0
        with self.engine.begin() as conn:
            for i in range(0, len(runs), RUNS_PER_DELETE):
                where = or_(*(c.id.between(a, b) for a, b in runs[i:i + RUNS_PER_DELETE]))
                gone += conn.execute(t.export_queue.delete().where(where)).rowcount
        return gone

    def backlog(self) -> int:
        """Queued readings, at most: highest id − lowest id + 1 (two index look-ups, never a count; ids skipped
        by rolled-back writes or exported out of order make it an upper bound)."""
        c = t.export_queue.c
        with self.engine.connect() as conn:
            low, high = conn.execute(select(func.min(c.id), func.max(c.id))).one()
        return 0 if low is None else high - low + 1

    def count(self) -> int:
        """Queued readings, exactly (a full count: for tests and tools, not for every batch)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.export_queue)).scalar_one()

"""The state feed: stored batches, one row each, for `run --role api` followers (schema.state_feed)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select

from shouwang.domain import Reading
from storage import schema as t


class FeedStoreMixin:
    """SqlStore's part for the feed; ``feed`` says whether ``write_readings`` appends to it."""

    engine: Engine
    feed: bool

    def _feed_append(self, conn: Any, readings: Sequence[Reading]) -> None:
        """In the transaction that stores ``readings``: add them to the feed as one row (when feed is on)."""
        if self.feed and readings:
            conn.execute(insert(t.state_feed), {"stored_at": int(time.time()), "readings": orjson.dumps(
                [(r.meter, r.ts, r.value) for r in readings])})

    def feed_since(self, stored_at: int) -> list[tuple[int, int]]:
        """(id, stored_at) of the feed rows stored at or after ``stored_at``, oldest first."""
        c = t.state_feed.c
        q = select(c.id, c.stored_at).where(c.stored_at >= stored_at).order_by(c.id)
        with self.engine.connect() as conn:
            return [(r.id, r.stored_at) for r in conn.execute(q)]

    def feed_batches(self, ids: Sequence[int]) -> list[tuple[int, list[Reading]]]:
        """The readings of these feed rows, in id order (rows trimmed meanwhile are left out)."""
        c, out = t.state_feed.c, []
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                q = select(c.id, c.readings).where(c.id.in_(list(ids[i:i + 500]))).order_by(c.id)
                out += [(r.id, [Reading(m, ts, v) for m, ts, v in orjson.loads(r.readings)]) for r in conn.execute(q)]
        return out

    def trim_feed(self, before: int) -> int:
        """Delete the feed rows stored before ``before``; return how many."""
        with self.engine.begin() as conn:
            return conn.execute(delete(t.state_feed).where(t.state_feed.c.stored_at < before)).rowcount

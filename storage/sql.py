"""SqlStore: the Store on SQLAlchemy Core, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from operator import attrgetter
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event, func, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from shouwang.away import AwayPeriod
from shouwang.domain import (
    Alert,
    AlertCategory,
    AlertEvent,
    AlertStatus,
    Assignment,
    Community,
    Finding,
    Gateway,
    GatewayStatus,
    Household,
    Meter,
    MeterKind,
    Outcome,
    Person,
    Reading,
    Registry,
    Rejection,
    Role,
    Severity,
    Target,
)
from storage import schema as t
from storage.base import AlertConflict, NotFound
from storage.migrations import ensure_schema
from storage.sql_accounts import AccountStoreMixin
from storage.sql_escalation import EscalationStoreMixin, event_row
from storage.sql_feed import FeedStoreMixin
from storage.sql_recent import RecentReadingsMixin, sqlite_insert_recent

log = logging.getLogger(__name__)

WAL_AUTOCHECKPOINT_PAGES = 10_000  # 40 MB at SQLite's 4 KiB pages (its default is 1,000)
READ_WINDOW_S = 900  # readings_since reads this much event time per query (a city: ~100,000 rows)
SQLITE_ROWS_PER_INSERT = 300  # 900 bound parameters, under the 999 that older SQLite builds allow
# With export on, SQLite queues what an INSERT stores through a trigger of the writing connection: it fires for
# the rows inserted only (not for those ON CONFLICT skips), inside the statement, without a row going through
# Python (RETURNING would hand rows back one step each, with the GIL convoy described in write_readings). New
# readings go to the recent table (storage/sql_recent.py), so the trigger is on it: a fold does not queue again.
_SQLITE_QUEUE_TRIGGER = (
    f"CREATE TEMP TRIGGER IF NOT EXISTS export_queue_fill AFTER INSERT ON main.{t.readings_recent.name} BEGIN "
    f"INSERT INTO {t.export_queue.name} (meter, ts, value) VALUES (NEW.meter, NEW.ts, NEW.value); END")
_SQLITE_QUEUE_TRIGGER_OFF = "DROP TRIGGER IF EXISTS temp.export_queue_fill"
# PostgreSQL: a batch is copied (binary COPY, in psycopg's C code) straight into ``readings`` inside a savepoint. A
# redelivered reading makes the COPY fail on the key; the savepoint is rolled back and the batch goes the careful way:
# COPY into a temporary table of the connection (emptied at each commit), then INSERT … ON CONFLICT DO NOTHING from
# it, so a duplicate is skipped as by an INSERT. The careful way costs the server about twice the CPU a reading
# (docs/benchmarks.md), so it is used only after a duplicate, until a batch comes through it without one. Passing
# the batch as three array parameters instead cost the worker about 1.4 µs a reading to adapt the lists.
_PG_INCOMING = "pg_temp.incoming_readings"
_ROW = attrgetter("meter", "ts", "value")
_PG_INCOMING_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS incoming_readings (meter varchar(64), ts bigint, "
                      "value double precision) ON COMMIT DELETE ROWS")
_PG_COPY = "COPY {} (meter, ts, value) FROM STDIN (FORMAT BINARY)"
_PG_INSERT = (f"INSERT INTO {t.readings.name} (meter, ts, value) SELECT meter, ts, value FROM {_PG_INCOMING} "
              "ON CONFLICT (meter, ts) DO NOTHING")
_PG_STORE_AND_QUEUE = (f"WITH new AS ({_PG_INSERT} RETURNING meter, ts, value) "
                       f"INSERT INTO {t.export_queue.name} (meter, ts, value) SELECT meter, ts, value FROM new")


def _pg_copy(cur: Any, table: str, readings: Sequence[Reading]) -> None:
    """Binary COPY of ``readings`` into ``table`` on a psycopg cursor."""
    with cur.copy(_PG_COPY.format(table)) as copy:
        copy.set_types(["varchar", "int8", "float8"])
        for row in map(_ROW, readings):
            copy.write_row(row)


_SQLITE_INSERT_FULL = sqlite_insert_recent(SQLITE_ROWS_PER_INSERT)
_CATEGORIES = {c.value: c for c in AlertCategory}
_SEVERITIES = {s.value: s for s in Severity}
_STATUSES = {s.value: s for s in AlertStatus}
_OUTCOMES = {o.value: o for o in Outcome}


SQLITE_BUSY_TIMEOUT_S = 30
STORED_VALUES_CHUNK = 2_000  # (meter, ts) keys looked up per statement, two bound parameters each


def _sqlite_wal(cur: Any, pause: Callable[[float], None] = time.sleep) -> None:
    """Switch the file to WAL, retrying while another connection holds the lock, up to the busy timeout.

    When several processes open a fresh file at once, the first switch to WAL can fail at once with "database is
    locked": SQLite does not call the busy handler for it. Once a file is in WAL it stays so, and the pragma only reads.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            pause(0.005)


def _text(value: str, limit: int | None = None) -> str:
    """Text any backend stores: NUL (which PostgreSQL refuses) as U+FFFD, a lone surrogate (which no UTF-8 holds)
    as ?, cut to ``limit`` characters."""
    value = value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return value if limit is None or len(value) <= limit else value[:limit - 1] + "…"


def _rejection_row(r: Rejection) -> dict:
    """A rejection as a row every backend takes, whatever the gateway sent: a refused message must never block the
    batch beside it (the writer retries a failed write until it succeeds). A meter id that does not fit is left out
    (the kept payload has it)."""
    meter = r.meter if r.meter and t.fits(t.rejections.c.meter, r.meter) else None
    return {"received_at": r.received_at, "topic": _text(r.topic, t.rejections.c.topic.type.length),
            "reason": r.reason, "detail": _text(r.detail), "payload": _text(r.payload), "meter": meter}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    _sqlite_wal(cur)
    cur.execute("PRAGMA synchronous=FULL")  # a batch is acknowledged to the broker only after this commit
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    # The ingest process's fold thread checkpoints outside the write turns (storage/sql_recent.py); a process that
    # never folds (the api role, tools) still checkpoints, at a commit that takes the WAL past 40 MB.
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cur.close()


def open_store(url: str, *, upgrade: bool | None = None, export: bool = False, feed: bool = False) -> SqlStore:
    """Open the store at a SQLAlchemy URL: create a fresh schema, upgrade an old one or refuse it.

    ``upgrade`` defaults to True for SQLite (embedded) and False for PostgreSQL, whose schema is upgraded by
    ``shouwang db upgrade`` (storage/migrations, docs/deploy.md). ``export``: new readings are also queued for
    the InfluxDB exporter. ``feed``: each stored batch also goes to the state feed for api followers
    (docs/storage.md).
    """
    engine = make_engine(url)
    store = SqlStore(engine, upgrade=engine.dialect.name == "sqlite" if upgrade is None else upgrade, export=export)
    store.feed = feed
    return store


def make_engine(url: str) -> Engine:
    """An engine for a store URL: psycopg for ``postgresql://``, durable pragmas for SQLite (dirs created)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class SqlStore(EscalationStoreMixin, AccountStoreMixin, FeedStoreMixin, RecentReadingsMixin):
    """Store implementation shared by every SQL backend."""

    def __init__(self, engine: Engine, *, upgrade: bool = True, export: bool = False) -> None:
        self.engine = engine
        self.export = export  # write_readings also queues new readings in export_queue (storage/influx_feed.py)
        self.feed = False  # write_readings also adds each batch to state_feed (storage/sql_feed.py)
        self._pg_direct = True  # PostgreSQL: COPY a batch straight into readings (no duplicate in the last batch)
        self._insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
        ensure_schema(engine, auto_upgrade=upgrade)  # raises SchemaOutOfDate with what to do
        self._init_recent()

    def close(self) -> None:
        self._close_recent()
        self.engine.dispose()

    # ---------------------------------------------------------------- registry
    def _upsert(self, conn: Any, table: Any, rows: list[dict]) -> None:
        if not rows:
            return
        stmt = self._insert(table)
        cols = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
        conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=cols), rows)

    def upsert_registry(self, registry: Registry) -> None:
        policies = dict(registry.policies)
        with self.engine.begin() as conn:
            self._upsert(conn, t.communities, [
                {"id": c.id, "name": c.name, "timezone": c.timezone, "escalation": policies.get(c.id)}
                for c in registry.communities])
            self._upsert(conn, t.gateways, [{"id": g.id, "community": g.community} for g in registry.gateways])
            self._upsert(conn, t.households, [
                {"id": h.id, "community": h.community, "name": h.name, "address": h.address, "grid": h.grid,
                 "phone": h.phone, "notes": h.notes}
                for h in registry.households])
            self._upsert(conn, t.meters, [
                {"id": m.id, "household": m.household, "kind": str(m.kind), "gateway": m.gateway}
                for m in registry.meters])
            self._upsert(conn, t.people, [
                {"id": p.id, "name": p.name, "role": str(p.role), "language": p.language, "phone": p.phone,
                 "channels": list(p.channels)} for p in registry.people])
            if registry.assignments:  # the file is the source of truth for the care it names
                hh = {a.household for a in registry.assignments if a.household}
                cc = {a.community for a in registry.assignments if a.community}
                conn.execute(t.assignments.delete().where(t.assignments.c.household.in_(hh)
                                                          | t.assignments.c.community.in_(cc)))
                conn.execute(t.assignments.insert(), [
                    {"target": str(a.target), "person": a.person, "household": a.household,
                     "community": a.community} for a in registry.assignments])

    def communities(self) -> list[Community]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.communities).order_by(t.communities.c.id))
            return [Community(r.id, r.name, r.timezone) for r in rows]

    def gateways(self, community: str | None = None) -> list[Gateway]:
        q = select(t.gateways).order_by(t.gateways.c.id)
        if community is not None:
            q = q.where(t.gateways.c.community == community)
        with self.engine.connect() as conn:
            return [Gateway(r.id, r.community) for r in conn.execute(q)]

    def _by_id(self, table: Any, key: str | int, noun: str) -> Any:
        """The row of ``table`` whose id is ``key``; NotFound names it as ``noun`` when there is none."""
        if not t.fits(table.c.id, key):  # no row can have it (and PostgreSQL would refuse the query)
            raise NotFound(f"{noun} {key!r} not found")
        with self.engine.connect() as conn:
            r = conn.execute(select(table).where(table.c.id == key)).first()
        if r is None:
            raise NotFound(f"{noun} {key!r} not found")
        return r

    def gateway(self, gateway_id: str) -> Gateway:
        r = self._by_id(t.gateways, gateway_id, "gateway")
        return Gateway(r.id, r.community)

    def households(self, community: str | None = None) -> list[Household]:
        q = select(t.households).order_by(t.households.c.id)
        if community is not None:
            q = q.where(t.households.c.community == community)
        with self.engine.connect() as conn:
            return [Household(r.id, r.community, r.name, r.address, r.grid, r.phone, r.notes) for r in conn.execute(q)]

    def household(self, household_id: str) -> Household:
        r = self._by_id(t.households, household_id, "household")
        return Household(r.id, r.community, r.name, r.address, r.grid, r.phone, r.notes)

    def meters(self, household: str | None = None) -> list[Meter]:
        q = select(t.meters).order_by(t.meters.c.id)
        if household is not None:
            q = q.where(t.meters.c.household == household)
        with self.engine.connect() as conn:
            return [Meter(r.id, r.household, MeterKind(r.kind), r.gateway) for r in conn.execute(q)]

    def meter(self, meter_id: str) -> Meter:
        r = self._by_id(t.meters, meter_id, "meter")
        return Meter(r.id, r.household, MeterKind(r.kind), r.gateway)

    # ---------------------------------------------------------------- people and care
    @staticmethod
    def _person(r: Any) -> Person:
        return Person(r.id, r.name, Role(r.role), r.language, r.phone, tuple(r.channels or ()))

    def people(self) -> list[Person]:
        with self.engine.connect() as conn:
            return [self._person(r) for r in conn.execute(select(t.people).order_by(t.people.c.id))]

    def person(self, person_id: str) -> Person:
        return self._person(self._by_id(t.people, person_id, "person"))

    def upsert_person(self, person: Person) -> Person:
        with self.engine.begin() as conn:
            self._upsert(conn, t.people, [{"id": person.id, "name": person.name, "role": str(person.role),
                                           "language": person.language, "phone": person.phone,
                                           "channels": list(person.channels)}])
        return person

    def assignments(self, household: str | None = None, community: str | None = None) -> list[Assignment]:
        c = t.assignments.c
        q = select(t.assignments).order_by(c.id)
        if household is not None:
            q = q.where(c.household == household)
        if community is not None:
            q = q.where(c.community == community)
        with self.engine.connect() as conn:
            return [Assignment(Target(r.target), r.person, r.household, r.community) for r in conn.execute(q)]

    def set_household_care(self, household: str, assignments: Sequence[Assignment]) -> None:
        """Replace a household's family / volunteer / team."""
        self.household(household)
        with self.engine.begin() as conn:
            conn.execute(t.assignments.delete().where(t.assignments.c.household == household))
            if assignments:
                conn.execute(t.assignments.insert(), [
                    {"target": str(a.target), "person": a.person, "household": household, "community": None}
                    for a in assignments])

    def community_policy(self, community: str) -> dict | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.communities.c.escalation)
                                .where(t.communities.c.id == community)).scalar_one_or_none()

    # ---------------------------------------------------------------- gateway status
    def set_gateway_status(self, status: GatewayStatus) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.gateways).where(t.gateways.c.id == status.gateway)
                .values(online=status.online, status_at=status.at))

    def gateway_statuses(self) -> list[GatewayStatus]:
        q = select(t.gateways).where(t.gateways.c.online.is_not(None)).order_by(t.gateways.c.id)
        with self.engine.connect() as conn:
            return [GatewayStatus(r.id, bool(r.online), r.status_at) for r in conn.execute(q)]

    # ---------------------------------------------------------------- readings
    def write_readings(self, readings: Sequence[Reading]) -> int:
        """Store readings idempotently; return how many were new. With ``export`` on, the new ones are queued for
        the exporter in the same transaction (duplicates are not)."""
        if not readings:
            return 0
        if self.engine.dialect.name == "sqlite":
            # Multi-row INSERTs of up to 300 readings, straight to the driver. executemany would run one SQLite
            # step per row, and Python's sqlite3 releases and re-takes the GIL around every step: with the MQTT
            # thread busy, each row then waits for the GIL (a convoy), which made storing the slowest stage.
            # rowcount of each statement is the number of rows it inserted (conflicts are not counted).
            # The statements are built before the turn at the write lock, which a fold slice may be waiting for.
            new, per = 0, SQLITE_ROWS_PER_INSERT
            statements = [(_SQLITE_INSERT_FULL if len(chunk) == per else sqlite_insert_recent(len(chunk)),
                           tuple(v for r in chunk for v in (r.meter, r.ts, r.value)))
                          for chunk in (readings[i:i + per] for i in range(0, len(readings), per))]
            with self._turns.write(), self.engine.begin() as conn:
                if conn.info.get("export_queue_fill", False) != self.export:  # per connection of the pool
                    conn.exec_driver_sql(_SQLITE_QUEUE_TRIGGER if self.export else _SQLITE_QUEUE_TRIGGER_OFF)
                    conn.info["export_queue_fill"] = self.export
                for sql, params in statements:
                    new += max(conn.exec_driver_sql(sql, params).rowcount, 0)
                self._feed_append(conn, readings)
                self._recent_added(new)
            return new
        # PostgreSQL: COPY straight into readings (and the export queue) while no duplicate is coming; otherwise COPY
        # into the connection's temporary table and one INSERT from it, where what the INSERT stores goes on to the
        # export queue inside the server and no row comes back.
        with self.engine.begin() as conn, conn.connection.driver_connection.cursor() as cur:
            if self._pg_direct and self._pg_copy_direct(cur, readings):
                new = len(readings)
            else:
                if not conn.info.get("incoming_readings"):  # per connection of the pool
                    conn.exec_driver_sql(_PG_INCOMING_TABLE)
                    conn.info["incoming_readings"] = True
                _pg_copy(cur, _PG_INCOMING, readings)
                new = conn.exec_driver_sql(_PG_STORE_AND_QUEUE if self.export else _PG_INSERT).rowcount
                self._pg_direct = new == len(readings)  # a batch without a duplicate: the next one goes straight
            self._feed_append(conn, readings)
            return new

    def _pg_copy_direct(self, cur: Any, readings: Sequence[Reading]) -> bool:
        """COPY ``readings`` into ``readings`` (and the export queue) in a savepoint; False, rolled back, on a
        duplicate."""
        cur.execute("SAVEPOINT direct_copy")
        try:
            _pg_copy(cur, t.readings.name, readings)
            if self.export:
                _pg_copy(cur, t.export_queue.name, readings)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT direct_copy")
            log.debug("a batch of %d readings held a duplicate; storing it with ON CONFLICT", len(readings))
            return False
        cur.execute("RELEASE SAVEPOINT direct_copy")
        return True

    def _reading_tables(self) -> tuple[Any, ...]:
        """Where readings are: both tables on SQLite (each reading in one of them), ``readings`` on PostgreSQL."""
        return (t.readings, t.readings_recent) if self.layered else (t.readings,)

    def _union(self, part: Any) -> Any:
        """``part(table)`` for each table of readings, as one subquery (one statement, one snapshot)."""
        parts = [part(tab) for tab in self._reading_tables()]
        return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()

    def readings(
        self, meter: str, start: int | None = None, end: int | None = None, limit: int = 10_000
    ) -> list[Reading]:
        def part(tab: Any) -> Any:
            q = select(tab.c.meter, tab.c.ts, tab.c.value).where(tab.c.meter == meter)
            if start is not None:
                q = q.where(tab.c.ts >= start)
            if end is not None:
                q = q.where(tab.c.ts < end)
            return q

        src = self._union(part)
        q = select(src).order_by(src.c.ts.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = [Reading(r.meter, r.ts, r.value) for r in conn.execute(q)]
        rows.reverse()
        return rows

    def readings_since(self, start: int) -> Iterator[Reading]:
        """All readings at or after ``start``, in event-time order, streamed a time window at a time.

        Each window is a range of ``ts`` (the ``readings_by_ts`` index — a B-tree on SQLite, BRIN on PostgreSQL
        — and the recent table's key) read in its own short transaction; an empty window ends the stream only if
        nothing newer exists (an outage).
        """
        lo = start
        while True:
            src = self._union(lambda tab, lo=lo: select(tab.c.meter, tab.c.ts, tab.c.value)
                              .where(tab.c.ts >= lo, tab.c.ts < lo + READ_WINDOW_S))
            q = select(src).order_by(src.c.ts, src.c.meter)
            with self.engine.connect() as conn:
                chunk = [Reading(r.meter, r.ts, r.value) for r in conn.execute(q)]
                if not chunk:
                    firsts = [select(tab.c.ts).where(tab.c.ts >= lo + READ_WINDOW_S).order_by(tab.c.ts).limit(1)
                              .scalar_subquery() for tab in self._reading_tables()]
                    newer = [x for x in conn.execute(select(*firsts)).one() if x is not None]
                    if not newer:
                        return
                    lo = min(newer)  # skip the gap in one step
                    continue
            yield from chunk
            lo += READ_WINDOW_S

    def latest_readings(self, meters: Sequence[str] | None = None) -> dict[str, Reading]:
        def part(tab: Any) -> Any:
            sub = select(tab.c.meter, func.max(tab.c.ts).label("ts")).group_by(tab.c.meter)
            if meters is not None:
                sub = sub.where(tab.c.meter.in_(list(meters)))
            sub = sub.subquery()
            return (select(tab.c.meter, tab.c.ts, tab.c.value)
                    .join_from(tab, sub, (tab.c.meter == sub.c.meter) & (tab.c.ts == sub.c.ts)))

        latest: dict[str, Reading] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(self._union(part))):  # each table's latest: the newer one wins
                if r.meter not in latest or r.ts > latest[r.meter].ts:
                    latest[r.meter] = Reading(r.meter, r.ts, r.value)
        return latest

    def stored_values(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], float]:
        """The stored value at each (meter, ts) of ``keys`` that has one: each key probes each table's key index
        once. The statement is written out here: compiling a VALUES list of 2,000 rows took SQLAlchemy 95 ms, and
        SQLite 7 to run it."""
        found: dict[tuple[str, int], float] = {}
        ordered = sorted(set(keys))
        pg = self.engine.dialect.name == "postgresql"
        row = "(%s::text, %s::bigint)" if pg else "(?, ?)"
        probe = "SELECT r.meter, r.ts, r.value FROM {} r JOIN asked ON r.meter = asked.meter AND r.ts = asked.ts"
        tail = " UNION ALL ".join(probe.format(tab.name) for tab in self._reading_tables())
        with self.engine.connect() as conn:
            for i in range(0, len(ordered), STORED_VALUES_CHUNK):
                chunk = ordered[i:i + STORED_VALUES_CHUNK]
                sql = f"WITH asked (meter, ts) AS (VALUES {', '.join([row] * len(chunk))}) {tail}"
                rows = conn.exec_driver_sql(sql, tuple(x for key in chunk for x in key))
                found.update(((meter, ts), value) for meter, ts, value in rows)
        return found

    def count_readings(self) -> int:
        counts = [select(func.count()).select_from(tab).scalar_subquery() for tab in self._reading_tables()]
        with self.engine.connect() as conn:
            return sum(conn.execute(select(*counts)).one())

    # ---------------------------------------------------------------- rejections
    def add_rejections(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        rows = [_rejection_row(r) for r in rejections]
        with self.engine.begin() as conn:
            conn.execute(t.rejections.insert(), rows)

    def rejections(self, limit: int = 100, offset: int = 0, reason: str | None = None) -> list[Rejection]:
        q = select(t.rejections).order_by(t.rejections.c.id.desc()).limit(limit).offset(offset)
        if reason is not None:
            q = q.where(t.rejections.c.reason == reason)
        with self.engine.connect() as conn:
            return [Rejection(r.received_at, r.topic, r.reason, r.detail, r.payload, r.meter, r.id)
                    for r in conn.execute(q)]

    def rejection_counts(self) -> dict[str, int]:
        q = select(t.rejections.c.reason, func.count()).group_by(t.rejections.c.reason)
        with self.engine.connect() as conn:
            return {reason: n for reason, n in conn.execute(q)}

    # ---------------------------------------------------------------- alerts
    @staticmethod
    def _alert(r: Any) -> Alert:
        """An ``alerts`` row as an Alert: the table's columns are the Alert's fields in order (a test holds them so);
        unpacking the row and looking enums up in dicts takes a third of the time reading them by name did."""
        (id_, key, category, detector, severity, status, reason, since, opened_at, household, gateway, meter,
         acknowledged_by, acknowledged_at, resolved_at, resolved_by, outcome, note, cleared_at) = r
        return Alert(id_, key, _CATEGORIES[category], detector, _SEVERITIES[severity], _STATUSES[status], reason, since,
                     opened_at, household, gateway, meter, acknowledged_by, acknowledged_at, resolved_at, resolved_by,
                     _OUTCOMES[outcome] if outcome else None, note, cleared_at)

    def open_alert(self, finding: Finding, opened_at: int) -> Alert | None:
        """Persist a new alert for the finding, or return None if one is already unresolved for its key."""
        return self.open_alerts([finding], opened_at)[0]

    def open_alerts(self, findings: Sequence[Finding], opened_at: int) -> list[Alert | None]:
        """``open_alert`` for each finding, in order, in one transaction (one commit for a sweep's alerts): the
        new alert, or None where its key already has an unresolved alert or its episode (key, since) one at all."""
        if not findings:
            return []
        # A sweep finds again every condition that already has an open alert; an INSERT each (30-40 µs on SQLite, a
        # round trip of over 200 µs on PostgreSQL) cost more than the detectors once a few hundred were open. The
        # open keys are read first, through the partial index of unresolved keys, in a transaction of their own (a
        # SQLite transaction that read cannot always begin to write), and only the other findings are tried: an
        # alert opened meanwhile is caught by the INSERT's conflict, one resolved meanwhile is tried again next sweep.
        with self.engine.connect() as conn:
            taken = set(conn.execute(select(t.alerts.c.key).where(
                t.alerts.c.status != str(AlertStatus.RESOLVED))).scalars())
        if all(f.key in taken for f in findings):
            return [None] * len(findings)
        insert = self._insert(t.alerts).on_conflict_do_nothing().returning(t.alerts.c.id)
        ids: list[int | None] = []
        with self.engine.begin() as conn:
            for f in findings:
                if f.key in taken:
                    ids.append(None)
                    continue
                alert_id = conn.execute(insert, {
                    "key": f.key, "category": str(f.category), "detector": f.detector, "severity": str(f.severity),
                    "status": str(AlertStatus.OPEN), "reason": f.reason, "since": f.since, "opened_at": opened_at,
                    "household": f.household, "gateway": f.gateway, "meter": f.meter, "note": ""}).scalar()
                if alert_id is not None:
                    conn.execute(t.alert_events.insert(), {"alert_id": alert_id, "at": opened_at, "kind": "opened",
                                                           "actor": f.detector, "detail": f.reason})
                ids.append(alert_id)
            new = [i for i in ids if i is not None]
            rows = {r.id: self._alert(r) for r in conn.execute(select(t.alerts).where(t.alerts.c.id.in_(new)))} \
                if new else {}
        return [None if i is None else rows[i] for i in ids]

    def alert(self, alert_id: int) -> Alert:
        return self._alert(self._by_id(t.alerts, alert_id, "alert"))

    def alerts(
        self,
        status: AlertStatus | None = None,
        household: str | None = None,
        category: AlertCategory | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        q = select(t.alerts).order_by(t.alerts.c.id.desc()).limit(limit).offset(offset)
        if status is not None:
            q = q.where(t.alerts.c.status == str(status))
        if household is not None:
            q = q.where(t.alerts.c.household == household)
        if category is not None:
            q = q.where(t.alerts.c.category == str(category))
        with self.engine.connect() as conn:
            return [self._alert(r) for r in conn.execute(q)]

    def unresolved_alerts(self) -> list[Alert]:
        q = select(t.alerts).where(t.alerts.c.status != str(AlertStatus.RESOLVED)).order_by(t.alerts.c.id)
        with self.engine.connect() as conn:
            return [self._alert(r) for r in conn.execute(q)]

    def _transition(self, alert_id: int, allowed: set[AlertStatus], values: dict, event: AlertEvent,
                    also: Callable[[Any], None] | None = None) -> Alert:
        """Move an alert on, only from a status in ``allowed``: the check is the UPDATE's own condition, so a change
        committed by another process meanwhile (a resolution racing an acknowledgement) is never written over."""
        with self.engine.begin() as conn:
            moved = conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id,
                                                        t.alerts.c.status.in_([str(s) for s in allowed]))
                                 .values(**values)).rowcount
            if not moved:
                r = conn.execute(select(t.alerts.c.status).where(t.alerts.c.id == alert_id)).first()
                if r is None:
                    raise NotFound(f"alert {alert_id} not found")
                raise AlertConflict(f"alert {alert_id} is {r.status}; this needs it to be "
                                    + " or ".join(sorted(str(s) for s in allowed)))
            conn.execute(t.alert_events.insert(), event_row(event))
            if also is not None:
                also(conn)
        return self.alert(alert_id)

    def acknowledge_alert(self, alert_id: int, by: str, at: int, note: str = "") -> Alert:
        return self._transition(
            alert_id, {AlertStatus.OPEN, AlertStatus.NOTIFIED},
            {"status": str(AlertStatus.ACKNOWLEDGED), "acknowledged_by": by, "acknowledged_at": at},
            AlertEvent(alert_id, at, "acknowledged", by, note))

    def resolve_alert(self, alert_id: int, outcome: Outcome, by: str, at: int, note: str = "") -> Alert:
        return self._transition(
            alert_id, {AlertStatus.OPEN, AlertStatus.NOTIFIED, AlertStatus.ACKNOWLEDGED},
            {"status": str(AlertStatus.RESOLVED), "resolved_by": by, "resolved_at": at,
             "outcome": str(outcome), "note": note},
            AlertEvent(alert_id, at, "resolved", by, f"{outcome}: {note}" if note else str(outcome)))

    def clear_alert(self, alert_id: int, at: int) -> Alert:
        return self._transition(
            alert_id, {AlertStatus.OPEN, AlertStatus.NOTIFIED, AlertStatus.ACKNOWLEDGED}, {"cleared_at": at},
            AlertEvent(alert_id, at, "cleared", "detector", "condition no longer seen"))

    def mark_notified(self, alert_id: int, at: int) -> None:
        """open → notified, once the first message about the alert has left."""
        with self.engine.begin() as conn:
            conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id, t.alerts.c.status == str(AlertStatus.OPEN))
                         .values(status=str(AlertStatus.NOTIFIED)))

    def reopen_alert(self, alert_id: int, by: str, at: int, note: str = "") -> Alert:
        """resolved → open, keeping the timeline; refused if another alert of the same key is unresolved."""
        def escalate_again(conn: Any) -> None:  # from the first step, in the same transaction
            conn.execute(update(t.escalations).where(t.escalations.c.alert_id == alert_id)
                         .values(done=False, step=-1, next_step_at=at, reminder_at=None,
                                 version=t.escalations.c.version + 1))

        try:
            return self._transition(
                alert_id, {AlertStatus.RESOLVED},
                {"status": str(AlertStatus.OPEN), "resolved_at": None, "resolved_by": None, "outcome": None,
                 "acknowledged_by": None, "acknowledged_at": None},
                AlertEvent(alert_id, at, "reopened", by, note), also=escalate_again)
        except IntegrityError:
            raise AlertConflict(f"alert {alert_id} cannot be reopened: another alert for the same "
                                "household and category is open") from None

    def add_alert_event(self, event: AlertEvent) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.alert_events.insert(), event_row(event))

    def alert_events(self, alert_id: int) -> list[AlertEvent]:
        q = select(t.alert_events).where(t.alert_events.c.alert_id == alert_id).order_by(t.alert_events.c.id)
        with self.engine.connect() as conn:
            return [AlertEvent(r.alert_id, r.at, r.kind, r.actor, r.detail) for r in conn.execute(q)]

    # ---------------------------------------------------------------- away periods
    @staticmethod
    def _away(r: Any) -> AwayPeriod:
        return AwayPeriod(r.household, r.start, r.end, r.source, r.note, r.id, r.cancelled_at)

    def add_away(self, period: AwayPeriod) -> AwayPeriod:
        """Register an absence; the household must exist."""
        self.household(period.household)
        row = {"household": period.household, "start": period.start, "end": period.end,
               "source": period.source, "note": period.note}
        with self.engine.begin() as conn:
            new_id = conn.execute(t.away_periods.insert().returning(t.away_periods.c.id), row).scalar_one()
        return AwayPeriod(period.household, period.start, period.end, period.source, period.note, new_id)

    def away_periods(
        self, household: str | None = None, active_at: int | None = None, include_cancelled: bool = False
    ) -> list[AwayPeriod]:
        """Away periods, optionally of one household and/or covering one instant (by dates alone)."""
        c = t.away_periods.c
        q = select(t.away_periods).order_by(c.start, c.id)
        if household is not None:
            q = q.where(c.household == household)
        if active_at is not None:
            q = q.where(c.start <= active_at, (c.end.is_(None)) | (c.end > active_at))
        if not include_cancelled:
            q = q.where(c.cancelled_at.is_(None))
        with self.engine.connect() as conn:
            return [self._away(r) for r in conn.execute(q)]

    def cancel_away(self, period_id: int, at: int) -> AwayPeriod:
        """Withdraw an away period (the person came back, or it was registered by mistake)."""
        with self.engine.begin() as conn:
            r = conn.execute(select(t.away_periods).where(t.away_periods.c.id == period_id)).first()
            cancelled = conn.execute(update(t.away_periods).where(t.away_periods.c.id == period_id,
                                                                  t.away_periods.c.cancelled_at.is_(None))
                                     .values(cancelled_at=at)).rowcount
            if r is None or not cancelled:  # unknown, or cancelled already (perhaps a moment ago, elsewhere)
                raise NotFound(f"away period {period_id} not found")
        return replace(self._away(r), cancelled_at=at)

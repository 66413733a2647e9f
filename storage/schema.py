"""Relational schema shared by every SQL backend (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

communities = Table(
    "communities",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default="Asia/Shanghai"),
    Column("escalation", JSON, nullable=True),  # validated escalation policy data, None = default
)

gateways = Table(
    "gateways",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("community", String(64), ForeignKey("communities.id"), nullable=False),
    Column("online", Boolean, nullable=True),
    Column("status_at", BigInteger, nullable=True),
)

households = Table(
    "households",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("community", String(64), ForeignKey("communities.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False, default=""),
    Column("address", String(400), nullable=False, default=""),
    Column("grid", String(64), nullable=False, default=""),
    Column("phone", String(64), nullable=False, default=""),
    Column("notes", Text, nullable=False, default=""),
)

meters = Table(
    "meters",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("household", String(64), ForeignKey("households.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("gateway", String(64), ForeignKey("gateways.id"), nullable=False, index=True),
)

# A reading's identity is meter + timestamp, so a redelivered reading is stored once.
# On PostgreSQL the meter column sorts bytewise ("C"): the key's comparisons then skip the locale's collation, which
# took about an eighth of the server's CPU per stored reading (bench/pg_write.py; migration 0008).
readings = Table(
    "readings",
    metadata,
    Column("meter", String(64).with_variant(String(64, collation="C"), "postgresql"), primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("value", Float, nullable=False),
    sqlite_with_rowid=False,
)

# Readings by event time, for the restart replay and the api role's follower (`Store.readings_since`): without
# it each chunk of that query scans and sorts the whole table. A B-tree on SQLite (entries go in at its right
# end, so it costs far less than the (meter, ts) key); BRIN on PostgreSQL, whose heap is already in roughly
# arrival order, so the index is a few pages and costs inserts next to nothing (docs/storage.md).
Index("readings_by_ts", readings.c.ts, postgresql_using="brin")

# New readings on SQLite, keyed by time so that a gateway's snapshot appends at the right edge instead of touching a
# leaf of ``readings`` per reading; storage/sql_recent.py folds the older ones into ``readings`` in key order. A
# reading is in one of the two tables, never both. PostgreSQL writes to ``readings`` and leaves this one empty.
readings_recent = Table(
    "readings_recent",
    metadata,
    Column("meter", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    PrimaryKeyConstraint("ts", "meter"),
    sqlite_with_rowid=False,
)

# Readings waiting for the InfluxDB exporter (storage/influx_feed.py), filled only by a store opened with export
# on, in the transaction that stores them; the exporter deletes the ids it has written. (Integer on SQLite: only
# INTEGER PRIMARY KEY is the autoincrementing rowid there; 64 bits on PostgreSQL, ids are never reused.)
export_queue = Table(
    "export_queue",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("meter", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
)

# Stored batches for `run --role api` followers (shouwang/service.py StateFollower), written only by a store opened
# with feed on, in the transaction that stores the batch: one row a batch, its readings packed as JSON. Ingest
# trims rows older than SHOUWANG_STATE_FEED_KEEP_S. `stored_at` is the writer's wall clock (epoch s).
state_feed = Table(
    "state_feed",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("stored_at", BigInteger, nullable=False, index=True),
    Column("readings", LargeBinary, nullable=False),
)

rejections = Table(
    "rejections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", BigInteger, nullable=False, index=True),
    Column("topic", String(300), nullable=False),
    Column("reason", String(64), nullable=False, index=True),
    Column("detail", Text, nullable=False, default=""),
    Column("payload", Text, nullable=False, default=""),
    Column("meter", String(64), nullable=True),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("household", String(64), nullable=True, index=True),
    Column("gateway", String(64), nullable=True),
    Column("meter", String(64), nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
    Column("acknowledged_at", BigInteger, nullable=True),
    Column("resolved_at", BigInteger, nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("note", Text, nullable=False, default=""),
    Column("cleared_at", BigInteger, nullable=True),
)

# At most one unresolved alert per key (household + category, or device + category).
Index(
    "alerts_one_open_per_key",
    alerts.c.key,
    unique=True,
    sqlite_where=text("status != 'resolved'"),
    postgresql_where=text("status != 'resolved'"),
)

# The alerts still open, in id order: what every sweep reads (clearing, escalating) and every page shows. Resolved
# alerts are never deleted, so without it each read scans the whole history (migration 0009).
Index(
    "alerts_unresolved",
    alerts.c.id,
    sqlite_where=text("status != 'resolved'"),
    postgresql_where=text("status != 'resolved'"),
)

# One alert per episode: a resolved case is not reopened while the same condition (same start) persists.
Index("alerts_one_per_episode", alerts.c.key, alerts.c.since, unique=True)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False, index=True),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(200), nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
)

away_periods = Table(
    "away_periods",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("household", String(64), ForeignKey("households.id"), nullable=False, index=True),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=True),
    Column("source", String(64), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("cancelled_at", BigInteger, nullable=True),
)

people = Table(
    "people",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("language", String(8), nullable=False, default="zh"),
    Column("phone", String(64), nullable=False, default=""),
    Column("channels", JSON, nullable=False),  # notification URLs in fallback order (they hold secrets)
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(32), nullable=False),
    Column("person", String(64), ForeignKey("people.id"), nullable=False),
    Column("household", String(64), ForeignKey("households.id"), nullable=True, index=True),
    Column("community", String(64), ForeignKey("communities.id"), nullable=True, index=True),
)

# Where each unresolved alert is in its escalation policy (survives restarts).
escalations = Table(
    "escalations",
    metadata,
    Column("alert_id", Integer, ForeignKey("alerts.id"), primary_key=True),
    Column("community", String(64), nullable=False),
    Column("step", Integer, nullable=False),
    Column("next_step_at", BigInteger, nullable=True, index=True),
    Column("reminder_at", BigInteger, nullable=True, index=True),
    Column("sla_at", BigInteger, nullable=True, index=True),
    Column("sla_level", Integer, nullable=False, default=0),
    Column("tier", String(16), nullable=False, default="ordinary"),
    Column("notified", JSON, nullable=False),
    Column("done", Boolean, nullable=False, default=False),
    # bumped by every write: a tick writes a step only over the row it read (a reopen or a tier set meanwhile wins)
    Column("version", Integer, nullable=False, default=0, server_default="0"),
)

# The durable outbox: a notification written here in the same transaction as the escalation step that
# caused it is delivered even if the process dies right after.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_ids", JSON, nullable=False),
    Column("person", String(64), nullable=True),
    Column("channel_index", Integer, nullable=False, default=0),
    Column("url", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending, sending, sent, failed, cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("deadline_at", Float, nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Column("sent_at", Float, nullable=True),
)

# Login accounts (web pages and API); distinct from the care network's people, linked through ``person``.
users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),  # the login name
    Column("name", String(200), nullable=False, default=""),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False, default=""),
    Column("language", String(8), nullable=False, default="zh"),
    Column("person", String(64), ForeignKey("people.id"), nullable=True),
    Column("communities", JSON, nullable=False),
    Column("grids", JSON, nullable=False),
    Column("households", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

# API tokens for integrations: only a SHA-256 of the token is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False, default=""),
    Column("digest", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

# Browser sessions: the cookie carries a random id, the database its SHA-256 and the CSRF token.
sessions = Table(
    "sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

# Every view of a resident's personal data and every change, by whom.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False, index=True),
    Column("actor", String(64), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("path", String(500), nullable=False),
    Column("status", Integer, nullable=False),
    Column("household", String(64), nullable=True, index=True),
    Column("ip", String(64), nullable=False, default=""),
)


def fits(column: Column, key: object) -> bool:
    """Whether ``key`` is a value ``column`` can hold: an integer in its range, text within its length and free of
    NUL (which PostgreSQL refuses in text)."""
    if isinstance(key, int):
        bits = 63 if isinstance(column.type, BigInteger) else 31
        return -(2 ** bits) <= key < 2 ** bits
    if isinstance(key, str):
        length = getattr(column.type, "length", None)
        return "\x00" not in key and (length is None or len(key) <= length) and (key.isascii() or _utf8(key))
    return True


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True

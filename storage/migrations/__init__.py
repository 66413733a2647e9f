"""Schema migrations (Alembic): bring a database to storage/schema.py's schema, or say why not.

A fresh database is created from the metadata and stamped at the newest revision (Alembic's own advice);
a database made before migrations existed (tables but no ``alembic_version``) is taken to be at ``BASELINE``.
SQLite is upgraded when the store opens; PostgreSQL only by ``shouwang db upgrade`` (see docs/deploy.md).
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from storage.schema import metadata

log = logging.getLogger(__name__)

SCRIPT_LOCATION = str(Path(__file__).parent)
BASELINE = "0001"  # the schema every database created by create_all before migrations existed has
_PG_LOCK = 0x5357_4D49  # advisory lock key: one process at a time creates or upgrades a PostgreSQL schema


class SchemaOutOfDate(RuntimeError):
    """The database's schema is not the one this version of Shouwang expects."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What ``upgrade`` did: the revision before (None = no schema yet) and after."""

    before: str | None
    after: str


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic Config for the packaged environment, on a connection or a URL (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of Shouwang knows."""
    head = _scripts().get_current_head()
    if head is None:
        raise SchemaOutOfDate("no migration revisions found in storage/migrations/versions")
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, or None if it has never been stamped."""
    return MigrationContext.configure(conn).get_current_revision()


def _has_tables(conn: Connection) -> bool:
    return bool(set(inspect(conn).get_table_names()) & set(metadata.tables))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})


@contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    """Serialise schema creation and upgrades between processes opening one SQLite file at once (PostgreSQL
    takes an advisory lock inside the transaction instead). The lock is on the file's directory: a lock on the
    database file itself would be dropped with SQLite's own locks when it is closed (POSIX lock semantics)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    fd = os.open(Path(path).resolve().parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def upgrade(engine: Engine, revision: str = "head") -> Upgrade:
    """Run the revisions up to ``revision``; an unstamped database with tables is taken as ``BASELINE`` first."""
    with _one_at_a_time(engine):
        return _upgrade(engine, revision)


def _upgrade(engine: Engine, revision: str) -> Upgrade:
    with engine.begin() as conn:
        _lock(conn)
        before = current_revision(conn)
        cfg = alembic_config(conn)
        if before is None and _has_tables(conn):
            log.warning("database has tables but no migration revision: taking it as revision %s", BASELINE)
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)
        after = current_revision(conn)
    return Upgrade(before, after or "")


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """At store open: create a fresh schema, upgrade an old one (``auto_upgrade``) or refuse it with a message."""
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return  # the common case, without taking any lock
    with _one_at_a_time(engine):
        _ensure(engine, head, auto_upgrade)


def _ensure(engine: Engine, head: str, auto_upgrade: bool) -> None:
    with engine.begin() as conn:
        _lock(conn)
        current = current_revision(conn)
        if current == head:
            return
        if current is None and not _has_tables(conn):
            metadata.create_all(conn)
            MigrationContext.configure(conn).stamp(_scripts(), "head")
            log.info("created a new database schema at revision %s", head)
            return
    known = current is None or _known(current)
    if auto_upgrade and known:
        done = _upgrade(engine, "head")
        log.info("database schema upgraded from %s to %s", done.before or "before migrations", done.after)
        return
    url = engine.url.render_as_string(hide_password=True)
    if not known:
        raise SchemaOutOfDate(
            f"the database {url} is at schema revision {current}, which this version of Shouwang does not know "
            f"(it expects {head}): it was upgraded by a newer version. Run that version, or restore a backup.")
    raise SchemaOutOfDate(
        f"the database {url} is at schema revision {current or 'none (made before migrations)'} but this "
        f"version of Shouwang needs {head}: back it up, then run `shouwang db upgrade` (docs/deploy.md, Upgrades).")


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def differences(engine: Engine) -> list:
    """What Alembic's autogenerate finds between the database and storage/schema.py (empty when they agree)."""
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def new_revision(message: str) -> Path:
    """Autogenerate the next revision from the difference between the newest revision and storage/schema.py."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/head.db")
        try:
            upgrade(engine)
            with engine.begin() as conn:
                scripts = ScriptDirectory.from_config(alembic_config())
                rev_id = f"{len(list(scripts.walk_revisions())) + 1:04d}"
                script = command.revision(alembic_config(conn), message=message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    _scripts.cache_clear()
    return Path(script.path)  # type: ignore[union-attr]

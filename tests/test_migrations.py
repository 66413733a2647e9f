"""Alembic migrations: `upgrade head` on fresh SQLite and PostgreSQL gives exactly storage/schema.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from shouwang.cli import main
from storage import migrations, open_store
from storage.migrations import BASELINE, SchemaOutOfDate, differences, head_revision, upgrade
from storage.schema import metadata
from storage.sql import _sqlite_wal, make_engine

HINT = ("the schema in storage/schema.py differs from what the migrations build: "
        "run `make migration m='what changed'`, read the new file in storage/migrations/versions, commit it")


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/migr.db"
    return request.getfixturevalue("pg_url")


def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def fresh(fresh_url: str) -> Iterator[Engine]:
    yield from _engine(fresh_url)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return migrations.current_revision(conn)


def test_upgrade_head_on_an_empty_database_builds_exactly_the_schema(fresh: Engine) -> None:
    done = upgrade(fresh)
    assert (done.before, done.after) == (None, head_revision())
    assert differences(fresh) == [], HINT
    assert set(metadata.tables) <= set(inspect(fresh).get_table_names())


def _named(diff: tuple) -> tuple[str, str]:
    """(kind, name) of one autogenerate difference."""
    kind = diff[0]
    if kind in ("add_table", "remove_table", "add_index", "remove_index"):
        return kind, diff[1].name
    if kind in ("add_column", "remove_column"):
        return kind, f"{diff[2]}.{diff[3].name}"
    return kind, repr(diff[1:])


def test_the_comparison_sees_a_missing_table_and_a_missing_column(fresh: Engine) -> None:
    upgrade(fresh)
    with fresh.begin() as conn:
        conn.execute(text("DROP TABLE away_periods"))
        conn.execute(text("ALTER TABLE alerts DROP COLUMN note"))
    found = {_named(d) for d in differences(fresh)}
    assert {("add_table", "away_periods"), ("add_column", "alerts.note")} <= found


def test_downgrade_to_base_and_back(tmp_path) -> None:
    for engine in _engine(f"sqlite:///{tmp_path}/down.db"):
        upgrade(engine)
        with engine.begin() as conn:
            command.downgrade(migrations.alembic_config(conn), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade(engine)
        assert differences(engine) == []


def test_opening_a_fresh_store_creates_the_schema_at_head(fresh_url: str) -> None:
    store = open_store(fresh_url)
    try:
        assert _revision(store.engine) == head_revision()
        assert differences(store.engine) == []
    finally:
        store.close()


def _made_before_migrations(engine: Engine) -> None:
    """The schema as `create_all` left it before migrations: the baseline tables, no alembic_version."""
    upgrade(engine, BASELINE)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))


def test_sqlite_made_before_migrations_is_upgraded_when_the_store_opens(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    for engine in _engine(url):
        _made_before_migrations(engine)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO communities (id, name, timezone) VALUES ('c1', 'kept', 'Asia/Shanghai')"))
    store = open_store(url)
    try:
        assert _revision(store.engine) == head_revision()
        assert [c.name for c in store.communities()] == ["kept"]
        assert differences(store.engine) == []
    finally:
        store.close()


def test_postgresql_behind_is_refused_until_shouwang_db_upgrade(pg_url: str, capsys) -> None:
    for engine in _engine(pg_url):
        _made_before_migrations(engine)
    with pytest.raises(SchemaOutOfDate, match=r"shouwang db upgrade"):
        open_store(pg_url)
    assert main(["db", "current", "--url", pg_url]) == 1
    assert main(["db", "upgrade", "--url", pg_url]) == 0
    assert f"-> {head_revision()}" in capsys.readouterr().out
    assert main(["db", "current", "--url", pg_url]) == 0
    store = open_store(pg_url)
    try:
        assert differences(store.engine) == []
    finally:
        store.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/newer.db"
    open_store(url).close()
    for engine in _engine(url):
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    with pytest.raises(SchemaOutOfDate, match="does not know"):
        open_store(url)


def _open_and_close(url: str, start: float = 0.0) -> str | None:
    while time.time() < start:  # every worker opens at the same instant: the race the test is about
        pass
    store = open_store(url)
    try:
        return _revision(store.engine)
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_opening_one_fresh_database_at_once_all_succeed(tmp_path, backend, request):
    import multiprocessing

    # SQLite lost this race about one round in five (a "database is locked" from the switch to WAL): several rounds.
    urls = ([f"sqlite:///{tmp_path}/race{n}.db" for n in range(8)] if backend == "sqlite"
            else [request.getfixturevalue("pg_url")])
    with multiprocessing.get_context("spawn").Pool(4, initializer=_import_store) as pool:
        for url in urls:
            start = time.time() + 0.3
            revisions = pool.starmap(_open_and_close, [(url, start)] * 4)
            assert revisions == [head_revision()] * 4, url


def _import_store() -> None:
    import storage.sql  # noqa: F401  (so that the workers' first opens are not spread out by the import)


def test_switch_to_wal_waits_while_another_connection_holds_the_lock(tmp_path) -> None:
    """SQLite answers "database is locked" at once, without its busy handler, to a switch to WAL while another
    connection holds a write lock; the switch is tried again until the lock is free."""
    import sqlite3

    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    opener = sqlite3.connect(path, timeout=5, isolation_level=None)
    pauses: list[float] = []

    def release(seconds: float) -> None:
        pauses.append(seconds)
        holder.execute("COMMIT")

    _sqlite_wal(opener.cursor(), pause=release)
    assert pauses and opener.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    holder.close()
    opener.close()


def _meter_collation(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT collation_name FROM information_schema.columns "
                                 "WHERE table_name = 'readings' AND column_name = 'meter'")).scalar()


def test_postgresql_readings_key_sorts_bytewise_after_upgrade_fresh_or_old(pg_url: str) -> None:
    """Migration 0008: an existing PostgreSQL database's readings keep their rows and get the "C" meter collation,
    as a fresh one gets it from the schema; a downgrade gives the database's default back (alembic's comparison
    does not look at collations, so this test does)."""
    for engine in _engine(pg_url):
        upgrade(engine, "0007")
        assert _meter_collation(engine) is None  # the database's default
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO readings (meter, ts, value) VALUES ('m-b', 2, 1.0), ('m-a', 1, 2.0)"))
        upgrade(engine)
        assert _meter_collation(engine) == "C"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT meter, ts FROM readings ORDER BY meter")).all() == [("m-a", 1), ("m-b", 2)]
        with engine.begin() as conn:
            command.downgrade(migrations.alembic_config(conn), "0007")
        assert _meter_collation(engine) is None
        with engine.begin() as conn:
            command.downgrade(migrations.alembic_config(conn), "base")
    store = open_store(pg_url)
    try:
        assert _meter_collation(store.engine) == "C"
    finally:
        store.close()

"""Shared fixtures: registries, stores (SQLite and the machine's PostgreSQL), brokers, HTTP receivers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Registry
from storage.sql import SqlStore, open_store

PG_ADMIN_URL = os.environ.get("SHOUWANG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def small_registry(n_households: int = 4, per_gateway: int = 2, community: str = "c1") -> Registry:
    """A community of n households with a water and an electricity meter each."""
    gws = [Gateway(f"G{i // per_gateway + 1}", community) for i in range(0, n_households, per_gateway)]
    hhs = [Household(f"H{i + 1}", community, f"Resident {i + 1}", f"Bldg 1-{101 + i}", "grid-1")
           for i in range(n_households)]
    meters = []
    for i, h in enumerate(hhs):
        gw = f"G{i // per_gateway + 1}"
        meters += [Meter(f"{h.id}-W", h.id, MeterKind.WATER, gw), Meter(f"{h.id}-E", h.id, MeterKind.ELECTRICITY, gw)]
    return Registry((Community(community, "Test community"),), tuple(gws), tuple(hhs), tuple(meters))


@pytest.fixture
def registry() -> Registry:
    return small_registry()


def _postgres_url() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"shouwang_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}: {type(exc).__name__}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway database on the machine's PostgreSQL, dropped afterwards (skipped without one; fails in CI)."""
    yield from _postgres_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[SqlStore]:
    """Every store backend; the contract tests run against each."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path}/store.db")
        yield store
        store.close()
    else:
        gen = _postgres_url()
        url = next(gen)
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()
            next(gen, None)


@pytest.fixture
def store(tmp_path) -> Iterator[SqlStore]:
    """The embedded default store on a temporary file."""
    s = open_store(f"sqlite:///{tmp_path}/shouwang.db")
    yield s
    s.close()


@pytest.fixture
def own_mosquitto(tmp_path):
    """A Mosquitto of the test's own on a free port (accounts, ACL, persistence), for tests that stop or restart it."""
    from faults_support import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def receiver(request: pytest.FixtureRequest):
    """A real HTTP receiver on a free loopback port (tests/receivers.py), closed after the test. A test module
    that sets ``RECEIVER_PATH = ""`` gets its bare address, so each person's channel can be <url>/<person id>."""
    from receivers import WebhookReceiver

    path = getattr(request.module, "RECEIVER_PATH", None)
    r = WebhookReceiver() if path is None else WebhookReceiver(path)
    yield r
    r.close()


@contextmanager
def just_before_update(store: SqlStore, table: str, act: Callable[[], object]) -> Iterator[list]:
    """Run ``act`` once, just before ``store`` next sends an UPDATE of ``table`` (another process's write landing
    between this one's read and its write); yields the list ``act``'s result lands in."""
    from sqlalchemy import event

    done: list = []

    def before(_conn, _cursor, statement: str, *_args) -> None:
        if statement.startswith(f"UPDATE {table}") and not done:
            done.append(act())

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield done
    finally:
        event.remove(store.engine, "before_cursor_execute", before)

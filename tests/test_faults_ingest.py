"""Fault suite, ingest: kill -9 the service, restart the broker, SIGTERM the service, all in the middle of a
stream of 100,000 readings at QoS 1 — every reading is stored exactly once.

Each test starts its own Mosquitto (persistent, `max_queued_messages` as in deploy/mosquitto/mosquitto.conf),
runs the service as `shouwang run` in a child process on a SQLite file (the kill -9 test also on PostgreSQL, where
redelivered readings meet the store's straight COPY), and publishes from a persistent
QoS 1 session: 80,000 readings in 800 messages of 100 (20 gateways uploading 5 intervals of 20 meters) and
20,000 single-reading messages (5 gateways), interleaved.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from faults_support import (
    STEP,
    Mosquitto,
    Publisher,
    ServiceProcess,
    StoreView,
    build_stream,
    drain_session,
    expected_rows,
    prepare_session,
    stream_registry,
    throwaway_postgres,
    wait_until,
)

TOTAL = 100_000


@pytest.fixture
def database(request, tmp_path) -> Iterator[tuple[str, str]]:
    """The service's store as (its URL, the test's URL): a SQLite file, or (``postgresql``) a throw-away database on
    the machine's PostgreSQL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield (f"sqlite:///{tmp_path}/store.db",) * 2
        return
    for db in throwaway_postgres():
        yield db.url_via(db.port), db.url


@pytest.fixture
def world(tmp_path, database):
    """A broker, the stream's registry and messages, the service's session, a store and a child."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    registry = stream_registry()
    t0 = (int(time.time()) - 60 * 3600) // STEP * STEP  # 200 intervals ending 10 h ago
    messages = build_stream(registry, t0)
    client_id = f"shouwang-fault-{uuid.uuid4().hex[:8]}"
    prepare_session(broker, client_id)
    service = ServiceProcess(tmp_path / "service", registry, broker, database[0], client_id)
    view = StoreView(database[1])
    publisher = Publisher(broker, rate_msgs=3000)
    world = {"broker": broker, "messages": messages, "service": service, "view": view, "publisher": publisher,
             "client_id": client_id, "log": service.log}
    yield world
    service.ensure_stopped()
    publisher.close()
    view.close()
    broker.stop()


def _stored_exactly_once(world) -> None:
    view, expected = world["view"], expected_rows(world["messages"])
    assert len(expected) == TOTAL
    rows = view.rows()
    assert len(rows) == view.distinct() == TOTAL  # no reading twice
    assert set(rows) == expected  # none lost, none altered
    assert view.rejections() == []  # redeliveries are duplicates or late readings that fit, never refused


def _finish(world, timeout: float = 180) -> None:
    wait_until(world["publisher"].all_acked, timeout, "the broker to acknowledge every published message")
    wait_until(world["service"].stored_at_least(world["view"], TOTAL), timeout, "every reading to be stored")
    assert world["service"].terminate() == 0


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_kill_9_mid_stream_then_restart_stores_every_reading_once(world):
    service, view, publisher = world["service"], world["view"], world["publisher"]
    service.start()
    publisher.start(world["messages"])
    wait_until(service.stored_at_least(view, 30_000), 120, "the service to store 30,000 readings")
    service.kill()
    at_kill = view.count()
    assert at_kill < TOTAL, "the stream ended before the kill; nothing was tested"
    time.sleep(1.0)  # the publisher goes on; the broker queues for the service's session
    service.start()
    _finish(world)
    _stored_exactly_once(world)
    assert "Traceback" not in world["log"].read_text()


def test_broker_restart_mid_stream_stores_every_reading_once(world):
    service, view, publisher, broker = world["service"], world["view"], world["publisher"], world["broker"]
    service.start()
    publisher.start(world["messages"])
    wait_until(service.stored_at_least(view, 30_000), 120, "the service to store 30,000 readings")
    published_before = publisher.published
    broker.restart(down_s=2.0)  # SIGTERM: Mosquitto saves sessions and queued messages, then starts again
    assert view.count() < TOTAL and published_before < len(world["messages"]), "the stream ended first"
    _finish(world)
    _stored_exactly_once(world)


def test_sigterm_stores_and_acknowledges_everything_received_then_restart_takes_the_rest(world):
    """Graceful shutdown: whatever the service took from the broker before SIGTERM is stored and acknowledged
    (the broker does not hold it any more); the rest waits in the session, readings published while the
    service is down included."""
    service, view, publisher = world["service"], world["view"], world["publisher"]
    service.start()
    publisher.start(world["messages"])
    wait_until(service.stored_at_least(view, 30_000), 120, "the service to store 30,000 readings")
    assert service.terminate() == 0
    stored = set(view.rows())
    assert len(stored) < TOTAL, "the stream ended before SIGTERM; nothing was tested"
    wait_until(publisher.all_acked, 120, "the broker to acknowledge every published message")
    held = drain_session(world["broker"], world["client_id"])
    held_rows = _rows_of(held, world["messages"])
    assert not stored & set(held_rows), "a stored message was left unacknowledged"
    lost = expected_rows(world["messages"]) - stored - set(held_rows)
    assert not lost, f"{len(lost)} readings lost across the shutdown"


def _rows_of(held, messages) -> list[tuple[str, int, float]]:
    by_payload = {m.payload: m.readings for m in messages}
    return [r for msg in held for r in by_payload[msg.payload]]

"""Fault suite, storage: the store (the real PostgreSQL, through a TCP proxy the test controls) goes away in
the middle of a stream of 100,000 readings and comes back — nothing is lost, nothing stored twice, ingest
resumes by itself.

While the store is away the batch writer keeps its batch, retries with backoff (0.1 s doubling to 5 s) and
acknowledges nothing; the broker, which lets a subscriber hold at most ``max_inflight_messages`` unacknowledged
messages, stops sending and queues the rest in the service's persistent session.

The store is away for the issue's full minute (the whole test takes about 75 s here);
``SHOUWANG_FAULT_OUTAGE_S=15`` shortens it for a quick local run.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from faults_support import (
    STEP,
    Mosquitto,
    Publisher,
    ServiceProcess,
    StoreView,
    TcpProxy,
    build_stream,
    expected_rows,
    prepare_session,
    stream_registry,
    throwaway_postgres,
    wait_until,
)

TOTAL = 100_000
OUTAGE_S = float(os.environ.get("SHOUWANG_FAULT_OUTAGE_S", "60"))


@pytest.fixture
def postgres():
    yield from throwaway_postgres()


def _run_outage(tmp_path, postgres, outage_s: float) -> None:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    proxy = TcpProxy(postgres.host, postgres.port)
    registry = stream_registry()
    t0 = (int(time.time()) - 60 * 3600) // STEP * STEP
    messages = build_stream(registry, t0)
    client_id = f"shouwang-fault-{uuid.uuid4().hex[:8]}"
    prepare_session(broker, client_id)
    service = ServiceProcess(tmp_path / "service", registry, broker, postgres.url_via(proxy.port), client_id)
    view = StoreView(postgres.url)  # straight to PostgreSQL, not through the proxy
    publisher = Publisher(broker, rate_msgs=3000)
    try:
        service.start()
        publisher.start(messages)
        wait_until(service.stored_at_least(view, 30_000), 120, "the service to store 30,000 readings")
        proxy.cut()
        time.sleep(1.0)  # a batch that was committing when the connections went is settled either way
        during = view.count()
        assert during < TOTAL, "the stream ended before the outage; nothing was tested"
        time.sleep(max(0.0, outage_s - 1.0))
        assert service.alive(), "the service died while its store was away"
        assert view.count() == during  # nothing was written while the store was away...
        assert proxy.refused > 0  # ...though the service kept trying
        assert publisher.published > 0
        proxy.restore()
        wait_until(publisher.all_acked, 180, "the broker to acknowledge every published message")
        wait_until(service.stored_at_least(view, TOTAL), 180, "ingest to catch up after the outage")
        assert service.terminate() == 0
        rows = view.rows()
        assert len(rows) == view.distinct() == TOTAL
        assert set(rows) == expected_rows(messages)
        assert view.rejections() == []
        log = service.log.read_text()
        assert "store write failed" in log  # the writer saw the outage and retried
    finally:
        service.ensure_stopped()
        publisher.close()
        view.close()
        proxy.close()
        broker.stop()


def test_store_away_for_a_minute_mid_stream_nothing_lost_ingest_resumes(tmp_path, postgres):
    _run_outage(tmp_path, postgres, OUTAGE_S)

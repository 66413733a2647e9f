"""The InfluxDB exporter against a real server speaking InfluxDB's v2 write API (see test_influx_backend.py)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from conftest import small_registry
from pydantic import SecretStr
from test_influx_backend import Backend, Proxy, StoredPoint, StubInflux, start_backend

from ingest.handler import HandleResult
from ingest.stats import IngestStats
from ingest.writer import BatchWriter, Pending
from shouwang.domain import Reading
from shouwang.settings import Settings
from shouwang.state import ActivityModel, HouseholdState
from storage.influx import ExportError, InfluxConfig, InfluxExporter, exporter_from_settings
from storage.influx_feed import ExportQueue
from storage.sql import SqlStore

T0 = (int(time.time()) // 86400 - 2) * 86400  # two days ago: inside any bucket's retention
REGISTRY = small_registry()  # H1..H4 in community c1, a water (-W) and an electricity (-E) meter each
KIND = {m.id: str(m.kind) for m in REGISTRY.meters}


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    b = start_backend(tmp_path_factory.mktemp("influx"))
    yield b
    b.close()


@pytest.fixture
def proxy(backend: Backend) -> Iterator[Proxy]:
    p = Proxy(backend.url)
    p.up()
    yield p
    p.down()


@pytest.fixture
def measurement() -> str:
    """A measurement of this test's own, so tests sharing a server never see each other's points."""
    return f"readings_{uuid.uuid4().hex[:10]}"


def make_exporter(store: SqlStore, url: str, backend: Backend, measurement: str, **kw) -> InfluxExporter:
    config = InfluxConfig(url=url, token=SecretStr(backend.token), org=backend.org, bucket=backend.bucket,
                          measurement=measurement, **{"first_backoff_s": 0.02, "max_backoff_s": 0.2, "poll_s": 0.05,
                                                      **kw})
    return InfluxExporter(ExportQueue(store.engine), config)


def readings(n: int, start: int = 0) -> list[Reading]:
    """n readings spread over the eight meters, 15 minutes apart per meter."""
    meters = sorted(KIND)
    return [Reading(meters[i % len(meters)], T0 + (i // len(meters)) * 900, round(1.0 + i * 0.125, 3))
            for i in range(start, start + n)]


def expected(rs: list[Reading]) -> Counter[StoredPoint]:
    return Counter(StoredPoint(tuple(sorted({"community": "c1", "household": r.meter.split("-")[0],
                                             "meter": r.meter, "kind": KIND[r.meter]}.items())), r.ts, r.value)
                   for r in rs)


def drain(exporter: InfluxExporter) -> int:
    """Export until nothing is left; return the points written."""
    total, more = 0, True
    while more:
        n, more = exporter.export_once()
        total += n
    return total


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def sql(any_store: SqlStore) -> SqlStore:
    """Each backend's store with export on (queueing what it stores) and the test registry."""
    any_store.upsert_registry(REGISTRY)
    any_store.export = True
    return any_store


# ---------------------------------------------------------------------------------------------------------------
def test_points_arrive_with_the_schema(sql, backend, proxy, measurement) -> None:
    rs = readings(40)
    sql.write_readings(rs[:25])
    sql.write_readings(rs[25:])
    exporter = make_exporter(sql, proxy.url, backend, measurement, batch_size=16)
    try:
        assert drain(exporter) == 40
        assert exporter.queue.backlog() == 0
    finally:
        exporter.stop()
    assert Counter(backend.points(measurement)) == expected(rs)


def test_server_down_readings_are_stored_the_buffer_stays_bounded_then_all_exported_once(
        sql, backend, proxy, measurement) -> None:
    proxy.down()
    exporter = make_exporter(sql, proxy.url, backend, measurement, batch_size=7)
    writer = BatchWriter(sql, HouseholdState(REGISTRY, ActivityModel()), IngestStats(), max_readings=10,
                         max_delay_s=0.0, gate=exporter.gate.wait)
    acked: list[int] = []
    rs = readings(60)
    exporter.start()
    writer.start()
    try:
        for i in range(0, 60, 5):
            writer.submit(Pending(HandleResult(readings=rs[i:i + 5]), ack=lambda i=i: acked.append(i)))
        assert writer.wait_idle(30)
        assert len(acked) == 12 and sql.count_readings() == 60  # ingest goes on while InfluxDB is away
        assert wait_until(lambda: exporter.write_failures >= 3)
        assert exporter.points_written == 0 and exporter.queue.backlog() == 60
        assert 0 < exporter.max_buffered <= 7  # one batch in memory; the rest waits in the SQL store
        proxy.up()
        assert wait_until(lambda: exporter.queue.backlog() == 0)
    finally:
        writer.stop()
        exporter.stop()
    assert exporter.points_written == 60
    assert Counter(backend.points(measurement)) == expected(rs)  # each reading once (VictoriaMetrics keeps dups)


def test_a_restarted_exporter_resumes_where_the_last_one_stopped(sql, backend, proxy, measurement) -> None:
    rs = readings(50)
    sql.write_readings(rs[:30])
    first = make_exporter(sql, proxy.url, backend, measurement, batch_size=8)
    assert first.export_once() == (8, True) and first.export_once() == (8, True)
    first.stop()  # stopped with 14 queued; then 20 more arrive
    sql.write_readings(rs[30:])
    second = make_exporter(sql, proxy.url, backend, measurement, batch_size=8)
    try:
        assert second.queue.count() == 34
        assert drain(second) == 34
    finally:
        second.stop()
    stored = Counter(backend.points(measurement))
    assert stored == expected(rs)
    if backend.keeps_duplicates:
        assert max(stored.values()) == 1


def test_ingest_waits_while_the_export_lags_beyond_the_bound(sql, backend, proxy, measurement) -> None:
    proxy.down()
    exporter = make_exporter(sql, proxy.url, backend, measurement, batch_size=5, max_lag=10)
    writer = BatchWriter(sql, HouseholdState(REGISTRY, ActivityModel()), IngestStats(), max_readings=4,
                         max_delay_s=0.0, gate=exporter.gate.wait)
    acked: list[int] = []
    rs = readings(40)
    exporter.start()
    writer.start()
    try:
        for i in range(0, 40, 4):
            writer.submit(Pending(HandleResult(readings=rs[i:i + 4]), ack=lambda i=i: acked.append(i)))
        assert exporter.gate.waiting.wait(30), "the writer never waited for the export"
        stored = sql.count_readings()
        assert 10 < stored <= 10 + 4  # let through up to the bound, then held
        assert len(acked) * 4 == stored  # only what is stored is acknowledged; the broker keeps the rest
        proxy.up()
        assert writer.wait_idle(60)
        assert wait_until(lambda: exporter.queue.backlog() == 0)
    finally:
        writer.stop()
        exporter.stop()
    assert len(acked) == 10 and sql.count_readings() == 40 and exporter.gate.waits >= 1
    assert Counter(backend.points(measurement)) == expected(rs)


def test_a_redelivered_batch_is_not_exported_twice(sql, backend, proxy, measurement) -> None:
    rs = readings(12)
    sql.write_readings(rs)
    sql.write_readings(rs[6:])  # the broker delivered half of them again: stored once, queued once
    exporter = make_exporter(sql, proxy.url, backend, measurement)
    try:
        assert drain(exporter) == 12
        assert exporter.queue.backlog() == 0
    finally:
        exporter.stop()
    assert Counter(backend.points(measurement)) == expected(rs)


def test_the_service_exports_what_it_stores_and_reports_it_in_metrics(tmp_path, backend, proxy, measurement):
    from prometheus_client import generate_latest

    from shouwang.clock import ManualClock
    from shouwang.metrics import registry_for
    from shouwang.service import Service
    from storage import open_store

    settings = Settings(database_url=f"sqlite:///{tmp_path}/svc.db", influxdb_url=proxy.url,
                        influxdb_token=SecretStr(backend.token), influxdb_org=backend.org,
                        influxdb_bucket=backend.bucket, influxdb_measurement=measurement, influxdb_max_lag=1000)
    store = open_store(settings.database_url)
    svc = Service(settings, store, REGISTRY, ManualClock(T0 + 86400), watchers=[])
    try:
        assert svc.writer.gate == svc.influx.gate.wait and store.export  # the exporter turned queueing on
        rs = readings(16)
        svc.writer.start()
        svc.influx.start()
        svc.writer.submit(Pending(HandleResult(readings=rs)))
        assert svc.writer.wait_idle(30)
        assert wait_until(lambda: svc.influx.queue.backlog() == 0)
        text = generate_latest(registry_for(svc)).decode()
    finally:
        svc.writer.stop()
        svc.influx.stop()
        store.close()
    assert "shouwang_influx_export_lag_readings 0.0" in text
    assert "shouwang_influx_points_written_total 16.0" in text
    assert "shouwang_influx_write_failures_total 0.0" in text
    assert Counter(backend.points(measurement)) == expected(rs)


def test_off_unless_a_url_is_set(store) -> None:
    assert exporter_from_settings(Settings(), store) is None
    assert not store.export


# ---------------------------------------------------------------------------------------------------------------
TOKEN = "tok-" + uuid.uuid4().hex


def test_the_token_never_appears_in_logs_or_exception_text(sql, proxy, caplog) -> None:
    """Against a server that echoes the request's headers in its error body, and against no server at all."""
    caplog.set_level(logging.DEBUG)
    sql.write_readings(readings(6))
    settings = Settings(influxdb_url="http://127.0.0.1:1", influxdb_token=SecretStr(TOKEN))
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())
    echo = StubInflux()
    config = InfluxConfig(url=echo.url, token=SecretStr(TOKEN), org="o", bucket="b", first_backoff_s=0.01,
                          max_backoff_s=0.02, poll_s=0.01)
    assert TOKEN not in repr(config)
    exporter = InfluxExporter(ExportQueue(sql.engine), config)
    try:
        with pytest.raises(ExportError) as raised:
            exporter.export_once()
        headers, _ = echo.requests[-1]
        assert headers["Authorization"] == f"Token {TOKEN}"  # the token reached the server, which echoed it
        assert TOKEN not in str(raised.value) and "<token>" in str(raised.value)
        exporter.start()
        assert wait_until(lambda: exporter.write_failures >= 3)
    finally:
        exporter.stop()
        echo.close()
    proxy.down()
    down = InfluxExporter(ExportQueue(sql.engine), replace(config, url=proxy.url, timeout_s=2))
    with pytest.raises(ExportError) as raised:
        down.export_once()
    down.stop()
    assert TOKEN not in str(raised.value)
    assert "InfluxDB export failed" in caplog.text and "<token>" in caplog.text
    assert TOKEN not in caplog.text


def test_refused_points_are_skipped_and_counted_and_a_too_large_batch_is_halved(sql) -> None:
    sql.write_readings(readings(20))

    def answer(lines: list[str], headers: dict[str, str]) -> tuple[int, str]:
        if len(lines) > 6:
            return 413, "request too large"
        if any(" value=1 " in line for line in lines):  # the reading of value 1.0
            return 400, '{"code":"invalid","message":"partial write: field type conflict"}'
        return 204, ""

    stub = StubInflux(answer)
    exporter = InfluxExporter(ExportQueue(sql.engine), InfluxConfig(url=stub.url, token=SecretStr("t"), org="o",
                                                                    bucket="b", batch_size=20))
    try:
        for _ in range(2):  # 20, then 10: too large
            with pytest.raises(ExportError, match="413"):
                exporter.export_once()
        assert drain(exporter) == 20  # four batches of 5
    finally:
        exporter.stop()
        stub.close()
    sizes = [len(lines) for _, lines in stub.requests]
    assert sizes == [20, 10, 5, 5, 5, 5]
    assert exporter.points_rejected == 5 and exporter.points_written == 15  # the batch holding value 1.0
    assert exporter.queue.backlog() == 0

"""InfluxDB readings backend: an exporter that drains the SQL store's export queue into InfluxDB 2 (docs/storage.md).

The SQL store stays the system of record (MQTT acks, detection and state restore depend on it only). A store
opened with export on queues each new reading in the transaction that stores it; the exporter reads the queue in
id order, writes batches with influxdb-client's write API from its own thread, retries with exponential backoff
and jitter, and deletes the ids of a batch only after the server accepted it. At most one batch is held in
memory; when more than ``max_lag`` readings are queued, ingest waits (``BackPressure``) instead of anything
being dropped.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import SecretStr

from storage.influx_feed import ExportQueue, QueuedReading

if TYPE_CHECKING:
    from shouwang.settings import Settings

log = logging.getLogger(__name__)

TAGS = ("community", "household", "meter", "kind")  # the schema in docs/storage.md
FIELD = "value"
PRECISION = WritePrecision.S
REJECTED = (400, 422)  # the server refuses these points and would again: skipped, counted, logged
TOO_LARGE = 413  # the batch is halved and sent again


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    """Where and how readings are exported (from SHOUWANG_INFLUXDB_*)."""

    url: str
    token: SecretStr
    org: str
    bucket: str
    measurement: str = "readings"
    batch_size: int = 5000
    max_lag: int = 2_000_000
    timeout_s: float = 10.0
    poll_s: float = 1.0
    first_backoff_s: float = 1.0
    max_backoff_s: float = 60.0


class ExportError(RuntimeError):
    """A batch could not be written; the text never contains the token."""

    def __init__(self, text: str, status: int | None = None) -> None:
        super().__init__(text)
        self.status = status


def backoff(attempt: int, first_s: float, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """Wait after failed attempt ``attempt`` (1-based): doubling up to ``max_s``, the upper half of it at random."""
    ceiling = min(first_s * 2 ** (attempt - 1), max_s)
    return ceiling / 2 + rand() * ceiling / 2


def to_point(row: QueuedReading, measurement: str) -> Point:
    """One reading as an InfluxDB point: tags community, household, meter, kind; field value; seconds."""
    point = Point(measurement)
    for name in TAGS:
        value = getattr(row, name)
        if value:
            point.tag(name, value)
    return point.field(FIELD, float(row.value)).time(row.ts, PRECISION)


class _HideTokens(logging.Filter):
    """Takes the exporters' tokens out of log records: influxdb-client logs error bodies (some on the root
    logger), and a proxy may echo the request's Authorization header in one."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.tokens:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record keeps its template
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        hidden = message
        for token in self.tokens:
            hidden = hidden.replace(token, "<token>")
        if hidden != message:
            record.msg, record.args, record.exc_info, record.exc_text = hidden, None, None, None
        return True


_HIDE = _HideTokens()


def _hide_token(token: str) -> None:
    """Redact ``token`` from the records of the root logger and of influxdb-client's and urllib3's loggers."""
    if len(token) < 4:
        return
    _HIDE.tokens.add(token)
    names = [n for n in list(logging.Logger.manager.loggerDict) if n.startswith(("influxdb_client", "urllib3"))]
    for name in ["", *names]:
        logging.getLogger(name).addFilter(_HIDE)


class BackPressure:
    """Ingest's gate: ``wait`` blocks the batch writer while the export lag is above ``max_lag`` (0: never)."""

    def __init__(self, lag: Callable[[], int], max_lag: int, recheck_s: float = 1.0) -> None:
        self._lag_now = lag
        self.max_lag = max_lag
        self.recheck_s = recheck_s
        self._cond = threading.Condition()
        self._released = False
        self.waiting = threading.Event()  # set while the writer waits
        self.waits = 0

    def _lag(self) -> int | None:
        try:
            return self._lag_now()
        except Exception:  # noqa: BLE001 - the store is down: the writer's own retry deals with that
            return None

    def wait(self) -> None:
        """Return at once while the lag is within bounds; otherwise block until the exporter catches up."""
        if self.max_lag <= 0 or self._released:
            return
        lag = self._lag()
        if lag is None or lag <= self.max_lag:
            return
        log.warning("ingest waits: %d readings not yet exported to InfluxDB (bound %d)", lag, self.max_lag)
        self.waits += 1
        self.waiting.set()
        try:
            with self._cond:
                while not self._released and (lag := self._lag()) is not None and lag > self.max_lag:
                    self._cond.wait(self.recheck_s)
        finally:
            self.waiting.clear()
        log.info("ingest resumes: export lag %s readings", lag)

    def notify(self) -> None:
        """The exporter moved on: look at the lag again."""
        with self._cond:
            self._cond.notify_all()

    def release(self) -> None:
        """Stop holding ingest back (the exporter is stopping)."""
        with self._cond:
            self._released = True
            self._cond.notify_all()


class InfluxExporter:
    """Drains the export queue into InfluxDB from one thread; see the module docstring."""

    def __init__(self, queue: ExportQueue, config: InfluxConfig, *, rand: Callable[[], float] = random.random) -> None:
        self.queue = queue
        self.config = config
        self._rand = rand
        self._token = config.token.get_secret_value()
        _hide_token(self._token)
        self.client = InfluxDBClient(url=config.url, token=self._token, org=config.org,
                                     timeout=int(config.timeout_s * 1000), enable_gzip=True)
        self._write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.gate = BackPressure(queue.backlog, config.max_lag, recheck_s=config.poll_s)
        self._page = config.batch_size
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-exporter", daemon=True)
        self.points_written = 0
        self.points_rejected = 0
        self.write_failures = 0
        self.buffered = 0  # points held in memory right now (at most one batch)
        self.max_buffered = 0
        self.healthy = False  # the last attempt reached the server and was accepted

    # ------------------------------------------------------------------ one step
    def export_once(self) -> tuple[int, bool]:
        """Write the oldest queued batch, then delete exactly its ids; return (readings sent, maybe more queued).

        Raises ExportError with the batch still queued. A crash between the write and the delete sends the batch
        again on restart: harmless, InfluxDB keeps one point per series and timestamp.
        """
        rows = self.queue.oldest(self._page)
        if not rows:
            return 0, False
        self.buffered = len(rows)
        self.max_buffered = max(self.max_buffered, self.buffered)
        try:
            self._write(rows)
        finally:
            self.buffered = 0
        self.queue.delete(r.id for r in rows)
        self.gate.notify()
        return len(rows), len(rows) == self._page

    def _write(self, rows: list[QueuedReading]) -> None:
        points = [to_point(r, self.config.measurement) for r in rows]
        try:
            self._write_api.write(bucket=self.config.bucket, org=self.config.org, record=points,
                                  write_precision=PRECISION)
        except Exception as exc:  # noqa: BLE001 - classified below; the token is taken out of every text
            status = exc.status if isinstance(exc, ApiException) else None
            text = self._describe(exc)
            if status in REJECTED:
                self.points_rejected += len(points)
                log.error("InfluxDB refused %d readings (queue ids %d..%d) and would again, skipped: %s",
                          len(points), rows[0].id, rows[-1].id, text)
                return
            self.healthy = False
            if status == TOO_LARGE and self._page > 1:
                self._page = max(self._page // 2, 1)
                text += f"; batches of {self._page} from now on"
            raise ExportError(text, status) from None
        self.points_written += len(points)
        self.healthy = True

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, ApiException):
            body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            text = f"HTTP {exc.status} {exc.reason or ''}: {body[:300]}".strip()
        else:
            text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._token, "<token>") if self._token else text

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        log.info("exporting readings to InfluxDB at %s (org %s, bucket %s, measurement %s), about %d queued",
                 self.config.url, self.config.org, self.config.bucket, self.config.measurement,
                 self.queue.backlog())
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in flight; what is not exported stays queued for the next run."""
        self._stop.set()
        self._wake.set()
        self.gate.release()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self.client.close()

    def wake(self) -> None:
        """Look for new readings now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                _, more = self.export_once()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - server or store down: the batch stays queued, back off, retry
                failures += 1
                self.write_failures += 1
                delay = backoff(failures, self.config.first_backoff_s, self.config.max_backoff_s, self._rand)
                text = str(exc) if isinstance(exc, ExportError) else self._describe(exc)
                log.warning("InfluxDB export failed (%s); retrying in %.1f s", text, delay)
                self._stop.wait(delay)
                continue
            if not more:
                self._wake.wait(self.config.poll_s)
                self._wake.clear()

    # ------------------------------------------------------------------ metrics
    def collect(self) -> Iterator:
        """Prometheus families: export lag, points written and rejected, write failures, back-pressure."""
        try:
            lag = float(self.queue.backlog())
        except Exception:  # noqa: BLE001 - store down at scrape time
            lag = float("nan")
        yield GaugeMetricFamily("shouwang_influx_export_lag_readings",
                                "Stored readings not yet exported to InfluxDB.", value=lag)
        yield CounterMetricFamily("shouwang_influx_points_written", "Readings written to InfluxDB.",
                                  value=self.points_written)
        yield CounterMetricFamily("shouwang_influx_points_rejected", "Readings InfluxDB refused (HTTP 400/422), "
                                  "skipped.", value=self.points_rejected)
        yield CounterMetricFamily("shouwang_influx_write_failures", "Failed export attempts (retried).",
                                  value=self.write_failures)
        yield GaugeMetricFamily("shouwang_influx_backpressure", "1 while ingest waits for the export to catch up.",
                                value=float(self.gate.waiting.is_set()))
        yield CounterMetricFamily("shouwang_influx_backpressure_waits", "Times ingest had to wait for the export.",
                                  value=self.gate.waits)


def exporter_from_settings(settings: Settings, store: Any) -> InfluxExporter | None:
    """The exporter SHOUWANG_INFLUXDB_* ask for, on the SQL store's engine; None when no URL is set.

    Turns the store's export on: from now on it queues the readings it newly stores (make the exporter before
    ingest starts; readings stored while export was off are not queued).
    """
    if not settings.influxdb_url:
        return None
    store.export = True
    config = InfluxConfig(
        url=settings.influxdb_url, token=settings.influxdb_token or SecretStr(""), org=settings.influxdb_org,
        bucket=settings.influxdb_bucket, measurement=settings.influxdb_measurement,
        batch_size=settings.influxdb_batch_size, max_lag=settings.influxdb_max_lag)
    return InfluxExporter(ExportQueue(store.engine), config)

"""Prometheus metrics, read live from the service at scrape time (nothing to keep in step)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from alerts.channels.base import Channel, Notification, RetryableError
from shouwang.state import NEVER

if TYPE_CHECKING:
    from shouwang.service import Service

ESCALATION_KINDS = ("escalation_step", "reminder", "sla_missed")


class Observations:
    """What can only be counted as it happens: batch write times, delivery attempts per channel, escalations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batch_write = Histogram("shouwang_batch_write_seconds", "Time to store one batch of readings.",
                                     buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
                                     registry=None)
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.escalations: Counter[str] = Counter()

    def attempt(self, channel: str, result: str) -> None:
        with self._lock:
            self.attempts[(channel, result)] += 1

    def escalation_events(self, kinds: Sequence[str]) -> None:
        with self._lock:
            self.escalations.update(k for k in kinds if k in ESCALATION_KINDS)

    def collect(self) -> Iterator:
        yield from self.batch_write.collect()
        with self._lock:
            attempts, escalations = dict(self.attempts), dict(self.escalations)
        fam = CounterMetricFamily("shouwang_notification_attempts", "Delivery attempts by channel (URL scheme) "
                                  "and result: sent, retryable_error, failed.", labels=["channel", "result"])
        for (channel, result), n in sorted(attempts.items()):
            fam.add_metric([channel, result], n)
        yield fam
        fam = CounterMetricFamily("shouwang_escalation_events", "Escalation steps taken (step 1 included), "
                                  "reminders sent and SLA misses.", labels=["kind"])
        for kind in ESCALATION_KINDS:
            fam.add_metric([kind], escalations.get(kind, 0))
        yield fam


class ObservedStore:
    """The store as the batch writer and the escalator see it: times reading batches, counts escalation events."""

    def __init__(self, store: Any, observations: Observations) -> None:
        self._store = store
        self._obs = observations

    def write_readings(self, readings: Sequence) -> int:
        t0 = time.perf_counter()
        try:
            return self._store.write_readings(readings)
        finally:
            self._obs.batch_write.observe(time.perf_counter() - t0)

    def save_escalation_steps(self, steps: Any, items: Any, events: Sequence, *args: Any, **kwargs: Any) -> Any:
        done = self._store.save_escalation_steps(steps, items, events, *args, **kwargs)
        self._obs.escalation_events([e.kind for e in events])
        return done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _CountedChannel:
    """A channel whose every attempt is counted under its URL scheme (never the URL: it holds secrets)."""

    def __init__(self, channel: Channel, scheme: str, observations: Observations) -> None:
        self._channel, self._scheme, self._obs = channel, scheme, observations

    @property
    def name(self) -> str:
        return self._channel.name

    def send(self, notification: Notification) -> None:
        try:
            self._channel.send(notification)
        except RetryableError:
            self._obs.attempt(self._scheme, "retryable_error")
            raise
        except Exception:
            self._obs.attempt(self._scheme, "failed")
            raise
        self._obs.attempt(self._scheme, "sent")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


def counted_channels(make_channel: Callable[[str], Channel], observations: Observations) -> Callable[[str], Channel]:
    """Wrap a channel factory so each channel's attempts are counted by scheme."""

    def make(url: str) -> Channel:
        scheme = url.strip().split("://", 1)[0].lower() if "://" in url else "unknown"
        return _CountedChannel(make_channel(url), scheme, observations)

    return make


class ServiceCollector(Collector):
    """Ingest counters, rejections by reason, open alerts by category, deliveries, escalations, lag."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator:
        svc = self.service
        stats = svc.stats.snapshot()
        for name, key, doc in (("readings_accepted", "readings_accepted", "Valid readings taken in."),
                               ("readings_stored", "readings_stored", "Readings newly stored (not redeliveries)."),
                               ("duplicate_readings", "duplicates", "Readings received again and ignored."),
                               ("messages", "messages", "MQTT messages handled."),
                               ("store_errors", "store_errors", "Failed store writes (retried)."),
                               ("fold_errors", "fold_errors", "Failed folds of recent readings (retried)."),
                               ("state_errors", "state_errors",
                                "Stored batches the household state failed to take in (logged; readings kept).")):
            yield CounterMetricFamily(f"shouwang_{name}", doc, value=stats.get(key, 0))
        rejected = CounterMetricFamily("shouwang_rejections", "Refused messages or readings.", labels=["reason"])
        for key, n in sorted(stats.items()):
            if key.startswith("rejected."):
                rejected.add_metric([key.removeprefix("rejected.")], n)
        yield rejected
        open_alerts = GaugeMetricFamily("shouwang_open_alerts", "Unresolved alerts.", labels=["category"])
        for category, n in sorted(Counter(str(a.category) for a in svc.store.unresolved_alerts()).items()):
            open_alerts.add_metric([category], n)
        yield open_alerts
        sent = CounterMetricFamily("shouwang_notifications", "Queued messages that ended (cancelled: the case was "
                                   "closed before it was sent).", labels=["result"])
        sent.add_metric(["sent"], svc.outbox.sent)
        sent.add_metric(["failed"], svc.outbox.failed)
        sent.add_metric(["cancelled"], svc.outbox.cancelled)
        yield sent
        yield GaugeMetricFamily("shouwang_escalations_active", "Escalations still running.",
                                value=len(svc.store.active_escalations()))
        with svc.state.lock:
            seen = svc.state.last_ts[svc.state.last_ts != NEVER]
            newest = int(seen.max()) if seen.size else None
        lag = float(svc.clock.now() - newest) if newest is not None else float("nan")
        yield GaugeMetricFamily("shouwang_ingest_lag_seconds",
                                "Event time now minus the newest reading's timestamp.", value=lag)
        yield GaugeMetricFamily("shouwang_broker_connected", "1 while connected to the broker.",
                                value=float(svc.ingest.connected))
        observations = getattr(svc, "observations", None)
        if observations is not None:
            yield from observations.collect()
        influx = getattr(svc, "influx", None)
        if influx is not None:
            yield from influx.collect()  # export lag, points written, write failures (storage/influx.py)


def registry_for(service: Service) -> CollectorRegistry:
    """A registry holding the service's collector."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(service))
    return registry

"""Prometheus metrics, read live from the service at scrape time (nothing to keep in step)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from shouwang.state import NEVER

if TYPE_CHECKING:
    from shouwang.service import Service


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
                               ("store_errors", "store_errors", "Failed store writes (retried).")):
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
        sent = CounterMetricFamily("shouwang_notifications", "Delivery attempts that ended.", labels=["result"])
        sent.add_metric(["sent"], svc.outbox.sent)
        sent.add_metric(["failed"], svc.outbox.failed)
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


def registry_for(service: Service) -> CollectorRegistry:
    """A registry holding the service's collector."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(service))
    return registry

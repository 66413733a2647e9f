"""The service: wires gateway → ingest → store + household state → detectors → alerts → channels / API."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence

from alerts import messages
from alerts.channels import Channel, ConsoleChannel, WebhookChannel
from alerts.lifecycle import clear_gone_conditions
from alerts.notifier import Notifier, RetryPolicy
from alerts.pipeline import AlertPipeline, AwaySilence, Dedupe, Inhibit, Notify, Record, Route, Silence
from detectors import DeviceDetector, NoChangeDetector
from detectors.base import Detector
from ingest.handler import MessageHandler
from ingest.stats import IngestStats
from ingest.subscriber import MqttIngest
from ingest.writer import BatchWriter
from shouwang.clock import Clock
from shouwang.domain import Alert, Registry
from shouwang.settings import Settings
from shouwang.state import ActivityModel, HouseholdState
from storage.base import Store

log = logging.getLogger(__name__)


def default_detectors(settings: Settings) -> list[Detector]:
    """The detectors the service runs unless told otherwise."""
    silence = int(settings.meter_silence_h * 3600)
    return [
        NoChangeDetector(window_s=int(settings.inactivity_window_h * 3600), max_staleness_s=silence,
                         name=f"no-change-{settings.inactivity_window_h:g}h"),
        DeviceDetector(silence_s=silence),
    ]


class Service:
    """Everything but the HTTP server; `tick` runs one detector sweep at the clock's event time."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        registry: Registry,
        clock: Clock,
        channels: Sequence[Channel] | None = None,
        detectors: Sequence[Detector] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.clock = clock
        self.stats = IngestStats()
        store.upsert_registry(registry)
        now = int(clock.now())
        model = ActivityModel(water_min_m3=settings.water_activity_m3, elec_margin_kw=settings.activity_margin_kw)
        self.state = HouseholdState(registry, model, started_at=now)
        self.handler = MessageHandler(registry, settings.mqtt_topic_prefix, settings.timezone,
                                      settings.max_future_skew_s)
        self._restore(now)
        self.detectors = list(detectors if detectors is not None else default_detectors(settings))
        self.channels = list(channels if channels is not None else self._configured_channels())
        self.notifier = Notifier(store, clock, RetryPolicy(deadline_s=settings.notify_deadline_s))
        self._households = {h.id: h for h in registry.households}
        self._zones = {c.id: c.timezone for c in registry.communities}
        behind: dict[str, set[str]] = defaultdict(set)
        for m in registry.meters:
            behind[m.gateway].add(m.household)
        self.pipeline = AlertPipeline([
            Route(tuple(self.channels)),
            Inhibit(lambda g: sorted(behind.get(g, ())), self._offline_gateways),
            Silence((AwaySilence(lambda now: store.away_periods(active_at=now), self._last_activity),)),
            Dedupe(store),
            Notify(self.notifier, self._households.get, settings.public_url, self._zone),
            Record(),
        ])
        self.writer = BatchWriter(store, self.state, self.stats, max_readings=settings.batch_max_readings,
                                  max_delay_s=settings.batch_max_delay_s)
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        self.ingest = MqttIngest(self.handler, self.writer, clock, self.stats, host=settings.mqtt_host,
                                 port=settings.mqtt_port, client_id=settings.mqtt_client_id,
                                 prefix=settings.mqtt_topic_prefix, username=settings.mqtt_username,
                                 password=password, clean_session=settings.mqtt_clean_session)
        self._tick_lock = threading.Lock()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick_loop, name="detector-timer", daemon=True)

    def _configured_channels(self) -> list[Channel]:
        chans: list[Channel] = [ConsoleChannel()]
        chans += [WebhookChannel(u, self.settings.webhook_timeout_s) for u in self.settings.webhook_urls]
        return chans

    def _restore(self, now: int) -> None:
        """Rebuild state from the store: last reading per meter, then the readings of the lookback window."""
        self.handler.prime(self.store.latest_readings())
        lookback = int((self.settings.inactivity_window_h + 24) * 3600)
        batch = []
        for r in self.store.readings_since(now - lookback):
            batch.append(r)
            if len(batch) >= 50_000:
                self.state.apply(batch)
                batch = []
        self.state.apply(batch)
        for s in self.store.gateway_statuses():
            self.state.set_gateway_status(s)

    def _offline_gateways(self) -> list[str]:
        with self.state.lock:
            return [g for g, up in zip(self.state.gateway_ids, self.state.gateway_online, strict=True) if not up]

    def _last_activity(self, household: str) -> int | None:
        summary = self.state.summary(household)
        return summary.last_activity if summary else None

    def _zone(self, alert: Alert) -> str:
        hh = self._households.get(alert.household or "")
        return self._zones.get(hh.community if hh else "", self.settings.timezone)

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        self.notifier.start()
        self.writer.start()
        self.ingest.start()
        self._timer.start()

    def stop(self) -> None:
        """Graceful: stop taking messages, store what is in flight, deliver queued notifications."""
        self._stop.set()
        self.ingest.stop()
        self.writer.stop()
        self._timer.join(5)
        self.notifier.wait_idle(10)
        self.notifier.stop()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.settings.tick_s):
            try:
                self.tick()
            except Exception:
                log.exception("detector sweep failed; trying again next tick")

    def tick(self, now: int | None = None) -> list[Alert]:
        """One sweep: run every detector at event time ``now``, open new alerts, clear gone conditions."""
        with self._tick_lock:
            now = int(self.clock.now()) if now is None else now
            findings = [f for d in self.detectors for f in d.evaluate(self.state, now)]
            opened = self.pipeline.run(findings, now)
            clear_gone_conditions(self.store, {d.name: d for d in self.detectors}, self.state, now,
                                  self._announce_change)
            return opened

    def _announce_change(self, alert_id: int, event: str) -> None:
        alert = self.store.alert(alert_id)
        note = messages.build(alert, self._households.get(alert.household or ""), event,
                              self.settings.public_url, self._zone(alert))
        for ch in self.channels:
            self.notifier.enqueue(ch, note)

    def health(self) -> dict[str, bool]:
        """Readiness checks for /healthz."""
        return {"broker": self.ingest.connected, "detectors": self._timer.is_alive() or not self._stop.is_set()}

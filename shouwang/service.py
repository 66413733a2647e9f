"""The service: wires gateway → ingest → store + household state → detectors → alerts → channels / API."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from alerts.channels import Channel, channel_from_url
from alerts.escalation import Escalator
from alerts.lifecycle import clear_gone_conditions
from alerts.notifier import RetryPolicy
from alerts.outbox import OutboxWorker
from alerts.pipeline import AlertPipeline, AwaySilence, Dedupe, Escalate, Inhibit, Record, Route, Silence
from detectors import build_detectors
from detectors.base import Detector
from ingest.handler import MessageHandler
from ingest.stats import IngestStats
from ingest.subscriber import MqttIngest
from ingest.writer import BatchWriter
from shouwang.clock import Clock, SystemClock
from shouwang.domain import Alert, Finding, Registry
from shouwang.settings import Settings
from shouwang.state import ActivityModel, HouseholdState
from storage.base import Store

log = logging.getLogger(__name__)


def default_detectors(settings: Settings) -> list[Detector]:
    """The detectors the service runs unless told otherwise (settings.detectors)."""
    return build_detectors(settings.detectors, window_s=int(settings.inactivity_window_h * 3600),
                           silence_s=int(settings.meter_silence_h * 3600))


class Service:
    """Everything but the HTTP server; `tick` runs one detector sweep at the clock's event time."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        registry: Registry,
        clock: Clock,
        *,
        watchers: Sequence[str] | None = None,
        detectors: Sequence[Detector] | None = None,
        make_channel: Callable[[str], Channel] = channel_from_url,
        wall: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.clock = clock
        self.stats = IngestStats()
        store.upsert_registry(registry)
        now = int(clock.now())
        model = ActivityModel(water_min_m3=settings.water_activity_m3, elec_margin_kw=settings.activity_margin_kw)
        self.state = HouseholdState(registry, model, started_at=now, default_timezone=settings.timezone)
        self.snapshot = settings.state_snapshot
        if self.snapshot is not None and self.snapshot.exists():
            self.state.load(self.snapshot)  # learned routines; the replay below adds what came since
            log.info("household state restored from %s", self.snapshot)
        self.handler = MessageHandler(registry, settings.mqtt_topic_prefix, settings.timezone,
                                      settings.max_future_skew_s)
        self._restore(now)
        self.detectors = list(detectors if detectors is not None else default_detectors(settings))
        wall = wall or SystemClock()
        self.escalator = Escalator(
            store, wall, public_url=settings.public_url, secret=settings.secret_key.get_secret_value(),
            watchers=watchers if watchers is not None else ["console://", *settings.webhook_urls],
            delivery_deadline_s=settings.notify_deadline_s, default_zone=settings.timezone)
        self.outbox = OutboxWorker(store, clock, wall, make_channel, RetryPolicy(deadline_s=settings.notify_deadline_s))
        community = {h.id: h.community for h in registry.households}
        community.update({f"gw:{g.id}": g.community for g in registry.gateways})
        behind: dict[str, set[str]] = defaultdict(set)
        for m in registry.meters:
            behind[m.gateway].add(m.household)

        def community_of(f: Finding) -> str | None:
            return community.get(f.household or "") or community.get(f"gw:{f.gateway}")

        self.pipeline = AlertPipeline([
            Route(community_of),
            Inhibit(lambda g: sorted(behind.get(g, ())), self._offline_gateways),
            Silence((AwaySilence(lambda now: store.away_periods(active_at=now), self._last_activity),)),
            Dedupe(store),
            Escalate(self.escalator.start),
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

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        self.outbox.start()
        self.writer.start()
        self.ingest.start()
        self._timer.start()

    def stop(self) -> None:
        """Graceful: stop taking messages, store what is in flight, deliver queued notifications."""
        self._stop.set()
        self.ingest.stop()
        self.writer.stop()
        self._timer.join(5)
        self.save_state()
        self.outbox.stop()

    def save_state(self) -> None:
        """Write the household state snapshot (learned routines) if one is configured."""
        if self.snapshot is None:
            return
        self.snapshot.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.snapshot.with_suffix(".tmp")
        self.state.save(tmp)
        tmp.replace(self.snapshot)

    def _tick_loop(self) -> None:
        last_save = time.monotonic()
        while not self._stop.wait(self.settings.tick_s):
            try:
                self.tick()
                if time.monotonic() - last_save >= self.settings.snapshot_every_s:
                    self.save_state()
                    last_save = time.monotonic()
            except Exception:
                log.exception("detector sweep failed; trying again next tick")

    def tick(self, now: int | None = None) -> list[Alert]:
        """One sweep: run every detector at event time ``now``, open new alerts, clear gone conditions."""
        with self._tick_lock:
            now = int(self.clock.now()) if now is None else now
            findings = [f for d in self.detectors for f in d.evaluate(self.state, now)]
            opened = self.pipeline.run(findings, now)
            clear_gone_conditions(self.store, {d.name: d for d in self.detectors}, self.state, now,
                                  lambda alert_id, event: self.escalator.announce(self.store.alert(alert_id), event, now))
            self.escalator.tick(now)
            self.outbox.wake()
            return opened

    def health(self) -> dict[str, bool]:
        """Readiness checks for /healthz."""
        return {"broker": self.ingest.connected, "detectors": self._timer.is_alive() or not self._stop.is_set()}

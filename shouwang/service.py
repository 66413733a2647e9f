"""The service: wires gateway → ingest → store + household state → detectors → alerts → channels / API."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial

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
from shouwang.domain import Alert, AlertStatus, Finding, Registry
from shouwang.metrics import Observations, ObservedStore, counted_channels
from shouwang.settings import Settings
from shouwang.sharding import AlertScope, Shard, topic_filters
from shouwang.state import ActivityModel, HouseholdState
from storage.base import Store

log = logging.getLogger(__name__)
FEED_TRIM_EVERY_S = 60  # ingest deletes state-feed rows older than SHOUWANG_STATE_FEED_KEEP_S this often
SWEEP_LOAD = 3.0  # a sweep starts at least 3x the last one's duration after it: sweeps take at most a third of the time


def sweep_schedule(last_start: float, last_took: float, tick_s: float, debounce_s: float) -> tuple[float, float]:
    """(when the next sweep is due without readings, the soonest one may start after readings), from the last one.

    Neither is sooner than ``SWEEP_LOAD`` times the last sweep's duration after it began, so sweeps never take
    more than a third of the time however fast readings arrive or however short ``tick_s`` is."""
    floor = SWEEP_LOAD * last_took
    return last_start + max(tick_s, floor), last_start + max(min(debounce_s, tick_s), floor)


def default_detectors(settings: Settings) -> list[Detector]:
    """The detectors the service runs unless told otherwise (settings.detectors)."""
    return build_detectors(settings.detectors, window_s=int(settings.inactivity_window_h * 3600),
                           silence_s=int(settings.meter_silence_h * 3600))


_collector_tuned = False


def tune_collector(gen0_threshold: int) -> None:
    """Set Python's cyclic collector up for a long-running ingest process, once per process (0: leave it).

    What start-up built (registry, household state, lookups) lives as long as the process: ``gc.freeze()`` takes it
    out of every later collection. Each stored reading leaves short-lived objects behind, so at Python's default of
    700 allocations the young generation was collected thousands of times a minute and the full heap dozens of
    times; at 100,000 those passes are rare and short (docs/benchmarks.md, "Buffered socket reads and the garbage
    collector").
    """
    global _collector_tuned
    if gen0_threshold <= 0 or _collector_tuned:
        return
    _collector_tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, 50, 1000)
    log.info("garbage collector: start-up objects frozen, thresholds %s", gc.get_threshold())


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
        make_channel: Callable[[str], Channel] | None = None,
        wall: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        store.feed = settings.state_feed  # each stored batch goes to the feed for api followers too
        self.shard = Shard(settings.shard_index, settings.shard_count)
        registry = self.shard.restrict(registry)  # a shard's worker holds and watches only its communities
        self.scope = None if self.shard.whole else AlertScope(registry)
        communities = None if self.scope is None else self.scope.communities
        self.registry = registry
        self.clock = clock
        self.stats = IngestStats()
        self.observations = Observations()
        observed = ObservedStore(store, self.observations)  # times batch writes, counts escalation events
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
            observed, wall, public_url=settings.public_url, secret=settings.secret_key.get_secret_value(),
            watchers=watchers if watchers is not None else ["console://", *settings.webhook_urls],
            delivery_deadline_s=settings.notify_deadline_s, default_zone=settings.timezone, communities=communities)
        if make_channel is None:  # ${NAME} references in channel URLs are filled in here, where messages leave
            secrets = {k: v.get_secret_value() for k, v in settings.channel_secrets.items()}
            make_channel = partial(channel_from_url, secrets=secrets)
        self.outbox = OutboxWorker(store, clock, wall, counted_channels(make_channel, self.observations),
                                   RetryPolicy(deadline_s=settings.notify_deadline_s), communities=communities)
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
        self.influx = None  # the InfluxDB exporter, when SHOUWANG_INFLUXDB_URL is set (storage/influx.py)
        if settings.influxdb_url:
            from storage.influx import exporter_from_settings  # influxdb-client loads only when used

            self.influx = exporter_from_settings(settings, store)
        self.writer = BatchWriter(observed, self.state, self.stats, max_readings=settings.batch_max_readings,
                                  max_delay_s=settings.batch_max_delay_s,
                                  gate=self.influx.gate.wait if self.influx is not None else None,
                                  on_applied=self._readings_applied)
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        self.ingest = MqttIngest(self.handler, self.writer, clock, self.stats, host=settings.mqtt_host,
                                 port=settings.mqtt_port, client_id=self.shard.client_id(settings.mqtt_client_id),
                                 prefix=settings.mqtt_topic_prefix, username=settings.mqtt_username,
                                 password=password, clean_session=settings.mqtt_clean_session,
                                 topics=None if communities is None else topic_filters(settings.mqtt_topic_prefix,
                                                                                       communities))
        self._tick_lock = threading.Lock()
        self._stop = threading.Event()
        self._readings = threading.Event()  # set by the writer after a batch is stored and applied
        self.sweeps = 0  # sweeps run so far (tests, metrics)
        self.last_sweep_s = 0.0  # wall seconds the last sweep took, apart from opening alerts (see _tick_loop)
        self._opening_s = 0.0
        self._timer = threading.Thread(target=self._tick_loop, name="detector-timer", daemon=True)

    def _restore(self, now: int) -> None:
        """Rebuild state from the store: last reading per meter, then the readings of the lookback window."""
        latest = self.store.latest_readings()
        if self.scope is not None:  # another shard's meters are not ours to check
            latest = {m: r for m, r in latest.items() if m in self.handler.meters}
        self.handler.prime(latest)
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
        tune_collector(self.settings.gc_gen0_threshold)
        if self.influx is not None:
            self.influx.start()
        self.outbox.start()
        self.writer.start()
        self.ingest.start()
        self._timer.start()

    def stop(self) -> None:
        """Graceful: stop taking messages, store what is in flight, deliver queued notifications."""
        self._stop.set()
        self._readings.set()  # the detector loop waits on it
        self.ingest.stop()
        self.writer.stop()
        self._timer.join(5)
        self.save_state()
        self.outbox.stop()
        if self.influx is not None:
            self.influx.stop()

    def save_state(self) -> None:
        """Write the household state snapshot (learned routines) if one is configured."""
        if self.snapshot is None:
            return
        self.snapshot.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.snapshot.with_suffix(".tmp")
        self.state.save(tmp)
        tmp.replace(self.snapshot)

    def _readings_applied(self) -> None:
        """The writer stored a batch and folded it into the state: sweep soon (see ``_tick_loop``)."""
        self._readings.set()

    def _tick_loop(self) -> None:
        """Sweep soon after readings are stored, and every ``tick_s`` without them (alerts due by time passing).

        After stored readings the sweep waits until ``sweep_debounce_s`` after the previous one began (readings
        stored meanwhile are in it); neither kind starts sooner than 3x the last sweep's duration after it.
        """
        last_save = last_start = time.monotonic()
        last_trim = float("-inf")  # the state feed is trimmed at the first sweep, then every FEED_TRIM_EVERY_S
        while not self._stop.is_set():
            due, soonest = sweep_schedule(last_start, self.last_sweep_s, self.settings.tick_s,
                                          self.settings.sweep_debounce_s)
            if self._readings.wait(max(0.0, due - time.monotonic())):  # readings stored: wait for the soonest time
                self._stop.wait(max(0.0, soonest - time.monotonic()))
            if self._stop.is_set():
                return
            self._readings.clear()  # readings stored from here on wake the next sweep
            last_start = time.monotonic()
            try:
                self.tick()
                # opening alerts is work a burst of them needs done, not overhead: it does not delay the next sweep
                self.last_sweep_s = time.monotonic() - last_start - self._opening_s
                if time.monotonic() - last_save >= self.settings.snapshot_every_s:
                    self.save_state()
                    last_save = time.monotonic()
                if self.settings.state_feed and time.monotonic() - last_trim >= FEED_TRIM_EVERY_S:
                    self.store.trim_feed(int(time.time() - self.settings.state_feed_keep_s))
                    last_trim = time.monotonic()
            except Exception:
                log.exception("detector sweep failed; trying again next tick")

    def tick(self, now: int | None = None) -> list[Alert]:
        """One sweep: run every detector at event time ``now``, open new alerts, clear gone conditions."""
        with self._tick_lock:
            now = int(self.clock.now()) if now is None else now
            findings = [f for d in self.detectors for f in d.evaluate(self.state, now)]
            t0 = time.monotonic()
            opened = self.pipeline.run(findings, now)
            self._opening_s = time.monotonic() - t0 if opened else 0.0
            if opened:
                self.outbox.wake()  # their first messages are in the outbox: send them now, not after the sweep
            # one read of the open alerts a sweep, for clearing and escalating (with many open it cost as much as
            # the detectors); what clearing changed is read again once, and a resolved one left to rest
            unresolved = self.store.unresolved_alerts()
            if self.scope is not None:  # a shard's own
                unresolved = [a for a in unresolved if a in self.scope]
            changed: dict[int, Alert] = {}

            def reread(alert_id: int, _event: str) -> None:
                changed[alert_id] = self.store.alert(alert_id)

            clear_gone_conditions(self.store, {d.name: d for d in self.detectors}, self.state, now, reread,
                                  alerts=unresolved,
                                  announce=lambda alert, event: self.escalator.announce(alert, event, now))
            if changed:
                unresolved = [a for a in (changed.get(a.id, a) for a in unresolved) if a.status != AlertStatus.RESOLVED]
            self.escalator.tick(now, unresolved)
            self.outbox.wake()
            self.sweeps += 1
            return opened

    def health(self) -> dict[str, bool]:
        """Readiness checks for /healthz."""
        return {"broker": self.ingest.connected, "detectors": self._timer.is_alive() or not self._stop.is_set()}

    def liveness(self) -> dict[str, bool]:
        """Liveness checks: the worker threads still run (a restart would help if not)."""
        return {"detectors": self._timer.is_alive() or self._stop.is_set()}


class StateFollower:
    """`run --role api`: the pages' live household state, rebuilt from the store and kept in step by polling it.

    Alerts never depend on it (they come from the ingest process). Two ways to keep in step:
    * by default each refresh re-reads the readings of the last ``LATE_S`` of event time before the newest one
      seen; a reading stored more than ``LATE_S`` after a newer one of any meter may be missed until the next
      restart. Cheap for a district, not for a city (up to every meter's reading each refresh);
    * with ``SHOUWANG_STATE_FEED`` (set on ingest too) it reads the batches ingest stored since the last look from
      the state feed, the same batches in the same order as ingest's own state got them. Feed rows are looked
      for ``FEED_OVERLAP_S`` back from the newest seen (a batch committed a little out of order by another shard
      is still found; ids already applied are skipped). If rows it still needed were trimmed, it re-reads.
    """

    LATE_S = 900
    FEED_OVERLAP_S = 60

    def __init__(self, settings: Settings, store: Store, registry: Registry, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        now = int(clock.now())
        model = ActivityModel(water_min_m3=settings.water_activity_m3, elec_margin_kw=settings.activity_margin_kw)
        self.state = HouseholdState(registry, model, started_at=now, default_timezone=settings.timezone)
        self._since = now - int((settings.inactivity_window_h + 24) * 3600)
        self._feed_at: int | None = None  # newest stored_at seen in the feed (None: follow by re-reading)
        self._feed_seen: dict[int, int] = {}  # feed ids applied within the overlap → their stored_at
        self._feed_read = 0.0  # monotonic time of the last look at the feed
        self._ok = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="state-follower", daemon=True)

    def refresh(self) -> int:
        """Apply readings stored since the last look (and gateway statuses); return how many were read."""
        if self._feed_at is not None:
            # ingest trims rows older than state_feed_keep_s: a look that long after the last one may find some gone
            if time.monotonic() - self._feed_read < self.settings.state_feed_keep_s - 2 * self.FEED_OVERLAP_S:
                return self._follow_feed()
            log.warning("the last look at the state feed is older than it keeps rows; re-reading the readings")
        if self.settings.state_feed:  # where to take up the feed once the readings below are read
            self._feed_read = time.monotonic()
            rows = self.store.feed_since(0)  # their batches are in the readings read below: seen
            self._feed_at = max((at for _, at in rows), default=0)
            self._feed_seen = {i: at for i, at in rows if at >= self._feed_at - 2 * self.FEED_OVERLAP_S}
        return self._reread()

    def _follow_feed(self) -> int:
        """Apply the feed's batches not applied yet, oldest first."""
        assert self._feed_at is not None
        self._feed_read = time.monotonic()
        rows = self.store.feed_since(self._feed_at - self.FEED_OVERLAP_S)
        n, newest = 0, self._since + self.LATE_S
        for _id, readings in self.store.feed_batches([i for i, _ in rows if i not in self._feed_seen]):
            self.state.apply(readings)
            n += len(readings)
            newest = max(newest, max((r.ts for r in readings), default=newest))
        self._since = newest - self.LATE_S  # where a re-read would start, should the feed be left behind
        self._feed_at = max([self._feed_at, *(at for _, at in rows)])
        self._feed_seen = {i: at for i, at in [*self._feed_seen.items(), *rows]
                           if at >= self._feed_at - 2 * self.FEED_OVERLAP_S}
        for st in self.store.gateway_statuses():
            self.state.set_gateway_status(st)
        self._ok = True
        return n

    def _reread(self) -> int:
        """Re-read the readings from ``LATE_S`` before the newest one seen (all of the window at start)."""
        newest, batch, n = self._since, [], 0
        for r in self.store.readings_since(self._since):
            batch.append(r)
            newest = max(newest, r.ts)
            if len(batch) >= 50_000:
                self.state.apply(batch)
                n += len(batch)
                batch = []
        self.state.apply(batch)
        for s in self.store.gateway_statuses():
            self.state.set_gateway_status(s)
        self._since = max(self._since, newest - self.LATE_S)
        self._ok = True
        return n + len(batch)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.state_refresh_s):
            try:
                self.refresh()
            except Exception:
                self._ok = False
                log.exception("reading new readings from the store failed; trying again")

    def start(self) -> None:
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def health(self) -> dict[str, bool]:
        """Readiness: the last look at the store worked."""
        return {"state": self._ok}

    def liveness(self) -> dict[str, bool]:
        """Liveness: the polling thread runs."""
        return {"state_follower": self._thread.is_alive() or self._stop.is_set()}

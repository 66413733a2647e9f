"""Publishes simulated meter readings over MQTT the way real gateways do, scripted by a scenario."""

from __future__ import annotations

import heapq
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Self
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shouwang.clock import Clock
from shouwang.domain import MeterKind, Registry
from simulators.routine import RoutineModel, household_seed, make_profiles
from simulators.scenario import IncidentWindow, Scenario, resolve_incidents

log = logging.getLogger(__name__)

DEFAULT_TZ = "Asia/Shanghai"
DECIMALS = 3  # registers are reported to the litre and the watt-hour
BACKFILL_CHUNK = 500  # readings per backfill batch message
_UP, _DOWN, _TICK, _GARBAGE = 0, 1, 2, 3  # order of things due at the same instant


@dataclass(frozen=True, slots=True)
class StepStats:
    """What one step_to call (or a run) published."""

    until: float  # event time reached
    readings: int = 0  # valid readings published (regular and backfilled)
    messages: int = 0  # messages on readings topics (including garbage)
    garbage_messages: int = 0
    garbage_good_readings: int = 0  # valid readings inside garbage mixed batches
    status_messages: int = 0  # messages on status topics: "online" announcements and the broker's last wills
    backfilled: int = 0  # readings uploaded late after a gateway came back
    dropped: int = 0  # readings lost while a gateway was offline without backfill


@dataclass(frozen=True, slots=True)
class GarbageRecord:
    """One malformed message that was published, and the rejection reasons it should cause."""

    at: float
    gateway: str
    kind: str
    topic: str
    payload: bytes
    expected: tuple[str, ...]


class _Tally:
    __slots__ = ("backfilled", "dropped", "garbage_good_readings", "garbage_messages", "messages", "readings",
                 "status_messages")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def stats(self, until: float) -> StepStats:
        return StepStats(until, **{n: getattr(self, n) for n in self.__slots__})


class _Gateway:
    """Mutable per-gateway state (internal)."""

    __slots__ = ("backfill", "backlog", "client", "community", "connected", "down_depth", "id", "meters",
                 "online", "online_info", "pending", "status_topic", "topic", "tz")

    def __init__(self, gid: str, community: str, tz: ZoneInfo, prefix: str, meters: list[int]) -> None:
        self.id, self.community, self.tz, self.meters = gid, community, tz, meters
        self.topic = f"{prefix}/{community}/{gid}/readings"
        self.status_topic = f"{prefix}/{community}/{gid}/status"
        self.client: mqtt.Client | None = None
        self.connected = threading.Event()
        self.online_info: mqtt.MQTTMessageInfo | None = None
        self.online = False
        self.down_depth = 0
        self.backfill = False
        self.backlog: list[dict] = []
        self.pending: list[mqtt.MQTTMessageInfo] = []


def _settled(info: mqtt.MQTTMessageInfo) -> bool:
    """True once a publish was acknowledged, or failed for good."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return True


def _merge(pieces: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(pieces):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class Simulator:
    """Households' meters behind MQTT gateways: one paho client per gateway, QoS 1, retained status + will."""

    def __init__(self, registry: Registry, scenario: Scenario | None = None, broker_host: str = "127.0.0.1",
                 broker_port: int = 1883, start: float | None = None, interval_s: float = 900, seed: int = 0,
                 batch: bool = True, mqtt_prefix: str = "shouwang/v1", client_id_prefix: str = "sim",
                 ack_timeout_s: float = 10.0, dry_run: bool = False) -> None:
        if start is None:
            raise ValueError("start (event time of the simulation start, epoch seconds) is required")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.registry, self.scenario = registry, scenario or Scenario()
        self.host, self.port = broker_host, broker_port
        self.start, self.interval = float(start), float(interval_s)
        self.batch, self.prefix, self.client_id_prefix = batch, mqtt_prefix.rstrip("/"), client_id_prefix
        self.ack_timeout_s = ack_timeout_s
        self.dry_run = dry_run  # no broker: messages (and the wills a broker would send) go to self.outbox
        self.outbox: list[tuple[str, bytes, bool]] = []  # (topic, payload, retained), dry_run only
        self.incidents: tuple[IncidentWindow, ...] = resolve_incidents(self.scenario, registry, self.start)
        self.garbage_log: list[GarbageRecord] = []
        self._lock = threading.RLock()
        zones = {c.id: c.timezone for c in registry.communities}

        # households that have meters, grouped by community (one routine model per time zone)
        metered = {m.household for m in registry.meters}
        self._households = [h for h in registry.households if h.id in metered]
        self._hidx = {h.id: i for i, h in enumerate(self._households)}
        self._where: list[tuple[RoutineModel, int]] = [None] * len(self._households)  # type: ignore[list-item]
        self._groups: list[tuple[RoutineModel, np.ndarray]] = []
        for c in registry.communities:
            members = [i for i, h in enumerate(self._households) if h.community == c.id]
            if not members:
                continue
            model = RoutineModel(make_profiles([self._households[i].id for i in members], seed), c.timezone)
            self._groups.append((model, np.array(members)))
            for local, i in enumerate(members):
                self._where[i] = (model, local)

        self._meters = list(registry.meters)
        self._m_house = [self._hidx[m.household] for m in self._meters]
        self._m_water = [m.kind == MeterKind.WATER for m in self._meters]
        self._init = [round(float(np.random.default_rng([household_seed(seed, m.id), 3]).uniform(
            *((30, 900) if w else (800, 25000)))), DECIMALS) for m, w in zip(self._meters, self._m_water)]
        self._cum_water = np.zeros(len(self._households))
        self._cum_elec = np.zeros(len(self._households))
        self._m_ids = [m.id for m in self._meters]
        self._m_kinds = [str(m.kind) for m in self._meters]
        self._m_house_arr = np.array(self._m_house, dtype=np.int64)
        self._m_water_arr = np.array(self._m_water, dtype=bool)
        self._init_arr = np.array(self._init, dtype=float)
        self._last_values: list[float] = []  # per meter, as last reported at self._last_tick

        gw_comm = {g.id: g.community for g in registry.gateways}
        by_gw: dict[str, list[int]] = {g.id: [] for g in registry.gateways}
        for i, m in enumerate(self._meters):
            by_gw.setdefault(m.gateway, []).append(i)
        self._gateways = {
            gid: _Gateway(gid, gw_comm.get(gid, ""), ZoneInfo(zones.get(gw_comm.get(gid, ""), DEFAULT_TZ)),
                          self.prefix, ms)
            for gid, ms in by_gw.items() if ms}

        # scripted incidents: suppression windows per household and a queue of timed actions
        self._act_off: dict[int, list[tuple[float, float]]] = {}
        self._base_off: dict[int, list[tuple[float, float]]] = {}
        self._actions: list[tuple[float, int, int, str, IncidentWindow]] = []
        numbered = {inc.number: inc for inc in self.scenario.incidents}
        for n, w in enumerate(self.incidents):
            end = math.inf if w.end_ts is None else w.end_ts
            if w.kind in ("stall", "away"):
                h = self._hidx.get(w.subject)
                if h is None:
                    continue
                self._act_off.setdefault(h, []).append((w.start_ts, end))
                if w.kind == "stall" and not numbered[w.number].keep_base_load:
                    self._base_off.setdefault(h, []).append((w.start_ts, end))
            elif w.kind == "gateway_offline":
                heapq.heappush(self._actions, (w.start_ts, _DOWN, n, "down", w))
                if w.end_ts is not None:
                    heapq.heappush(self._actions, (w.end_ts, _UP, n, "up", w))
            elif w.kind == "garbage":
                heapq.heappush(self._actions, (w.start_ts, _GARBAGE, n, "garbage", w))
        self._garbage_kinds = {inc.number: inc.garbage for inc in self.scenario.incidents}
        self._backfill = {inc.number: inc.backfill for inc in self.scenario.incidents}

        self._next_tick = math.ceil(self.start / self.interval) * self.interval
        self._last_tick: float | None = None
        self._accrued_to = self.start
        self._connected = False
        self._unreported_status = 0  # announcements made by connect(), counted in the next step
        self._iso_cache: dict[tuple[float, str], str] = {}

    # ---- public API -------------------------------------------------------------------------------

    @property
    def next_due(self) -> float:
        """Event time of the next thing to publish."""
        return min(self._next_tick, self._actions[0][0]) if self._actions else self._next_tick

    def readings_topic(self, gateway: str) -> str:
        """MQTT topic a gateway publishes readings on."""
        return self._gateways[gateway].topic

    def status_topic(self, gateway: str) -> str:
        """MQTT topic of a gateway's retained status and last will."""
        return self._gateways[gateway].status_topic

    def connect(self) -> None:
        """Connect every gateway's client, each announcing "online" (retained); idempotent."""
        with self._lock:
            if self._connected:
                return
            if self.dry_run:
                for gw in self._gateways.values():
                    self.outbox.append((gw.status_topic, b"online", True))
                    gw.online = True
                self._connected = True
                self._unreported_status += len(self._gateways)
                return
            for gw in self._gateways.values():
                c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.client_id_prefix}-{gw.id}",
                                protocol=mqtt.MQTTv311, clean_session=True, userdata=gw)
                c.will_set(gw.status_topic, "offline", qos=1, retain=True)
                c.max_inflight_messages_set(200)
                c.reconnect_delay_set(1, 30)
                c.on_connect = self._on_connect
                c.on_disconnect = self._on_disconnect
                gw.client = c
                try:
                    c.connect(self.host, self.port, keepalive=60)
                except OSError as exc:
                    self.close(announce_offline=False)
                    raise ConnectionError(
                        f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from exc
                c.loop_start()
            for gw in self._gateways.values():
                self._await_online(gw)
                gw.online = True
            self._connected = True
            self._unreported_status += len(self._gateways)
            log.info("simulator connected %d gateways to %s:%d", len(self._gateways), self.host, self.port)

    def step_to(self, t: float) -> StepStats:
        """Publish everything due up to event time t and wait until the broker acknowledged each message."""
        with self._lock:
            self.connect()
            tally = _Tally()
            tally.status_messages, self._unreported_status = self._unreported_status, 0
            self._advance(t, tally)
            for gw in self._gateways.values():
                self._wait_pending(gw, strict=True)
            return tally.stats(t)

    def run(self, clock: Clock, stop_event: threading.Event) -> StepStats:
        """Follow a (scaled) clock in real time until stop_event is set; return totals."""
        self.connect()
        tally = _Tally()
        tally.status_messages, self._unreported_status = self._unreported_status, 0
        speed = float(getattr(clock, "speed", 1.0)) or 1.0
        tz = next(iter(self._gateways.values())).tz if self._gateways else ZoneInfo("UTC")
        day = None
        while not stop_event.is_set() and self._connected:  # close() from another thread also ends it
            now = clock.now()
            with self._lock:
                self._advance(now, tally)
                for gw in self._gateways.values():
                    gw.pending = [i for i in gw.pending if not _settled(i)]
                due = self.next_due
            today = datetime.fromtimestamp(now, tz).date()
            if today != day:
                day = today
                log.info("simulated time %s: %d readings, %d garbage messages so far",
                         datetime.fromtimestamp(now, tz).isoformat(timespec="minutes"), tally.readings,
                         tally.garbage_messages)
            stop_event.wait(min(max((due - clock.now()) / speed, 0.001), 0.5))
        return tally.stats(clock.now())

    def close(self, announce_offline: bool = True, clear_retained: bool = False) -> None:
        """Disconnect cleanly (no will): first publish "offline" (retained), or with clear_retained delete
        every gateway's retained status (for tests on a shared broker)."""
        with self._lock:
            if clear_retained:
                announce_offline = False
                live = next((g.client for g in self._gateways.values() if g.online and g.client), None)
                for gw in self._gateways.values():
                    if self.dry_run:
                        self.outbox.append((gw.status_topic, b"", True))
                    elif live is not None:
                        try:
                            live.publish(gw.status_topic, b"", qos=1, retain=True).wait_for_publish(2.0)
                        except (RuntimeError, ValueError):
                            log.warning("gateway %s: could not clear the retained status", gw.id)
            for gw in self._gateways.values():
                if self.dry_run and gw.online and announce_offline:
                    self.outbox.append((gw.status_topic, b"offline", True))
                c, gw.client = gw.client, None
                if c is None:
                    gw.online = False
                    continue
                if gw.online:
                    if announce_offline:
                        try:
                            c.publish(gw.status_topic, "offline", qos=1, retain=True).wait_for_publish(2.0)
                        except (RuntimeError, ValueError):
                            log.warning("gateway %s: could not announce offline", gw.id)
                    c.disconnect()
                    c.loop_stop()
                gw.online = False
            self._connected = False

    @property
    def last_values(self) -> dict[str, tuple[float, float]]:
        """Meter -> (ts, value) of the last regular report (also for meters behind an offline gateway)."""
        if self._last_tick is None:
            return {}
        return {m: (self._last_tick, v) for m, v in zip(self._m_ids, self._last_values, strict=True)}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- MQTT plumbing ----------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, gw: _Gateway, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("gateway %s: broker refused the connection: %s", gw.id, reason_code)
            return
        gw.online_info = client.publish(gw.status_topic, "online", qos=1, retain=True)
        gw.connected.set()

    def _on_disconnect(self, client: mqtt.Client, gw: _Gateway, flags, reason_code, properties) -> None:
        gw.connected.clear()
        if reason_code.is_failure and gw.online:
            log.warning("gateway %s lost its broker connection (%s); paho reconnects", gw.id, reason_code)

    def _await_online(self, gw: _Gateway) -> None:
        if not gw.connected.wait(self.ack_timeout_s) or gw.online_info is None:
            raise ConnectionError(f"gateway {gw.id}: no CONNACK from {self.host}:{self.port} "
                                  f"within {self.ack_timeout_s}s")
        try:
            gw.online_info.wait_for_publish(self.ack_timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise ConnectionError(f"gateway {gw.id}: could not publish its online status: {exc}") from exc

    def _wait_pending(self, gw: _Gateway, strict: bool) -> None:
        deadline = time.monotonic() + self.ack_timeout_s
        for info in gw.pending:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                done = info.is_published()
            except (RuntimeError, ValueError) as exc:
                done, reason = False, str(exc)
            else:
                reason = f"no PUBACK within {self.ack_timeout_s}s"
            if not done:
                if strict:
                    raise TimeoutError(f"gateway {gw.id}: the broker did not acknowledge a publish: {reason}")
                log.warning("gateway %s: a publish was not acknowledged: %s", gw.id, reason)
                break
        gw.pending.clear()

    def _publish(self, gw: _Gateway, topic: str, payload: bytes | str, retain: bool = False) -> None:
        if self.dry_run:
            self.outbox.append((topic, payload.encode() if isinstance(payload, str) else payload, retain))
            return
        assert gw.client is not None
        gw.pending.append(gw.client.publish(topic, payload, qos=1, retain=retain))

    # ---- the simulation ---------------------------------------------------------------------------

    def _advance(self, t: float, tally: _Tally) -> None:
        while True:
            act = self._actions[0] if self._actions else None
            if act is not None and (act[0], act[1]) < (self._next_tick, _TICK):
                if act[0] > t:
                    return
                heapq.heappop(self._actions)
                _, _, _, what, window = act
                gw = self._gateways.get(window.subject)
                if gw is None:
                    continue
                if what == "down":
                    if self._go_down(gw, self._backfill.get(window.number, False), act[0]):
                        tally.status_messages += 1  # the broker publishes the last will
                elif what == "up":
                    self._go_up(gw, tally)
                else:
                    self._garbage(gw, window, tally)
            elif self._next_tick <= t:
                self._tick(self._next_tick, tally)
            else:
                return

    def _household_net(self, h: int, t0: float, t1: float) -> tuple[float, float]:
        """Water and electricity of one household in [t0, t1), with scripted incidents applied."""
        model, local = self._where[h]
        water, act, base = model.household_usage(local, t0, t1)
        for off, is_base in ((self._act_off.get(h, []), False), (self._base_off.get(h, []), True)):
            pieces = _merge([(max(a, t0), min(b, t1)) for a, b in off if a < t1 and b > t0])
            for a, b in pieces:
                w, ac, bs = model.household_usage(local, a, b)
                if is_base:
                    base -= bs
                else:
                    water, act = water - w, act - ac
        return max(water, 0.0), max(act, 0.0) + max(base, 0.0)

    def _accrue(self, t: float) -> None:
        t0 = self._accrued_to
        if t <= t0:
            return
        water, elec = np.zeros_like(self._cum_water), np.zeros_like(self._cum_elec)
        for model, idx in self._groups:
            u = model.usage(t0, t)
            water[idx], elec[idx] = u.water_m3, u.elec_kwh
        for h, off in self._act_off.items():
            if any(a < t and b > t0 for a, b in off):
                water[h], elec[h] = self._household_net(h, t0, t)
        self._cum_water += water
        self._cum_elec += elec
        self._accrued_to = t

    def _value(self, mi: int) -> float:
        h = self._m_house[mi]
        return self._init[mi] + float(self._cum_water[h] if self._m_water[mi] else self._cum_elec[h])

    def _iso(self, t: float, tz: ZoneInfo) -> str:
        key = (t, tz.key)
        s = self._iso_cache.get(key)
        if s is None:
            if len(self._iso_cache) > 4096:
                self._iso_cache.clear()
            s = self._iso_cache[key] = datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")
        return s

    def _tick(self, t: float, tally: _Tally) -> None:
        self._accrue(t)
        k = round(t / self.interval)
        h = self._m_house_arr
        values = np.round(self._init_arr + np.where(self._m_water_arr, self._cum_water[h], self._cum_elec[h]),
                          DECIMALS).tolist()
        self._last_values = values
        ids, kinds, epoch = self._m_ids, self._m_kinds, int(t)
        for gw in self._gateways.values():
            iso = self._iso(t, gw.tz)  # timestamps alternate between RFC 3339 and epoch seconds
            readings = [{"meter": ids[mi], "kind": kinds[mi], "ts": iso if (k + mi) % 2 == 0 else epoch,
                         "value": values[mi]} for mi in gw.meters]
            if gw.online:
                if self.batch:
                    self._publish(gw, gw.topic, orjson.dumps({"gateway": gw.id, "readings": readings}))
                    tally.messages += 1
                else:
                    for r in readings:
                        self._publish(gw, gw.topic, orjson.dumps(r))
                    tally.messages += len(readings)
                tally.readings += len(readings)
            elif gw.backfill:
                gw.backlog.extend(readings)
            else:
                tally.dropped += len(readings)
        self._last_tick = t
        self._next_tick = t + self.interval

    def _go_down(self, gw: _Gateway, backfill: bool, at: float) -> bool:
        """Drop the gateway's connection without DISCONNECT; True if it was online."""
        gw.down_depth += 1
        if gw.down_depth > 1 or not gw.online:
            return False
        if self.dry_run:
            self.outbox.append((gw.status_topic, b"offline", True))  # the broker's last will
            gw.online, gw.backfill = False, backfill
            return True
        assert gw.client is not None
        self._wait_pending(gw, strict=False)
        gw.online, gw.backfill = False, backfill
        # Stop paho's network thread (it must not reconnect), then cut the TCP connection without a
        # DISCONNECT packet, so the broker publishes the last will "offline" at once. The shutdown also
        # wakes the thread from its select(), so loop_stop() returns without waiting out its timeout.
        stopper = threading.Thread(target=gw.client.loop_stop, name=f"sim-drop-{gw.id}", daemon=True)
        stopper.start()
        sock = gw.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        stopper.join(self.ack_timeout_s)
        gw.connected.clear()
        log.info("gateway %s dropped off the network at %s", gw.id, self._iso(at, gw.tz))
        return True

    def _go_up(self, gw: _Gateway, tally: _Tally) -> None:
        gw.down_depth = max(0, gw.down_depth - 1)
        if gw.down_depth > 0 or gw.online or not self._connected:
            return
        if self.dry_run:
            self.outbox.append((gw.status_topic, b"online", True))
        elif gw.client is not None:
            gw.online_info = None
            try:
                gw.client.reconnect()
            except OSError as exc:
                log.warning("gateway %s: reconnect failed (%s); paho keeps trying", gw.id, exc)
            gw.client.loop_start()
            try:
                self._await_online(gw)
                gw.pending.append(gw.online_info)  # type: ignore[arg-type]
            except ConnectionError as exc:
                log.warning("%s", exc)
        gw.online = True
        tally.status_messages += 1
        backlog, gw.backlog = gw.backlog, []
        for i in range(0, len(backlog), BACKFILL_CHUNK):
            chunk = backlog[i:i + BACKFILL_CHUNK]
            self._publish(gw, gw.topic, orjson.dumps({"gateway": gw.id, "readings": chunk}))
            tally.messages += 1
        tally.readings += len(backlog)
        tally.backfilled += len(backlog)
        log.info("gateway %s is back online; backfilled %d readings", gw.id, len(backlog))

    def _garbage(self, gw: _Gateway, window: IncidentWindow, tally: _Tally) -> None:
        from simulators.garbage import build_garbage

        if not gw.online:
            log.warning("incident %d (garbage): gateway %s is offline then; skipped", window.number, gw.id)
            return
        if self._last_tick is None:
            log.warning("incident %d (garbage): no reading published yet; skipped", window.number)
            return
        for kind, payload, expected, good in build_garbage(self, gw, window.start_ts,
                                                           self._garbage_kinds.get(window.number, ())):
            self._publish(gw, gw.topic, payload)
            self.garbage_log.append(GarbageRecord(window.start_ts, gw.id, kind, gw.topic, payload, expected))
            tally.messages += 1
            tally.garbage_messages += 1
            tally.garbage_good_readings += good

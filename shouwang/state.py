"""Household state: per-meter and per-household arrays that ingest updates and detectors read."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from shouwang.domain import GatewayStatus, MeterKind, Reading, Registry

NEVER = np.iinfo(np.int64).min // 2  # "no timestamp yet", far enough from overflow for subtraction
_WATER, _ELEC = 0, 1


@dataclass(frozen=True, slots=True)
class ActivityModel:
    """What counts as activity: water use, or electricity above the household's base load."""

    water_min_m3: float = 0.001
    elec_margin_kw: float = 0.05
    elec_base_factor: float = 1.5
    base_drift: float = 0.01  # how fast the base-load estimate may creep up per interval
    max_rate_interval_s: int = 3 * 3600  # rates over longer gaps are too coarse to judge


@dataclass(frozen=True, slots=True)
class MeterSummary:
    """A meter's live state, for the API."""

    meter: str
    kind: MeterKind
    gateway: str
    last_ts: int | None
    last_value: float | None
    last_activity: int | None
    base_load_kw: float | None


@dataclass(frozen=True, slots=True)
class HouseholdSummary:
    """A household's live state, for the API."""

    household: str
    last_activity: int | None
    covered_until: int | None  # event time up to which every meter of the household has reported
    offline_gateways: tuple[str, ...]
    meters: tuple[MeterSummary, ...]


class HouseholdState:
    """Compact arrays indexed by meter and household; safe to read while ingest writes."""

    def __init__(self, registry: Registry, model: ActivityModel | None = None, started_at: int = 0) -> None:
        self.model = model or ActivityModel()
        self.lock = threading.RLock()
        self.started_at = started_at
        self.meter_ids = [m.id for m in registry.meters]
        self.meter_index = {m: i for i, m in enumerate(self.meter_ids)}
        self.household_ids = [h.id for h in registry.households]
        self.household_index = {h: i for i, h in enumerate(self.household_ids)}
        self.gateway_ids = [g.id for g in registry.gateways]
        self.gateway_index = {g: i for i, g in enumerate(self.gateway_ids)}
        self.meter_kind = np.array([_WATER if m.kind == MeterKind.WATER else _ELEC for m in registry.meters],
                                   dtype=np.int8)
        self.meter_household = np.array([self.household_index[m.household] for m in registry.meters],
                                        dtype=np.int32)
        self.meter_gateway = np.array([self.gateway_index[m.gateway] for m in registry.meters], dtype=np.int32)
        n = len(self.meter_ids)
        self.first_ts = np.full(n, NEVER, dtype=np.int64)
        self.last_ts = np.full(n, NEVER, dtype=np.int64)
        self.last_value = np.zeros(n, dtype=np.float64)
        self.last_activity = np.full(n, NEVER, dtype=np.int64)
        self.base_rate = np.full(n, np.inf, dtype=np.float64)
        self.gateway_online = np.ones(len(self.gateway_ids), dtype=bool)
        self.gateway_status_at = np.full(len(self.gateway_ids), NEVER, dtype=np.int64)

    # ------------------------------------------------------------------ updates
    def apply(self, readings: list[Reading]) -> None:
        """Fold stored readings into the state, in event-time order per meter."""
        with self.lock:
            for r in sorted(readings, key=lambda r: r.ts):
                i = self.meter_index.get(r.meter)
                if i is not None:
                    self._apply_one(i, r.ts, r.value)

    def _apply_one(self, i: int, ts: int, value: float) -> None:
        prev_ts = int(self.last_ts[i])
        if ts <= prev_ts:
            return  # late reading: stored, but the interval it falls in was already judged
        if prev_ts == NEVER:
            self.first_ts[i] = ts
        else:
            dv = value - float(self.last_value[i])
            dt = ts - prev_ts
            if self._is_activity(i, dv, dt):
                self.last_activity[i] = ts
        self.last_ts[i] = ts
        self.last_value[i] = value

    def _is_activity(self, i: int, dv: float, dt: int) -> bool:
        m = self.model
        if self.meter_kind[i] == _WATER:
            return dv >= m.water_min_m3
        if dt <= 0 or dt > m.max_rate_interval_s:
            return False
        rate = dv * 3600.0 / dt
        base = float(self.base_rate[i])
        if rate < base:
            self.base_rate[i] = rate
            base = rate
        else:
            self.base_rate[i] = base + (rate - base) * m.base_drift
        return rate > base * m.elec_base_factor + m.elec_margin_kw

    def set_gateway_status(self, status: GatewayStatus) -> None:
        """Record a gateway's announced status (online, or offline by its last will)."""
        with self.lock:
            g = self.gateway_index.get(status.gateway)
            if g is not None and status.at >= self.gateway_status_at[g]:
                self.gateway_online[g] = status.online
                self.gateway_status_at[g] = status.at

    # ------------------------------------------------------------------ views
    def household_last_activity(self) -> np.ndarray:
        """Latest activity per household (NEVER if none seen)."""
        out = np.full(len(self.household_ids), NEVER, dtype=np.int64)
        np.maximum.at(out, self.meter_household, self.last_activity)
        return out

    def household_first_seen(self) -> np.ndarray:
        """Event time from which every meter of a household has been reporting (NEVER if one never has)."""
        latest = np.full(len(self.household_ids), NEVER, dtype=np.int64)
        np.maximum.at(latest, self.meter_household, self.first_ts)
        earliest = np.full(len(self.household_ids), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(earliest, self.meter_household, self.first_ts)
        latest[earliest == NEVER] = NEVER
        return latest

    def household_covered_until(self) -> np.ndarray:
        """Event time up to which all of a household's meters have reported (NEVER if one never has)."""
        out = np.full(len(self.household_ids), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(out, self.meter_household, self.last_ts)
        out[out == np.iinfo(np.int64).max] = NEVER
        return out

    def household_offline(self) -> np.ndarray:
        """True for households with a meter behind an offline gateway."""
        out = np.zeros(len(self.household_ids), dtype=bool)
        np.logical_or.at(out, self.meter_household, ~self.gateway_online[self.meter_gateway])
        return out

    def summary(self, household: str) -> HouseholdSummary | None:
        """Live state of one household, or None if it is not registered."""
        h = self.household_index.get(household)
        if h is None:
            return None
        with self.lock:
            idx = np.flatnonzero(self.meter_household == h)
            meters = tuple(self._meter_summary(int(i)) for i in idx)
            acts = [m.last_activity for m in meters if m.last_activity is not None]
            tss = [m.last_ts for m in meters]
            offline = tuple(sorted({m.gateway for m in meters
                                    if not self.gateway_online[self.gateway_index[m.gateway]]}))
        covered = None if (not tss or any(t is None for t in tss)) else min(tss)
        return HouseholdSummary(household, max(acts) if acts else None, covered, offline, meters)

    def _meter_summary(self, i: int) -> MeterSummary:
        ts = int(self.last_ts[i])
        act = int(self.last_activity[i])
        base = float(self.base_rate[i])
        kind = MeterKind.WATER if self.meter_kind[i] == _WATER else MeterKind.ELECTRICITY
        return MeterSummary(
            self.meter_ids[i], kind, self.gateway_ids[int(self.meter_gateway[i])],
            None if ts == NEVER else ts, None if ts == NEVER else float(self.last_value[i]),
            None if act == NEVER else act,
            None if kind == MeterKind.WATER or not np.isfinite(base) else round(base, 4))

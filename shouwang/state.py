"""Household state: per-meter and per-household arrays that ingest updates and detectors read.

Everything is a compact numpy array indexed by meter, household or gateway, so 100,000 households with their
learned routines fit in a few hundred megabytes (``python -m detectors.measure`` prints the figure).

What is kept, besides each meter's last reading:

- **Half-hour slot rings** per meter (``RING_SLOTS`` slots, about two days): the meter's cumulative *usable*
  consumption at the end of each slot (``slot_reg``; faults excluded) and flags saying whether the slot is
  known (covered by a short reading interval, or by a water interval without use) and whether it held
  activity. Windowed usage (water in the last 12 h, a calendar day, every half hour of a day) is a difference
  of two ring entries.
- **Learned routine** per household, rolled once a local day (``roll_lag_s`` after local midnight): for each of
  the last ``HISTORY_DAYS`` days and each half hour of the day, the longest time without activity that reached
  into that half hour (``gap_hist``, in half hours; Cuddihy et al. 2007), the top values per half hour across
  days (``gap_top``), daily water and electricity totals and their medians, and per water meter the longest
  continuous-flow run of each day.
- **Meter health**: last register change, last fault (register backwards, impossible jump).

``apply`` is vectorised across meters: it sorts a batch by (meter, time) and processes it in rounds, each
round taking at most one reading per meter. Its cost is a fixed ~0.3 ms per round plus ~1 µs per reading, so
feed it readings in event-time chunks (a batch from the broker, or one step of a replay), not one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from shouwang.domain import GatewayStatus, MeterKind, Reading, Registry

_METER, _TS, _VALUE = attrgetter("meter"), attrgetter("ts"), attrgetter("value")
NEVER = np.iinfo(np.int64).min // 2  # "no timestamp yet", far enough from overflow for subtraction
_WATER, _ELEC = 0, 1
_I64_MAX = np.iinfo(np.int64).max

SLOT_S = 1800  # half an hour: the resolution of usage rings and learned routines
SLOTS_PER_DAY = 86400 // SLOT_S
RING_SLOTS = 104  # 52 h of half-hour slots: a whole previous local day plus the current one
HISTORY_DAYS = 28  # four weeks of learned days (a multiple of 7, so ring row % 7 is the day of the week)
TOP_K = 3  # per half hour, the TOP_K longest gaps across the history are kept sorted
MISSING = 255  # uint8 "unknown" in the learned rings
COVERED, ACTIVE = 1, 2  # slot flags
RUN_UNIT_S = 900  # learned daily longest runs are stored in quarter hours

FAULT_NONE, FAULT_BACKWARDS, FAULT_JUMP = 0, 1, 2


@dataclass(frozen=True, slots=True)
class ActivityModel:
    """What counts as activity: water use, or electricity above the household's base load; and what a meter
    cannot physically do (run backwards, or deliver more than a household connection can)."""

    water_min_m3: float = 0.001
    elec_margin_kw: float = 0.05
    elec_base_factor: float = 1.5
    base_drift: float = 0.01  # how fast the base-load estimate may creep up per interval
    # ... and the power over the last hour or so must stand out from the household's own quiet hours: a fridge's
    # compressor, standby loads and timers wander above the base from one 15-minute interval to the next but
    # average out over an hour; a lamp, the TV, a kettle, cooking do not. The window runs from the end of the
    # half-hour slot ``elec_window_slots`` before the reading's own to the reading (45-60 min with 15-minute
    # readings; an interval at least that long is its own window); 0 turns the test off. The quiet level is an
    # online ``elec_quiet_quantile`` of that windowed power (a multiplicative stochastic-approximation
    # estimate, ``elec_quiet_step`` per quarter hour of data). The line is ``factor × quiet + margin``, the margin
    # ``elec_quiet_dev_factor`` × the median distance of single intervals from the quiet level while the window
    # is quiet (how much this home's fridge and standby loads wander), kept between the two bounds.
    elec_window_slots: int = 2
    elec_quiet_quantile: float = 0.25
    elec_quiet_step: float = 0.01
    elec_quiet_factor: float = 1.2
    elec_quiet_dev_factor: float = 2.5
    elec_quiet_margin_min_kw: float = 0.015
    elec_quiet_margin_max_kw: float = 0.05
    max_rate_interval_s: int = 3 * 3600  # rates over longer gaps are too coarse to judge
    # meter faults: a register going backwards by more than the tolerance (small steps back are jitter or
    # backflow and are ignored), or rising faster than a household connection can deliver
    water_backwards_tol_m3: float = 0.02
    elec_backwards_tol_kwh: float = 0.05
    water_max_m3_per_h: float = 3.0  # a DN15 domestic meter's overload flow Q4 is 3.125 m³/h
    elec_max_kw: float = 30.0  # well above a 63 A single-phase supply
    water_jump_slack_m3: float = 0.05
    elec_jump_slack_kwh: float = 0.5
    # continuous flow: an interval at or above this rate is "high flow" (an open tap, a shower)
    high_flow_m3_per_h: float = 0.12
    run_learn_cap_s: int = 20 * 3600  # longer runs are never learned as ordinary (leaks)
    # an interval longer than ``run_fine_s`` (hourly or NB-IoT readings) cannot show a pause inside it: it counts
    # toward a run only if its average flow is at least a slow leak's, not because someone ran a tap once in it
    run_fine_s: int = 900
    run_min_m3_per_h: float = 0.006
    roll_lag_s: int = 3 * 3600  # a local day is learned this long after it ends (late meters catch up)


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
    activity_line_kw: float | None = None  # electricity: power over an hour above which the hour counts as activity


@dataclass(frozen=True, slots=True)
class HouseholdSummary:
    """A household's live state, for the API."""

    household: str
    last_activity: int | None
    covered_until: int | None  # event time up to which every meter of the household has reported
    offline_gateways: tuple[str, ...]
    meters: tuple[MeterSummary, ...]


def _grouped(keys: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of ``keys`` (each in 0..groups-1): positions ordered by key, and where each key's run starts."""
    order = np.argsort(keys, kind="stable").astype(np.int64)
    counts = np.bincount(keys, minlength=groups) if keys.size else np.zeros(groups, dtype=np.int64)
    return order, np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def _members(order: np.ndarray, ptr: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of a CSR from ``_grouped``: the members of ``groups`` one group after another, where each group starts
    among them, and how many each has."""
    counts = ptr[groups + 1] - ptr[groups]
    starts = np.cumsum(counts) - counts
    return order[np.repeat(ptr[groups] - starts, counts) + np.arange(int(counts.sum()))], starts, counts


class ZoneOffsets:
    """UTC offsets of a few IANA zones at many instants, from hourly tables built lazily per zone."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self._zones = [ZoneInfo(n) for n in names]
        self._tables: list[tuple[int, np.ndarray] | None] = [None] * len(names)  # (first hour, offsets)

    def _table(self, z: int, lo_h: int, hi_h: int) -> tuple[int, np.ndarray]:
        tab = self._tables[z]
        if tab is not None and tab[0] <= lo_h and hi_h < tab[0] + len(tab[1]):
            return tab
        start = min(lo_h, tab[0]) if tab is not None else lo_h
        end = max(hi_h + 1, tab[0] + len(tab[1])) if tab is not None else hi_h + 1
        start, end = (start // 24 - 400) * 24, (end // 24 + 800) * 24  # whole days, padded by a year or two
        zone = self._zones[z]

        def offset(hour: int) -> int:
            return int(datetime.fromtimestamp(hour * 3600, UTC).astimezone(zone).utcoffset().total_seconds())

        days = range(start // 24, end // 24 + 1)
        daily = np.array([offset(d * 24) for d in days], dtype=np.int32)
        offs = np.repeat(daily[:-1], 24)
        for d in np.flatnonzero(daily[1:] != daily[:-1]):  # a transition that day: look hour by hour
            h0 = (days[0] + int(d)) * 24
            offs[h0 - start:h0 - start + 24] = [offset(h) for h in range(h0, h0 + 24)]
        self._tables[z] = (start, offs)
        return start, offs

    def at(self, zone: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Offset in seconds (local − UTC) of ``zone[i]`` at ``ts[i]``."""
        ts = np.asarray(ts, dtype=np.int64)
        out = np.zeros(ts.shape, dtype=np.int64)
        if ts.size == 0:
            return out
        bad = ts < -(2**40)  # NEVER and the like: any offset will do
        some_bad = bool(bad.any())
        zones = np.asarray(zone)
        uniq = (int(zones.flat[0]),) if zones.size and (zones == zones.flat[0]).all() else np.unique(zones)
        if len(uniq) == 1 and not bad.all():  # one zone: if its offset is constant over the span, one value for all
            good = ts[~bad] if some_bad else ts
            lo, hi = int(good.min()) // 3600, int(good.max()) // 3600
            start, offs = self._table(int(uniq[0]), lo, hi)
            span = offs[lo - start:hi - start + 1]
            if (span == span[0]).all():
                out[:] = span[0]
                return out
        hours = (np.where(bad, int(ts[~bad].max()) if not bad.all() else 0, ts) if some_bad else ts) // 3600
        for z in uniq:
            z = int(z)
            sel = slice(None) if len(uniq) == 1 else zones == z
            h = hours[sel]
            start, offs = self._table(z, int(h.min()), int(h.max()))
            out[sel] = offs[h - start]
        return out


class HouseholdState:
    """Compact arrays indexed by meter and household; safe to read while ingest writes (take ``lock``)."""

    def __init__(self, registry: Registry, model: ActivityModel | None = None, started_at: int = 0,
                 default_timezone: str = "Asia/Shanghai") -> None:
        self.model = model or ActivityModel()
        self.lock = threading.RLock()
        self.started_at = started_at
        self.meter_ids = [m.id for m in registry.meters]
        self.meter_index = {m: i for i, m in enumerate(self.meter_ids)}
        self.household_ids = [h.id for h in registry.households]
        self.household_index = {h: i for i, h in enumerate(self.household_ids)}
        self.gateway_ids = [g.id for g in registry.gateways]
        self.gateway_index = {g: i for i, g in enumerate(self.gateway_ids)}
        # communities and their time zones (learned routines are in local time)
        self.community_ids = [c.id for c in registry.communities]
        self.community_index = {c: i for i, c in enumerate(self.community_ids)}
        zone_of = {c.id: c.timezone for c in registry.communities}
        self.zone_names = sorted({default_timezone, *zone_of.values()})
        self.zones = ZoneOffsets(self.zone_names)
        zi = {z: i for i, z in enumerate(self.zone_names)}
        self.household_community = np.array([self.community_index.get(h.community, -1) for h in registry.households],
                                            dtype=np.int32)
        self.household_zone = np.array([zi[zone_of.get(h.community, default_timezone)] for h in registry.households],
                                       dtype=np.int16)
        self.meter_kind = np.array([_WATER if m.kind == MeterKind.WATER else _ELEC for m in registry.meters],
                                   dtype=np.int8)
        self.meter_household = np.array([self.household_index[m.household] for m in registry.meters],
                                        dtype=np.int32)
        self.meter_gateway = np.array([self.gateway_index[m.gateway] for m in registry.meters], dtype=np.int32)
        n, nh = len(self.meter_ids), len(self.household_ids)
        # meters grouped by household and by gateway (CSR), for per-household reductions
        self._hh_order, self._hh_ptr = _grouped(self.meter_household, nh)
        self._gw_order, self._gw_ptr = _grouped(self.meter_gateway, len(self.gateway_ids))
        self.gateway_meter_count = np.diff(self._gw_ptr)  # meters behind each gateway
        counts = np.diff(self._hh_ptr)
        self._hh_has = counts > 0
        self._hh_starts = self._hh_ptr[:-1][self._hh_has]
        self.is_water = self._read_only(self.meter_kind == _WATER)
        self.household_water_count = np.bincount(self.meter_household[self.is_water], minlength=nh) \
            if n else np.zeros(nh, dtype=np.int64)
        self._hh_grouped = bool(n == 0 or (np.diff(self.meter_household) >= 0).all())  # no reordering needed

        # ---- per meter: last reading, activity, base load
        self.first_ts = np.full(n, NEVER, dtype=np.int64)
        self.last_ts = np.full(n, NEVER, dtype=np.int64)
        self.last_value = np.zeros(n, dtype=np.float64)
        self.last_activity = np.full(n, NEVER, dtype=np.int64)
        self.base_rate = np.full(n, np.inf, dtype=np.float64)
        self.quiet_rate = np.full(n, np.nan, dtype=np.float32)  # learned quiet level of windowed power, kW
        self.quiet_dev = np.full(n, np.nan, dtype=np.float32)  # how far single intervals stray from it, kW
        self.ref_value = np.zeros(n, dtype=np.float64)  # register deltas are taken from here (ignores jitter)
        self.last_change = np.full(n, NEVER, dtype=np.int64)  # last time the register moved
        # ---- per meter: faults
        self.fault_at = np.full(n, NEVER, dtype=np.int64)
        self.fault_kind = np.zeros(n, dtype=np.int8)
        self.fault_dv = np.zeros(n, dtype=np.float32)
        self.fault_dt = np.zeros(n, dtype=np.int32)
        # ---- per meter: usage ring of half-hour slots
        self.use_total = np.zeros(n, dtype=np.float64)  # usable consumption since the first reading
        self.slot_reg = np.zeros((n, RING_SLOTS), dtype=np.float32)  # use_total at the end of each slot
        self.slot_flags = np.zeros((n, RING_SLOTS), dtype=np.uint8)
        # ---- per meter (water): continuous-flow runs, learned daily longest runs
        self.run_start = np.full(n, NEVER, dtype=np.int64)  # start of the current run of flowing intervals
        self.hi_run_start = np.full(n, NEVER, dtype=np.int64)  # same, at high flow
        self.run_today = np.zeros(n, dtype=np.int32)  # longest run ended since the last roll, seconds
        self.hi_run_today = np.zeros(n, dtype=np.int32)
        self.run_daily = np.full((n, HISTORY_DAYS), MISSING, dtype=np.uint8)  # quarter hours
        self.hi_run_daily = np.full((n, HISTORY_DAYS), MISSING, dtype=np.uint8)
        self.run_learned = np.full(n, -1, dtype=np.int32)  # 2nd-longest daily run in the history, s (-1: none)
        self.hi_run_learned = np.full(n, -1, dtype=np.int32)
        self.run_days = np.zeros(n, dtype=np.uint8)  # days of run history in the ring
        # ---- per meter: days the meter was seen for a whole day, and days its register moved
        self.days_seen = np.zeros(n, dtype=np.uint16)
        self.days_moved = np.zeros(n, dtype=np.uint16)

        # ---- per household: learned routine
        self.hh_last_ts = np.full(nh, NEVER, dtype=np.int64)  # newest reading of any of its meters
        self.roll_day = np.full(nh, NEVER, dtype=np.int64)  # next local day (days since epoch) to learn
        self.roll_due = np.full(nh, _I64_MAX, dtype=np.int64)  # when that day can be learned
        self.roll_carry = np.full(nh, np.nan, dtype=np.float32)  # inactivity (half hours) at end of last day
        self.gap_hist = np.full((nh, HISTORY_DAYS, SLOTS_PER_DAY), MISSING, dtype=np.uint8)
        self.gap_top = np.full((nh, TOP_K, SLOTS_PER_DAY), MISSING, dtype=np.uint8)
        # per weekday (local day % 7) and half hour, the longest gap of the four same weekdays in the history
        self.gap_dow = np.full((nh, 7, SLOTS_PER_DAY), MISSING, dtype=np.uint8)
        self.hist_days = np.zeros(nh, dtype=np.uint8)  # learned days currently in the history
        self.days_learned = np.zeros(nh, dtype=np.uint16)  # learned days ever
        self.daily_use = np.full((nh, HISTORY_DAYS, 2), np.nan, dtype=np.float32)  # [water m³, kWh] per day
        self.daily_median = np.full((nh, 2), np.nan, dtype=np.float32)
        self.daily_n = np.zeros((nh, 2), dtype=np.uint8)

        # ---- per gateway
        self.gateway_online = np.ones(len(self.gateway_ids), dtype=bool)
        self.gateway_status_at = np.full(len(self.gateway_ids), NEVER, dtype=np.int64)

        # ---- per household, derived: what every sweep asks of a household's meters, kept instead of reduced over
        # all of them each time; ``apply`` and ``load`` mark the households they touch, a read recomputes those
        self._agg_activity = np.full(nh, NEVER, dtype=np.int64)  # latest activity of any meter
        self._agg_covered = np.full(nh, NEVER, dtype=np.int64)  # the oldest of its meters' newest readings
        self._agg_first_seen = np.full(nh, NEVER, dtype=np.int64)  # when its last meter began reporting
        self._agg_stale = np.ones(nh, dtype=bool)
        self._first_stale = np.ones(nh, dtype=bool)  # first seen changes only with a meter's first reading
        # ---- per meter, derived: figures computed from a meter's own arrays as of its newest reading (``kept``: the
        # usage over a window of half hours, a preset's day), per function asked for: (arrays, stale), recomputed only
        # for the meters that read since
        self._kept: dict[tuple, tuple[tuple[np.ndarray, ...], np.ndarray]] = {}

    # ------------------------------------------------------------------ updates
    def apply(self, readings: list[Reading]) -> None:
        """Fold stored readings into the state, in event-time order per meter."""
        if not readings:
            return
        n = len(readings)  # map and attrgetter run in C: a third faster than generator expressions here
        idx = np.fromiter(map(self.meter_index.get, map(_METER, readings), repeat(-1)), dtype=np.int64, count=n)
        ts = np.fromiter(map(_TS, readings), dtype=np.int64, count=n)
        value = np.fromiter(map(_VALUE, readings), dtype=np.float64, count=n)
        self.apply_arrays(idx, ts, value)

    def apply_arrays(self, meter: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        """``apply`` for readings given as arrays: meter index (-1 = unknown, skipped), epoch s, register."""
        meter = np.asarray(meter, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.int64)
        value = np.asarray(value, dtype=np.float64)
        keep = meter >= 0
        if not keep.all():
            meter, ts, value = meter[keep], ts[keep], value[keep]
        if meter.size == 0:
            return
        with self.lock:
            srt = np.sort(meter)
            if (srt[1:] != srt[:-1]).all():  # each meter once (a broker batch, a replay step): one round
                self._round(meter, ts, value)
                return
            order = np.lexsort((ts, meter))  # stable: equal (meter, ts) keep their arrival order
            meter, ts, value = meter[order], ts[order], value[order]
            dup = np.zeros(meter.size, dtype=bool)
            dup[1:] = (meter[1:] == meter[:-1]) & (ts[1:] == ts[:-1])
            if dup.any():  # the first of equal (meter, ts) wins, as a later one would be "late"
                meter, ts, value = meter[~dup], ts[~dup], value[~dup]
            starts = np.flatnonzero(np.concatenate(([True], meter[1:] != meter[:-1])))
            counts = np.diff(np.concatenate((starts, [meter.size])))
            rank = np.arange(meter.size) - np.repeat(starts, counts)
            by_rank = np.argsort(rank, kind="stable")
            bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))
            for k in range(len(bounds) - 1):
                sel = by_rank[bounds[k]:bounds[k + 1]]
                self._round(meter[sel], ts[sel], value[sel])

    def _round(self, m: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        """Fold at most one reading per meter."""
        prev = self.last_ts[m]
        newer = t > prev
        if not newer.all():  # late readings: stored, but the interval they fall in was already judged
            m, t, v, prev = m[newer], t[newer], v[newer], prev[newer]
            if m.size == 0:
                return
        first = prev == NEVER
        if first.any():
            fm, ft = m[first], t[first]
            self._first_stale[self.meter_household[fm]] = True
            self.first_ts[fm] = ft
            self.last_change[fm] = ft
            self.ref_value[fm] = v[first]
            self.slot_flags[fm] = 0
            self.slot_reg[fm, ((ft - 1) // SLOT_S) % RING_SLOTS] = self.use_total[fm]
            if not first.all():
                nf = ~first
                self._advance(m[nf], t[nf], v[nf], prev[nf])
        else:
            self._advance(m, t, v, prev)
        self.last_ts[m] = t
        self.last_value[m] = v
        hh = self.meter_household[m]
        self._agg_stale[hh] = True
        for _, stale in self._kept.values():
            stale[m] = True
        np.maximum.at(self.hh_last_ts, hh, t)
        self._roll_due(hh)

    def _advance(self, m: np.ndarray, t: np.ndarray, v: np.ndarray, p: np.ndarray) -> None:
        """One interval (p, t] per meter, each meter's previous reading at p."""
        md = self.model
        dv = v - self.ref_value[m]
        dt = t - p
        water = self.meter_kind[m] == _WATER
        # faults: backwards beyond jitter, or faster than any household can use
        tol = np.where(water, md.water_backwards_tol_m3, md.elec_backwards_tol_kwh)
        backwards = dv < -tol
        limit = np.where(water, md.water_max_m3_per_h, md.elec_max_kw) * (dt / 3600.0) \
            + np.where(water, md.water_jump_slack_m3, md.elec_jump_slack_kwh)
        jump = dv > limit
        fault = backwards | jump
        jitter = (dv < 0) & ~backwards  # small step back: keep the reference, count nothing
        good = ~fault & ~jitter
        short = dt <= md.max_rate_interval_s
        use = np.where(good, dv, 0.0)
        # registers are decimals in binary floats: 36.413 - 36.412 is 0.000999…, still one litre
        wmin = md.water_min_m3 - 1e-9
        # activity
        act = water & good & (dv >= wmin)
        e = ~water & good & short
        if e.any():
            ei = np.flatnonzero(e)
            me = m[ei]
            rate = dv[ei] * 3600.0 / dt[ei]
            base = self.base_rate[me]
            lower = rate < base
            with np.errstate(invalid="ignore"):
                self.base_rate[me] = np.where(lower, rate, base + (rate - base) * md.base_drift)
            ref = np.where(lower, rate, base)
            act[ei] = rate > ref * md.elec_base_factor + md.elec_margin_kw
            if md.elec_window_slots > 0:
                act[ei] &= self._windowed_above_quiet(me, t[ei], p[ei], dv[ei], rate)
        if act.any():
            self.last_activity[m[act]] = t[act]
        moved = (dv != 0) & ~jitter
        if moved.any():
            self.last_change[m[moved]] = t[moved]
        if fault.any():
            fi = np.flatnonzero(fault)
            self.fault_at[m[fi]] = t[fi]
            self.fault_kind[m[fi]] = np.where(backwards[fi], FAULT_BACKWARDS, FAULT_JUMP)
            self.fault_dv[m[fi]] = dv[fi]
            self.fault_dt[m[fi]] = np.minimum(dt[fi], np.iinfo(np.int32).max)
        self.ref_value[m] = np.where(jitter, self.ref_value[m], v)
        if water.any():
            steady = (dt <= md.run_fine_s) | (dv * 3600.0 >= md.run_min_m3_per_h * dt)
            self._runs(m, water, good & short & (dv >= wmin) & steady,
                       good & short & (dv * 3600.0 >= md.high_flow_m3_per_h * dt), good & short, p)
        self._slots(m, t, p, dt, use, ~fault & (short | (water & (dv < wmin))), act)
        self.use_total[m] += use

    def _windowed_above_quiet(self, me: np.ndarray, t: np.ndarray, p: np.ndarray, dv: np.ndarray,
                              rate: np.ndarray) -> np.ndarray:
        """Electricity intervals (p, t] (each usable and short): whether the power over the window ending at t
        stands out from the meter's learned quiet level; learns that level from the same windowed power, and how
        far single intervals stray from it while the window is quiet."""
        md = self.model
        w0 = (t - 1) // SLOT_S - md.elec_window_slots  # the window starts at the end of this slot
        # the ring holds the usable total at the end of slot w0 if a reading came after it (p past its end)
        # and the meter was reporting by then; otherwise the interval itself is the window
        ok = (w0 < (p - 1) // SLOT_S) & (w0 >= (self.first_ts[me] - 1) // SLOT_S)
        start = (w0 + 1) * SLOT_S
        used = self.use_total[me] + dv - self.slot_reg.reshape(-1)[me * RING_SLOTS + w0 % RING_SLOTS]
        with np.errstate(invalid="ignore", divide="ignore"):
            power = np.where(ok, np.maximum(used, 0.0) * 3600.0 / (t - start), rate)
        quiet = self.quiet_rate[me].astype(np.float64)
        dev = self.quiet_dev[me].astype(np.float64)
        new = ~(quiet > 0)  # first interval (NaN), or a level learned at zero
        quiet = np.where(new, np.maximum(power, 1e-3), quiet)
        dev = self._filled_dev(dev)
        above = power > self._quiet_line(quiet, dev)
        # multiplicative quantile tracking: up by step·(1-q) when above, down by step·q when below, per quarter hour
        weight = np.minimum(t - p, 3600) / 900.0
        step = md.elec_quiet_step * weight * (md.elec_quiet_quantile - (power < quiet))
        self.quiet_rate[me] = np.where(new, quiet, quiet * np.exp(step)).astype(np.float32)
        # the median distance of a single interval from the quiet level, learned while the window is quiet
        x = np.abs(rate - quiet)
        dstep = md.elec_quiet_step * weight * (0.5 - (x < dev))
        self.quiet_dev[me] = np.where(above, dev, np.maximum(dev * np.exp(dstep), 1e-4)).astype(np.float32)
        return above

    def _filled_dev(self, dev: np.ndarray) -> np.ndarray:
        """How far single intervals stray from the quiet level; where none is learned yet, what gives the widest
        margin."""
        md = self.model
        return np.where(np.isnan(dev), md.elec_quiet_margin_max_kw / md.elec_quiet_dev_factor, dev)

    def _quiet_line(self, quiet: np.ndarray, dev: np.ndarray) -> np.ndarray:
        """Windowed power above which an interval stands out: factor × the quiet level + the margin from ``dev``."""
        md = self.model
        margin = np.clip(dev * md.elec_quiet_dev_factor, md.elec_quiet_margin_min_kw, md.elec_quiet_margin_max_kw)
        return quiet * md.elec_quiet_factor + margin

    def _runs(self, m, water, flow, high, judged, p) -> None:
        """Continuous-flow runs of water meters: consecutive short intervals each with use."""
        cap = self.model.run_learn_cap_s
        wi = np.flatnonzero(water)
        mw, pw = m[wi], p[wi]
        for start, today, flows in ((self.run_start, self.run_today, flow[wi]),
                                    (self.hi_run_start, self.hi_run_today, high[wi])):
            rs = start[mw]
            ongoing = rs != NEVER
            ended = ongoing & ~flows & judged[wi]  # a clear end: a short interval without use
            if ended.any():
                length = pw[ended] - rs[ended]
                ok = length <= cap
                me = mw[ended][ok]
                today[me] = np.maximum(today[me], length[ok])
            start[mw] = np.where(flows, np.where(ongoing, rs, pw), NEVER)

    def _slots(self, m, t, p, dt, use, known, act) -> None:
        """Write the interval (p, t] into each meter's half-hour ring."""
        s_old = (p - 1) // SLOT_S  # newest slot the ring already holds
        s_new = (t - 1) // SLOT_S
        first = np.maximum(p // SLOT_S, s_new - RING_SLOTS + 1)
        cnt = s_new - first + 1
        reg, flags = self.slot_reg.reshape(-1), self.slot_flags.reshape(-1)
        if (cnt == 1).all():  # every interval within one half hour (15-minute readings)
            rep, s = slice(None), s_new
        else:
            rep = np.repeat(np.arange(m.size), cnt)
            s = np.repeat(first - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
        mr, tr, pr, dtr = m[rep], t[rep], p[rep], dt[rep]
        flat = mr * RING_SLOTS + s % RING_SLOTS
        frac = np.clip((np.minimum(tr, (s + 1) * SLOT_S) - pr) / dtr, 0.0, 1.0)
        reg[flat] = self.use_total[mr] + use[rep] * frac
        kr = known[rep]
        fresh = s > s_old[rep]
        cov = np.where(kr, COVERED, 0).astype(np.uint8)
        if fresh.all():
            flags[flat] = cov
        else:
            flags[flat[fresh]] = cov[fresh]
            again = flat[~fresh & kr]
            flags[again] |= COVERED
        if act.any():
            flags[m[act] * RING_SLOTS + s_new[act] % RING_SLOTS] |= COVERED | ACTIVE

    # ------------------------------------------------------------------ daily learning
    def _roll_due(self, hh: np.ndarray) -> None:
        new = self.roll_day[hh] == NEVER
        if new.any():
            h = np.unique(hh[new])
            off = self.zones.at(self.household_zone[h], self.hh_last_ts[h])
            day = (self.hh_last_ts[h] + off) // 86400
            self.roll_day[h] = day
            self.roll_due[h] = (day + 1) * 86400 - off + self.model.roll_lag_s
        due = self.hh_last_ts[hh] >= self.roll_due[hh]
        if not due.any():
            return
        due = np.unique(hh[due])
        # a household back after more than the whole history: forget and restart from four weeks back
        off = self.zones.at(self.household_zone[due], self.hh_last_ts[due])
        latest = (self.hh_last_ts[due] - self.model.roll_lag_s + off) // 86400 - 1
        far = latest - self.roll_day[due] >= HISTORY_DAYS
        if far.any():
            h = due[far]
            self.roll_day[h] = latest[far] - HISTORY_DAYS + 1
            self.roll_carry[h] = np.nan
        for _ in range(HISTORY_DAYS + 1):
            if due.size == 0:
                break
            self._roll(due)
            due = due[self.hh_last_ts[due] >= self.roll_due[due]]

    def _roll(self, hs: np.ndarray) -> None:
        """Learn one local day (``roll_day``) for each household in ``hs``."""
        nh = hs.size
        day = self.roll_day[hs]
        off = self.zones.at(self.household_zone[hs], self.hh_last_ts[hs])
        day_start = day * 86400 - off
        s0 = day_start // SLOT_S
        ms, pair_starts, counts = _members(self._hh_order, self._hh_ptr, hs)
        row_of = np.repeat(np.arange(nh), counts)
        bins = np.arange(-1, SLOTS_PER_DAY)
        slots = s0[row_of, None] + bins  # (pairs, 49): the slot before the day, then the day's 48
        head = (self.last_ts[ms] - 1) // SLOT_S
        first_slot = (self.first_ts[ms] - 1) // SLOT_S
        seen = self.first_ts[ms] != NEVER
        valid = ((slots <= head[:, None]) & (slots > head[:, None] - RING_SLOTS)
                 & (slots >= first_slot[:, None]) & seen[:, None])
        pos = slots % RING_SLOTS
        flags = np.where(valid, self.slot_flags[ms[:, None], pos], 0)[:, 1:]
        reg = self.slot_reg[ms[:, None], pos]
        known_m = (flags & COVERED) != 0
        act_m = (flags & ACTIVE) != 0
        # household: active if any meter was; known inactive only if every meter that ever reported knows
        known_m |= ~seen[:, None]
        act = np.logical_or.reduceat(act_m, pair_starts, axis=0)
        known = np.logical_and.reduceat(known_m, pair_starts, axis=0) | act
        # longest inactivity reaching into each half hour (in half hours), Cuddihy-style
        carry = self.roll_carry[hs].astype(np.float64)
        idx = np.arange(SLOTS_PER_DAY, dtype=np.float64)
        la = np.where(act, idx, -np.inf)
        lu = np.where(~known, idx, -np.inf)
        la = np.maximum.accumulate(np.concatenate((np.where(np.isnan(carry), -np.inf, -1 - carry)[:, None], la),
                                                  axis=1), axis=1)
        lu = np.maximum.accumulate(np.concatenate((np.where(np.isnan(carry), -1.0, -np.inf)[:, None], lu),
                                                  axis=1), axis=1)
        elapsed = np.where(la > lu, np.arange(-1, SLOTS_PER_DAY) - la, np.nan)  # at the end of each slot
        peak = elapsed[:, :-1] + 1
        peak[~known] = np.nan
        self.roll_carry[hs] = elapsed[:, -1]
        valid_day = act.any(axis=1) & (known.sum(axis=1) >= SLOTS_PER_DAY // 2)
        row = day % HISTORY_DAYS
        peak_u8 = np.where(np.isnan(peak), MISSING, np.minimum(peak, MISSING - 1)).astype(np.uint8)
        peak_u8[~valid_day] = MISSING
        leaving = self.gap_hist[hs, row]  # the day four weeks ago, which this one replaces
        self.gap_hist[hs, row] = peak_u8
        self.days_learned[hs] += valid_day.astype(np.uint16)
        self.hist_days[hs] = (self.hist_days[hs].astype(np.int16) + valid_day
                              - (leaving != MISSING).any(axis=1)).astype(np.uint8)
        self.relearn(hs)
        # daily totals per meter, then per household and kind; a day without any activity is an absence
        ok_m = valid[:, 0] & valid[:, -1]
        used = np.where(ok_m, reg[:, -1].astype(np.float64) - reg[:, 0], np.nan)
        self.days_seen[ms] += ok_m.astype(np.uint16)
        self.days_moved[ms] += (ok_m & (used > 1e-6)).astype(np.uint16)
        kind = self.meter_kind[ms]
        totals = np.full((nh, 2), np.nan)
        for k in (_WATER, _ELEC):
            sel = kind == k
            if sel.any():
                s = np.zeros(nh)
                np.add.at(s, row_of[sel], used[sel])  # NaN if any meter of the kind lacks the day
                has = np.zeros(nh, dtype=bool)
                has[row_of[sel]] = True
                totals[has, k] = s[has]
        totals[~act.any(axis=1)] = np.nan
        self.daily_use[hs, row] = totals
        hist = np.sort(self.daily_use[hs], axis=1)  # (n, days, 2), NaN last
        n_ok = (~np.isnan(hist)).sum(axis=1)
        self.daily_n[hs] = n_ok
        lo, hi = np.maximum(n_ok - 1, 0) // 2, n_ok // 2
        med = (np.take_along_axis(hist, lo[:, None, :], axis=1) + np.take_along_axis(hist, hi[:, None, :], axis=1)) / 2
        self.daily_median[hs] = np.where(n_ok > 0, med[:, 0, :], np.nan)
        # water runs of the day
        wm = kind == _WATER
        if wm.any():
            mw = ms[wm]
            for today, daily, learned in ((self.run_today, self.run_daily, self.run_learned),
                                          (self.hi_run_today, self.hi_run_daily, self.hi_run_learned)):
                q = np.minimum(-(-today[mw] // RUN_UNIT_S), MISSING - 1).astype(np.uint8)
                daily[mw, row[row_of[wm]]] = np.where(ok_m[wm], q, MISSING)
                today[mw] = 0
                d = daily[mw].astype(np.int16)
                d[d == MISSING] = -1
                second = np.sort(d, axis=1)[:, -2]  # the second-longest day
                learned[mw] = np.where(second >= 0, second.astype(np.int32) * RUN_UNIT_S, -1)
            self.run_days[mw] = (self.run_daily[mw] != MISSING).sum(axis=1)
        # next day
        self.roll_day[hs] = day + 1
        self.roll_due[hs] = day_start + 2 * 86400 + self.model.roll_lag_s

    def relearn(self, hs: np.ndarray | None = None) -> None:
        """Derive ``gap_top`` and ``gap_dow`` from ``gap_hist`` for households ``hs`` (None: all)."""
        hs = np.arange(len(self.household_ids)) if hs is None else hs
        g = self.gap_hist[hs] + np.uint8(1)  # MISSING (255) wraps to 0, below every learned value
        self.gap_dow[hs] = g.reshape(len(hs), HISTORY_DAYS // 7, 7, SLOTS_PER_DAY).max(axis=1) - np.uint8(1)
        # per half hour, the TOP_K longest gaps across the history, each widened by its neighbouring half hours
        wide = g.copy()
        np.maximum(wide[:, :, 1:], g[:, :, :-1], out=wide[:, :, 1:])
        np.maximum(wide[:, :, :-1], g[:, :, 1:], out=wide[:, :, :-1])
        np.maximum(wide[:, :, 0], g[:, :, -1], out=wide[:, :, 0])  # around midnight
        np.maximum(wide[:, :, -1], g[:, :, 0], out=wide[:, :, -1])
        top = np.sort(wide.astype(np.int16), axis=1)[:, :-TOP_K - 1:-1, :]  # int16 sorts much faster than uint8
        self.gap_top[hs] = (top - 1).astype(np.uint8)  # 0 - 1 → 255 = MISSING again

    def set_gateway_status(self, status: GatewayStatus) -> None:
        """Record a gateway's announced status (online, or offline by its last will)."""
        with self.lock:
            g = self.gateway_index.get(status.gateway)
            if g is not None and status.at >= self.gateway_status_at[g]:
                self.gateway_online[g] = status.online
                self.gateway_status_at[g] = status.at

    def touch(self, households: np.ndarray | None = None) -> None:
        """Say that per-meter arrays of ``households`` (None: all) were written from outside ``apply`` (a loaded
        file, a benchmark's synthetic state): their per-household aggregates are recomputed on the next read."""
        hs = slice(None) if households is None else households
        with self.lock:
            self._agg_stale[hs] = True
            self._first_stale[hs] = True
            meters = slice(None) if households is None else self.meters_of(households)
            for _, stale in self._kept.values():
                stale[meters] = True

    # ------------------------------------------------------------------ views
    def _per_household(self, values: np.ndarray, ufunc: np.ufunc, empty: float) -> np.ndarray:
        out = np.full(len(self.household_ids), empty, dtype=values.dtype)
        if self._hh_starts.size:
            out[self._hh_has] = ufunc.reduceat(values if self._hh_grouped else values[self._hh_order],
                                               self._hh_starts)
        return out

    def _stale_reduction(self, stale: np.ndarray) -> tuple[slice | np.ndarray, Callable] | None:
        """For the households marked in ``stale`` (the marks are cleared): where their values go, and a function
        reducing a per-meter array over each one's meters; None when none is marked. When a quarter or more are,
        one pass over every meter is cheaper than gathering theirs."""
        hs = np.flatnonzero(stale & self._hh_has)
        stale[:] = False
        if hs.size == 0:
            return None
        if hs.size * 4 >= len(self.household_ids):
            return slice(None), lambda values, ufunc: self._per_household(values, ufunc, NEVER)
        ms, starts, _ = _members(self._hh_order, self._hh_ptr, hs)
        return hs, lambda values, ufunc: ufunc.reduceat(values[ms], starts)

    @staticmethod
    def _read_only(a: np.ndarray) -> np.ndarray:
        """A view of ``a`` that cannot be written through."""
        view = a.view()
        view.flags.writeable = False
        return view

    def household_last_activity(self) -> np.ndarray:
        """Latest activity per household (NEVER if none seen); a read-only view that later ``apply`` calls update."""
        self._refresh_views()
        return self._read_only(self._agg_activity)

    def household_covered_until(self) -> np.ndarray:
        """Event time up to which all of a household's meters have reported (NEVER if one never has); a read-only
        view, as ``household_last_activity``."""
        self._refresh_views()
        return self._read_only(self._agg_covered)

    def household_first_seen(self) -> np.ndarray:
        """Event time from which every meter of a household has been reporting (NEVER if one never has); a
        read-only view, as ``household_last_activity``."""
        with self.lock:
            if (stale := self._stale_reduction(self._first_stale)) is not None:
                at, reduce = stale
                earliest = reduce(self.first_ts, np.minimum)
                self._agg_first_seen[at] = np.where(earliest == NEVER, NEVER, reduce(self.first_ts, np.maximum))
        return self._read_only(self._agg_first_seen)

    def _refresh_views(self) -> None:
        """Bring last activity and covered-until up to date for the households ``apply`` marked."""
        with self.lock:
            if (stale := self._stale_reduction(self._agg_stale)) is not None:
                at, reduce = stale
                self._agg_activity[at] = reduce(self.last_activity, np.maximum)
                self._agg_covered[at] = reduce(self.last_ts, np.minimum)

    def household_offline(self) -> np.ndarray:
        """True for households with a meter behind an offline gateway (only those gateways' meters are read)."""
        out = np.zeros(len(self.household_ids), dtype=bool)
        down = np.flatnonzero(~self.gateway_online)
        if down.size:
            out[self.meter_household[self.meters_behind(down)[0]]] = True
        return out

    def meters_of(self, households: np.ndarray) -> np.ndarray:
        """Indices of the meters of ``households``, one household after another (O(their meters))."""
        return _members(self._hh_order, self._hh_ptr, np.asarray(households, dtype=np.int64))[0]

    def gateway_meters(self, g: int) -> np.ndarray:
        """Indices of the meters behind gateway ``g`` (O(its meters))."""
        return self._gw_order[self._gw_ptr[g]:self._gw_ptr[g + 1]]

    def meters_behind(self, gateways: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The meters behind ``gateways``, one gateway after another, and where each gateway's begin among them."""
        meters, starts, _ = _members(self._gw_order, self._gw_ptr, np.asarray(gateways, dtype=np.int64))
        return meters, starts

    def household_meters(self, h: int) -> np.ndarray:
        """Indices of household ``h``'s meters (O(its meters), not O(all meters))."""
        return self._hh_order[self._hh_ptr[h]:self._hh_ptr[h + 1]]

    def local_time(self, households: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local day (days since the epoch) and half hour of the day (0-47) of ``ts`` in each household's zone."""
        day, second = np.divmod(ts + self.zones.at(self.household_zone[households], ts), 86400)
        return day, second // SLOT_S

    def community_mask(self, communities: frozenset[str] | None) -> np.ndarray | None:
        """Households in the given communities (None: every household)."""
        if communities is None:
            return None
        idx = [self.community_index[c] for c in communities if c in self.community_index]
        return np.isin(self.household_community, np.array(idx, dtype=np.int32))

    def kept(self, compute: Callable[..., tuple[np.ndarray, ...]], *args: object) -> tuple[np.ndarray, ...]:
        """Per-meter figures that ``compute(state, meters, *args)`` derives from each meter's own arrays as of its
        newest reading, for every meter, as read-only views: kept per (compute, args), and recomputed only for the
        meters that read (or were touched) since the last call. ``compute`` must read nothing else that changes."""
        key = (compute, args)
        with self.lock:
            entry = self._kept.get(key)
            if entry is None:
                arrays = tuple(np.array(a) for a in compute(self, np.arange(len(self.meter_ids)), *args))
                self._kept[key] = (arrays, np.zeros(len(self.meter_ids), dtype=bool))
            else:
                arrays, stale = entry
                changed = np.flatnonzero(stale)
                if changed.size:
                    for kept, fresh in zip(arrays, compute(self, changed, *args), strict=True):
                        kept[changed] = fresh
                    stale[changed] = False
            return tuple(self._read_only(a) for a in arrays)

    def window_usage(self, meters: np.ndarray | None, slots: int) -> tuple[np.ndarray, np.ndarray]:
        """Usage of each meter (None: every meter, as read-only views that later ``apply`` calls update) over the
        ``slots`` half hours ending with its newest reading's half hour (NaN where not covered), and whether its
        data covers that window (it reported before the window began). Kept per window length (``kept``)."""
        used, ok = self.kept(HouseholdState._window_usage, slots)
        return (used, ok) if meters is None else (used[meters], ok[meters])

    def _window_usage(self, meters: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
        """``window_usage`` computed from the rings."""
        first = self.first_ts[meters]
        start = (self.last_ts[meters] - 1) // SLOT_S - slots
        ok = (first != NEVER) & (start >= (first - 1) // SLOT_S) & (slots < RING_SLOTS)
        # the newest slot always ends at the meter's usable total (every reading writes it): one gather is enough
        used = self.use_total[meters].astype(np.float32).astype(np.float64)
        used -= self.slot_reg.reshape(-1)[meters * RING_SLOTS + start % RING_SLOTS]
        used[~ok] = np.nan
        return used, ok

    def overview(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every household at once, in household order: (last activity, NEVER if none; whether any of its meters
        was heard; whether any of its meters' gateways is offline). What ``summary`` says of each, for a page of
        thousands."""
        with self.lock:
            last = self.household_last_activity().copy()
            heard = np.zeros(len(self.household_ids), dtype=bool)
            heard[self.meter_household[self.last_ts != NEVER]] = True
            offline = self.household_offline()
        return last, heard, offline

    def summary(self, household: str) -> HouseholdSummary | None:
        """Live state of one household, or None if it is not registered."""
        h = self.household_index.get(household)
        if h is None:
            return None
        with self.lock:
            idx = np.sort(self.household_meters(h))
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
        elec = kind == MeterKind.ELECTRICITY and np.isfinite(base)
        return MeterSummary(
            self.meter_ids[i], kind, self.gateway_ids[int(self.meter_gateway[i])],
            None if ts == NEVER else ts, None if ts == NEVER else float(self.last_value[i]),
            None if act == NEVER else act,
            round(base, 4) if elec else None, round(self._activity_line_kw(i, base), 4) if elec else None)

    def _activity_line_kw(self, i: int, base: float) -> float:
        """Electricity meter ``i``: the power an hour must average to pass both of the activity tests of ``apply``."""
        md = self.model
        line = base * md.elec_base_factor + md.elec_margin_kw
        quiet, dev = float(self.quiet_rate[i]), float(self.quiet_dev[i])
        if md.elec_window_slots > 0 and quiet > 0:
            line = max(line, float(self._quiet_line(quiet, self._filled_dev(dev))))
        return line

    def array_bytes(self) -> int:
        """Bytes held in numpy arrays, the kept per-meter figures included."""
        own = sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))
        return own + sum(a.nbytes for arrays, stale in self._kept.values() for a in (*arrays, stale))

    # ------------------------------------------------------------------ persistence
    _PER_METER = ("first_ts", "last_ts", "last_value", "last_activity", "base_rate", "quiet_rate", "quiet_dev",
                  "ref_value", "last_change", "fault_at", "fault_kind", "fault_dv", "fault_dt", "use_total", "slot_reg",
                  "slot_flags", "run_start", "hi_run_start", "run_today", "hi_run_today", "run_daily", "hi_run_daily",
                  "run_learned", "hi_run_learned", "run_days", "days_seen", "days_moved")
    _PER_HOUSEHOLD = ("hh_last_ts", "roll_day", "roll_due", "roll_carry", "gap_hist", "gap_top", "hist_days",
                      "days_learned", "daily_use", "daily_median", "daily_n")

    def save(self, path: str | Path) -> None:
        """Write the learned and live state to an .npz file, so a restart does not forget the routines."""
        with self.lock:
            arrays = {f"m_{k}": getattr(self, k) for k in self._PER_METER}
            arrays |= {f"h_{k}": getattr(self, k) for k in self._PER_HOUSEHOLD}
            arrays["meter_ids"] = np.array(self.meter_ids, dtype=str)
            arrays["household_ids"] = np.array(self.household_ids, dtype=str)
            with open(path, "wb") as f:
                np.savez(f, **arrays)

    def load(self, path: str | Path) -> None:
        """Read a file written by ``save``, matching meters and households by id (new ones start fresh)."""
        with np.load(path, allow_pickle=False) as z, self.lock:
            for ids_key, index, names, prefix in (("meter_ids", self.meter_index, self._PER_METER, "m_"),
                                                  ("household_ids", self.household_index, self._PER_HOUSEHOLD,
                                                   "h_")):
                old = z[ids_key].tolist()
                pairs = [(i, index[x]) for i, x in enumerate(old) if x in index]
                if not pairs:
                    continue
                src, dst = (np.array(a, dtype=np.int64) for a in zip(*pairs, strict=True))
                for k in names:
                    if prefix + k in z:  # a file from before an array was added leaves it fresh
                        getattr(self, k)[dst] = z[prefix + k][src]
            self.touch()
            self.relearn()

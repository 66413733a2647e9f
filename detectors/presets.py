"""Rule presets from deployed programmes, each a Detector under its own name (see docs/detectors.md).

Every preset reads the water meter only, except `no-change-48h` (every meter). A household without a water
meter, with a water meter silent for more than ``max_staleness_s``, or behind an offline gateway is never
judged by a water preset: missing data is not evidence of anything.

``PRESETS`` maps each name to a factory taking ``max_staleness_s`` and ``communities`` (None: every
community), so a deployment can run a preset for the communities whose programme asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detectors.base import Detector
from detectors.common import hours, judged_water, litres, one_per_household
from detectors.no_change import NoChangeDetector
from shouwang.domain import Alert, AlertCategory, Finding, Severity
from shouwang.state import (
    ACTIVE,
    COVERED,
    NEVER,
    RING_SLOTS,
    SLOT_S,
    SLOTS_PER_DAY,
    HouseholdState,
)

_EPS = 5e-5  # 0.05 L: registers read to the litre; the rings keep float32
_SLOT_USE_M3 = 1e-4  # a half hour "used water" if at least 0.1 L of a reading interval falls in it


def _per_household(state: HouseholdState, hh: np.ndarray, used: np.ndarray, ok: np.ndarray, at: np.ndarray):
    """Per household of the judged water meters ``hh``: the sum of ``used`` and the latest ``at`` over its meters;
    only households all of whose water meters are judged and ``ok`` count."""
    households, inv, cnt = np.unique(hh, return_inverse=True, return_counts=True)
    total = np.bincount(inv, weights=np.where(ok, used, 0.0), minlength=households.size)
    full = (np.bincount(inv, weights=ok.astype(np.float64), minlength=households.size) == cnt) & (
        cnt == state.household_water_count[households])
    latest = np.full(households.size, NEVER, dtype=np.int64)
    np.maximum.at(latest, inv, at)
    return households[full], total[full], latest[full]


def _water_of_households_with(state: HouseholdState, candidates: np.ndarray) -> np.ndarray:
    """Every meter of the households that have a meter marked in ``candidates`` (a mask over all meters): what a
    rule checks exactly once a kept per-meter figure has ruled the other households out."""
    return state.meters_of(np.unique(state.meter_household[np.flatnonzero(candidates & state.is_water)]))


@dataclass(frozen=True, slots=True)
class WaterWindowRule:
    """`inactivity` when a household used less than ``limit_m3`` of water (or at most, if ``inclusive``) in the
    last ``window_s`` — the rule several Chinese programmes run on smart water meters."""

    name: str
    window_s: int
    limit_m3: float
    inclusive: bool = False
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None

    def _candidates(self, state: HouseholdState) -> np.ndarray:
        """Meters of the households that may be under the line. A household's usage is the sum of its water
        meters' usages, none negative, so each of them is under the line too: the kept window usage rules the
        others out without reading their rings."""
        used, ok = state.window_usage(None, self.window_s // SLOT_S)
        return _water_of_households_with(state, ok & (used <= self.limit_m3 + 2 * _EPS))

    def _check(self, state: HouseholdState, now: int, meters: np.ndarray):
        wm, hh, until = judged_water(state, now, self.max_staleness_s, self.communities, meters)
        used, ok = state.window_usage(wm, self.window_s // SLOT_S)
        households, total, seen = _per_household(state, hh, used, ok, until)
        low = total <= self.limit_m3 + _EPS if self.inclusive else total < self.limit_m3 - _EPS
        return households, total, low, seen

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            meters = self._candidates(state)
            if meters.size == 0:
                return []
            households, total, low, seen = self._check(state, now, meters)
        op = "≤" if self.inclusive else "<"
        return [
            Finding(AlertCategory.INACTIVITY, self.name, Severity.CRITICAL, int(seen[i]) - self.window_s,
                    f"{litres(float(total[i]))} of water in the last {hours(self.window_s)} "
                    f"(rule: {op} {litres(self.limit_m3)} in {hours(self.window_s)})",
                    household=state.household_ids[int(households[i])])
            for i in np.flatnonzero(low)
        ]

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        h = state.household_index.get(alert.household or "")
        if h is None:
            return True
        with state.lock:
            households, _, low, _ = self._check(state, now, state.household_meters(h))
        pos = np.flatnonzero(households == h)
        return pos.size > 0 and not bool(low[pos[0]])


@dataclass(frozen=True, slots=True)
class KizukiRule:
    """The Japanese "kizuki" (noticing) pilot's water rule: `inactivity` after ``quiet_s`` without water use,
    `water_running` after ``flow_s`` of water flowing without a pause."""

    name: str = "kizuki"
    quiet_s: int = 8 * 3600
    flow_s: int = 2 * 3600
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            wm, hh, until = judged_water(state, now, self.max_staleness_s, self.communities)
            last = state.last_activity[wm]
            ref = np.where(last == NEVER, state.first_ts[wm], last)
            run0, last_ts = state.run_start[wm], state.last_ts[wm]
        out = []
        quiet = until - ref
        sel = np.flatnonzero(quiet >= self.quiet_s)
        for i in sel[one_per_household(hh[sel])]:
            out.append(Finding(AlertCategory.INACTIVITY, self.name, Severity.WARNING, int(ref[i]),
                               f"no water use for {hours(float(quiet[i]))} (rule: {hours(self.quiet_s)})",
                               household=state.household_ids[int(hh[i])]))
        run = np.where(run0 != NEVER, last_ts - run0, -1)
        sel = np.flatnonzero(run >= self.flow_s)
        for i in sel[one_per_household(hh[sel])]:
            out.append(Finding(AlertCategory.WATER_RUNNING, self.name, Severity.WARNING, int(run0[i]),
                               f"water flowing without a pause for {hours(float(run[i]))} "
                               f"(rule: {hours(self.flow_s)})", household=state.household_ids[int(hh[i])]))
        return out

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        h = state.household_index.get(alert.household or "")
        if h is None:
            return True
        with state.lock:
            m = state.household_meters(h)
            water = m[state.meter_kind[m] == 0]
            if alert.category == AlertCategory.WATER_RUNNING:
                starts = state.run_start[water]
                return not bool(((starts != NEVER) & (starts <= alert.since)).any())
            return bool((state.last_activity[water] > alert.since).any())


def _last_day(state: HouseholdState, meters: np.ndarray, until: np.ndarray):
    """Water each meter used on the last complete local day before ``until``, whether its rings cover that day,
    and the day's start (UTC)."""
    off = state.zones.at(state.household_zone[state.meter_household[meters]], until)
    local_midnight = (until + off) // 86400 * 86400 - off  # that day's local midnight, in UTC
    start = local_midnight - 86400  # the last complete local day: [start, local_midnight)
    s_first = start // SLOT_S - 1
    s_last = local_midnight // SLOT_S - 1
    head = (state.last_ts[meters] - 1) // SLOT_S
    first = state.first_ts[meters]
    ok = (first != NEVER) & (s_first >= (first - 1) // SLOT_S) & (s_first > head - RING_SLOTS) & (s_last <= head)
    used = (state.slot_reg[meters, s_last % RING_SLOTS].astype(np.float64)
            - state.slot_reg[meters, s_first % RING_SLOTS])
    return used, ok, start


def _last_day_as_read(state: HouseholdState, meters: np.ndarray):
    """``_last_day`` as of each meter's newest reading: it changes only when the meter reads (kept by the state)."""
    last = state.last_ts[meters]
    return _last_day(state, meters, np.where(last == NEVER, 0, last))


@dataclass(frozen=True, slots=True)
class JinganRule:
    """Shanghai Jing'an's daily rule on the last complete local day: `inactivity` if the household used less
    than ``low_m3``, `unusual_usage` if more than ``high_m3``."""

    name: str = "jingan"
    low_m3: float = 0.01
    high_m3: float = 2.0
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None

    def _candidates(self, state: HouseholdState, now: int) -> np.ndarray:
        """Meters of the households that may break a line, from each meter's last day as of its newest reading
        (kept): under the low line every meter is under it too; over the high line one of k meters is over 1/k of
        it. A meter read after ``now`` (a clock behind the gateway's) is checked as of ``now`` instead."""
        used, ok, _ = state.kept(_last_day_as_read)
        k = max(int(state.household_water_count.max(initial=1)), 1)
        maybe = ok & ((used < self.low_m3 + 2 * _EPS) | (used > self.high_m3 / k - 2 * _EPS))
        return _water_of_households_with(state, maybe | (state.last_ts > now))

    def _check(self, state: HouseholdState, now: int, meters: np.ndarray):
        wm, hh, until = judged_water(state, now, self.max_staleness_s, self.communities, meters)
        used, ok, start = _last_day(state, wm, until)
        return _per_household(state, hh, used, ok, start)

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            meters = self._candidates(state, now)
            if meters.size == 0:
                return []
            households, total, start = self._check(state, now, meters)
        out = []
        for i in np.flatnonzero((total < self.low_m3 - _EPS) | (total > self.high_m3 + _EPS)):
            hid = state.household_ids[int(households[i])]
            if total[i] < self.low_m3:
                out.append(Finding(AlertCategory.INACTIVITY, self.name, Severity.WARNING, int(start[i]),
                                   f"{litres(float(total[i]))} of water yesterday (rule: < {litres(self.low_m3)} "
                                   f"a day); call the family first", household=hid))
            else:
                out.append(Finding(AlertCategory.UNUSUAL_USAGE, self.name, Severity.WARNING, int(start[i]),
                                   f"{litres(float(total[i]))} of water yesterday (rule: > {litres(self.high_m3)} "
                                   f"a day)", household=hid))
        return out

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        h = state.household_index.get(alert.household or "")
        if h is None:
            return True
        with state.lock:
            households, total, _ = self._check(state, now, state.household_meters(h))
        pos = np.flatnonzero(households == h)
        if pos.size == 0:
            return False
        t = float(total[pos[0]])
        return t >= self.low_m3 if alert.category == AlertCategory.INACTIVITY else t <= self.high_m3


def _used_every_half_hour(state: HouseholdState, meters: np.ndarray) -> tuple[np.ndarray]:
    """Whether each of ``meters`` is a water meter that used water in every one of the 48 half hours up to its
    newest reading, each of them known from readings."""
    head = (state.last_ts[meters] - 1) // SLOT_S
    every = state.is_water[meters] & (state.last_ts[meters] != NEVER) & (
        head - SLOTS_PER_DAY >= (state.first_ts[meters] - 1) // SLOT_S)
    reg, flags = state.slot_reg.reshape(-1), state.slot_flags.reshape(-1)
    cand = np.flatnonzero(every)
    for lo, hi in ((0, 1), (1, 4), (4, SLOTS_PER_DAY)):  # newest first: few meters get further
        slots = head[cand, None] - np.arange(lo, hi + 1)
        pos = meters[cand, None] * RING_SLOTS + slots % RING_SLOTS
        used = reg[pos[:, :-1]].astype(np.float64) - reg[pos[:, 1:]] >= _SLOT_USE_M3
        known = (flags[pos[:, :-1]] & (COVERED | ACTIVE)) != 0
        ok = (used & known).all(axis=1)
        every[cand[~ok]] = False
        cand = cand[ok]
    return (every,)


@dataclass(frozen=True, slots=True)
class LonggangLeakRule:
    """Shenzhen Longgang's leak rule: `water_running` when water was used in every half hour of the last 24 h."""

    name: str = "longgang-leak"
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None

    def _candidates(self, state: HouseholdState) -> np.ndarray:
        """Meters of the households with a water meter that used water in every half hour of the day before its
        newest reading (kept per meter, so only meters that read since the last sweep are looked at again)."""
        every, = state.kept(_used_every_half_hour)
        return _water_of_households_with(state, every)

    def _check(self, state: HouseholdState, now: int, meters: np.ndarray):
        wm, hh, _ = judged_water(state, now, self.max_staleness_s, self.communities, meters)
        every, = _used_every_half_hour(state, wm)
        head = (state.last_ts[wm] - 1) // SLOT_S
        households, n_every, start = _per_household(state, hh, every.astype(np.float64), np.ones(wm.size, bool),
                                                    (head - SLOTS_PER_DAY + 1) * SLOT_S)
        return households, n_every > 0, start

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            meters = self._candidates(state)
            if meters.size == 0:
                return []
            households, leak, start = self._check(state, now, meters)
        return [
            Finding(AlertCategory.WATER_RUNNING, self.name, Severity.WARNING, int(start[i]),
                    "water used in every half hour of the last 24 h (rule: a leak)",
                    household=state.household_ids[int(households[i])])
            for i in np.flatnonzero(leak)
        ]

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        h = state.household_index.get(alert.household or "")
        if h is None:
            return True
        with state.lock:
            households, leak, _ = self._check(state, now, state.household_meters(h))
        pos = np.flatnonzero(households == h)
        return pos.size > 0 and not bool(leak[pos[0]])


PresetFactory = Callable[..., Detector]

PRESETS: dict[str, PresetFactory] = {
    "no-change-48h": lambda max_staleness_s=6 * 3600, communities=None: NoChangeDetector(
        48 * 3600, max_staleness_s, "no-change-48h", communities),
    "shanghai": lambda max_staleness_s=6 * 3600, communities=None: WaterWindowRule(
        "shanghai", 12 * 3600, 0.01, False, max_staleness_s, communities),
    "taicang": lambda max_staleness_s=6 * 3600, communities=None: WaterWindowRule(
        "taicang", 24 * 3600, 0.01, False, max_staleness_s, communities),
    "haishu": lambda max_staleness_s=6 * 3600, communities=None: WaterWindowRule(
        "haishu", 24 * 3600, 0.008, True, max_staleness_s, communities),
    "kizuki": lambda max_staleness_s=6 * 3600, communities=None: KizukiRule(
        max_staleness_s=max_staleness_s, communities=communities),
    "jingan": lambda max_staleness_s=6 * 3600, communities=None: JinganRule(
        max_staleness_s=max_staleness_s, communities=communities),
    "longgang-leak": lambda max_staleness_s=6 * 3600, communities=None: LonggangLeakRule(
        max_staleness_s=max_staleness_s, communities=communities),
}

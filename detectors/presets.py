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


def _per_household(state: HouseholdState, wm: np.ndarray, hh: np.ndarray, used: np.ndarray, ok: np.ndarray):
    """Sum water figures over each household's water meters; a household counts only if all of them count."""
    households, inv, cnt = np.unique(hh[ok], return_inverse=True, return_counts=True)
    total = np.bincount(inv, weights=used[ok], minlength=households.size)
    full = cnt == state.household_water_count[households]
    return households[full], total[full]


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

    def _check(self, state: HouseholdState, now: int, meters: np.ndarray | None = None):
        wm, hh, until = judged_water(state, now, self.max_staleness_s, self.communities, meters)
        used, ok = state.window_usage(wm, self.window_s // SLOT_S)
        households, total = _per_household(state, wm, hh, np.nan_to_num(used), ok)
        low = total <= self.limit_m3 + _EPS if self.inclusive else total < self.limit_m3 - _EPS
        seen = np.full(len(state.household_ids), NEVER, dtype=np.int64)
        np.maximum.at(seen, hh, until)
        return households, total, low, seen[households]

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            households, total, low, seen = self._check(state, now)
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


@dataclass(frozen=True, slots=True)
class JinganRule:
    """Shanghai Jing'an's daily rule on the last complete local day: `inactivity` if the household used less
    than ``low_m3``, `unusual_usage` if more than ``high_m3``."""

    name: str = "jingan"
    low_m3: float = 0.01
    high_m3: float = 2.0
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None

    def _check(self, state: HouseholdState, now: int, meters: np.ndarray | None = None):
        wm, hh, until = judged_water(state, now, self.max_staleness_s, self.communities, meters)
        off = state.zones.at(state.household_zone[hh], until)
        local_midnight = (until + off) // 86400 * 86400 - off  # today's local midnight, in UTC
        start = local_midnight - 86400  # the last complete local day: [start, local_midnight)
        s_first = start // SLOT_S - 1
        s_last = local_midnight // SLOT_S - 1
        head = (state.last_ts[wm] - 1) // SLOT_S
        first_slot = (state.first_ts[wm] - 1) // SLOT_S
        ok = (s_first >= first_slot) & (s_first > head - RING_SLOTS) & (s_last <= head)
        used = (state.slot_reg[wm, s_last % RING_SLOTS].astype(np.float64)
                - state.slot_reg[wm, s_first % RING_SLOTS])
        households, total = _per_household(state, wm, hh, used, ok)
        day_start = np.zeros(len(state.household_ids), dtype=np.int64)
        day_start[hh] = start
        return households, total, day_start[households]

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            households, total, start = self._check(state, now)
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


@dataclass(frozen=True, slots=True)
class LonggangLeakRule:
    """Shenzhen Longgang's leak rule: `water_running` when water was used in every half hour of the last 24 h."""

    name: str = "longgang-leak"
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None

    def _check(self, state: HouseholdState, now: int, meters: np.ndarray | None = None):
        wm, hh, _ = judged_water(state, now, self.max_staleness_s, self.communities, meters)
        head = (state.last_ts[wm] - 1) // SLOT_S
        first_slot = (state.first_ts[wm] - 1) // SLOT_S
        every = head - SLOTS_PER_DAY >= first_slot
        reg, flags = state.slot_reg.reshape(-1), state.slot_flags.reshape(-1)
        cand = np.flatnonzero(every)
        for lo, hi in ((0, 4), (4, SLOTS_PER_DAY)):  # the last two hours first: few meters get further
            back = np.arange(lo, hi + 1)
            slots = head[cand, None] - back  # newest first
            pos = wm[cand, None] * RING_SLOTS + slots % RING_SLOTS
            used = reg[pos[:, :-1]].astype(np.float64) - reg[pos[:, 1:]] >= _SLOT_USE_M3
            known = (flags[pos[:, :-1]] & (COVERED | ACTIVE)) != 0
            ok = (used & known).all(axis=1)
            every[cand[~ok]] = False
            cand = cand[ok]
        households, n_every = _per_household(state, wm, hh, every.astype(np.float64), np.ones(wm.size, bool))
        start = np.zeros(len(state.household_ids), dtype=np.int64)
        start[hh] = (head - SLOTS_PER_DAY + 1) * SLOT_S
        return households, n_every > 0, start[households]

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            households, leak, start = self._check(state, now)
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

"""The `unusual_usage` detector: consumption in the last 24 h far above the household's ordinary day.

The state keeps each household's daily water and electricity totals for the last four weeks (days without any
activity, i.e. absences, are left out) and their median. The detector alerts when a meter's usage over the
last 24 h (48 half-hour slots ending with its newest reading) is more than ``factor`` times that median *and*
more than the median by at least a minimum excess (so a household that uses almost nothing is not alerted
for using a little): an appliance or heater left on, a bath overflowing, a confused night of cooking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from detectors.common import litres, one_per_household
from shouwang.domain import Alert, AlertCategory, Finding, Severity
from shouwang.state import _WATER, NEVER, SLOTS_PER_DAY, HouseholdState


@dataclass(frozen=True, slots=True)
class UnusualUsageDetector:
    """Raise `unusual_usage` when the last 24 h used many times the household's median day."""

    data_driven: ClassVar[bool] = True  # `now` matters only for staleness (replay may reuse findings)

    factor: float = 4.0
    water_min_excess_m3: float = 0.4
    elec_min_excess_kwh: float = 12.0
    min_days: int = 14
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None
    name: str = "unusual_usage"

    def _check(self, state: HouseholdState, now: int, meters: np.ndarray):
        last = state.last_ts[meters]
        ok = (last != NEVER) & (last >= now - self.max_staleness_s) & state.gateway_online[state.meter_gateway[meters]]
        hh = state.meter_household[meters]
        scope = state.community_mask(self.communities)
        if scope is not None:
            ok &= scope[hh]
        kind = state.meter_kind[meters]
        ok &= state.daily_n.reshape(-1)[hh * 2 + kind] >= self.min_days
        m = meters[ok]
        hh, kind = hh[ok], kind[ok].astype(np.int64)
        used, covered = state.window_usage(m, SLOTS_PER_DAY)
        median = state.daily_median.reshape(-1)[hh * 2 + kind].astype(np.float64)
        excess = np.where(kind == _WATER, self.water_min_excess_m3, self.elec_min_excess_kwh)
        fire = covered & (used > self.factor * median) & (used - median >= excess)
        return m, hh, kind, used, median, fire

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            # a day's median is never below 0, so firing (used − median ≥ excess) needs used ≥ excess: only the
            # meters past that are looked at further (a day of 0.4 m³ of water or 12 kWh is rare)
            day, _ = state.window_usage(None, SLOTS_PER_DAY)
            past = day >= np.where(state.meter_kind == _WATER, self.water_min_excess_m3, self.elec_min_excess_kwh)
            m, hh, kind, used, median, fire = self._check(state, now, np.flatnonzero(past))
            last = state.last_ts[m]
        sel = np.flatnonzero(fire)
        sel = sel[one_per_household(hh[sel])]
        out = []
        for i in sel:
            if kind[i] == _WATER:
                what = f"water use in the last 24 h {litres(float(used[i]))}"
                usual = litres(float(median[i]))
            else:
                what = f"electricity use in the last 24 h {used[i]:.1f} kWh"
                usual = f"{median[i]:.1f} kWh"
            ratio = used[i] / median[i] if median[i] > 0 else float("inf")
            out.append(Finding(AlertCategory.UNUSUAL_USAGE, self.name, Severity.WARNING, int(last[i]) - 86400,
                               f"{what}, {ratio:.1f}× this household's median day ({usual})",
                               household=state.household_ids[int(hh[i])]))
        return out

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        h = state.household_index.get(alert.household or "")
        if h is None:
            return True
        with state.lock:
            meters = state.household_meters(h)
            m, *_, fire = self._check(state, now, meters)
        return m.size > 0 and not bool(fire.any())  # stale data clears nothing

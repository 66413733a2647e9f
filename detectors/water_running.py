"""The `water_running` detector: water flowing without a pause far longer than the household ever does.

A *run* is a sequence of consecutive reading intervals (each at most ``max_rate_interval_s`` long) that all
show water use; a *high-flow run* is one in which every interval flows at tap rate or more
(``ActivityModel.high_flow_m3_per_h``). Each day the state keeps the household's longest run and longest
high-flow run; the learned figure is the second-longest daily run of the last four weeks (so one earlier
incident is not learned as ordinary). The detector alerts when the current run is longer than
``factor`` × learned + margin, kept between a floor and a ceiling:

- high flow (a tap left open, a fall in the shower): floor 1 h, ceiling 4 h;
- any flow (a leak, a running cistern): floor 4 h, ceiling 24 h (so water that has not stopped for a whole day
  is always reported).

Until a meter has ``min_days`` days of history, its run thresholds are the ceilings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from detectors.common import hours, judged_water, one_per_household
from shouwang.domain import Alert, AlertCategory, Finding, Severity
from shouwang.state import NEVER, HouseholdState


@dataclass(frozen=True, slots=True)
class WaterRunningDetector:
    """Raise `water_running` for a run of flowing intervals far longer than the household's longest."""

    data_driven: ClassVar[bool] = True  # `now` matters only for staleness (replay may reuse findings)

    factor: float = 1.5
    margin_s: int = 2 * 3600
    floor_s: int = 4 * 3600
    ceiling_s: int = 24 * 3600
    hi_factor: float = 1.5
    hi_margin_s: int = 1800
    hi_floor_s: int = 3600
    hi_ceiling_s: int = 4 * 3600
    min_days: int = 3
    max_staleness_s: int = 6 * 3600
    communities: frozenset[str] | None = None
    name: str = "water_running"

    def _limits(self, state: HouseholdState, wm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        young = state.run_days[wm] < self.min_days
        learned = state.run_learned[wm].astype(np.float64)
        any_lim = np.clip(learned * self.factor + self.margin_s, self.floor_s, self.ceiling_s)
        hi = state.hi_run_learned[wm].astype(np.float64)
        hi_lim = np.clip(hi * self.hi_factor + self.hi_margin_s, self.hi_floor_s, self.hi_ceiling_s)
        return np.where(young, self.ceiling_s, any_lim), np.where(young, self.hi_ceiling_s, hi_lim)

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            running = np.flatnonzero((state.run_start != NEVER) | (state.hi_run_start != NEVER))  # can fire
            wm, hh, _ = judged_water(state, now, self.max_staleness_s, self.communities, running)
            run0, hi0, last = state.run_start[wm], state.hi_run_start[wm], state.last_ts[wm]
            learned = state.run_learned[wm]
            any_lim, hi_lim = self._limits(state, wm)
        run = np.where(run0 != NEVER, last - run0, -1)
        hi = np.where(hi0 != NEVER, last - hi0, -1)
        hi_fire = hi > hi_lim
        fire = hi_fire | (run > any_lim)
        sel = np.flatnonzero(fire)
        sel = sel[one_per_household(hh[sel])]
        out = []
        for i in sel:
            usual = (f"this household's longest ordinary run is {hours(float(learned[i]))}"
                     if learned[i] >= 0 else "no ordinary run learned yet")
            if hi_fire[i]:
                reason = (f"water flowing at tap rate without a pause for {hours(float(hi[i]))} "
                          f"(limit {hours(float(hi_lim[i]))}): a tap left open, or a fall in the shower?")
                since, sev = int(hi0[i]), Severity.CRITICAL
            else:
                reason = (f"water flowing without a pause for {hours(float(run[i]))} (limit "
                          f"{hours(float(any_lim[i]))}; {usual}): a leak or a tap left running?")
                since, sev = int(run0[i]), Severity.WARNING
            out.append(Finding(AlertCategory.WATER_RUNNING, self.name, sev, since, reason,
                               household=state.household_ids[int(hh[i])]))
        return out

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        """Cleared once no water meter of the household is still in the run the alert is about."""
        h = state.household_index.get(alert.household or "")
        if h is None:
            return True
        with state.lock:
            m = state.household_meters(h)
            starts = state.run_start[m[state.meter_kind[m] == 0]]
        return not bool(((starts != NEVER) & (starts <= alert.since)).any())

"""The `routine` detector: learns how long each household normally goes without activity at each time of
day and day of week, and alerts when the current gap is longer than is plausible for that household.

After Cuddihy et al. (2007), "Algorithm to automatically detect abnormally long periods of inactivity in a
home": for every half hour of the day, the state keeps the longest inactivity that reached into it on each of
the last four weeks (``HouseholdState.gap_hist``; a day without any activity at all is an absence and is not
learned). The alert line for a half hour is the ``k``-th longest of those gaps across days (widened by the
neighbouring half hours), or the longest on the same weekday if that is longer (a weekly day centre, a weekly
visit to a daughter), times ``factor`` plus ``margin_s``, kept between ``floor_s`` and ``cap_s``.

While a household has fewer than ``min_days`` learned days, or a half hour has no learned value yet, the
``fallback`` preset judges it instead (by default the owner's no-change rule); its findings carry this
detector's name and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

import numpy as np

from detectors.base import Detector
from detectors.common import active_since, hours, judged_households
from detectors.no_change import NoChangeDetector
from shouwang.domain import Alert, AlertCategory, Finding, Severity
from shouwang.state import MISSING, NEVER, SLOT_S, SLOTS_PER_DAY, TOP_K, HouseholdState

_NOT_DUE = np.iinfo(np.int64).max  # alert line of a household too recently active to be judged at all


class LearningStatus(StrEnum):
    """Where the routine detector is with a household."""

    NO_DATA = "no_data"  # no reading yet
    LEARNING = "learning"  # judged by the fallback preset until enough days are learned
    LEARNED = "learned"  # judged against its own routine


@dataclass(frozen=True, slots=True)
class RoutineDetector:
    """Raise `inactivity` when a household has gone without activity longer than its own routine allows."""

    data_driven: ClassVar[bool] = True  # `now` matters only for staleness (replay may reuse findings)

    k: int = 2  # the k-th longest gap across the history (1 = the longest; 2 forgives one odd day)
    factor: float = 2.0
    factor_no_water: float = 1.5  # homes metered for electricity only: no preset can fire there (docs/detectors.md)
    margin_s: int = 3 * 3600
    floor_s: int = 3 * 3600
    cap_s: int = 48 * 3600  # never later than the owner's 48 h rule
    min_days: int = 14
    max_staleness_s: int = 6 * 3600
    fallback: Detector | None = field(default_factory=NoChangeDetector)
    communities: frozenset[str] | None = None
    name: str = "routine"

    def thresholds(self, state: HouseholdState, households: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Alert line in seconds for each household at event time ``at`` (-1 where nothing is learned)."""
        return self._lines(state, households, at)[0]

    def _lines(self, state: HouseholdState, households: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(alert line, the ordinary gap it is built on), in seconds; -1 where nothing is learned."""
        day, b = state.local_time(households, at)
        top = state.gap_top.reshape(-1)[(households * TOP_K + (self.k - 1)) * SLOTS_PER_DAY + b]
        # the longest on the same weekday in the four weeks
        dow = state.gap_dow.reshape(-1)[(households * 7 + day % 7) * SLOTS_PER_DAY + b]
        g = np.maximum(top + np.uint8(1), dow + np.uint8(1))  # the ordinary gap + 1 half hour; MISSING wraps to 0
        # both results depend only on g and on whether the home has a water meter: look them up in tables of 256
        q = np.arange(-1, MISSING, dtype=np.int64)
        factor = np.array([[self.factor_no_water], [self.factor]])
        lines = np.where(q >= 0, np.clip(q * (SLOT_S * factor) + self.margin_s, self.floor_s, self.cap_s), -1)
        water = state.household_water_count[households] > 0
        return lines.astype(np.int64).reshape(-1)[water.view(np.uint8).astype(np.intp) * 256 + g], (q * SLOT_S)[g]

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            j = judged_households(state, now, self.max_staleness_s, self.communities)
            days = state.hist_days[j.idx]
            elapsed = j.seen_until - j.reference
            learned = days >= self.min_days
            fb = self.fallback
            inline = (isinstance(fb, NoChangeDetector) and fb.max_staleness_s == self.max_staleness_s
                      and fb.communities == self.communities)
            not_due = None
            if fb is None or (inline and fb.window_s > self.floor_s):
                # no line is below the floor: a household quiet for less cannot fire, and no fallback would
                not_due = learned & (elapsed <= self.floor_s)
                learned &= ~not_due
            sel = np.flatnonzero(learned)
            if sel.size * 2 > j.idx.size:  # most households (at night): lines for all beat gathering and scattering
                thr, usual = self._lines(state, j.idx, j.seen_until)
                thr[~learned] = usual[~learned] = -1
            else:
                thr = np.full(j.idx.size, -1, dtype=np.int64)
                usual = np.full(j.idx.size, -1, dtype=np.int64)
                thr[sel], usual[sel] = self._lines(state, j.idx[sel], j.seen_until[sel])
            if not_due is not None:
                thr[not_due] = _NOT_DUE
            others = fb.evaluate(state, now) if fb is not None and not inline and (thr < 0).any() else []
        out = [
            Finding(
                category=AlertCategory.INACTIVITY, detector=self.name, severity=Severity.CRITICAL,
                since=int(j.reference[i]), household=state.household_ids[int(j.idx[i])],
                reason=(f"no water or electricity use for {hours(float(elapsed[i]))}, far longer than usual at this "
                        f"time of day (ordinary days: up to {hours(float(usual[i]))}; alert line "
                        f"{hours(float(thr[i]))}; routine learned from {int(days[i])} days)"))
            for i in np.flatnonzero((thr >= 0) & (elapsed > thr))
        ]
        if fb is None:
            return out

        def status(i: int) -> str:
            if days[i] < self.min_days:
                return f"routine still learning ({int(days[i])} of {self.min_days} days)"
            return "routine not learned for this time of day"

        if inline:  # the owner's rule on the households routine cannot judge yet, without a second pass
            for i in np.flatnonzero((thr < 0) & (elapsed >= fb.window_s)):
                out.append(Finding(
                    AlertCategory.INACTIVITY, self.name, Severity.CRITICAL, int(j.reference[i]),
                    f"no water or electricity use for {hours(float(elapsed[i]))} (rule: {hours(fb.window_s)}); "
                    f"{status(i)}, judged by preset {fb.name}", household=state.household_ids[int(j.idx[i])]))
            return out
        waiting = {state.household_ids[int(j.idx[i])]: int(i) for i in np.flatnonzero(thr < 0)}
        for f in others:
            if f.household in waiting and f.category == AlertCategory.INACTIVITY:
                out.append(Finding(f.category, self.name, f.severity, f.since,
                                   f"{f.reason}; {status(waiting[f.household])}, judged by preset {fb.name}",
                                   household=f.household))
        return out

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        return active_since(state, alert.household, alert.since)

    def learning_status(self, state: HouseholdState, household: str) -> tuple[LearningStatus, int]:
        """(status, days of history) for one household; raises KeyError for an unknown household."""
        return learning_status(state, household, self.min_days)


def learning_status(state: HouseholdState, household: str, min_days: int = 14) -> tuple[LearningStatus, int]:
    """Whether the routine detector judges ``household`` by its own routine yet, and on how many learned days
    (days with activity in the last four weeks); raises KeyError for an unknown household."""
    h = state.household_index[household]
    with state.lock:
        days = int(state.hist_days[h])
        seen = bool((state.first_ts[state.household_meters(h)] != NEVER).any())
    if not seen:
        return LearningStatus.NO_DATA, 0
    return (LearningStatus.LEARNED if days >= min_days else LearningStatus.LEARNING), days

"""The owner's rule: no use on any of a household's meters for a window (default 48 h)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from detectors.common import active_since, hours, judged_households
from shouwang.domain import Alert, AlertCategory, Finding, Severity
from shouwang.state import HouseholdState


@dataclass(frozen=True, slots=True)
class NoChangeDetector:
    """Raise `inactivity` when the data shows no activity for ``window_s``; never on missing data."""

    data_driven: ClassVar[bool] = True  # `now` matters only for staleness (replay may reuse findings)

    window_s: int = 48 * 3600
    max_staleness_s: int = 6 * 3600
    name: str = "no-change-48h"
    communities: frozenset[str] | None = None

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            j = judged_households(state, now, self.max_staleness_s, self.communities)
        gap = j.seen_until - j.reference
        firing = np.flatnonzero(gap >= self.window_s)
        return [
            Finding(
                category=AlertCategory.INACTIVITY, detector=self.name, severity=Severity.CRITICAL,
                since=int(j.reference[i]), household=state.household_ids[int(j.idx[i])],
                reason=f"no water or electricity use for {hours(float(gap[i]))} (rule: {hours(self.window_s)})",
            )
            for i in firing
        ]

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        return active_since(state, alert.household, alert.since)

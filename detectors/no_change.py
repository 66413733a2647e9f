"""The owner's rule: no use on any of a household's meters for a window (default 48 h)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shouwang.domain import Alert, AlertCategory, Finding, Severity
from shouwang.state import NEVER, HouseholdState


@dataclass(frozen=True, slots=True)
class NoChangeDetector:
    """Raise `inactivity` when the data shows no activity for ``window_s``; never on missing data."""

    window_s: int = 48 * 3600
    max_staleness_s: int = 6 * 3600
    name: str = "no-change-48h"

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            last_act = state.household_last_activity()
            first = state.household_first_seen()
            covered = state.household_covered_until()
            offline = state.household_offline()
        reference = np.where(last_act == NEVER, first, last_act)
        seen_until = np.minimum(covered, now)
        fresh = (covered != NEVER) & (now - covered <= self.max_staleness_s) & ~offline
        firing = np.flatnonzero(fresh & (reference != NEVER) & (seen_until - reference >= self.window_s))
        hours = self.window_s / 3600
        return [
            Finding(
                category=AlertCategory.INACTIVITY, detector=self.name, severity=Severity.CRITICAL,
                since=int(reference[h]), household=state.household_ids[h],
                reason=(f"no water or electricity use for {(int(seen_until[h]) - int(reference[h])) / 3600:.0f} h "
                        f"(rule: {hours:g} h)"),
            )
            for h in firing
        ]

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        summary = state.summary(alert.household or "")
        return bool(summary and summary.last_activity is not None and summary.last_activity > alert.since)

"""The contract every detector keeps: state + now in, findings out, no I/O."""

from __future__ import annotations

from typing import Protocol

from shouwang.domain import Alert, Finding
from shouwang.state import HouseholdState


class Detector(Protocol):
    """A pure detector; `now` is event time in epoch seconds."""

    name: str

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        """Conditions that hold at ``now``."""
        ...

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        """True when the condition behind one of this detector's alerts is no longer seen."""
        ...

"""Away periods: a household registered as absent; welfare alerts are held until it returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AwayPeriod:
    """An absence from ``start`` until ``end`` (expected return; None = until activity resumes)."""

    household: str
    start: int
    end: int | None = None
    source: str = ""  # "family", "worker", "household", "alert:<id>", "replay"
    note: str = ""
    id: int | None = None
    cancelled_at: int | None = None  # when it was withdrawn (ended early by hand); None: it stands


RETURN_GRACE_S = 3600  # use within this long after the start is the leaving itself, not a return


def active_away(
    periods: Iterable[AwayPeriod], household: str, now: int, last_activity: int | None,
    grace_s: int = RETURN_GRACE_S,
) -> AwayPeriod | None:
    """The away period that holds welfare alerts for ``household`` at ``now``, if any.

    A period holds from its start until its expected end, and ends early as soon as the household shows
    activity more than ``grace_s`` after it began (the person is back). The grace covers the reading
    interval in which the person left: its use is reported after the registered start.
    """
    for p in periods:
        if p.household != household or now < p.start:
            continue
        if p.end is not None and now >= p.end:
            continue
        if last_activity is not None and last_activity > p.start + grace_s:
            continue
        return p
    return None


def index_by_household(periods: Iterable[AwayPeriod]) -> Mapping[str, list[AwayPeriod]]:
    """Group periods by household for quick lookup."""
    out: dict[str, list[AwayPeriod]] = {}
    for p in periods:
        out.setdefault(p.household, []).append(p)
    return out

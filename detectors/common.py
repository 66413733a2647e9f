"""Helpers the detectors share: which households can be judged now, their water meters, time formatting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shouwang.state import NEVER, HouseholdState


@dataclass(frozen=True, slots=True)
class Judged:
    """Households a welfare detector may judge at ``now``: every meter fresh, no gateway offline, in scope."""

    idx: np.ndarray  # household indices
    seen_until: np.ndarray  # min(now, time every meter has reported up to), per judged household
    reference: np.ndarray  # last activity (or the start of the data if none), per judged household


def judged_households(state: HouseholdState, now: int, max_staleness_s: int,
                      communities: frozenset[str] | None = None) -> Judged:
    """The households whose data is complete enough at ``now`` to say anything about their welfare.

    Missing data is never evidence: a household with a meter silent for more than ``max_staleness_s``, a
    meter that never reported, or a meter behind an offline gateway is not judged (the device detector speaks
    for it instead).
    """
    covered = state.household_covered_until()
    ok = (covered != NEVER) & (now - covered <= max_staleness_s) & ~state.household_offline()
    scope = state.community_mask(communities)
    if scope is not None:
        ok &= scope
    idx = np.flatnonzero(ok)
    reference = state.household_last_activity()[idx]
    none = reference == NEVER
    if none.any():  # no activity yet: count from when every meter had begun reporting
        reference[none] = state.household_first_seen()[idx[none]]
    keep = reference != NEVER
    idx, reference = idx[keep], reference[keep]
    return Judged(idx, np.minimum(covered[idx], now), reference)


def water_meters(state: HouseholdState) -> np.ndarray:
    """Indices of all water meters."""
    return np.flatnonzero(state.is_water)


def judged_water(state: HouseholdState, now: int, max_staleness_s: int,
                 communities: frozenset[str] | None = None,
                 meters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Water meters (of ``meters``; None: all) that can be judged at ``now`` (fresh, gateway online, household
    in scope), each with its household and the time its data reaches (min(now, newest reading))."""
    wm = water_meters(state) if meters is None else meters[state.is_water[meters]]
    last = state.last_ts[wm]
    ok = (last != NEVER) & (now - last <= max_staleness_s) & state.gateway_online[state.meter_gateway[wm]]
    hh = state.meter_household[wm]
    scope = state.community_mask(communities)
    if scope is not None:
        ok &= scope[hh]
    wm = wm[ok]
    return wm, state.meter_household[wm], np.minimum(state.last_ts[wm], now)


def one_per_household(hh: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each household (findings are per household)."""
    _, first = np.unique(hh, return_index=True)
    return np.sort(first)


def hours(seconds: float) -> str:
    """A duration for a reason text: '45 min', '5.5 h', '3 d'."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} d".replace(".0 d", " d")


def litres(m3: float) -> str:
    """A water volume for a reason text."""
    return f"{m3 * 1000:.0f} L" if m3 < 1 else f"{m3:.2f} m³"


def active_since(state: HouseholdState, household: str | None, since: int) -> bool:
    """True if the household showed activity after ``since`` (or is no longer registered)."""
    h = state.household_index.get(household or "")
    if h is None:
        return True
    with state.lock:
        last = int(state.last_activity[state.household_meters(h)].max(initial=NEVER))
    return last > since

"""Hand-made household timelines for detector tests: usage per interval → cumulative readings."""

from __future__ import annotations

from collections.abc import Callable

from shouwang.domain import Reading

H = 3600
DAY0 = 1_795_276_800  # 2026-11-21T00:00:00Z = 08:00 in Shanghai
FRIDGE_KW = 0.05


def normal_water(t: int) -> float:
    """m³ used in the 15 minutes ending at t: a little every waking hour (07–22 local)."""
    local_hour = ((t - DAY0) // H + 8) % 24
    return 0.004 if 7 <= local_hour < 22 and (t // 900) % 2 == 0 else 0.0


def normal_kw(t: int) -> float:
    """Average kW in the interval ending at t: fridge plus evening TV and cooking."""
    local_hour = ((t - DAY0) // H + 8) % 24
    return FRIDGE_KW + (0.4 if local_hour in (7, 12, 18, 19, 20) else 0.0)


def fridge_only(_t: int) -> float:
    return FRIDGE_KW


def nothing(_t: int) -> float:
    return 0.0


def household_readings(
    household: str,
    start: int,
    end: int,
    water: Callable[[int], float] = normal_water,
    kw: Callable[[int], float] = normal_kw,
    interval: int = 900,
    report: Callable[[str, int], bool] = lambda meter, t: True,
) -> list[Reading]:
    """Readings of <household>-W and <household>-E every ``interval`` from start to end (inclusive)."""
    w, e, out = 10.0, 500.0, []
    for t in range(start, end + 1, interval):
        if t > start:
            w += water(t)
            e += kw(t) * interval / H
        if report(f"{household}-W", t):
            out.append(Reading(f"{household}-W", t, round(w, 6)))
        if report(f"{household}-E", t):
            out.append(Reading(f"{household}-E", t, round(e, 6)))
    return out


def switch(at: int, before: Callable[[int], float], after: Callable[[int], float]) -> Callable[[int], float]:
    """Usage that follows ``before`` until ``at`` and ``after`` from then on."""
    return lambda t: before(t) if t <= at else after(t)

"""Hand-made household timelines for detector tests: usage per interval → cumulative readings."""

from __future__ import annotations

from collections.abc import Callable

from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Reading, Registry

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


# ---------------------------------------------------------------------------------------------- routines
def local_hour(t: int, offset_h: int = 8) -> float:
    """Hour of the local day (0-24, fractional) of epoch time t in a fixed-offset zone (Shanghai by default)."""
    return ((t + offset_h * H) % 86400) / H


def local_day(t: int, offset_h: int = 8) -> int:
    """Local day number (days since the epoch) of epoch time t."""
    return (t + offset_h * H) // 86400


def _jitter(day: int, salt: int) -> float:
    """Deterministic pseudo-random number in [-1, 1) per day."""
    x = (day * 2654435761 + salt * 40503) % 2**32
    return (x / 2**31) - 1.0


def routine(wake_h: float = 7.0, bed_h: float = 22.0, jitter_h: float = 0.3, every_min: int = 45,
            away: Callable[[int], bool] = lambda t: False) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """(water, kW) usage functions of a person who wakes at ``wake_h`` and goes to bed at ``bed_h`` local time
    (bed_h > 24 = after midnight), give or take ``jitter_h`` from day to day, and uses water about every
    ``every_min`` minutes while up; cooking at meals, a small appliance every 75 minutes, TV in the evening; the
    fridge always runs. Nothing but
    the fridge while ``away(t)``."""

    def up(t: int) -> bool:
        h, d = local_hour(t), local_day(t)
        if h < 12 and bed_h > 24 and h < bed_h - 24 + jitter_h * _jitter(d - 1, 2):
            return True  # still up after midnight
        wake = wake_h + jitter_h * _jitter(d, 1)
        bed = min(bed_h, 24.0) + (jitter_h * _jitter(d, 2) if bed_h < 24 else 0.0)
        return wake <= h < bed

    def water(t: int) -> float:
        if away(t) or not up(t - 900):
            return 0.0
        phase = (t // 900) % max(1, every_min // 15)
        return 0.006 if phase == 0 or up(t - 900) and not up(t - 1800) else 0.0

    def kw(t: int) -> float:
        if away(t) or not up(t - 900):
            return FRIDGE_KW
        h = local_hour(t - 900)
        meal = any(m <= h < m + 0.75 for m in (wake_h + 0.5, 12.0, 18.0))
        kettle = (t // 900) % 5 == 0  # a kettle, a light, the radio: something every hour and a quarter
        return FRIDGE_KW + (1.2 if meal else 0.3 if kettle else 0.15 if h >= 19 else 0.0)

    return water, kw


def community_readings(usage: dict[str, tuple[Callable[[int], float], Callable[[int], float] | None]],
                       start: int, end: int, interval: int = 900,
                       report: Callable[[str, int], bool] = lambda meter, t: True) -> list[list[Reading]]:
    """Readings of several households (``<hh>-W`` water, ``<hh>-E`` electricity; None = no such meter),
    grouped by instant: one list per reading time, as a broker batch would bring them."""
    reg = {hh: [10.0, 500.0] for hh in usage}
    out = []
    for t in range(start, end + 1, interval):
        batch = []
        for hh, (water, kw) in usage.items():
            if t > start:
                reg[hh][0] += water(t) if water is not None else 0.0
                reg[hh][1] += kw(t) * interval / H if kw is not None else 0.0
            if water is not None and report(f"{hh}-W", t):
                batch.append(Reading(f"{hh}-W", t, round(reg[hh][0], 6)))
            if kw is not None and report(f"{hh}-E", t):
                batch.append(Reading(f"{hh}-E", t, round(reg[hh][1], 6)))
        out.append(batch)
    return out


def watch_registry(h1_meters: str = "WE", timezone: str = "Asia/Shanghai") -> Registry:
    """H1 (the subject, with the meters named: W water, E electricity) and H2 (an ordinary neighbour) behind
    gateway G1; H3 behind G2; all in community c1."""
    def meter(hh: str, k: str, gw: str) -> Meter:
        return Meter(f"{hh}-{k}", hh, MeterKind.WATER if k == "W" else MeterKind.ELECTRICITY, gw)

    meters = [meter("H1", k, "G1") for k in h1_meters]
    meters += [meter("H2", "W", "G1"), meter("H2", "E", "G1"), meter("H3", "W", "G2"), meter("H3", "E", "G2")]
    return Registry((Community("c1", "Test", timezone),), (Gateway("G1", "c1"), Gateway("G2", "c1")),
                    tuple(Household(h, "c1") for h in ("H1", "H2", "H3")), tuple(meters))

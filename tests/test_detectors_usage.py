"""water_running and unusual_usage on hand-made timelines: weeks of ordinary life, then the incident."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from timelines import FRIDGE_KW, H, community_readings, routine, switch, watch_registry

from detectors import UnusualUsageDetector, WaterRunningDetector
from shouwang.domain import Alert, AlertStatus, Reading
from shouwang.state import HouseholdState

START = 1_795_276_800  # local midnight in Shanghai
D = 86400
regular = routine(7.0, 22.0)


def at(day: int, hours: float) -> int:
    return START + day * D + int(hours * H)


def plus(base, extra_from: int, extra, until: int | None = None):
    """Usage ``base`` plus ``extra`` (per interval) from ``extra_from`` (until ``until``)."""
    return lambda t: base(t) + (extra if t > extra_from and (until is None or t <= until) else 0.0)


def run(h1, end: int, report=lambda m, t: True) -> HouseholdState:
    state = HouseholdState(watch_registry(), started_at=START)
    for batch in community_readings({"H1": h1, "H2": regular, "H3": routine(6.5, 21.5)}, START, end,
                                    report=report):
        state.apply(batch)
    return state


@dataclass
class Case:
    name: str
    detector: object
    h1: tuple
    end: int
    expect: set = field(default_factory=set)  # {(category, severity)} for H1
    water_silent_from: int | None = None
    hourly: bool = False  # H1's water meter reports once an hour (NB-IoT) instead of every 15 minutes


TAP = 0.09  # m³ per 15 minutes: a tap open at 6 L/min
LEAK = 0.002  # 8 L an hour, day and night
HEATER_KW = 2.0

CASES = [
    Case("ordinary life: no running water", WaterRunningDetector(), regular, at(16, 20)),
    Case("tap left open at 14:00, one hour later: not yet", WaterRunningDetector(),
         (plus(regular[0], at(16, 14), TAP), regular[1]), at(16, 15)),
    Case("tap left open at 14:00, 1 h 45 later: alerted", WaterRunningDetector(),
         (plus(regular[0], at(16, 14), TAP), regular[1]), at(16, 15.75), {("water_running", "critical")}),
    Case("tap left open at 14:00, but the water meter silent since 14:30", WaterRunningDetector(),
         (plus(regular[0], at(16, 14), TAP), regular[1]), at(16, 16), water_silent_from=at(16, 14.5)),
    Case("a leak from 02:00, 3.5 h later: not yet", WaterRunningDetector(),
         (plus(regular[0], at(16, 2), LEAK), regular[1]), at(16, 5.5)),
    Case("a leak from 02:00, 4.5 h later: alerted", WaterRunningDetector(),
         (plus(regular[0], at(16, 2), LEAK), regular[1]), at(16, 6.5), {("water_running", "warning")}),
    Case("a long bath and the laundry (75 min of flow)", WaterRunningDetector(),
         (plus(regular[0], at(16, 15), 0.02, at(16, 16.25)), regular[1]), at(16, 17)),
    Case("in the first days a tap left open is reported at the 4 h ceiling, not at 2 h", WaterRunningDetector(),
         (plus(regular[0], at(1, 14), TAP), regular[1]), at(1, 16)),
    Case("in the first days a tap left open 4.5 h is reported", WaterRunningDetector(),
         (plus(regular[0], at(1, 14), TAP), regular[1]), at(1, 18.5), {("water_running", "critical")}),
    Case("read hourly: up all night, a glass of water every hour (2 L/h)", WaterRunningDetector(),
         (plus(regular[0], at(16, 22), 0.0005, at(17, 9)), regular[1]), at(17, 9), hourly=True),
    Case("read hourly: a leak of 8 L/h from 02:00, a day later", WaterRunningDetector(),
         (plus(regular[0], at(16, 2), LEAK), regular[1]), at(17, 3), {("water_running", "warning")}, hourly=True),
    Case("ordinary life: no unusual usage", UnusualUsageDetector(), regular, at(16, 20)),
    Case("a 2 kW heater left on from 10:00, next morning", UnusualUsageDetector(),
         (regular[0], plus(regular[1], at(16, 10), HEATER_KW)), at(17, 10), {("unusual_usage", "warning")}),
    Case("a 2 kW heater left on for two hours (a cold evening)", UnusualUsageDetector(),
         (regular[0], plus(regular[1], at(16, 18), HEATER_KW, at(16, 20))), at(17, 10)),
    Case("600 L run into an overflowing bath", UnusualUsageDetector(),
         (plus(regular[0], at(16, 14), 0.05, at(16, 17)), regular[1]), at(16, 18), {("unusual_usage", "warning")}),
    # an ordinary day here is 126 L of water: 450 L more is past both lines (4×, and 400 L more); 350 L more is not
    Case("450 L more than an ordinary day: just past both lines", UnusualUsageDetector(),
         (plus(regular[0], at(16, 14), 0.05, at(16, 16.25)), regular[1]), at(16, 18), {("unusual_usage", "warning")}),
    Case("350 L more than an ordinary day (3.8×): under the line", UnusualUsageDetector(),
         (plus(regular[0], at(16, 14), 0.05, at(16, 15.75)), regular[1]), at(16, 18)),
    Case("heater left on while the routine is still learning (day 5)", UnusualUsageDetector(),
         (regular[0], plus(regular[1], at(5, 10), HEATER_KW)), at(6, 10)),
    Case("after a collapse the fridge runs on: nothing unusual", UnusualUsageDetector(),
         (switch(at(16, 10), regular[0], lambda t: 0.0), switch(at(16, 10), regular[1], lambda t: FRIDGE_KW)),
         at(17, 10)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_usage_detectors_on_timelines(case: Case):
    silent, hourly = case.water_silent_from, case.hourly
    state = run(case.h1, case.end, report=lambda m, t: m != "H1-W" or (
        (silent is None or t <= silent) and (not hourly or t % 3600 == 0)))
    findings = case.detector.evaluate(state, case.end)
    assert {(str(f.category), str(f.severity)) for f in findings if f.household == "H1"} == case.expect
    assert all(f.household == "H1" for f in findings)  # the neighbours live ordinarily


def test_water_running_clears_when_the_tap_is_closed():
    state = run((plus(regular[0], at(16, 14), TAP), regular[1]), at(16, 16))
    det = WaterRunningDetector()
    (f,) = det.evaluate(state, at(16, 16))
    alert = Alert(1, f.key, f.category, det.name, f.severity, AlertStatus.OPEN, f.reason, f.since, at(16, 16),
                  household="H1")
    assert not det.cleared(alert, state, at(16, 16))
    w = float(state.last_value[state.meter_index["H1-W"]])
    state.apply([Reading("H1-W", at(16, 16.25), w)])
    assert det.cleared(alert, state, at(16, 16.25))


def test_learned_runs_are_per_household_and_robust_to_one_odd_day():
    """A household that always waters the garden for 2 h learns it; one earlier tap left open is not learned."""
    garden = plus(regular[0], 0, 0.0)

    def gardener(t: int) -> float:
        local = ((t + 8 * H) % D) / H
        return garden(t) + (0.02 if 17 <= local < 19 else 0.0)

    odd = plus(regular[0], at(3, 9), TAP, at(3, 15))  # one day, six hours of an open tap
    state = run((gardener, regular[1]), at(16, 4))
    i = state.meter_index["H1-W"]
    assert 2 * H <= state.run_learned[i] <= 2.5 * H
    state = run((odd, regular[1]), at(16, 4))
    assert state.hi_run_learned[state.meter_index["H1-W"]] <= H
    # the gardener's evening watering is not water running; two hours more is
    state = run((plus(gardener, at(16, 19), 0.02), regular[1]), at(16, 21.5))
    assert WaterRunningDetector().evaluate(state, at(16, 21.5)) == []
    state = run((plus(gardener, at(16, 19), 0.02), regular[1]), at(17, 2))
    assert [str(f.category) for f in WaterRunningDetector().evaluate(state, at(17, 2))] == ["water_running"]

"""Table-driven detector tests on hand-made timelines."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from conftest import small_registry
from timelines import DAY0, H, fridge_only, household_readings, normal_kw, normal_water, nothing, switch

from detectors import DeviceDetector, NoChangeDetector
from shouwang.domain import AlertCategory, GatewayStatus
from shouwang.state import HouseholdState


@dataclass
class Case:
    name: str
    hours: int  # how long the timeline runs; detectors are evaluated at its end
    water: object = normal_water
    kw: object = normal_kw
    report_until: dict = field(default_factory=dict)  # meter → last hour it reports
    offline_gateway_at: int | None = None  # hour G1's last will arrives
    expect: set = field(default_factory=set)  # {(category, subject)}
    since_hour: float | None = None


STOP = DAY0 + 24 * H  # the moment "life stops" in the incident cases

CASES = [
    Case("living normally for five days", 120),
    Case("owner's case: meters stop for 49 h", 24 + 49, water=switch(STOP, normal_water, nothing),
         kw=switch(STOP, normal_kw, nothing), expect={("inactivity", "H1")}, since_hour=24),
    Case("meters stop but only 47 h so far", 24 + 47, water=switch(STOP, normal_water, nothing),
         kw=switch(STOP, normal_kw, nothing)),
    Case("incapacitated, fridge keeps running for 49 h", 24 + 49, water=switch(STOP, normal_water, nothing),
         kw=switch(STOP, normal_kw, fridge_only), expect={("inactivity", "H1")}, since_hour=24),
    Case("away at her son's for three days (no away periods yet)", 24 + 72,
         water=switch(STOP, normal_water, nothing), kw=switch(STOP, normal_kw, fridge_only),
         expect={("inactivity", "H1")}, since_hour=24),
    Case("no water meter use, but cooking and TV every day", 120, water=nothing),
    Case("late riser: active only 14:00-22:00 local", 120,
         water=lambda t: normal_water(t) if ((t - DAY0) // H + 8) % 24 >= 14 else 0.0,
         kw=lambda t: normal_kw(t) if ((t - DAY0) // H + 8) % 24 >= 14 else 0.05),
    Case("leak: water never stops", 120, water=lambda t: 0.002),
    Case("dead gateway by last will, then silence", 24 + 72, water=switch(STOP, normal_water, nothing),
         kw=switch(STOP, normal_kw, fridge_only), report_until={"H1-W": 30, "H1-E": 30, "H2-W": 30, "H2-E": 30},
         offline_gateway_at=30, expect={("device", "gw:G1")}),
    Case("gateway silent without a will (network cut)", 96,
         report_until={"H1-W": 40, "H1-E": 40, "H2-W": 40, "H2-E": 40}, expect={("device", "gw:G1")}),
    Case("one meter silent, the other flat", 24 + 72, water=switch(STOP, normal_water, nothing),
         kw=switch(STOP, normal_kw, nothing), report_until={"H1-E": 30}, expect={("device", "m:H1-E")}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_detectors_on_timelines(case: Case):
    state = HouseholdState(small_registry(), started_at=DAY0)
    end = DAY0 + case.hours * H
    for hh in ("H1", "H2", "H3", "H4"):
        w, k = (case.water, case.kw) if hh == "H1" else (normal_water, normal_kw)
        state.apply(household_readings(
            hh, DAY0, end, w, k,
            report=lambda m, t: t <= DAY0 + case.report_until.get(m, case.hours) * H))
    if case.offline_gateway_at is not None:
        state.set_gateway_status(GatewayStatus("G1", False, DAY0 + case.offline_gateway_at * H))
    detectors = [NoChangeDetector(), DeviceDetector()]
    findings = [f for d in detectors for f in d.evaluate(state, end)]
    got = {(str(f.category), f.key.split(":", 1)[1]) for f in findings}
    assert got == case.expect
    if case.since_hour is not None:
        (f,) = [f for f in findings if f.category == AlertCategory.INACTIVITY]
        assert abs(f.since - (DAY0 + case.since_hour * H)) <= 900


def test_inactivity_clears_when_activity_resumes():
    state = HouseholdState(small_registry(), started_at=DAY0)
    end = DAY0 + 80 * H
    readings = household_readings("H1", DAY0, end, switch(STOP, normal_water, nothing),
                                   switch(STOP, normal_kw, nothing))
    state.apply(readings)
    det = NoChangeDetector()
    (finding,) = [f for f in det.evaluate(state, end) if f.household == "H1"]
    from shouwang.domain import Alert, AlertStatus

    alert = Alert(1, finding.key, finding.category, det.name, finding.severity, AlertStatus.OPEN, finding.reason,
                  finding.since, end, household="H1")
    assert not det.cleared(alert, state, end)
    last = readings[-2:]
    from shouwang.domain import Reading

    state.apply([Reading("H1-W", end + 900, last[0].value + 0.01), Reading("H1-E", end + 900, last[1].value)])
    assert det.cleared(alert, state, end + 900)


def test_a_sweep_over_a_household_silent_since_start_waits_for_data():
    state = HouseholdState(small_registry(), started_at=DAY0)
    assert NoChangeDetector().evaluate(state, DAY0 + 100 * H) == []
    # never-heard meters are a device problem once the silence threshold passes: one alert per gateway
    keys = sorted(f.key for f in DeviceDetector().evaluate(state, DAY0 + 7 * H))
    assert keys == ["device:gw:G1", "device:gw:G2"]

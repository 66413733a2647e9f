"""The routine detector on hand-made timelines: weeks of ordinary life, then one day that matters."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from timelines import (
    FRIDGE_KW,
    H,
    community_readings,
    local_day,
    local_hour,
    routine,
    switch,
    watch_registry,
)

from detectors import DEFAULT_DETECTORS, LearningStatus, RoutineDetector, build_detectors, learning_status
from shouwang.domain import (
    Community,
    Gateway,
    GatewayStatus,
    Household,
    Meter,
    MeterKind,
    Registry,
)
from shouwang.state import HouseholdState

START = 1_795_276_800  # 2026-11-20T16:00Z: local midnight in Shanghai (2026-11-21 00:00)
D = 86400


def registry(h1_meters: str = "WE") -> Registry:
    return watch_registry(h1_meters)


def run(reg: Registry, h1, until: int, report=lambda m, t: True) -> HouseholdState:
    state = HouseholdState(reg, started_at=START)
    usage = {"H1": h1, "H2": routine(), "H3": routine(6.5, 21.5)}
    for batch in community_readings(usage, START, until, report=report):
        state.apply(batch)
    return state


def collapse(at: int, water, kw, fridge: bool = True):
    """Life stops at ``at``: no water, electricity falls to the fridge (or to nothing)."""
    return (None if water is None else switch(at, water, lambda t: 0.0),
            switch(at, kw, lambda t: FRIDGE_KW if fridge else 0.0))


@dataclass
class Case:
    name: str
    h1: tuple  # (water, kW) usage of H1
    at: float  # evaluate at this many hours after local midnight starting day ``days``
    expect: set = field(default_factory=set)  # {(detector, category, subject)}
    days: int = 16  # days of history before the day that matters
    meters: str = "WE"
    since_h: float | None = None  # expected since of the routine finding, hours after day ``days`` began
    offline_at: float | None = None  # G1's last will arrives (hours after day ``days`` began)
    report_until: dict = field(default_factory=dict)  # meter → hours after day ``days`` began it goes silent


def day_n(days: int, hours: float) -> int:
    return START + days * D + int(hours * H)


regular = routine(7.0, 22.0)
late = routine(10.0, 25.0)  # up at ten, to bed at one
owl = routine(12.0, 27.0)  # up at noon, to bed at three
wednesday = local_day(day_n(21, 0)) % 7
centre = routine(7.0, 22.0, away=lambda t: local_day(t) % 7 == wednesday and 8.5 <= local_hour(t - 900) < 17)
trip = routine(7.0, 22.0, away=lambda t: day_n(5, 9) < t <= day_n(8, 15))  # three days at her son's, learned over

CASES = [
    Case("regular, an ordinary afternoon", regular, 15),
    Case("late riser at 11:00, as every day (kizuki's 8 h would have fired)", late, 11),
    Case("night owl at 11:30, still asleep as every day", owl, 11.5),
    Case("night owl in the small hours, still up", owl, 2.5),
    Case("regular, collapses at 10:00, two hours later: not yet", collapse(day_n(16, 10), *regular), 12),
    Case("regular, collapses at 10:00, seven hours later: alerted", collapse(day_n(16, 10), *regular), 17,
         {("routine", "inactivity", "H1")}, since_h=10),
    Case("regular, collapses after her last use at 21:30, found at 09:00 next day", collapse(day_n(16, 21.5), *regular),
         24 + 9.5, {("routine", "inactivity", "H1")}),
    Case("late riser collapses at 23:00: not alerted at her ordinary waking time", collapse(day_n(16, 23), *late),
         24 + 10.5),
    Case("late riser collapses at 23:00: alerted by 14:00", collapse(day_n(16, 23), *late), 24 + 14,
         {("routine", "inactivity", "H1")}),
    Case("electricity only: fridge runs on after a collapse at 10:00, routine catches it",
         collapse(day_n(16, 10), None, regular[1]), 17, {("routine", "inactivity", "H1")}, meters="E", since_h=10),
    Case("electricity only, an ordinary afternoon", (None, regular[1]), 15, meters="E"),
    Case("away at her son's for three days from 09:00 (no away registration)",
         collapse(day_n(16, 9), *regular), 21, {("routine", "inactivity", "H1")}),
    Case("after a three-day trip in the history, an ordinary afternoon", trip, 15),
    Case("after a three-day trip in the history, a collapse at 10:00 is still caught",
         collapse(day_n(16, 10), *trip), 17, {("routine", "inactivity", "H1")}),
    Case("weekly day centre on Wednesdays, at 16:00 on a Wednesday", centre, 16, days=21),
    Case("still learning (5 days): the fallback waits 48 h, 30 h after the stop: nothing",
         collapse(day_n(5, 10), *regular), 40, days=5),
    Case("still learning (5 days): the fallback alerts after 48 h", collapse(day_n(5, 10), *regular), 59,
         {("routine", "inactivity", "H1"), ("no-change-48h", "inactivity", "H1")}, days=5),
    Case("dead gateway (last will) after the collapse: one device alert, no welfare",
         collapse(day_n(16, 10), *regular), 17, {("device", "device", "gw:G1")}, offline_at=10.5,
         report_until={"H1-W": 10.5, "H1-E": 10.5, "H2-W": 10.5, "H2-E": 10.5}),
    Case("a meter silent after the collapse: a device alert, no welfare",
         collapse(day_n(16, 10), *regular), 17, {("device", "device", "m:H1-E")}, report_until={"H1-E": 10.5}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_routine_on_timelines(case: Case):
    end = day_n(case.days, case.at)
    reg = registry(case.meters)
    silent = {m: day_n(case.days, h) for m, h in case.report_until.items()}
    state = run(reg, case.h1, end, report=lambda m, t: t <= silent.get(m, end))
    if case.offline_at is not None:
        state.set_gateway_status(GatewayStatus("G1", False, day_n(case.days, case.offline_at)))
    dets = build_detectors(["routine", "no-change-48h", "device"])
    findings = [f for d in dets for f in d.evaluate(state, end)]
    got = {(f.detector, str(f.category), f.key.split(":", 1)[1]) for f in findings}
    assert got == case.expect
    if case.since_h is not None:
        (f,) = [f for f in findings if f.detector == "routine"]
        assert day_n(case.days, case.since_h) - 5400 <= f.since <= day_n(case.days, case.since_h)  # last use


def test_learning_status_and_fallback_reason():
    state = run(registry(), collapse(day_n(5, 10), *regular), day_n(5, 59))
    status, days = learning_status(state, "H1")
    assert status == LearningStatus.LEARNING and 5 <= days <= 7
    (f,) = [f for f in RoutineDetector().evaluate(state, day_n(5, 59)) if f.household == "H1"]
    assert f.detector == "routine" and "learning" in f.reason and "no-change-48h" in f.reason
    assert learning_status(state, "H2")[0] == LearningStatus.LEARNING


def test_a_newcomer_among_learned_neighbours_is_judged_by_the_fallback():
    """H1 moved in five days ago; its neighbours have sixteen days learned and are asleep. 30 hours after H1's last
    use its few days of routine would say "far too long", but they are not enough to judge by: the fallback's 48 h
    are what count, so nothing yet."""
    moved_in, end = day_n(11, 0), day_n(16, 4)
    state = run(registry(), collapse(day_n(15, 6), *regular), end,
                report=lambda m, t: not m.startswith("H1") or t >= moved_in)
    assert [learning_status(state, h)[0] for h in ("H1", "H2", "H3")] == [LearningStatus.LEARNING,
                                                                          *[LearningStatus.LEARNED] * 2]
    assert not RoutineDetector().evaluate(state, end)
    assert [f.household for f in RoutineDetector(min_days=4).evaluate(state, end)] == ["H1"]


def test_learning_status_learned_and_no_data():
    reg = registry()
    state = HouseholdState(reg, started_at=START)
    assert learning_status(state, "H1") == (LearningStatus.NO_DATA, 0)
    state = run(reg, regular, day_n(16, 4))
    assert learning_status(state, "H1") == (LearningStatus.LEARNED, 16)
    with pytest.raises(KeyError):
        learning_status(state, "nobody")


def test_routine_alert_clears_when_activity_resumes():
    from shouwang.domain import Alert, AlertStatus, Reading

    state = run(registry(), collapse(day_n(16, 10), *regular), day_n(16, 17))
    det = RoutineDetector()
    (f,) = [f for f in det.evaluate(state, day_n(16, 17)) if f.household == "H1"]
    alert = Alert(1, f.key, f.category, det.name, f.severity, AlertStatus.OPEN, f.reason, f.since, day_n(16, 17),
                  household="H1")
    assert not det.cleared(alert, state, day_n(16, 17))
    w = state.last_value[state.meter_index["H1-W"]]
    state.apply([Reading("H1-W", day_n(16, 17.25), w + 0.005)])
    assert det.cleared(alert, state, day_n(16, 17.25))


def test_thresholds_follow_the_time_of_day():
    """The alert line is long at night and short in the afternoon, for a regular sleeper."""
    state = run(registry(), regular, day_n(16, 4))
    h = state.household_index["H1"]
    import numpy as np

    det = RoutineDetector()
    at = np.array([day_n(16, 6), day_n(16, 15)])
    night, afternoon = det.thresholds(state, np.array([h, h]), at)
    assert night > 12 * H  # after a 9-hour night, a long line
    assert 3 * H <= afternoon <= 7 * H


def test_electricity_only_homes_get_the_tighter_factor():
    """No preset can fire in a home without a water meter, so its line is ``factor_no_water`` × its ordinary gap."""
    import numpy as np

    det = RoutineDetector()
    at = np.array([day_n(16, 6)])  # after a night's sleep: the longest ordinary gap of the day
    got = {}
    for meters, h1 in (("WE", regular), ("E", (None, regular[1]))):
        state = run(registry(meters), h1, day_n(16, 4))
        line, gap = det._lines(state, np.array([state.household_index["H1"]]), at)
        got[meters] = int(line[0]), int(gap[0])
    (we_line, we_gap), (e_line, e_gap) = got["WE"], got["E"]
    assert we_gap > 6 * H and e_gap > 6 * H
    assert we_line == det.factor * we_gap + det.margin_s
    assert e_line == det.factor_no_water * e_gap + det.margin_s
    assert det.factor_no_water < det.factor and e_line < we_line


def test_local_time_bins_follow_the_community_zone():
    """Bins are local time: the same UTC instant is a different half hour in Shanghai and in London."""
    import numpy as np

    reg = Registry((Community("sh", "", "Asia/Shanghai"), Community("ld", "", "Europe/London")),
                   (Gateway("G", "sh"),), (Household("A", "sh"), Household("B", "ld")),
                   (Meter("A-W", "A", MeterKind.WATER, "G"), Meter("B-W", "B", MeterKind.WATER, "G")))
    state = HouseholdState(reg)
    t = START + 12 * H  # 12:00 in Shanghai = 04:00 in London (winter)
    _, b = state.local_time(np.array([0, 1]), np.array([t, t]))
    assert b.tolist() == [24, 8]
    summer = 1_783_000_000  # 2026-07-02: London on summer time (UTC+1)
    _, b = state.local_time(np.array([1]), np.array([summer - summer % 86400]))
    assert b.tolist() == [2]


def test_default_detectors_build_and_routine_uses_the_configured_fallback():
    dets = build_detectors(DEFAULT_DETECTORS, window_s=24 * H, silence_s=3 * H)
    assert [d.name for d in dets] == ["routine", "water_running", "unusual_usage", "device"]
    routine_det = dets[0]
    assert routine_det.fallback.name == "no-change-24h" and routine_det.fallback.window_s == 24 * H
    assert routine_det.max_staleness_s == 3 * H and dets[3].silence_s == 3 * H
    with pytest.raises(ValueError, match="unknown detector"):
        build_detectors(["nonsense"])


def test_build_detectors_scopes_presets_to_communities():
    dets = build_detectors(["routine", "device"], communities={"c1": ["taicang"], "c2": ["taicang", "kizuki"]})
    by = {d.name: d for d in dets}
    assert by["taicang"].communities == frozenset({"c1", "c2"})
    assert by["kizuki"].communities == frozenset({"c2"})
    assert by["routine"].communities is None
    # a preset scoped to another community does not judge c1's households
    state = run(registry(), collapse(day_n(3, 10), *regular), day_n(3, 40))
    kizuki_c2 = by["kizuki"]
    assert kizuki_c2.evaluate(state, day_n(3, 40)) == []
    assert build_detectors(["kizuki"])[0].evaluate(state, day_n(3, 40))


def test_any_preset_can_be_the_fallback_while_learning():
    (det,) = build_detectors(["routine"], routine_fallback="taicang")
    state = run(registry(), collapse(day_n(5, 10), *regular), day_n(5, 35))
    (f,) = [f for f in det.evaluate(state, day_n(5, 35)) if f.household == "H1"]
    assert f.detector == "routine" and "judged by preset taicang" in f.reason and "learning" in f.reason
    (none,) = build_detectors(["routine"], routine_fallback=None)
    assert none.evaluate(state, day_n(5, 35)) == []

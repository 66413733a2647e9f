"""The deployed programmes' rule presets on hand-made timelines; none of them fires on missing data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from timelines import H, community_readings, routine, watch_registry

from detectors import PRESETS, build_detectors
from shouwang.domain import GatewayStatus
from shouwang.state import HouseholdState

END = 1_795_276_800 + 3 * 86400 + 8 * H  # 08:00 local on the fourth day: "yesterday" is 32 h to 8 h ago
L = 0.001


def water_plan(*segments: tuple[float, float, float], background_l_per_h: float = 6.0):
    """Water used per 15-minute interval: ``(from, to, litres)`` spreads litres evenly over the intervals
    between ``from`` and ``to`` hours before END; more than 36 h before END the household uses water
    ordinarily (``background_l_per_h``); otherwise none."""
    def water(t: int) -> float:
        ago = (END - t) / H  # the interval (t - 15 min, t] lies between ago + 0.25 and ago hours before END
        for a, b, litres in segments:
            if b <= ago < a:
                return litres * L / ((a - b) * 4)
        return background_l_per_h * L / 4 if ago >= 36 else 0.0
    return water


@dataclass
class Case:
    name: str
    preset: str
    water: object
    expect: set = field(default_factory=set)  # categories found for H1
    meters: str = "WE"
    water_until_h: float | None = None  # the water meter goes silent this many hours before END
    start_h: float = 72  # readings begin this many hours before END
    offline: bool = False


CASES = [
    Case("shanghai: 8 L in the last 12 h", "shanghai", water_plan((6, 5, 8)), {"inactivity"}),
    Case("shanghai: 12 L in the last 12 h", "shanghai", water_plan((6, 5, 12))),
    Case("shanghai: nothing since the water meter went silent 7 h ago", "shanghai", water_plan(), water_until_h=7),
    Case("shanghai: nothing, but the gateway is offline", "shanghai", water_plan(), offline=True),
    Case("shanghai: no water meter (electricity only)", "shanghai", water_plan(), meters="E"),
    Case("shanghai: meter installed 6 h ago, nothing used yet", "shanghai", water_plan(), start_h=6),
    Case("taicang: 9 L in 24 h", "taicang", water_plan((20, 19, 9)), {"inactivity"}),
    Case("taicang: 11 L in 24 h", "taicang", water_plan((20, 19, 11))),
    Case("taicang: 9 L in 24 h, but the water meter silent for 7 h", "taicang", water_plan((20, 19, 9)),
         water_until_h=7),
    Case("haishu: exactly 8 L in 24 h", "haishu", water_plan((20, 19, 8)), {"inactivity"}),
    Case("haishu: 9 L in 24 h", "haishu", water_plan((20, 19, 9))),
    Case("kizuki: last water 7.5 h ago", "kizuki", water_plan((8, 7.5, 5))),
    Case("kizuki: last water 8.5 h ago", "kizuki", water_plan((9, 8.5, 5)), {"inactivity"}),
    Case("kizuki: 8.5 h without water, but the gateway is offline", "kizuki", water_plan((9, 8.5, 5)),
         offline=True),
    Case("kizuki: water flowing for 2.5 h without a pause", "kizuki", water_plan((2.5, 0, 25)), {"water_running"}),
    Case("kizuki: water flowing for 1.5 h", "kizuki", water_plan((1.5, 0, 15))),
    Case("jingan: 5 L yesterday", "jingan", water_plan((32, 8, 5), (4, 2, 50)), {"inactivity"}),
    Case("jingan: 2.5 m³ yesterday", "jingan", water_plan((32, 8, 2500), (4, 2, 50)), {"unusual_usage"}),
    Case("jingan: 200 L yesterday", "jingan", water_plan((32, 8, 200), (4, 2, 50))),
    Case("jingan: 5 L yesterday, but no reading since 23:00", "jingan", water_plan((32, 8, 5)), water_until_h=9),
    Case("longgang-leak: water in every half hour for 25 h", "longgang-leak", water_plan((25, 0, 50)),
         {"water_running"}),
    Case("longgang-leak: a leak, but one quiet hour 10 h ago", "longgang-leak",
         water_plan((25, 11, 28), (10, 0, 20))),
    Case("longgang-leak: steady flow for 25 h, gateway offline", "longgang-leak", water_plan((25, 0, 50)),
         offline=True),
    Case("no-change-48h: water stops 50 h ago but the cooker and TV go on", "no-change-48h", water_plan()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_preset_on_timelines(case: Case):
    state = HouseholdState(watch_registry(case.meters))
    until = END - int((case.water_until_h or 0) * H)
    usage = {"H1": (case.water if "W" in case.meters else None, routine()[1]), "H2": routine(), "H3": routine()}
    for batch in community_readings(usage, END - int(case.start_h * H), END,
                                    report=lambda m, t: m != "H1-W" or t <= until):
        state.apply(batch)
    if case.offline:
        state.set_gateway_status(GatewayStatus("G1", False, END - H))
    (det,) = build_detectors([case.preset])
    got = {str(f.category) for f in det.evaluate(state, END) if f.household == "H1"}
    assert got == case.expect
    assert all(f.detector == case.preset for f in det.evaluate(state, END))


def test_every_preset_is_registered_with_its_name():
    assert set(PRESETS) == {"no-change-48h", "shanghai", "taicang", "haishu", "kizuki", "jingan", "longgang-leak"}
    for name, factory in PRESETS.items():
        det = factory(max_staleness_s=3 * H, communities=frozenset({"c9"}))
        assert det.name == name and det.max_staleness_s == 3 * H and det.communities == frozenset({"c9"})


def test_a_preset_never_fires_on_a_household_that_never_reported():
    state = HouseholdState(watch_registry(), started_at=END - 72 * H)
    for name in PRESETS:
        (det,) = build_detectors([name])
        assert det.evaluate(state, END) == []


@pytest.mark.parametrize("name", ["shanghai", "taicang", "haishu", "kizuki", "jingan", "longgang-leak"])
def test_water_presets_clear_when_the_condition_goes(name):
    """A preset's alert is cleared once its condition no longer holds (and never on stale data)."""
    from shouwang.domain import Alert, AlertStatus, Reading

    plans = {"jingan": water_plan((32, 8, 5)), "longgang-leak": water_plan((25, 0, 50)),
             "kizuki": water_plan((9, 8.5, 5))}
    state = HouseholdState(watch_registry())
    usage = {"H1": (plans.get(name, water_plan()), routine()[1]), "H2": routine(), "H3": routine()}
    for batch in community_readings(usage, END - 72 * H, END):
        state.apply(batch)
    (det,) = build_detectors([name])
    (f,) = [f for f in det.evaluate(state, END) if f.household == "H1"]
    alert = Alert(1, f.key, f.category, det.name, f.severity, AlertStatus.OPEN, f.reason, f.since, END,
                  household="H1")
    assert not det.cleared(alert, state, END)
    assert not det.cleared(alert, state, END + 8 * H)  # the meter went silent: nothing is cleared
    w = float(state.last_value[state.meter_index["H1-W"]])
    if name == "longgang-leak":  # the flow stops for an hour
        state.apply([Reading("H1-W", END + 1800, w), Reading("H1-W", END + 3600, w)])
        assert det.cleared(alert, state, END + 3600)
    elif name == "jingan":  # a new day with ordinary use
        for k in range(1, 97):
            state.apply([Reading("H1-W", END + k * 900, round(w + k * 0.003, 6))])
        assert det.cleared(alert, state, END + 24 * H)
    else:
        state.apply([Reading("H1-W", END + 900, w + 0.05)])
        assert det.cleared(alert, state, END + 900)


def _mixed_community(seed: int):
    """40 households in two communities (Shanghai; Berlin, whose clocks change), some with two water meters, living
    one of: ordinary days, little use near the rules' lines, a quiet spell, a leak, heavy use, a meter that goes
    silent; 15-minute readings of 6 days from before a DST change, sent in 45-minute batches."""
    from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Reading, Registry

    rng = np.random.default_rng(seed)
    comms = (Community("sh", timezone="Asia/Shanghai"), Community("be", timezone="Europe/Berlin"))
    hhs, meters, gws = [], [], []
    for i in range(40):
        c = comms[i % 2].id
        gws.append(Gateway(f"G{i}", c))
        hhs.append(Household(f"H{i}", c))
        meters += [Meter(f"H{i}-W", f"H{i}", MeterKind.WATER, f"G{i}"), Meter(f"H{i}-E", f"H{i}", MeterKind.ELECTRICITY,
                                                                                f"G{i}")]
        if i % 5 == 0:
            meters.append(Meter(f"H{i}-W2", f"H{i}", MeterKind.WATER, f"G{i}"))
    reg = Registry(comms, tuple(gws), tuple(hhs), tuple(meters))
    start = 1_792_800_000 // 900 * 900  # late October 2026: Berlin leaves summer time within the 6 days
    life = {m.id: rng.choice(["ordinary", "sparse", "quiet", "leak", "heavy", "silent"],
                             p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1]) for m in meters}
    sparse = {m.id: rng.uniform(0.05, 0.3) for m in meters}  # a litre in that share of intervals: near the lines
    quiet_from = {m.id: start + int(rng.integers(1, 5)) * 86400 + int(rng.integers(0, 96)) * 900 for m in meters}
    value = {m.id: float(rng.integers(0, 500)) for m in meters}
    batches: list[list[Reading]] = []
    for k in range(1, 6 * 96 + 1):
        t = start + k * 900
        batch = []
        for m in meters:
            how = life[m.id]
            if how == "silent" and t > quiet_from[m.id]:
                continue
            if m.kind == MeterKind.ELECTRICITY:
                step = 0.02 + (0.3 if rng.random() < 0.2 else 0.0)
            elif how == "quiet" and t > quiet_from[m.id]:
                step = 0.0
            elif how == "sparse":
                step = 0.001 if rng.random() < sparse[m.id] else 0.0
            elif how == "leak" and t > quiet_from[m.id] - 2 * 86400:
                step = 0.0004 + (0.01 if rng.random() < 0.1 else 0.0)
            elif how == "heavy" and t > quiet_from[m.id] - 86400:
                step = 0.04 if rng.random() < 0.6 else 0.0
            else:
                step = float(rng.choice([0.0, 0.0, 0.0, 0.002, 0.01, 0.03]))
            value[m.id] = round(value[m.id] + step, 4)
            batch.append(Reading(m.id, t - int(rng.integers(0, 60)), value[m.id]))
        if k % 3 == 0 or batches == []:  # 45 minutes a batch: the batches end at every quarter of the hour
            batches.append([])
        batches[-1] += batch
    return reg, start, batches


@pytest.mark.parametrize("seed", [1, 2])
def test_presets_find_what_a_check_of_every_meter_finds(seed, monkeypatch):
    """The water presets look closely only at households a kept per-meter figure cannot rule out; after every hourly
    batch they find exactly what checking every meter finds, in every community, across a clock change, and with
    ``now`` up to 20 minutes behind the newest reading (a local midnight can lie between them)."""
    from detectors.presets import JinganRule, LonggangLeakRule, WaterWindowRule

    reg, start, batches = _mixed_community(seed)
    names = ["shanghai", "taicang", "haishu", "jingan", "longgang-leak"]
    state = HouseholdState(reg, started_at=start)
    dets = build_detectors(names)
    found = {n: 0 for n in names}
    everyone = np.arange(len(state.meter_ids))
    for k, batch in enumerate(batches):
        state.apply(batch)
        now = max(r.ts for r in batch) + 300 * (k % 5 - 4)
        if k == 80:
            state.set_gateway_status(GatewayStatus("G3", False, now))
        got = {d.name: sorted((f.household, f.category, f.since, f.reason) for f in d.evaluate(state, now))
               for d in dets}
        with monkeypatch.context() as mp:
            for cls in (WaterWindowRule, JinganRule, LonggangLeakRule):
                mp.setattr(cls, "_candidates", lambda self, state, *_: everyone)
            want = {d.name: sorted((f.household, f.category, f.since, f.reason) for f in d.evaluate(state, now))
                    for d in dets}
        assert got == want, k
        for n in names:
            found[n] += len(got[n])
    assert all(found.values()), found  # every preset fired somewhere, so the comparison says something

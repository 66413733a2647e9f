"""Simulator without a broker: routine model, community, scenario files and scripted incidents (dry run)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from shouwang.registry import dump_registry, load_registry
from simulators.community import build_community
from simulators.publisher import Simulator
from simulators.routine import CHRONOTYPES, RoutineModel, consumption, make_profile, make_profiles
from simulators.scenario import (
    DEMO_SCENARIO,
    GARBAGE_KINDS,
    ScenarioError,
    check_scenario,
    load_scenario,
    parse_scenario,
    resolve_incidents,
)

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, tzinfo=ZONE).timestamp()  # a Monday, local midnight
DAY, H = 86400.0, 3600.0


# ---- routine model ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model() -> RoutineModel:
    return RoutineModel(make_profiles([f"H{i:03d}" for i in range(1, 41)], seed=5))


def test_daily_water_and_electricity_are_plausible(model):
    for d in range(7):
        u = model.usage(START + d * DAY, START + (d + 1) * DAY)
        litres = u.water_m3 * 1000
        assert litres.min() >= 50 and litres.max() <= 300, litres
        assert 0.8 <= u.elec_kwh.min() and u.elec_kwh.max() <= 12


def test_base_load_never_zero_and_small(model):
    for k in range(2 * 96):
        t0 = START + k * 900
        u = model.usage(t0, t0 + 900)
        kw = u.elec_base_kwh / 0.25
        assert kw.min() > 0.02 and kw.max() < 0.1
        assert (u.elec_kwh > 0).all()


def test_nights_are_quiet_and_days_busy(model):
    night = model.usage(START + DAY + 2 * H, START + DAY + 4 * H)  # 02:00-04:00 local
    evening = model.usage(START + DAY + 18 * H, START + DAY + 20 * H)
    assert night.water_m3.sum() < 0.3 * evening.water_m3.sum()
    assert night.elec_activity_kwh.sum() < 0.2 * evening.elec_activity_kwh.sum()


def test_time_zone_shifts_the_routine():
    p = make_profile("H001", seed=5)
    here = RoutineModel([p], "Asia/Shanghai")
    there = RoutineModel([p], "Europe/Lisbon")  # 8 hours behind in November
    day = START + 3 * DAY
    assert here.household_usage(0, day, day + DAY) != there.household_usage(0, day, day + DAY)
    # the same local day: there it starts 8 hours later in absolute time, with the same pattern
    w_here, _, _ = here.household_usage(0, day, day + DAY)
    w_there, _, _ = there.household_usage(0, day + 8 * H, day + DAY + 8 * H)
    assert w_here == pytest.approx(w_there)


def test_deterministic_for_a_seed_and_additive():
    a = make_profiles(["H001", "H002"], seed=9)
    assert a == make_profiles(["H001", "H002"], seed=9)
    assert a != make_profiles(["H001", "H002"], seed=10)
    w1, e1 = consumption(a[0], START, START + DAY)
    w2, e2 = consumption(a[0], START, START + 10 * H)
    w3, e3 = consumption(a[0], START + 10 * H, START + DAY)
    assert (w1, e1) == pytest.approx((w2 + w3, e2 + e3))
    assert consumption(a[0], START, START + DAY) == (w1, e1)


def test_chronotypes_vary():
    profiles = make_profiles([f"H{i:03d}" for i in range(1, 201)], seed=1)
    assert {p.chronotype for p in profiles} == set(CHRONOTYPES)
    wakes = [p.wake_h for p in profiles]
    assert min(wakes) < 6 and max(wakes) > 9


def test_cheap_for_a_thousand_households():
    m = RoutineModel(make_profiles([f"H{i:04d}" for i in range(1000)], seed=2))
    t0 = time.perf_counter()
    for k in range(192):  # two days of 15-minute steps, day plans included
        m.usage(START + k * 900, START + (k + 1) * 900)
    assert time.perf_counter() - t0 < 5.0  # ~0.6 s here; generous for slow CI machines


# ---- community ----------------------------------------------------------------------------------

def test_community_ids_meters_and_round_trip(tmp_path):
    reg = build_community(25, seed=4)
    assert reg == build_community(25, seed=4)
    assert [h.id for h in reg.households][:3] == ["H001", "H002", "H003"]
    assert [g.id for g in reg.gateways] == ["GW-01", "GW-02", "GW-03"]
    assert {m.id for m in reg.meters if m.household == "H007"} == {"H007-W", "H007-E"}
    assert {m.gateway for m in reg.meters if m.household in ("H021", "H025")} == {"GW-03"}
    assert len({h.address for h in reg.households}) == 25
    assert all(h.name and "号楼" in h.address and h.grid.startswith("grid-") for h in reg.households)
    path = tmp_path / "registry.yaml"
    path.write_text(dump_registry(reg), encoding="utf-8")
    assert load_registry(path) == reg


# ---- scenario files -----------------------------------------------------------------------------

def test_demo_scenario_loads_and_resolves():
    reg = build_community(50, seed=1)
    sc = load_scenario(DEMO_SCENARIO, reg)
    resolved = resolve_incidents(sc, reg, START)
    windows = {(w.kind, w.subject): w for w in resolved}
    stall = windows[("stall", "H007")]
    assert stall.start_ts == START + DAY + 8 * H and stall.end_ts is None
    gw = windows[("gateway_offline", "GW-04")]
    assert (gw.start_ts, gw.end_ts) == (START + DAY + 12 * H, START + 3 * DAY + 12 * H)
    assert gw.households == tuple(f"H{i:03d}" for i in range(31, 41))
    away = windows[("away", "H023")]
    assert (away.start_ts, away.end_ts) == (START + 18 * H, START + 3 * DAY + 18 * H)
    garbage = sorted(w.start_ts for w in resolved if w.kind == "garbage")
    assert garbage == [START + 10 * H, START + 2 * DAY + 9 * H]
    assert "H007" in stall.describe()


def test_days_count_from_the_start_date_in_local_time():
    reg = build_community(10, seed=1)
    sc = parse_scenario({"incidents": [{"kind": "stall", "household": "H001", "at": "day 1 08:00"}]})
    (w,) = resolve_incidents(sc, reg, START + 6 * H)  # started at 06:00 local
    assert w.start_ts == START + 8 * H


@pytest.mark.parametrize(("incident", "expected"), [
    ({"kind": "stal", "at": "day 1"}, "incident 1: kind 'stal' is not one of stall, away"),
    ({"at": "day 1"}, "incident 1: says no kind"),
    ({"kind": "stall", "household": "H001", "at": "dya 2 08:00"},
     "incident 1 (stall): at: 'dya 2 08:00' is not like 'day 2 08:00'"),
    ({"kind": "stall", "household": "H001", "at": "day 0 08:00"}, "days count from 1"),
    ({"kind": "stall", "household": "H001", "at": "day 2 24:00"}, "time of day must be 00:00..23:59"),
    ({"kind": "stall", "at": "day 2"}, "incident 1 (stall): household is required"),
    ({"kind": "away", "household": "H001", "at": "day 2"}, "incident 1 (away): say how long"),
    ({"kind": "away", "household": "H001", "at": "day 2", "duration": 3}, "needs a unit"),
    ({"kind": "away", "household": "H001", "at": "day 2", "duration": "3 weeks"}, "is not like '2d'"),
    ({"kind": "stall", "household": "H001", "at": "day 2", "backfill": True},
     "option 'backfill' is not known for kind 'stall' (allowed: at, duration, household, keep_base_load"),
    ({"kind": "garbage", "at": "day 2", "kinds": ["bad_json", "rubbish"]}, "'rubbish' is not a garbage kind"),
    ({"kind": "garbage", "at": "day 2", "duration": "1h"}, "is instantaneous; remove 'duration'"),
])
def test_scenario_errors_say_what_to_fix(incident, expected):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario({"incidents": [incident]}, "s.yaml")
    assert expected in str(exc.value)
    assert str(exc.value).startswith("scenario s.yaml is invalid")


def test_unknown_household_and_gateway_are_named():
    reg = build_community(20, seed=1)
    sc = parse_scenario("""
incidents:
  - {kind: garbage, at: day 1 10:00}
  - {kind: stall, household: H001, at: day 1 10:00}
  - {kind: stall, household: H99, at: day 2 08:00}
  - {kind: gateway_offline, gateway: GW-04, at: day 2 12:00, duration: 2d}
""")
    with pytest.raises(ScenarioError) as exc:
        check_scenario(sc, reg)
    msg = str(exc.value)
    assert "incident 3: household 'H99' is not in the simulated community demo (it has H001..H020)" in msg
    assert "incident 4: gateway 'GW-04' is not in the simulated community demo (it has GW-01, GW-02)" in msg
    assert len(exc.value.problems) == 2


def test_unreadable_and_top_level_errors(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match="top-level key 'incident' is not known"):
        parse_scenario("incident: []")
    with pytest.raises(ScenarioError, match="must be a mapping"):
        parse_scenario("- 1\n- 2\n")


# ---- scripted incidents, without a broker -------------------------------------------------------

def _dry(registry, scenario_yaml: str, **kw) -> Simulator:
    return Simulator(registry, parse_scenario(scenario_yaml), start=START, seed=3, dry_run=True, **kw)


def _readings(outbox) -> dict[str, list[tuple[float, float]]]:
    """meter -> [(epoch ts, value)] of every valid reading in the outbox."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for topic, payload, _ in outbox:
        if not topic.endswith("/readings"):
            continue
        body = json.loads(payload)
        for r in body.get("readings", [body]):
            ts = r["ts"] if isinstance(r["ts"], int) else datetime.fromisoformat(r["ts"]).timestamp()
            out[r["meter"]].append((ts, r["value"]))
    return out


def test_stall_keeps_reporting_flat_registers():
    reg = build_community(10, seed=2)
    sim = _dry(reg, """
incidents:
  - {kind: stall, household: H003, at: day 1 06:00}
  - {kind: stall, household: H004, at: day 1 06:00, keep_base_load: true}
""")
    sim.step_to(START + 2 * DAY)
    r = _readings(sim.outbox)
    assert all(len(v) == 193 for v in r.values())  # every meter, every 15 minutes, moving or not
    after = START + 6 * H
    for meter in ("H003-W", "H003-E", "H004-W"):
        values = {v for ts, v in r[meter] if ts >= after}
        assert len(values) == 1, meter
    e = [(ts, v) for ts, v in r["H004-E"] if ts >= after]
    rate_kw = (e[-1][1] - e[0][1]) / ((e[-1][0] - e[0][0]) / H)
    assert 0.02 < rate_kw < 0.09  # the fridge keeps running
    assert len({v for ts, v in r["H005-W"] if ts >= after}) > 10  # neighbours live on


def test_away_means_no_water_and_base_load_then_life_resumes():
    reg = build_community(10, seed=2)
    sim = _dry(reg, "incidents: [{kind: away, household: H002, at: day 1 18:00, duration: 2d}]")
    sim.step_to(START + 4 * DAY)
    r = _readings(sim.outbox)
    leave, back = START + 18 * H, START + 2 * DAY + 18 * H
    water = [v for ts, v in r["H002-W"] if leave <= ts <= back]
    assert len(water) == 193 and len(set(water)) == 1
    e = [(ts, v) for ts, v in r["H002-E"] if leave <= ts <= back]
    rate_kw = (e[-1][1] - e[0][1]) / ((e[-1][0] - e[0][0]) / H)
    profile_kw = make_profile("H002", seed=3).base_kw
    assert rate_kw == pytest.approx(profile_kw, rel=0.1)
    assert len({v for ts, v in r["H002-W"] if ts > back}) > 5
    diffs = np.diff([v for _, v in sorted(r["H002-E"])])
    assert (diffs >= 0).all()  # registers never go backwards


def test_same_seed_same_messages():
    reg = build_community(10, seed=2)
    a, b = _dry(reg, "incidents: []"), _dry(reg, "incidents: []")
    a.step_to(START + DAY)
    b.step_to(START + DAY)
    assert a.outbox == b.outbox
    c = Simulator(reg, None, start=START, seed=4, dry_run=True)
    c.step_to(START + DAY)
    assert c.outbox != a.outbox


def test_garbage_payloads_are_each_bad_in_their_own_way():
    reg = build_community(20, seed=2)
    sim = _dry(reg, "incidents: [{kind: garbage, at: day 1 10:00}]")
    stats = sim.step_to(START + 10 * H)
    assert stats.garbage_messages == len(GARBAGE_KINDS) == len(sim.garbage_log)
    assert stats.garbage_good_readings == 2
    log = {g.kind: g for g in sim.garbage_log}
    assert set(log) == set(GARBAGE_KINDS)
    assert all(g.gateway == "GW-01" and g.topic.endswith("/demo/GW-01/readings") for g in log.values())
    with pytest.raises(json.JSONDecodeError):
        json.loads(log["bad_json"].payload)
    assert isinstance(json.loads(log["string_value"].payload)["value"], str)
    assert json.loads(log["negative_value"].payload)["value"] < 0
    assert json.loads(log["unknown_meter"].payload)["meter"] not in {m.id for m in reg.meters}
    future = json.loads(log["future_timestamp"].payload)["ts"]
    assert datetime.fromisoformat(future).timestamp() > START + 300 * DAY
    back = json.loads(log["register_backwards"].payload)
    last_ts, last_value = sim.last_values[back["meter"]]
    assert back["ts"] > last_ts and back["value"] < last_value
    mixed = json.loads(log["mixed_batch"].payload)["readings"]
    assert log["mixed_batch"].expected == GARBAGE_KINDS["mixed_batch"]
    assert len(mixed) == 2 + len(log["mixed_batch"].expected)
    mid = START + 10 * H - 450  # the two valid readings sit half an interval before the last report

    def epoch(ts):
        return datetime.fromisoformat(ts).replace(tzinfo=ZONE).timestamp() if isinstance(ts, str) else ts

    good = [r for r in mixed if "ts" in r and epoch(r["ts"]) == mid]
    assert {r["meter"] for r in good} == {"H001-W", "H001-E"}
    assert {type(r["ts"]) for r in good} == {str, int}
    garbage = {g.payload for g in sim.garbage_log}
    ordinary = _readings([o for o in sim.outbox if o[1] not in garbage])
    for r in good:  # consistent with the real readings around them
        before = max(v for t, v in ordinary[r["meter"]] if t < mid)
        after = min(v for t, v in ordinary[r["meter"]] if t > mid)
        assert before <= r["value"] <= after


def test_offline_gateway_status_and_backfill_in_dry_run():
    reg = build_community(20, seed=2)
    sim = _dry(reg, "incidents: [{kind: gateway_offline, gateway: GW-02, at: day 1 06:00, duration: 2h, "
                    "backfill: true}]")
    stats = sim.step_to(START + DAY)
    status = [(t.rsplit("/", 2)[1], p) for t, p, retained in sim.outbox if t.endswith("/status") and retained]
    assert [p for g, p in status if g == "GW-02"] == [b"online", b"offline", b"online"]
    assert stats.status_messages == 2 + 2  # two announcements at connect, the will, the return
    assert stats.backfilled == 8 * 20 and stats.readings == 97 * 40 and stats.dropped == 0
    assert sim.incidents[0].households == tuple(f"H{i:03d}" for i in range(11, 21))

"""Meter faults, stuck registers and gateway outages: device alerts, never welfare alerts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from timelines import FRIDGE_KW, H, community_readings, routine, switch, watch_registry

from detectors import DEFAULT_DETECTORS, PRESETS, DeviceDetector, build_detectors
from shouwang.domain import WELFARE_CATEGORIES, Alert, AlertStatus, GatewayStatus, Reading
from shouwang.state import HouseholdState

START = 1_795_276_800  # local midnight in Shanghai
D = 86400
regular = routine(7.0, 22.0)


def at(day: int, hours: float) -> int:
    return START + day * D + int(hours * H)


def run(h1, end: int, report=lambda m, t: True, tweak=None) -> HouseholdState:
    """Feed the community; ``tweak(reading) -> reading`` rewrites H1's readings (a faulty meter)."""
    state = HouseholdState(watch_registry(), started_at=START)
    for batch in community_readings({"H1": h1, "H2": regular, "H3": routine(6.5, 21.5)}, START, end,
                                    report=report):
        state.apply([tweak(r) if tweak and r.meter.startswith("H1-") else r for r in batch])
    return state


def shift(meter: str, after: int, by: float):
    """The register of ``meter`` reads ``by`` more from ``after`` on (a jump, or a reset if negative)."""
    return lambda r: Reading(r.meter, r.ts, round(r.value + by, 6)) if r.meter == meter and r.ts > after else r


def frozen(meter: str, after: int):
    held: dict[str, float] = {}

    def tweak(r: Reading) -> Reading:
        if r.meter != meter or r.ts <= after:
            return r
        held.setdefault(meter, r.value)
        return Reading(r.meter, r.ts, held[meter])
    return tweak


@dataclass
class Case:
    name: str
    end: int
    tweak: object = None
    h1: tuple = regular
    expect: set = field(default_factory=set)  # device finding subjects


CASES = [
    Case("ordinary meters", at(12, 12)),
    Case("water register jumps 50 m³ in 15 minutes", at(12, 12), shift("H1-W", at(12, 9), 50.0), expect={"m:H1-W"}),
    Case("water register jumps 0.5 m³ in 15 minutes (possible: a burst pipe at 2 m³/h)", at(12, 12),
         shift("H1-W", at(12, 9), 0.5)),
    Case("electricity meter swapped: the register back from 500 to 0 kWh", at(12, 12),
         shift("H1-E", at(12, 9), -500.0), expect={"m:H1-E"}),
    Case("a jump 30 h ago is no longer reported", at(12, 12), shift("H1-W", at(11, 6), 50.0)),
    Case("water register jitters back 1 L", at(12, 12), shift("H1-W", at(12, 9), -0.001)),
    Case("water register frozen for two days while cooking and TV go on", at(12, 12), frozen("H1-W", at(10, 10)),
         expect={"m:H1-W"}),
    Case("water register frozen for 40 h while cooking and TV go on: not yet", at(12, 12),
         frozen("H1-W", at(10, 20))),
    Case("electricity register frozen for 13 h while water is used", at(12, 12), frozen("H1-E", at(11, 23)),
         expect={"m:H1-E"}),
    Case("never uses water, cooks every day: not a stuck meter", at(12, 12), h1=(lambda t: 0.0, regular[1])),
    Case("collapsed: water still for two days, only the fridge runs: not a stuck meter", at(12, 12),
         h1=(switch(at(10, 10), regular[0], lambda t: 0.0), switch(at(10, 10), regular[1], lambda t: FRIDGE_KW))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_device_on_timelines(case: Case):
    state = run(case.h1, case.end, tweak=case.tweak)
    got = {f.key.split(":", 1)[1] for f in DeviceDetector().evaluate(state, case.end)}
    assert got == case.expect


def test_a_jump_is_neither_activity_nor_usage():
    collapsed = (switch(at(12, 6), regular[0], lambda t: 0.0), switch(at(12, 6), regular[1], lambda t: FRIDGE_KW))
    state = run(collapsed, at(12, 12), tweak=shift("H1-W", at(12, 9), 50.0))
    assert state.household_last_activity()[state.household_index["H1"]] <= at(12, 6)
    names = [n for n in (*DEFAULT_DETECTORS, *PRESETS) if n != "device"]
    welfare = [f for d in build_detectors(names) for f in d.evaluate(state, at(12, 12))
               if f.household == "H1" and str(f.category) in ("unusual_usage", "water_running")]
    assert welfare == []


def test_jitter_back_and_forth_is_not_activity():
    state = run((switch(at(12, 6), regular[0], lambda t: 0.0), regular[1]), at(12, 9))
    i = state.meter_index["H1-W"]
    w, last = float(state.last_value[i]), int(state.last_activity[i])
    state.apply([Reading("H1-W", at(12, 9.25), w - 0.001)])
    state.apply([Reading("H1-W", at(12, 9.5), w)])
    assert int(state.last_activity[i]) == last
    assert DeviceDetector().evaluate(state, at(12, 9.5)) == []


def test_fault_alert_resolves_after_the_hold():
    state = run(regular, at(12, 12), tweak=shift("H1-W", at(12, 9), 50.0))
    det = DeviceDetector()
    (f,) = det.evaluate(state, at(12, 12))
    assert "jumped" in f.reason and f.meter == "H1-W" and f.household == "H1"
    alert = Alert(1, f.key, f.category, det.name, f.severity, AlertStatus.OPEN, f.reason, f.since, at(12, 12),
                  household="H1", meter="H1-W")
    assert not det.cleared(alert, state, at(12, 12))
    later = run(regular, at(13, 10), tweak=shift("H1-W", at(12, 9), 50.0))
    assert det.cleared(alert, later, at(13, 10))


@pytest.mark.parametrize("n_households", [2, 40])
def test_a_gateway_outage_of_any_size_is_one_device_alert_and_no_welfare(n_households):
    """Every detector, every preset: the households behind a dead gateway are never welfare-alerted."""
    from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Registry

    hhs = [f"H{i}" for i in range(n_households)]
    reg = Registry((Community("c1"),), (Gateway("G1", "c1"), Gateway("G2", "c1")),
                   tuple(Household(h, "c1") for h in hhs),
                   tuple(m for i, h in enumerate(hhs) for m in (
                       Meter(f"{h}-W", h, MeterKind.WATER, "G1" if i % 2 == 0 else "G2"),
                       Meter(f"{h}-E", h, MeterKind.ELECTRICITY, "G1" if i % 2 == 0 else "G2"))))
    state = HouseholdState(reg, started_at=START)
    down = at(16, 10)
    usage = {h: regular for h in hhs}
    for batch in community_readings(usage, START, at(19, 10),
                                    report=lambda m, t: t <= down or int(m[1:].split("-")[0]) % 2 == 1):
        state.apply(batch)
    state.set_gateway_status(GatewayStatus("G1", False, down))
    names = [*DEFAULT_DETECTORS, *PRESETS, "no-change-12h"]
    dets = build_detectors(names)
    for hours in (2, 9, 30, 72):
        now = down + hours * 3600
        findings = [f for d in dets for f in d.evaluate(state, now)]
        assert [f.key for f in findings if f.category == "device"] == ["device:gw:G1"]
        behind = {h for i, h in enumerate(hhs) if i % 2 == 0}
        assert not [f for f in findings if f.category in WELFARE_CATEGORIES and f.household in behind]
    # a gateway that simply goes silent (no last will): also one device alert per gateway, no welfare
    state.set_gateway_status(GatewayStatus("G1", True, down + 3600))
    findings = [f for d in dets for f in d.evaluate(state, down + 30 * 3600)]
    assert [f.key for f in findings if f.category == "device"] == ["device:gw:G1"]
    assert not [f for f in findings if f.category in WELFARE_CATEGORIES and f.household in behind]


@pytest.mark.parametrize("tweak, bad", [(shift("H1-W", at(12, 9), 50.0), "H1-W"), (frozen("H1-E", at(11, 23)), "H1-E")],
                         ids=["jump", "frozen"])
def test_an_open_alert_is_judged_from_its_own_meters_as_a_sweep_judges_it(tweak, bad):
    """Whether a device alert's condition has gone is read from that meter (and its household's other meter) or that
    gateway's meters alone; it agrees with the sweep's view over every meter, for silent, faulty, frozen and ordinary
    meters, and for a gateway all of whose meters fell silent."""
    import numpy as np

    from shouwang.domain import AlertCategory, Severity

    state = run(regular, at(12, 12), report=lambda m, t: not (m.startswith("H3-") and t > at(12, 2)), tweak=tweak)
    det = DeviceDetector()
    assert {f.key.split(":", 1)[1] for f in det.evaluate(state, at(12, 12))} == {f"m:{bad}", "gw:G2"}
    for now in (at(12, 12), at(12, 20), at(13, 2)):
        silent, faulty, frozen_ = det._silent(state, now), det._faulty(state, now), det._frozen(state, now)
        assert silent.any() and (now > at(12, 12) or (faulty | frozen_)[state.meter_index[bad]])  # later: all silent
        for meter, i in state.meter_index.items():
            alert = Alert(1, f"device:m:{meter}", AlertCategory.DEVICE, "device", Severity.WARNING, AlertStatus.OPEN,
                          "", at(12, 0), at(12, 0), household=meter.split("-")[0], meter=meter)
            assert det.cleared(alert, state, now) == (not (silent[i] or faulty[i] or frozen_[i])), (meter, now)
        for gateway, g in state.gateway_index.items():
            alert = Alert(1, f"device:gw:{gateway}", AlertCategory.DEVICE, "device", Severity.WARNING,
                          AlertStatus.OPEN, "", at(12, 0), at(12, 0), gateway=gateway)
            want = bool(state.gateway_online[g]) and not silent[state.meter_gateway == g].all()
            assert det.cleared(alert, state, now) == want, (gateway, now)
        for order in (np.arange(len(state.meter_ids))[::-1], np.roll(np.arange(len(state.meter_ids)), 3)):
            for check, full in ((det._silent, silent), (det._faulty, faulty), (det._frozen, frozen_)):
                assert np.array_equal(check(state, now, order), full[order])


@pytest.mark.parametrize("started_late", [False, True])
def test_the_sweeps_checks_agree_with_their_definitions_on_a_random_state(started_late):
    """Silent, faulty and frozen, as the sweep computes them (one comparison a meter where it can, the rest for the
    few candidates only), equal their definitions written out over every meter; and an all-silent gateway's alert
    starts at the newest reading behind it."""
    import numpy as np

    from detectors.measure import swept_state
    from shouwang.state import NEVER

    state, now = swept_state(4000)
    rng = np.random.default_rng(5)
    n, det = len(state.meter_ids), DeviceDetector()
    state.started_at = now - (3 * H if started_late else 40 * 86400)
    state.last_ts[rng.random(n) < 0.05] = NEVER
    state.last_ts[:] = np.where(rng.random(n) < 0.2, now - rng.integers(0, 30 * H, n), state.last_ts)
    state.fault_at[:] = np.where(rng.random(n) < 0.1, now - rng.integers(0, 48 * H, n), NEVER)
    state.last_change[:] = np.where(state.last_ts == NEVER, NEVER, state.last_ts - rng.integers(0, 60 * H, n))
    state.days_seen[:] = rng.integers(0, 20, n)
    state.days_moved[:] = np.minimum(state.days_seen, rng.integers(0, 20, n))
    state.last_activity[:] = np.where(rng.random(n) < 0.5, now - rng.integers(0, 20 * H, n), NEVER)
    state.touch()
    heard = np.where(state.last_ts == NEVER, state.started_at, state.last_ts)
    silent = now - heard > det.silence_s
    faulty = (state.fault_at != NEVER) & (now - state.fault_at <= det.fault_hold_s)
    kind = state.meter_kind.astype(np.int64)
    limit = np.where(kind == 0, det.frozen_water_s, det.frozen_elec_s)
    seen = state.days_seen.astype(np.int64)
    usual = (seen >= det.frozen_min_days) & (state.days_moved >= det.frozen_moved_share * seen)
    life = np.full((len(state.household_ids), 2), NEVER, dtype=np.int64)
    np.maximum.at(life, (state.meter_household, kind), state.last_activity)
    other = life[state.meter_household, 1 - kind]
    frozen = ((state.last_change != NEVER) & (state.last_ts - state.last_change >= limit) & usual
              & (other > state.last_change) & (now - other <= limit))
    assert silent.any() and faulty.any() and frozen.any() and not silent.all()
    assert np.array_equal(det._silent(state, now), silent)
    assert np.array_equal(det._faulty(state, now), faulty)
    assert np.array_equal(det._frozen(state, now), frozen)
    g = int(state.meter_gateway[0])
    behind = np.flatnonzero(state.meter_gateway == g)
    state.last_ts[behind] = now - 7 * H - np.arange(behind.size) * 60
    state.gateway_online[g] = True
    (found,) = [f for f in det.evaluate(state, now) if f.gateway == state.gateway_ids[g]]
    assert found.since == now - 7 * H and "none of its" in found.reason

"""What counts as electricity activity: a rise in the power over the last hour above the household's own quiet
level (``ActivityModel.elec_window_slots`` and ``elec_quiet_*``), on top of the single-interval test against the
base load. Hand-made 15-minute timelines: a fridge cycling or standby loads wandering is not activity; a lamp, a
kettle, the TV is."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_registry

from shouwang.state import ActivityModel, HouseholdState

START = 1_795_276_800  # local midnight in Shanghai
Q = 900
FRIDGE = [0.05, 0.05, 0.15]  # compressor on for a quarter hour in three: 0.083 kW on average


def _day(fridge: list[float] = FRIDGE) -> list[float]:
    """A day of a quiet home, kW per quarter hour: the fridge all day; breakfast with a kettle at 07:00,
    cooking at 12:00, the TV from 19:00 to 22:00."""
    kw = [fridge[i % len(fridge)] for i in range(96)]
    kw[28] += 0.4  # the kettle: 1.8 kW for 3 min
    kw[29] += 0.3
    for i in range(48, 52):
        kw[i] += 1.0
    for i in range(76, 88):
        kw[i] += 0.15
    return kw


def _active(segment: list[float], days: int = 5, model: ActivityModel | None = None,
            fridge: list[float] = FRIDGE) -> list[bool]:
    """Feed ``days`` ordinary days, then ``segment`` (kW per quarter hour, from 00:00 of the next day); for
    each interval of the segment, whether it counted as activity."""
    state = HouseholdState(small_registry(1, 1), model or ActivityModel(), started_at=START)
    m = np.array([state.meter_index["H1-E"]])
    kw = [x for _ in range(days) for x in _day(fridge)]
    t, v = START, 100.0
    state.apply_arrays(m, np.array([t]), np.array([v]))
    out = []
    for i, p in enumerate(kw + segment):
        t, v = t + Q, v + p * Q / 3600
        state.apply_arrays(m, np.array([t]), np.array([round(v, 4)]))
        if i >= len(kw):
            out.append(bool(state.last_activity[m[0]] == t))
    return out


def _fridge(n: int, phase: int = 0) -> list[float]:
    return [FRIDGE[(i + phase) % 3] for i in range(n)]


WANDER = [0.06, 0.19, 0.08, 0.12, 0.05, 0.17, 0.09, 0.07, 0.14, 0.06, 0.19, 0.10]  # fridge, standby, timers


def _with(base: list[float], at: int, extra: list[float]) -> list[float]:
    out = list(base)
    for i, x in enumerate(extra):
        out[at + i] += x
    return out


CASES = [
    # (name, kW per quarter hour from 00:00, the intervals that count as activity, or None and the event's span
    # [lo, hi): then its last interval counts, and nothing before it or more than two quarter hours after it
    # does (a fridge peak in the same window as the event's end is still taken for it))
    ("a fridge cycling at night", _fridge(32), [], None),
    ("the fridge out of step with the window", _fridge(32, phase=1), [], None),
    ("standby loads and timers wandering 0.05-0.19 kW", WANDER * 3, [], None),
    ("a defrost heater: one quarter hour at 0.2 kW", _with(_fridge(32), 12, [0.15]), [], None),
    ("a lamp (100 W) switched on for an hour", _with(_fridge(32), 12, [0.1] * 4), None, (12, 16)),
    ("a kettle boiled once in the night", _with(_fridge(32), 12, [0.36]), None, (12, 13)),
    ("the TV (150 W) on for two hours", _with(_fridge(32), 8, [0.15] * 8), None, (8, 16)),
    ("cooking for half an hour", _with(_fridge(32), 8, [1.2, 1.2]), None, (8, 10)),
]


@pytest.mark.parametrize(("name", "segment", "expected", "event"), CASES, ids=[c[0] for c in CASES])
def test_what_counts_as_electricity_activity(name, segment, expected, event):
    active = _active(segment)
    got = [i for i, a in enumerate(active) if a]
    if expected is not None:
        assert got == expected, name
    else:
        lo, hi = event
        assert hi - 1 in got and set(got) <= set(range(lo, hi + 2)), (name, got)


def test_the_fridge_counted_as_activity_with_single_intervals_only():
    """Why the window is there: judged one quarter hour at a time, a fridge's compressor passes the base-load
    test every time it starts."""
    assert any(_active(_fridge(32), model=ActivityModel(elec_window_slots=0)))
    assert not any(_active(_fridge(32)))


def test_a_small_short_load_counts_where_the_base_is_steady():
    """A range hood (150 W for a quarter hour) stands out in a home whose base load is steady (the margin
    follows how little its intervals wander), but not over a cycling fridge, whose own peaks are as large: there
    it is indistinguishable from the fridge, and not counted."""
    steady = [0.08]
    assert _active(_with(steady * 32, 12, [0.15]), fridge=steady) == [i == 12 for i in range(32)]
    assert not any(_active(_with(_fridge(32), 12, [0.15])))


def _learned(scale: float) -> tuple[float, float]:
    """(quiet level, median distance from it) after five days of a fridge drawing ``scale`` × FRIDGE."""
    state = HouseholdState(small_registry(1, 1), started_at=START)
    m = np.array([state.meter_index["H1-E"]])
    t, v = START, 100.0
    for i in range(5 * 96):
        t, v = t + Q, v + scale * FRIDGE[i % 3] * Q / 3600
        state.apply_arrays(m, np.array([t]), np.array([v]))
    return float(state.quiet_rate[m[0]]), float(state.quiet_dev[m[0]])


def test_the_quiet_level_is_learned_from_the_household_own_power():
    """A home whose fridge and standby draw twice as much learns a quiet level twice as high and a wander of its
    single intervals twice as wide."""
    quiet, dev = _learned(1.0)
    assert quiet == pytest.approx(np.mean(FRIDGE), rel=0.25) and 0.02 < dev < 0.06
    assert _learned(2.0) == pytest.approx((2 * quiet, 2 * dev), rel=0.1)


def test_windowed_power_over_irregular_intervals_matches_a_recount():
    """The window is read from the half-hour ring: with intervals of 5 min to 1 h, the power it judges is the
    energy since the end of the slot two before the reading's own, recounted from the readings by linear
    interpolation (an interval at least as long as that window is its own window); the quiet level and the
    intervals' median distance from it are tracked as documented in ``ActivityModel``."""
    rng = np.random.default_rng(3)
    model = ActivityModel(base_drift=0.0, elec_margin_kw=-1.0, elec_base_factor=0.0)  # only the window judges
    state = HouseholdState(small_registry(1, 1), model, started_at=START)
    m = state.meter_index["H1-E"]
    ts, vs = [START + 37], [10.0]
    for _ in range(600):
        ts.append(ts[-1] + int(rng.choice([300, 900, 900, 1200, 1800, 3600])))
        vs.append(vs[-1] + float(rng.choice([0.05, 0.1, 0.15]) + rng.uniform(0, 0.01) + (rng.random() < 0.15)
                                 * rng.uniform(0.05, 1.0)) * (ts[-1] - ts[-2]) / 3600)
    quiet, dev, seen = np.nan, 0.05 / model.elec_quiet_dev_factor, set()
    for k, (t, v) in enumerate(zip(ts, vs, strict=True)):
        state.apply_arrays(np.array([m]), np.array([t]), np.array([v]))
        if k == 0:
            continue
        p = ts[k - 1]
        start = ((t - 1) // 1800 - 1) * 1800
        rate = (v - vs[k - 1]) * 3600 / (t - p)
        power = (v - np.interp(start, ts, vs)) * 3600 / (t - start) if start < p and start >= ts[0] else rate
        quiet = max(power, 1e-3) if np.isnan(quiet) else quiet
        margin = min(max(dev * model.elec_quiet_dev_factor, model.elec_quiet_margin_min_kw),
                     model.elec_quiet_margin_max_kw)
        expect = power > quiet * model.elec_quiet_factor + margin
        seen.add((start < p, bool(expect)))
        assert (state.last_activity[m] == t) == expect, k
        weight = min(t - p, 3600) / 900
        step = model.elec_quiet_step * weight * (model.elec_quiet_quantile - (power < quiet))
        dstep = model.elec_quiet_step * weight * (0.5 - (abs(rate - quiet) < dev))
        quiet = quiet if k == 1 else quiet * np.exp(step)
        dev = dev if expect else max(dev * np.exp(dstep), 1e-4)
        assert state.quiet_rate[m] == pytest.approx(quiet, rel=1e-4), k
        assert state.quiet_dev[m] == pytest.approx(dev, rel=1e-4), k
    assert seen == {(True, True), (True, False), (False, True), (False, False)}

"""Use per hour and per day from cumulative registers, and the usual pattern beside it (api/pages/usage.py)."""

from __future__ import annotations

import numpy as np

from api.pages.charts import Tick, bar_chart
from api.pages.usage import (
    DAY,
    HOUR,
    daily_series,
    day_edges,
    hourly_series,
    registers_at,
    registers_at_edges,
    usage_between,
)
from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Reading, Registry
from storage import open_store

T = 1_795_622_400  # 2026-11-26 00:00 Asia/Shanghai (16:00 UTC the day before)
ZONE = "Asia/Shanghai"


def test_registers_between_readings_and_not_across_long_gaps():
    ts = np.array([0, 900, 1800, 1800 + 5 * HOUR])
    values = np.array([1.0, 2.0, 3.0, 9.0])
    got = registers_at(ts, values, np.array([-1, 0, 450, 1800, 3600, 1800 + 5 * HOUR, 99_999]))
    assert np.isnan(got[0]) and np.isnan(got[4]) and np.isnan(got[6])  # before, inside a 5 h gap, after
    assert list(got[[1, 2, 3, 5]]) == [1.0, 1.5, 3.0, 9.0]


def test_use_is_unknown_where_the_register_is_missing_or_falls():
    assert usage_between(np.array([1.0, 1.5, np.nan, 2.0, 1.0, 1.25])) == [0.5, None, None, None, 0.25]


def _readings(days: int, litres_at_8: float, extra_today: float = 0.0) -> list[Reading]:
    """A water meter read every 15 min: ``litres_at_8`` litres in the 08:00 hour each day."""
    out, value = [], 10.0
    for t in range(T - days * DAY, T + DAY + 1, 900):
        out.append(Reading("W", t, value))
        local_hour = (t // HOUR + 8) % 24
        if local_hour == 8:
            value += (litres_at_8 + (extra_today if t >= T else 0)) / 4 / 1000
    return out


def test_hourly_use_beside_the_median_of_the_same_hour_over_four_weeks():
    s = hourly_series(MeterKind.WATER, _readings(35, 40.0, extra_today=60.0), T, 24, ZONE)
    assert s.unit == "L" and s.step_s == HOUR and len(s.bins) == 24
    eight = s.bins[8]
    assert eight.actual == 100.0 and eight.usual == 40.0  # today 100 L where usually 40 L
    assert all(b.actual == 0.0 and b.usual == 0.0 for i, b in enumerate(s.bins) if i != 8)


def test_no_usual_pattern_before_a_week_of_history():
    s = hourly_series(MeterKind.WATER, _readings(5, 40.0), T, 24, ZONE)
    assert s.bins[8].actual == 40.0 and s.bins[8].usual is None


def test_daily_use_from_registers_at_local_midnight(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'u.db'}")
    store.upsert_registry(Registry(communities=(Community("c"),), gateways=(Gateway("G", "c"),),
                                   households=(Household("H", "c"),),
                                   meters=(Meter("W", "H", MeterKind.WATER, "G"),)))
    store.write_readings([r for r in _readings(40, 40.0) if r.ts <= T + 12 * HOUR])
    edges = day_edges(T + 12 * HOUR, 38 + 28, ZONE)
    assert edges[-2] == T and edges[-1] == T + DAY  # today is the last day
    daily = daily_series(MeterKind.WATER, registers_at_edges(store, "W", edges), edges, 38)
    assert len(daily.bins) == 38 and daily.bins[-1].start == T
    assert [b.actual for b in daily.bins[-3:-1]] == [40.0, 40.0]
    assert daily.bins[-1].actual is None  # the day is not over: the register at its end is not known yet
    assert daily.bins[-2].usual == 40.0 and daily.bins[0].usual is None  # 3 days of history (readings began 40 days ago): too few
    store.close()


def test_the_chart_escapes_text_and_marks_missing_hours():
    s = hourly_series(MeterKind.WATER, _readings(35, 40.0)[:-50], T, 24, ZONE)
    svg = str(bar_chart(s, [Tick(0, "<b>")], lambda ts: "x", "Water & co", "usual", "no data"))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "Water &amp; co" in svg
    assert svg.count('class="nodata"') >= 10 and 'class="usual"' in svg


def test_the_activity_timeline_marks_hours_by_the_meters_learned_lines():
    """The household page's hour grid: water from 1 L, electricity above the state's activity line for the meter."""
    from api.pages.dashboard import _activity
    from api.pages.usage import Bin, Series
    from shouwang.domain import MeterKind

    t0 = 1_700_000_000 - 1_700_000_000 % 86400  # 00:00 UTC
    elec = Series(MeterKind.ELECTRICITY, "kWh", 3600, (Bin(t0, 0.30, None), Bin(t0 + 3600, 0.12, None),
                                                        Bin(t0 + 7200, None, None)))
    water = Series(MeterKind.WATER, "L", 3600, (Bin(t0, 0.0, None), Bin(t0 + 3600, 0.5, None),
                                                Bin(t0 + 7200, 2.0, None)))
    ((day, hours),) = _activity([elec, water], {MeterKind.ELECTRICITY: 0.2}, "UTC")
    assert day == "11-14" and hours[:4] == [True, False, True, None]  # 0.30 kWh > 0.2 kW × 1 h; 0.12 is not; water 2 L at 02:00
    ((_, unlearned),) = _activity([elec], {MeterKind.ELECTRICITY: None}, "UTC")
    assert unlearned[:3] == [None, None, None]  # no line learned yet: electricity says nothing

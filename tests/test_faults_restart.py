"""Fault suite, durable state: a crash (no stop, no final snapshot) and a restart neither forget a household
that has been silent for 30 hours nor open a second alert for one already alerted; the alerts after the
restart are exactly those of a service that never stopped. (kill -9 mid-escalation: test_escalation_crash.py.)"""

from __future__ import annotations

import pytest
from conftest import small_registry
from timelines import DAY0, FRIDGE_KW, H, household_readings, normal_kw, normal_water, switch

from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

H1_STOPS = DAY0 + 5 * 24 * H + 10 * H  # only the fridge from then on: alerted 48 h later, before the crash
CRASH = H1_STOPS + 50 * H
H2_STOPS = CRASH - 30 * H  # silent for 30 h when the service dies; due 18 h after the restart
END = CRASH + 24 * H
SNAPSHOT_AT = CRASH - 5 * H  # the last periodic snapshot before the crash


def _readings(start: int, end: int) -> list:
    out = []
    for hh, stop in (("H1", H1_STOPS), ("H2", H2_STOPS), ("H3", None), ("H4", None)):
        water = switch(stop, normal_water, lambda _t: 0.0) if stop else normal_water
        kw = switch(stop, normal_kw, lambda _t: FRIDGE_KW) if stop else normal_kw
        out += [r for r in household_readings(hh, DAY0, end, water, kw) if start < r.ts <= end]
    return sorted(out, key=lambda r: r.ts)


def _live(svc: Service, start: int, end: int, snapshot_at: int | None = None) -> None:
    """Readings arrive as they happen (stored, then applied, as the batch writer does); a sweep every 15 min."""
    readings = _readings(start, end)
    i = 0
    for now in range(start + 900, end + 1, 900):
        j = i
        while j < len(readings) and readings[j].ts <= now:
            j += 1
        batch, i = readings[i:j], j
        svc.store.write_readings(batch)
        svc.state.apply(batch)
        svc.clock.set(now)
        svc.tick(now)
        if now == snapshot_at:
            svc.save_state()


def _welfare(store) -> list[tuple[str, str, int, int]]:
    return sorted((a.household, str(a.category), a.since, a.opened_at) for a in store.alerts()
                  if str(a.category) != "device")


@pytest.mark.parametrize("snapshot", [True, False], ids=["with-snapshot", "replay-only"])
def test_crash_and_restart_forget_no_silence_and_open_no_duplicate(tmp_path, snapshot):
    settings = Settings(state_snapshot=tmp_path / "state.npz" if snapshot else None, tick_s=3600)
    store = open_store(f"sqlite:///{tmp_path}/crash.db")
    first = Service(settings, store, small_registry(), ManualClock(DAY0), watchers=[])
    _live(first, DAY0, CRASH, snapshot_at=SNAPSHOT_AT if snapshot else None)
    before = _welfare(store)
    assert [(h, c) for h, c, _s, _o in before] == [("H1", "inactivity")]  # H2 is 30 h silent: not yet due
    del first  # kill -9: no stop, no final snapshot; the store and the last periodic snapshot survive

    restarted = Service(settings, open_store(f"sqlite:///{tmp_path}/crash.db"), small_registry(),
                        ManualClock(CRASH), watchers=[])
    assert restarted.tick(CRASH) == []  # H1's alert is not opened again
    _live(restarted, CRASH, END)

    control_store = open_store(f"sqlite:///{tmp_path}/control.db")
    control = Service(Settings(tick_s=3600), control_store, small_registry(), ManualClock(DAY0), watchers=[])
    _live(control, DAY0, END)  # the same readings, never interrupted
    after = _welfare(restarted.store)
    assert after == _welfare(control_store)
    assert [(h, c) for h, c, _s, _o in after] == [("H1", "inactivity"), ("H2", "inactivity")]
    h2 = next(a for a in after if a[0] == "H2")
    assert H2_STOPS + 47 * H <= h2[3] <= H2_STOPS + 49 * H  # remembered across the restart: due on time

"""Away periods: registered absences and cases closed as `away` hold welfare alerts until the meters move."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from accounts_support import api_client
from conftest import small_registry
from timelines import DAY0, FRIDGE_KW, H, household_readings, normal_kw, normal_water

from api.app import create_app
from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings

STOP = DAY0 + 24 * H


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@pytest.fixture
def service(store):
    clock = ManualClock(DAY0)
    svc = Service(Settings(), store, small_registry(), clock, watchers=[])
    yield svc


@pytest.fixture
def api(service):
    return api_client(create_app(service.store, service.state, service.clock))


def feed(service: Service, until: int, back_at: int | None = None) -> None:
    """H1 lives normally, then only the fridge runs from STOP (until back_at); H2–H4 live normally."""
    def kw(t: int) -> float:
        return normal_kw(t) if t <= STOP or (back_at and t > back_at) else FRIDGE_KW

    def water(t: int) -> float:
        return normal_water(t) if t <= STOP or (back_at and t > back_at) else 0.0

    readings = household_readings("H1", DAY0, until, water, kw)
    for hh in ("H2", "H3", "H4"):
        readings += household_readings(hh, DAY0, until)
    service.store.write_readings(readings)
    service.state.apply(readings)
    service.clock.set(until)


def welfare(service: Service) -> list[tuple[str, str]]:
    return [(a.household, str(a.status)) for a in service.store.alerts() if a.category != "device"]


def test_registered_absence_holds_the_alert(service, api):
    r = api.post("/api/away", json={"household": "H1", "start": iso(STOP), "end": iso(STOP + 72 * H),
                                    "source": "family", "note": "at her son's"})
    assert r.status_code == 201, r.text
    feed(service, STOP + 60 * H)
    service.tick()
    assert welfare(service) == []
    assert api.get("/api/households/H1").json()["status"] == "away"
    feed(service, STOP + 80 * H)  # expected back at +72 h, still no activity: now it is alerted
    service.tick()
    assert welfare(service) == [("H1", "open")]


def test_closing_as_away_holds_until_activity_resumes(service, api):
    feed(service, STOP + 50 * H)
    service.tick()
    (alert_id,) = [a.id for a in service.store.alerts()]
    r = api.post(f"/api/alerts/{alert_id}/resolve", json={"outcome": "away", "by": "worker-7",
                                                          "note": "staying with her son"})
    assert r.status_code == 200, r.text
    assert [p["source"] for p in api.get("/api/away?household=H1").json()] == [f"alert:{alert_id}"]
    feed(service, STOP + 70 * H)
    service.tick()
    assert welfare(service) == [("H1", "resolved")]  # held: no new alert while she is away
    assert api.get("/api/households/H1").json()["status"] == "away"
    # she comes back at +70 h: the meters move, the away period ends by itself, she is watched as usual
    back = STOP + 70 * H
    feed(service, back + 30 * H, back_at=back)
    assert api.get("/api/households/H1").json()["status"] == "ok"
    service.tick()
    assert welfare(service) == [("H1", "resolved")]


def test_away_requires_a_known_household_and_end_after_start(api):
    assert api.post("/api/away", json={"household": "nobody"}).status_code == 404
    r = api.post("/api/away", json={"household": "H1", "start": iso(STOP), "end": iso(STOP - H)})
    assert r.status_code == 422
    created = api.post("/api/away", json={"household": "H2"}).json()
    assert created["cancelled_at"] is None
    ended = api.delete(f"/api/away/{created['id']}")
    assert ended.status_code == 200 and ended.json()["cancelled_at"] is not None  # the row as it now stands
    assert api.get("/api/away?active=true").json() == []
    assert api.delete(f"/api/away/{created['id']}").status_code == 404


def test_restart_keeps_learned_routines_through_the_snapshot(store, tmp_path):
    """A restart replays only the last days of readings; the snapshot keeps the four weeks the routine learned."""
    from detectors.routine import learning_status

    snapshot = tmp_path / "state.npz"
    end = DAY0 + 20 * 24 * H
    readings = [r for hh in ("H1", "H2", "H3", "H4") for r in household_readings(hh, DAY0, end)]
    store.write_readings(readings)

    first = Service(Settings(state_snapshot=snapshot), store, small_registry(), ManualClock(DAY0), watchers=[])
    first.state.apply(readings)
    learned = learning_status(first.state, "H1")
    assert learned[1] >= 14
    first.save_state()

    forgetful = Service(Settings(), store, small_registry(), ManualClock(end), watchers=[])
    assert learning_status(forgetful.state, "H1")[1] < learned[1]  # the replay window alone is too short
    restored = Service(Settings(state_snapshot=snapshot), store, small_registry(), ManualClock(end), watchers=[])
    assert learning_status(restored.state, "H1") == learned
    assert restored.state.summary("H1") == first.state.summary("H1")


@pytest.mark.parametrize("start,end", [
    (None, "9999-12-31T23:59:59Z"),  # year 10000 in the community's zone: no page could show it
    (None, "9999-12-31T23:59:59-14:00"),
    ("0001-01-01T00:00:00+14:00", None),
    (None, "2201-01-01T00:00:00Z"),
])
def test_an_absence_no_page_could_show_is_refused_before_it_is_stored(api, service, start, end):
    r = api.post("/api/away", json={"household": "H1", "start": start, "end": end})
    assert r.status_code == 422 and "between the years 1970 and 2200" in r.text
    assert service.store.away_periods() == []


def test_a_stored_time_no_calendar_holds_is_shown_as_unknown_not_a_failed_page(service, api):
    """Stored before the API refused such times (or by another tool): every page and list still answers."""
    from shouwang.away import AwayPeriod

    service.store.add_away(AwayPeriod("H1", DAY0, 253_402_351_199, "family"))  # 10000-01-01 in UTC
    assert api.get("/dashboard").status_code == 200
    page = api.get("/dashboard/households/H1")
    assert page.status_code == 200 and "?" in page.text

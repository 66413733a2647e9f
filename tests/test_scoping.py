"""Who may see what, route by route: a user of another community never gets another community's data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts_support import make_user, token_for
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import create_app
from shouwang.accounts import UserRole
from shouwang.away import AwayPeriod
from shouwang.clock import ManualClock
from shouwang.domain import (
    AlertCategory,
    Assignment,
    Community,
    Finding,
    Gateway,
    Household,
    Meter,
    MeterKind,
    Person,
    Reading,
    Registry,
    Role,
    Severity,
    Target,
)
from shouwang.state import HouseholdState
from storage import SqlStore, open_store

T0 = 1_795_300_200
SECRET_B = ("H010", "Liu Yang", "9 Quancheng Rd", "GW-C", "H010-W")  # community B's identifying data


def _finding(category: AlertCategory = AlertCategory.INACTIVITY, **subject: str) -> Finding:
    return Finding(category, "test", Severity.CRITICAL, T0, f"{category} for the test", **subject)


USERS = {
    "manager": {"role": UserRole.MANAGER, "communities": ("qingdao-a",)},
    "worker": {"role": UserRole.WORKER, "grids": ("qingdao-a/g1",), "person": "P-W1"},
    "family": {"role": UserRole.FAMILY, "person": "P-F3"},
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict[str, int], dict[str, str]]:
    """Community A (grids g1, g2) and community B, people, care, alerts, away periods and accounts, built once."""
    registry = Registry(
        communities=(Community("qingdao-a", "A"), Community("jinan-b", "B")),
        gateways=(Gateway("GW-A", "qingdao-a"), Gateway("GW-B", "qingdao-a"), Gateway("GW-C", "jinan-b")),
        households=(
            Household("H001", "qingdao-a", "王秀英", "1-101 Haier Rd", "g1"),
            Household("H003", "qingdao-a", "Zhang Wei", "2-201 Shandong Rd", "g2"),
            Household("H010", "jinan-b", "Liu Yang", "9 Quancheng Rd", "g9"),
        ),
        meters=(Meter("H001-W", "H001", MeterKind.WATER, "GW-A"), Meter("H003-W", "H003", MeterKind.WATER, "GW-B"),
                Meter("H010-W", "H010", MeterKind.WATER, "GW-C")),
        people=(Person("P-W1", "Worker One", Role.WORKER), Person("P-F3", "Zhang Jr", Role.FAMILY),
                Person("P-B", "B volunteer", Role.VOLUNTEER)),
        assignments=(Assignment(Target.FAMILY, "P-F3", household="H003"),
                     Assignment(Target.VOLUNTEER, "P-B", household="H010")),
    )
    path = tmp_path_factory.mktemp("scope") / "template.db"
    store = open_store(f"sqlite:///{path}")
    store.upsert_registry(registry)
    store.write_readings([Reading(m, T0 + i * 900, 1.0 + 0.01 * i) for m in ("H001-W", "H003-W", "H010-W")
                          for i in range(3)])
    make_user(store, "admin")
    tokens = {"admin": token_for(store, "admin")}  # token 1 belongs to the administrator, not the users under test
    for who, fields in USERS.items():
        make_user(store, who, **fields)  # type: ignore[arg-type]
        tokens[who] = token_for(store, who)
    ids = {
        "a1": store.open_alert(_finding(household="H001"), T0).id,
        "a3": store.open_alert(_finding(household="H003"), T0).id,
        "b": store.open_alert(_finding(household="H010"), T0).id,
        "gw_b": store.open_alert(_finding(AlertCategory.DEVICE, gateway="GW-C"), T0).id,
        "away_b": store.add_away(AwayPeriod("H010", T0, T0 + 86400, "family")).id,
    }
    store.close()
    return path, ids, tokens


@pytest.fixture
def world(template, tmp_path) -> Iterator[tuple[SqlStore, dict[str, int]]]:
    """A fresh copy of the template database for each test."""
    path, ids, _ = template
    copy = tmp_path / "scope.db"
    shutil.copyfile(path, copy)
    store = open_store(f"sqlite:///{copy}")
    yield store, ids
    store.close()


@pytest.fixture
def app(world, template):
    store, _ = world
    registry = Registry(gateways=tuple(store.gateways()), households=tuple(store.households()),
                        meters=tuple(store.meters()))
    app = create_app(store, HouseholdState(registry, started_at=T0), ManualClock(T0 + 3600))
    app.state.test_tokens = template[2]
    return app


def _client(app, who: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {app.state.test_tokens[who]}"})


# Every route, with a request that aims at community B's data (or at data none of the users may see).
# A new route must be added here, or test_every_route_is_in_the_table fails.
ROUTES: dict[tuple[str, str], tuple[str, dict | None]] = {
    ("GET", "/api/households"): ("/api/households?community=jinan-b", None),
    ("GET", "/api/households/{household_id}"): ("/api/households/H010", None),
    ("GET", "/api/households/{household_id}/readings"): ("/api/households/H010/readings", None),
    ("GET", "/api/households/{household_id}/care"): ("/api/households/H010/care", None),
    ("PUT", "/api/households/{household_id}/care"): ("/api/households/H010/care", {"family": ["P-W1"]}),
    ("GET", "/api/meters"): ("/api/meters?household=H010", None),
    ("GET", "/api/meters/{meter_id}"): ("/api/meters/H010-W", None),
    ("GET", "/api/alerts"): ("/api/alerts?household=H010", None),
    ("GET", "/api/alerts/{alert_id}"): ("/api/alerts/{b}", None),
    ("POST", "/api/alerts/{alert_id}/acknowledge"): ("/api/alerts/{b}/acknowledge", {}),
    ("POST", "/api/alerts/{alert_id}/resolve"): ("/api/alerts/{b}/resolve", {"outcome": "safe"}),
    ("POST", "/api/alerts/{alert_id}/reopen"): ("/api/alerts/{b}/reopen", {}),
    ("POST", "/api/alerts/{alert_id}/tier"): ("/api/alerts/{b}/tier", {"tier": "hard"}),
    ("GET", "/api/alerts/{alert_id}/deliveries"): ("/api/alerts/{gw_b}/deliveries", None),
    ("GET", "/api/away"): ("/api/away?household=H010", None),
    ("POST", "/api/away"): ("/api/away", {"household": "H010", "source": "family"}),
    ("DELETE", "/api/away/{period_id}"): ("/api/away/{away_b}", None),
    ("GET", "/api/people"): ("/api/people", None),
    ("PUT", "/api/people/{person_id}"): ("/api/people/P-B", {"name": "x", "role": "volunteer"}),
    ("GET", "/api/rejections"): ("/api/rejections", None),
    ("GET", "/api/users"): ("/api/users", None),
    ("POST", "/api/users"): ("/api/users", {"id": "x", "role": "admin", "password": "0123456789ab"}),
    ("GET", "/api/users/{user_id}"): ("/api/users/admin", None),
    ("PATCH", "/api/users/{user_id}"): ("/api/users/admin", {"disabled": True}),
    ("GET", "/api/audit"): ("/api/audit", None),
    ("GET", "/api/tokens"): ("/api/tokens", None),
    ("DELETE", "/api/tokens/{token_id}"): ("/api/tokens/1", None),
    ("GET", "/api/reports/communities"): ("/api/reports/communities?community=jinan-b", None),
    # web pages (api/pages): the same scope dependencies as the JSON routes they mirror
    ("GET", "/"): ("/", None),
    ("GET", "/dashboard"): ("/dashboard?q=Liu", None),
    ("GET", "/dashboard/households/{household_id}"): ("/dashboard/households/H010", None),
    ("POST", "/dashboard/households/{household_id}/away"): ("/dashboard/households/H010/away", {}),
    ("POST", "/dashboard/households/{household_id}/away/{period_id}/end"): (
        "/dashboard/households/H010/away/{away_b}/end", {}),
    ("GET", "/dashboard/alerts/{alert_id}"): ("/dashboard/alerts/{b}", None),
    ("GET", "/dashboard/reports"): ("/dashboard/reports", None),
    ("GET", "/m"): ("/m", None),
    ("GET", "/m/history"): ("/m/history", None),
    ("GET", "/m/alerts/{alert_id}"): ("/m/alerts/{b}", None),
    ("POST", "/m/alerts/{alert_id}/acknowledge"): ("/m/alerts/{b}/acknowledge", {}),
    ("POST", "/m/alerts/{alert_id}/resolve"): ("/m/alerts/{b}/resolve", {"outcome": "safe"}),
    ("POST", "/m/alerts/{alert_id}/reopen"): ("/m/alerts/{b}/reopen", {}),
    ("POST", "/m/alerts/{alert_id}/tier"): ("/m/alerts/{b}/tier", {"tier": "hard"}),
}
# Routes every logged-in user may call on their own behalf, or that need no login (checked elsewhere).
OWN = {("POST", "/api/auth/login"), ("POST", "/api/auth/logout"), ("GET", "/api/auth/me"),
       ("PATCH", "/api/auth/me"), ("POST", "/api/tokens"),
       # pages: login form, logout, one's own language, the phone app's manifest and service worker
       ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("POST", "/language"),
       ("GET", "/manifest.webmanifest"), ("GET", "/sw.js")}
PUBLIC_MODULES = ("api.routes.health", "api.routes.metrics", "api.routes.ack")  # probes, counters, signed links


def _routes(app, public: bool) -> set[tuple[str, str]]:
    return {(m, r.path) for r in app.routes if isinstance(r, APIRoute)
            and (r.endpoint.__module__ in PUBLIC_MODULES) is public for m in r.methods}


def test_every_route_is_in_the_table(app):
    missing = _routes(app, public=False) - set(ROUTES) - OWN
    assert not missing, f"add these routes to ROUTES in {__file__}: {sorted(missing)}"


@pytest.mark.parametrize("who", sorted(USERS))
@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_other_communitys_data_never_leaks(app, world, who, route):
    _, ids = world
    method, _template = route
    url, body = ROUTES[route]
    with _client(app, who) as client:
        r = client.request(method, url.format(**ids), json=body)
    if r.status_code == 200 and method == "GET":
        assert not any(secret in r.text for secret in SECRET_B), (who, route, r.text[:300])
    else:
        assert r.status_code in (403, 404), (who, route, r.status_code, r.text[:300])
    assert not any(secret in r.text for secret in SECRET_B[1:3]), r.text[:300]


def test_unauthenticated_requests_are_refused_everywhere(app, world):
    _, ids = world
    with TestClient(app) as client:
        for (method, _), (url, body) in ROUTES.items():
            r = client.request(method, url.format(**ids), json=body)
            assert r.status_code == 401, (method, url, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"


def test_manager_sees_own_community_only(app, world):
    _, ids = world
    with _client(app, "manager") as c:
        assert [h["id"] for h in c.get("/api/households").json()] == ["H001", "H003"]
        assert {a["id"] for a in c.get("/api/alerts").json()} == {ids["a1"], ids["a3"]}
        assert c.get("/api/households/H003/readings").status_code == 200
        assert c.post(f"/api/alerts/{ids['a3']}/acknowledge", json={}).json()["acknowledged_by"] == "manager"
        assert [p["id"] for p in c.get("/api/people").json()] == ["P-F3"]


def test_a_manager_cannot_bring_another_communitys_person_into_their_care_network(app, world):
    """Naming B's volunteer on A's household would put P-B (phone, channels) in the manager's scope, to read and
    to re-point; refused in the words an unknown person gets. A person of no household yet may be named."""
    store, _ = world
    with _client(app, "manager") as c:
        r = c.put("/api/households/H001/care", json={"volunteer": "P-B"})
        assert r.status_code == 422 and r.json()["detail"] == c.put(
            "/api/households/H001/care", json={"volunteer": "P-NOBODY"}).json()["detail"].replace("P-NOBODY", "P-B")
        assert c.put("/api/people/P-B", json={"name": "x", "role": "volunteer"}).status_code == 404
        assert c.put("/api/people/P-NEW", json={"name": "New", "role": "volunteer"}).status_code == 200
        assert c.put("/api/households/H001/care", json={"volunteer": "P-NEW"}).json()["volunteer"] == "P-NEW"
    assert [a.person for a in store.assignments(household="H010")] == ["P-B"]
    assert store.person("P-B").name == "B volunteer"


def test_worker_sees_their_grid_and_alerts_sent_to_them(app, world):
    store, ids = world
    with _client(app, "worker") as c:
        assert [h["id"] for h in c.get("/api/households").json()] == ["H001"]
        assert [a["id"] for a in c.get("/api/alerts").json()] == [ids["a1"]]
        assert c.get("/api/households/H003").status_code == 404
        # the escalation sent this worker a message about H003's alert: that alert (not the household) is visible
        from shouwang.domain import OutboxItem
        store.save_escalation_steps([], [OutboxItem((ids["a3"],), "json://x", "alert", "t", "x", {}, "P-W1",
                                                    0, 0, T0, T0 + 60)], [])
        assert {a["id"] for a in c.get("/api/alerts").json()} == {ids["a1"], ids["a3"]}
        assert c.post(f"/api/alerts/{ids['a3']}/acknowledge", json={}).json()["acknowledged_by"] == "P-W1"
        assert c.get("/api/households/H003").status_code == 404
        # a worker may not tier a case nor act in someone else's name
        assert c.post(f"/api/alerts/{ids['a1']}/tier", json={"tier": "hard"}).status_code == 403
        assert c.post(f"/api/alerts/{ids['a1']}/acknowledge", json={"by": "someone-else"}).status_code == 403


def test_family_sees_only_their_relative(app, world):
    _, ids = world
    with _client(app, "family") as c:
        assert [h["id"] for h in c.get("/api/households").json()] == ["H003"]
        assert [a["id"] for a in c.get("/api/alerts").json()] == [ids["a3"]]
        assert c.get("/api/households/H001").status_code == 404
        assert c.get("/api/meters").json()[0]["id"] == "H003-W"
        assert c.post("/api/away", json={"household": "H003", "source": "family"}).status_code == 201
        assert c.get("/api/people").status_code == 403

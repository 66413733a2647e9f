"""The HTTP API against a real SqlStore on a temporary SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from accounts_support import api_client
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import create_app
from api.routes import (
    ack,
    alerts,
    audit,
    auth,
    away,
    health,
    households,
    meters,
    metrics,
    people,
    rejections,
    reports,
    tokens,
    users,
)
from shouwang.accounts import UserRole
from shouwang.clock import ManualClock
from shouwang.domain import (
    AlertCategory,
    Community,
    Finding,
    Gateway,
    GatewayStatus,
    Household,
    Meter,
    MeterKind,
    Reading,
    Registry,
    Rejection,
    Severity,
)
from shouwang.state import HouseholdState
from storage import SqlStore, open_store

T0 = 1_795_300_200  # 2026-11-22T07:10:00Z
STEP = 900


def iso(ts: int) -> str:
    """Epoch seconds as the API renders them."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def registry() -> Registry:
    return Registry(
        communities=(Community("qingdao-a", "青岛 A 区"), Community("jinan-b", "济南 B 区")),
        gateways=(Gateway("GW-A", "qingdao-a"), Gateway("GW-B", "qingdao-a"), Gateway("GW-C", "jinan-b")),
        households=(
            Household("H001", "qingdao-a", "王秀英", "1-101 Haier Rd", "g1"),
            Household("H002", "qingdao-a", "Li Guilan", "1-102 Haier Rd", "g1"),
            Household("H003", "qingdao-a", "Zhang Wei", "2-201 Shandong Rd", "g2"),
            Household("H004", "qingdao-a", "Chen Fang", "2-202 Shandong Rd", "g2"),
            Household("H010", "jinan-b", "Liu Yang", "9 Quancheng Rd", "g9"),
        ),
        meters=(
            Meter("H001-W", "H001", MeterKind.WATER, "GW-A"),
            Meter("H001-E", "H001", MeterKind.ELECTRICITY, "GW-A"),
            Meter("H002-W", "H002", MeterKind.WATER, "GW-A"),
            Meter("H003-W", "H003", MeterKind.WATER, "GW-B"),
            Meter("H004-W", "H004", MeterKind.WATER, "GW-A"),
            Meter("H010-W", "H010", MeterKind.WATER, "GW-C"),
        ),
    )


@pytest.fixture
def store(tmp_path, registry: Registry) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'shouwang.db'}")
    s.upsert_registry(registry)
    yield s
    s.close()


@pytest.fixture
def readings() -> list[Reading]:
    """Four intervals for every meter but H004-W; water rises by 2 L an interval, electricity by 0.1 kWh."""
    out = []
    for meter in ("H001-W", "H002-W", "H003-W", "H010-W"):
        out += [Reading(meter, T0 + i * STEP, round(10 + 0.002 * i, 3)) for i in range(4)]
    out += [Reading("H001-E", T0 + i * STEP, 500 + 0.1 * i) for i in range(4)]
    return out


@pytest.fixture
def state(registry: Registry, store: SqlStore, readings: list[Reading]) -> HouseholdState:
    st = HouseholdState(registry, started_at=T0)
    assert store.write_readings(readings) == len(readings)
    st.apply(readings)
    return st


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + 4 * STEP)


@pytest.fixture
def checks() -> dict[str, bool]:
    return {"ingest": True}


@pytest.fixture
def app(store: SqlStore, state: HouseholdState, clock: ManualClock, checks: dict[str, bool]):
    return create_app(store, state, clock, health=lambda: dict(checks))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with api_client(app) as c:
        yield c


def finding(category=AlertCategory.INACTIVITY, **subject) -> Finding:
    severity = Severity.CRITICAL if category is not AlertCategory.DEVICE else Severity.WARNING
    return Finding(category, "test", severity, T0, f"{category} for the test", **subject)


def by_id(items: list[dict]) -> dict[str, dict]:
    return {i["id"]: i for i in items}


# ---------------------------------------------------------------- households
def test_households_list_and_status(client, store, state):
    store.open_alert(finding(household="H001"), T0 + 3600)
    store.open_alert(finding(AlertCategory.DEVICE, household="H002", meter="H002-W"), T0 + 3600)
    state.set_gateway_status(GatewayStatus("GW-B", False, T0 + 1800))

    r = client.get("/api/households")
    assert r.status_code == 200
    homes = by_id(r.json())
    assert list(homes) == ["H001", "H002", "H003", "H004", "H010"]
    assert {h: v["status"] for h, v in homes.items()} == {
        "H001": "alert", "H002": "device", "H003": "device", "H004": "unknown", "H010": "ok"}
    assert homes["H001"]["open_alerts"] == 1 and homes["H010"]["open_alerts"] == 0
    assert homes["H003"]["offline_gateways"] == ["GW-B"]
    assert homes["H004"]["last_activity"] is None and homes["H004"]["covered_until"] is None

    only_device = client.get("/api/households", params={"status": "device"}).json()
    assert [h["id"] for h in only_device] == ["H002", "H003"]


def test_gateway_alert_marks_households_behind_it(client, store):
    store.open_alert(finding(AlertCategory.DEVICE, gateway="GW-C"), T0 + 3600)
    home = client.get("/api/households/H010").json()
    assert home["status"] == "device"
    assert home["open_alerts"] == 0  # recorded against the gateway, not the household


def test_households_filters_search_and_pagination(client):
    def ids(**params) -> list[str]:
        r = client.get("/api/households", params=params)
        assert r.status_code == 200, r.text
        return [h["id"] for h in r.json()]

    assert ids(community="jinan-b") == ["H010"]
    assert ids(grid="g2") == ["H003", "H004"]
    assert ids(q="haier") == ["H001", "H002"]
    assert ids(q="王") == ["H001"]
    assert ids(q="h01") == ["H010"]
    assert ids(community="qingdao-a", grid="g1", q="102") == ["H002"]
    assert ids(limit=2, offset=1) == ["H002", "H003"]
    assert ids(status="ok") == ["H001", "H002", "H003", "H010"]
    assert ids(status="ok", limit=1, offset=3) == ["H010"]
    assert ids(community="nowhere") == []


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 501}, {"offset": -1}, {"status": "fine"}, {"q": ""}, {"q": "x" * 101}])
def test_households_bad_query_is_422(client, params):
    r = client.get("/api/households", params=params)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][0] == "query"


def test_household_detail_with_meters(client):
    r = client.get("/api/households/H001")
    assert r.status_code == 200
    home = r.json()
    assert home["name"] == "王秀英" and home["community"] == "qingdao-a" and home["status"] == "ok"
    assert home["last_activity"] == iso(T0 + 3 * STEP)
    assert home["covered_until"] == iso(T0 + 3 * STEP)
    meters = by_id(home["meters"])
    assert set(meters) == {"H001-W", "H001-E"}
    water = meters["H001-W"]
    assert water["kind"] == "water" and water["unit"] == "m³" and water["gateway"] == "GW-A"
    assert water["last_ts"] == iso(T0 + 3 * STEP) and water["last_value"] == pytest.approx(10.006)
    assert water["base_load_kw"] is None
    assert meters["H001-E"]["unit"] == "kWh" and meters["H001-E"]["base_load_kw"] == pytest.approx(0.4)
    assert water["activity_line_kw"] is None
    assert meters["H001-E"]["activity_line_kw"] >= round(1.5 * 0.4 + 0.05, 4)  # never below the interval test's line


def test_unknown_ids_are_404(client):
    paths = ("/api/households/NOPE", "/api/households/NOPE/readings", "/api/meters/NOPE", "/api/alerts/999")
    for path in paths:
        r = client.get(path)
        assert r.status_code == 404, path
        assert "not found" in r.json()["detail"]
    r = client.get("/api/households/H001/readings", params={"meter": "H002-W"})
    assert r.status_code == 404 and "not a meter of household" in r.json()["detail"]


# ---------------------------------------------------------------- readings
def test_readings_range(client):
    r = client.get("/api/households/H001/readings")
    assert r.status_code == 200
    rows = r.json()
    assert len(rows) == 8
    assert [x["ts"] for x in rows] == sorted(x["ts"] for x in rows)

    start, end = iso(T0 + STEP), iso(T0 + 3 * STEP)
    rows = client.get("/api/households/H001/readings",
                      params={"meter": "H001-W", "start": start, "end": end}).json()
    assert rows == [{"meter": "H001-W", "ts": iso(T0 + STEP), "value": 10.002},
                    {"meter": "H001-W", "ts": iso(T0 + 2 * STEP), "value": 10.004}]

    # a +08:00 offset, also when an unencoded query string turned its '+' into a space
    shanghai = datetime.fromtimestamp(T0 + 2 * STEP, timezone(timedelta(hours=8))).isoformat()
    assert shanghai.endswith("+08:00")
    for start in (shanghai, shanghai.replace("+", " "), iso(T0 + 2 * STEP)):
        rows = client.get("/api/households/H001/readings", params={"meter": "H001-W", "start": start}).json()
        assert [x["ts"] for x in rows] == [iso(T0 + 2 * STEP), iso(T0 + 3 * STEP)], start

    rows = client.get("/api/households/H001/readings", params={"limit": 3}).json()
    assert [(x["meter"], x["ts"]) for x in rows] == [
        ("H001-W", iso(T0 + 2 * STEP)), ("H001-E", iso(T0 + 3 * STEP)), ("H001-W", iso(T0 + 3 * STEP))]


@pytest.mark.parametrize("params", [
    {"start": "yesterday"},
    {"start": "2026-11-22T08:00:00"},  # no offset: ambiguous
    {"start": "2026-11-22T08:00:00Z", "end": "2026-11-22T07:00:00Z"},
    {"limit": 0},
])
def test_readings_bad_query_is_422(client, params):
    r = client.get("/api/households/H001/readings", params=params)
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], list)


# ---------------------------------------------------------------- meters
def test_meters(client):
    all_meters = client.get("/api/meters").json()
    assert [m["id"] for m in all_meters] == ["H001-E", "H001-W", "H002-W", "H003-W", "H004-W", "H010-W"]
    assert by_id(all_meters)["H004-W"]["last_ts"] is None
    assert [m["id"] for m in client.get("/api/meters", params={"household": "H001"}).json()] == [
        "H001-E", "H001-W"]
    meter = client.get("/api/meters/H010-W").json()
    assert meter["household"] == "H010" and meter["last_value"] == pytest.approx(10.006)
    assert meter["last_activity"] == iso(T0 + 3 * STEP)


# ---------------------------------------------------------------- alerts
def test_alert_list_and_filters(client, store):
    a1 = store.open_alert(finding(household="H001"), T0 + 100)
    a2 = store.open_alert(finding(AlertCategory.DEVICE, household="H002", meter="H002-W"), T0 + 200)
    a3 = store.open_alert(finding(AlertCategory.WATER_RUNNING, household="H003"), T0 + 300)
    store.acknowledge_alert(a3.id, "Xiao Zhao", T0 + 400)

    def ids(**params) -> list[int]:
        r = client.get("/api/alerts", params=params)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()]

    assert ids() == [a3.id, a2.id, a1.id]
    assert ids(status="open") == [a2.id, a1.id]
    assert ids(status="acknowledged") == [a3.id]
    assert ids(household="H002") == [a2.id]
    assert ids(category="device") == [a2.id]
    assert ids(limit=1, offset=1) == [a2.id]
    assert client.get("/api/alerts", params={"status": "closed"}).status_code == 422
    assert client.get("/api/alerts", params={"category": "fire"}).status_code == 422

    first = client.get("/api/alerts", params={"household": "H001"}).json()[0]
    assert first["opened_at"] == iso(T0 + 100) and first["since"] == iso(T0)
    assert first["category"] == "inactivity" and first["severity"] == "critical" and "timeline" not in first


def test_acknowledge_then_resolve(client, store, clock):
    alert = store.open_alert(finding(household="H001"), T0 + 100)

    detail = client.get(f"/api/alerts/{alert.id}").json()
    assert detail["status"] == "open"
    assert [e["kind"] for e in detail["timeline"]] == ["opened"]
    assert detail["timeline"][0]["at"] == iso(T0 + 100)

    clock.set(T0 + 5000.7)
    r = client.post(f"/api/alerts/{alert.id}/acknowledge", json={"by": "  Xiao Zhao ", "note": "calling her"})
    assert r.status_code == 200, r.text
    acked = r.json()
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "Xiao Zhao"
    assert acked["acknowledged_at"] == iso(T0 + 5000)
    assert acked["timeline"][-1] == {"at": iso(T0 + 5000), "kind": "acknowledged", "actor": "Xiao Zhao",
                                     "detail": "calling her"}
    assert client.get("/api/households/H001").json()["status"] == "attention"  # someone is on it
    assert [h["id"] for h in client.get("/api/households", params={"status": "attention"}).json()] == ["H001"]

    clock.set(T0 + 6000)
    r = client.post(f"/api/alerts/{alert.id}/resolve", json={"outcome": "safe", "by": "Xiao Zhao",
                                                             "note": "she was at her daughter's"})
    assert r.status_code == 200, r.text
    resolved = r.json()
    assert resolved["status"] == "resolved" and resolved["outcome"] == "safe"
    assert resolved["resolved_at"] == iso(T0 + 6000) and resolved["note"] == "she was at her daughter's"
    assert [e["kind"] for e in resolved["timeline"]] == ["opened", "acknowledged", "resolved"]
    assert client.get("/api/households/H001").json()["status"] == "ok"

    r = client.post(f"/api/alerts/{alert.id}/acknowledge", json={"by": "Xiao Zhao"})
    assert r.status_code == 409
    assert "resolved" in r.json()["detail"]
    r = client.post(f"/api/alerts/{alert.id}/resolve", json={"outcome": "safe", "by": "x"})
    assert r.status_code == 409


def test_resolve_straight_from_open(client, store):
    alert = store.open_alert(finding(AlertCategory.WATER_RUNNING, household="H003"), T0)
    r = client.post(f"/api/alerts/{alert.id}/resolve", json={"outcome": "leak_fixed", "by": "plumber"})
    assert r.status_code == 200 and r.json()["outcome"] == "leak_fixed"


@pytest.mark.parametrize("path,body", [
    ("acknowledge", {"by": ""}),
    ("acknowledge", {"by": "   "}),
    ("acknowledge", {"note": ["a list"]}),
    ("acknowledge", {"by": "x" * 201}),
    ("acknowledge", {"by": "x", "note": "n" * 2001}),
    ("acknowledge", {"by": "x", "extra": 1}),
    ("resolve", {"outcome": "fine", "by": "x"}),
    ("resolve", {"outcome": "device_recovered", "by": "x"}),
    ("resolve", {"outcome": "safe", "by": ""}),
    ("resolve", {"by": "x"}),
])
def test_lifecycle_bad_body_is_422(client, store, path, body):
    alert = store.open_alert(finding(household="H001"), T0)
    r = client.post(f"/api/alerts/{alert.id}/{path}", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["msg"]
    assert client.get(f"/api/alerts/{alert.id}").json()["status"] == "open"


def test_lifecycle_unknown_alert_is_404(client):
    assert client.post("/api/alerts/999/acknowledge", json={"by": "x"}).status_code == 404
    assert client.post("/api/alerts/999/resolve", json={"outcome": "safe", "by": "x"}).status_code == 404
    assert client.get("/api/alerts/abc").status_code == 422


# ---------------------------------------------------------------- scope
def test_manager_scope_restricts_everything(app, store):
    inside = store.open_alert(finding(household="H001"), T0)
    outside = store.open_alert(finding(household="H010"), T0)
    gateway_outside = store.open_alert(finding(AlertCategory.DEVICE, gateway="GW-C"), T0)
    client = api_client(app, "mgr", UserRole.MANAGER, communities=("qingdao-a",))

    assert "H010" not in [h["id"] for h in client.get("/api/households").json()]
    assert client.get("/api/households", params={"community": "jinan-b"}).json() == []
    assert client.get("/api/households/H010").status_code == 404
    assert client.get("/api/households/H010/readings").status_code == 404
    assert client.get("/api/meters/H010-W").status_code == 404
    assert "H010-W" not in [m["id"] for m in client.get("/api/meters").json()]
    assert [a["id"] for a in client.get("/api/alerts").json()] == [inside.id]
    for alert in (outside, gateway_outside):
        assert client.get(f"/api/alerts/{alert.id}").status_code == 404
        assert client.post(f"/api/alerts/{alert.id}/acknowledge", json={"by": "x"}).status_code == 404
    assert client.get(f"/api/alerts/{inside.id}").status_code == 200


# ---------------------------------------------------------------- rejections
def test_rejections_with_counts(client, store):
    topic = "shouwang/v1/qingdao-a/GW-A/readings"
    store.add_rejections([
        Rejection(T0, topic, "bad_json", "not JSON", "{oops"),
        Rejection(T0 + 1, topic, "unknown_meter", "meter X-W", '{"meter": "X-W"}', "X-W"),
        Rejection(T0 + 2, topic, "bad_json", "not JSON", "}{"),
    ])
    body = client.get("/api/rejections").json()
    assert body["counts"] == {"bad_json": 2, "unknown_meter": 1} and body["total"] == 3
    assert [r["payload"] for r in body["items"]] == ["}{", '{"meter": "X-W"}', "{oops"]
    assert body["items"][1]["meter"] == "X-W" and body["items"][1]["received_at"] == iso(T0 + 1)

    only = client.get("/api/rejections", params={"reason": "bad_json", "limit": 1}).json()
    assert [r["payload"] for r in only["items"]] == ["}{"] and only["total"] == 2
    assert only["counts"] == body["counts"]
    assert client.get("/api/rejections", params={"reason": "nothing"}).json()["items"] == []
    assert client.get("/api/rejections", params={"offset": -1}).status_code == 422


# ---------------------------------------------------------------- health and docs
def test_healthz_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"store": True, "ingest": True}}


def test_healthz_failing_check_is_503(client, checks):
    checks["ingest"] = False
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "checks": {"store": True, "ingest": False}}


def test_healthz_broken_store_or_checks_is_503(state, clock):
    class BrokenStore:
        def communities(self):
            raise OSError("database is gone")

    def explode() -> dict[str, bool]:
        raise RuntimeError("boom")

    with TestClient(create_app(BrokenStore(), state, clock, health=explode)) as c:  # type: ignore[arg-type]
        r = c.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"store": False, "checks": False}


def test_openapi_lists_every_route_with_a_response_schema(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Shouwang"
    routers = (households.router, meters.router, alerts.router, away.router, rejections.router, health.router,
               ack.router, people.router, metrics.router, auth.router, users.router, tokens.router, audit.router,
               reports.router)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert {p for p in spec["paths"]} == {r.path for r in routes}
    for route in routes:
        if route.path.startswith("/ack/") or route.path == "/metrics":  # HTML pages, Prometheus text
            continue
        for method in route.methods:
            op = spec["paths"][route.path][method.lower()]
            ok = next(c for c in ("200", "201", "204") if c in op["responses"])
            if ok == "204":
                continue
            schema = op["responses"][ok]["content"]["application/json"]["schema"]
            assert schema.get("$ref") or schema.get("items", {}).get("$ref"), (route.path, method)
            assert op["operationId"] == f"{route.tags[0]}-{route.name}"
    assert "404" in spec["paths"]["/api/alerts/{alert_id}/resolve"]["post"]["responses"]
    assert "409" in spec["paths"]["/api/alerts/{alert_id}/resolve"]["post"]["responses"]
    outcome = spec["components"]["schemas"]["ResolutionOutcome"]["enum"]
    assert "safe" in outcome and "device_recovered" not in outcome
    assert client.get("/docs").status_code == 200

"""A small watched world for the page tests: two communities, people, accounts, 40 days of readings, alerts."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from accounts_support import PASSWORD, make_user
from conftest import _postgres_url
from fastapi import FastAPI
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
    GatewayStatus,
    Household,
    Meter,
    MeterKind,
    Outcome,
    Person,
    Reading,
    Registry,
    Role,
    Severity,
    Target,
)
from shouwang.state import HouseholdState
from storage import SqlStore, open_store

NOW = 1_795_658_400  # 2026-11-26 10:00 Asia/Shanghai
DAY = 86400
STEP = 900
B_SECRETS = ("H010", "Liu Yang", "9 Quancheng Rd")  # what no user of community A may ever see

REGISTRY = Registry(
    communities=(Community("qingdao-a", "青岛幸福里"), Community("jinan-b", "Jinan B")),
    gateways=(Gateway("GW-A", "qingdao-a"), Gateway("GW-B", "qingdao-a"), Gateway("GW-C", "jinan-b")),
    households=(
        Household("H001", "qingdao-a", "王秀英", "幸福里 3 号楼 1-101", "g1", "13800000001", "耳背，请多敲门"),
        Household("H002", "qingdao-a", "李建国", "幸福里 3 号楼 2-201", "g1", "13800000002"),
        Household("H003", "qingdao-a", "Zhang Wei", "2-201 Shandong Rd", "g2", "13800000003"),
        Household("H010", "jinan-b", "Liu Yang", "9 Quancheng Rd", "g9", "13900000010"),
    ),
    meters=tuple(Meter(f"{h}-{k[0].upper()}", h, k, gw) for h, gw in
                 (("H001", "GW-A"), ("H002", "GW-A"), ("H003", "GW-B"), ("H010", "GW-C"))
                 for k in (MeterKind.WATER, MeterKind.ELECTRICITY)),
    people=(Person("P-W1", "网格员小陈", Role.WORKER, "zh", "13700000001"),
            Person("P-F1", "王小明", Role.FAMILY, "zh", "13600000001"),
            Person("P-F3", "Zhang Jr", Role.FAMILY, "en", "13600000003"),
            Person("P-B", "B volunteer", Role.VOLUNTEER, "zh", "13500000010")),
    assignments=(Assignment(Target.FAMILY, "P-F1", household="H001"),
                 Assignment(Target.TEAM, "P-W1", household="H001"),
                 Assignment(Target.FAMILY, "P-F3", household="H003"),
                 Assignment(Target.VOLUNTEER, "P-B", household="H010")),
)

USERS = {
    "manager": {"role": UserRole.MANAGER, "communities": ("qingdao-a",), "language": "zh"},
    "worker": {"role": UserRole.WORKER, "grids": ("qingdao-a/g1",), "person": "P-W1", "language": "zh"},
    "family": {"role": UserRole.FAMILY, "person": "P-F3", "language": "en"},
    "manager-b": {"role": UserRole.MANAGER, "communities": ("jinan-b",), "language": "en"},
}


def _use(t: int, kind: MeterKind) -> float:
    """Use in the 15 minutes from t (local time +8): water at breakfast and dinner, electricity all day."""
    hour = (t // 3600 + 8) % 24
    if kind is MeterKind.WATER:
        return 0.012 if hour in (7, 8, 18, 19) else 0.002 if 9 <= hour <= 21 else 0.0
    return 0.0125 + (0.12 if hour in (11, 18) else 0.03 if 7 <= hour <= 22 else 0.0) * (1 + 0.2 * math.sin(t))


def readings(days: int = 40) -> list[Reading]:
    """Readings every 15 minutes for ``days`` up to NOW; H001 stops 30 hours before NOW."""
    out = []
    for m in REGISTRY.meters:
        value, stop = 100.0, NOW - 30 * 3600 if m.household == "H001" else NOW
        for t in range(NOW - days * DAY, NOW + 1, STEP):
            quiet = m.household == "H001" and t >= stop
            out.append(Reading(m.id, t, round(value, 4)))
            value += 0.0 if quiet and m.kind is MeterKind.WATER else (
                0.0125 if quiet else _use(t, m.kind))
    return out


@dataclass(frozen=True, slots=True)
class World:
    """The store, app, clock and the ids of the alerts made for the tests."""

    store: SqlStore
    app: FastAPI
    clock: ManualClock
    alerts: dict[str, int]


def _finding(category: AlertCategory, since: int, severity: Severity = Severity.CRITICAL, **subject: str) -> Finding:
    reason = {AlertCategory.INACTIVITY: "no water or electricity use for 30 h",
              AlertCategory.WATER_RUNNING: "water has been running for 3 h",
              AlertCategory.DEVICE: "gateway offline"}.get(category, "unusual use")
    return Finding(category, "test", severity, since, reason, **subject)


BACKENDS = ("sqlite", "postgresql")


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a fresh database: a SQLite file in ``directory``, or a new PostgreSQL database, dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{directory}/pages.db"
        return
    urls = _postgres_url()  # skips the test without PostgreSQL (fails it in CI)
    try:
        yield next(urls)
    finally:
        next(urls, None)


def build_world(where: str) -> World:
    """A store at ``where`` (a database URL, or a SQLite file's path) with the registry, readings, accounts and
    alerts; the app over it."""
    store = open_store(where if "://" in where else f"sqlite:///{where}")
    store.upsert_registry(REGISTRY)
    data = readings()
    store.write_readings(data)
    store.set_gateway_status(GatewayStatus("GW-A", True, NOW - 40 * DAY))
    store.set_gateway_status(GatewayStatus("GW-C", False, NOW - 3600))
    make_user(store, "admin")
    for user_id, fields in USERS.items():
        make_user(store, user_id, **fields)  # type: ignore[arg-type]
    ids: dict[str, int] = {}
    # history for the figures: closed cases of the last months
    for i, (days_ago, ack_min, close_h, outcome, hh) in enumerate((
            (70, 12, 5, Outcome.SAFE, "H001"), (50, 30, 30, Outcome.NEEDED_HELP, "H002"),
            (20, 8, 2, Outcome.FALSE_ALARM, "H003"), (12, 20, 10, Outcome.HOSPITALISED, "H010"))):
        opened = NOW - days_ago * DAY
        a = store.open_alert(_finding(AlertCategory.INACTIVITY, opened - 3600, household=hh), opened)
        assert a is not None
        store.acknowledge_alert(a.id, "P-W1", opened + ack_min * 60)
        store.resolve_alert(a.id, outcome, "P-W1", opened + close_h * 3600, "checked")
        ids[f"old{i}"] = a.id
    ids["h001"] = store.open_alert(_finding(AlertCategory.INACTIVITY, NOW - 30 * 3600, household="H001"),
                                   NOW - 2 * 3600).id  # type: ignore[union-attr]
    h003 = store.open_alert(_finding(AlertCategory.WATER_RUNNING, NOW - 5 * 3600, Severity.WARNING,
                                     household="H003"), NOW - 4 * 3600)
    assert h003 is not None
    store.acknowledge_alert(h003.id, "P-F3", NOW - 3 * 3600)
    ids["h003"] = h003.id
    ids["h010"] = store.open_alert(_finding(AlertCategory.INACTIVITY, NOW - 50 * 3600, household="H010"),
                                   NOW - 3 * 3600).id  # type: ignore[union-attr]
    ids["gw_c"] = store.open_alert(_finding(AlertCategory.DEVICE, NOW - 3600, gateway="GW-C"), NOW - 1800).id  # type: ignore[union-attr]
    state = HouseholdState(REGISTRY, started_at=NOW - 40 * DAY)
    state.apply(data)
    for s in store.gateway_statuses():
        state.set_gateway_status(s)
    clock = ManualClock(NOW)
    return World(store, create_app(store, state, clock), clock, ids)


def session_client(app: FastAPI, user_id: str) -> tuple[TestClient, str]:
    """A TestClient logged in through the login page (cookie session); returns it and the page CSRF token."""
    client = TestClient(app, headers={"Accept": "text/html"})
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": user_id, "password": PASSWORD, "csrf": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    home = client.get(r.headers["location"])
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    return client, csrf


CITY_SIZE = 10_000
CITY_GRIDS = 20
CITY_ALERTS = ("C00001", "C05001", "C09991", "C09993", "C09995", "C09997", "C09999")  # unacknowledged, critical
CITY_AWAY = ("C00003", "C00005", "C07777")
# households with an even number have readings (ok); the others have none yet (no data)


def city_household(i: int) -> Household:
    """The i-th household (1-based) of the large street office: grid g01…g20, 500 households each."""
    grid = f"g{(i - 1) // (CITY_SIZE // CITY_GRIDS) + 1:02d}"
    return Household(f"C{i:05d}", "city", f"Resident {i}", f"{grid} Lane {i}", grid)


def build_city(where: str) -> World:
    """A street office of 10,000 households (one bulk registry upsert) with a manager; the app over it."""
    store = open_store(where)
    households = tuple(city_household(i) for i in range(1, CITY_SIZE + 1))
    meters = tuple(Meter(f"{h.id}-W", h.id, MeterKind.WATER, f"GW-{h.grid}") for h in households)
    registry = Registry(communities=(Community("city", "Big street office"),),
                        gateways=tuple(Gateway(f"GW-g{g:02d}", "city") for g in range(1, CITY_GRIDS + 1)),
                        households=households, meters=meters)
    store.upsert_registry(registry)
    make_user(store, "city-manager", UserRole.MANAGER, communities=("city",), language="en")
    ids = {h: store.open_alert(_finding(AlertCategory.INACTIVITY, NOW - 30 * 3600, household=h),  # type: ignore[union-attr]
                               NOW - 3600).id for h in CITY_ALERTS}
    for h in CITY_AWAY:
        store.add_away(AwayPeriod(h, NOW - DAY, NOW + 3 * DAY, "family"))
    state = HouseholdState(registry, started_at=NOW - DAY)
    state.apply([Reading(f"C{i:05d}-W", NOW - 600, 10.0) for i in range(2, CITY_SIZE + 1, 2)])
    clock = ManualClock(NOW)
    return World(store, create_app(store, state, clock), clock, ids)

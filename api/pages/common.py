"""What several pages show: household rows with their status, alerts with their place and people to call."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import quote

from api.auth import Scope
from api.views import AlertIndex, household_status
from shouwang.domain import (
    Alert,
    AlertStatus,
    Household,
    Person,
    Target,
)
from shouwang.state import NEVER, HouseholdState
from storage import NotFound, Store

DEFAULT_ZONE = "Asia/Shanghai"
PAGE_STATUSES = ("alert", "attention", "device", "away", "ok", "unknown")


@dataclass(frozen=True, slots=True)
class Row:
    """A household on the dashboard: its record, the status shown and what its row says."""

    household: Household
    status: str
    zone: str
    last_activity: int | None
    away_until: int | None
    open_alerts: int


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone to call about a household."""

    name: str
    phone: str
    role: str  # resident, family, volunteer, team


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert with where it is and whom to call."""

    alert: Alert
    household: Household | None
    zone: str
    contacts: tuple[Contact, ...]
    map_query: str


def zones(store: Store) -> dict[str, str]:
    """Time zone of each community."""
    return {c.id: c.timezone for c in store.communities()}


def household_rows(store: Store, state: HouseholdState, scope: Scope, now: int) -> list[Row]:
    """Every household in scope with its live status, ordered by id (the state read once, as arrays)."""
    gateways = defaultdict(set)
    for m in store.meters():
        gateways[m.household].add(m.gateway)
    index = AlertIndex(store.unresolved_alerts(), store.away_periods(active_at=now), now)
    tz = zones(store)
    last, heard, offline = state.overview()
    position = state.household_index
    rows = []
    for h in store.households():
        if not scope.allows_household(h.id):
            continue
        i = position.get(h.id)
        act = None if i is None or last[i] == NEVER else int(last[i])
        own = index.for_household(h.id)
        away = index.away_for(h.id, act)
        status = household_status(i is not None and bool(heard[i]), i is not None and bool(offline[i]), own,
                                  index.for_gateways(gateways[h.id]), away is not None)
        rows.append(Row(h, status.value, tz.get(h.community, DEFAULT_ZONE), act, away.end if away else None,
                        len(own)))
    return rows


def contacts(store: Store, household: Household) -> tuple[Contact, ...]:
    """The resident, then family, volunteer and team members who have a phone number."""
    out = [Contact(household.name or household.id, household.phone, "resident")]
    order = {Target.FAMILY: 0, Target.VOLUNTEER: 1, Target.TEAM: 2}
    for a in sorted(store.assignments(household=household.id), key=lambda a: order.get(a.target, 9)):
        if a.target not in order:
            continue
        try:
            person: Person = store.person(a.person)
        except NotFound:
            continue
        out.append(Contact(person.name or person.id, person.phone, str(a.target)))
    return tuple(out)


def alert_view(store: Store, alert: Alert, tz: dict[str, str] | None = None) -> AlertView:
    """An alert with its household (if any), the zone to show times in and the people to call."""
    tz = tz if tz is not None else zones(store)
    household = None
    if alert.household:
        try:
            household = store.household(alert.household)
        except NotFound:
            household = None
    if household is None:
        community = next((g.community for g in store.gateways() if g.id == alert.gateway), None)
        return AlertView(alert, None, tz.get(community or "", DEFAULT_ZONE), (), "")
    return AlertView(alert, household, tz.get(household.community, DEFAULT_ZONE), contacts(store, household),
                     quote(household.address or household.name))


def open_alerts(store: Store, scope: Scope) -> list[Alert]:
    """Unresolved alerts in scope, newest first."""
    return sorted((a for a in store.unresolved_alerts() if scope.allows_alert(a)),
                  key=lambda a: (a.opened_at, a.id), reverse=True)


def is_open(alert: Alert) -> bool:
    """Whether nobody has acknowledged the alert yet."""
    return alert.status in (AlertStatus.OPEN, AlertStatus.NOTIFIED)

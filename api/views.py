"""Turning store records and live state into public schemas; household status lives here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from api.auth import Scope
from api.schemas import AlertDetail, AlertEventPublic, HouseholdPublic, HouseholdStatus, MeterPublic
from shouwang.away import AwayPeriod, active_away, index_by_household
from shouwang.domain import (
    UNITS,
    WELFARE_CATEGORIES,
    Alert,
    AlertCategory,
    AlertStatus,
    Household,
    Meter,
    Severity,
)
from shouwang.state import HouseholdState, MeterSummary
from storage import NotFound, Store

SCAN_PAGE = 500


def household_status(
    heard: bool, offline: bool, alerts: Iterable[Alert], gateway_alerts: Iterable[Alert] = (), away: bool = False,
) -> HouseholdStatus:
    """Status of one household: whether any of its meters was heard, whether a gateway of it is offline, its
    unresolved alerts and those of its gateways, and whether an away period holds it."""
    unresolved = [a for a in (*alerts, *gateway_alerts) if a.status is not AlertStatus.RESOLVED]
    welfare = [a for a in unresolved if a.category in WELFARE_CATEGORIES]
    if welfare:
        urgent = any(a.severity is Severity.CRITICAL and a.cleared_at is None
                     and a.status in (AlertStatus.OPEN, AlertStatus.NOTIFIED) for a in welfare)
        return HouseholdStatus.ALERT if urgent else HouseholdStatus.ATTENTION
    if any(a.category is AlertCategory.DEVICE for a in unresolved) or offline:
        return HouseholdStatus.DEVICE
    if away:
        return HouseholdStatus.AWAY
    if not heard:
        return HouseholdStatus.UNKNOWN
    return HouseholdStatus.OK


class AlertIndex:
    """Unresolved alerts grouped by the household and the gateway they are recorded against."""

    def __init__(self, alerts: Iterable[Alert], away: Iterable[AwayPeriod] = (), now: int = 0) -> None:
        self.now = now
        self.away = index_by_household(away)
        self.by_household: dict[str, list[Alert]] = defaultdict(list)
        self.by_gateway: dict[str, list[Alert]] = defaultdict(list)
        for a in alerts:
            if a.household:
                self.by_household[a.household].append(a)
            elif a.gateway:
                self.by_gateway[a.gateway].append(a)

    def for_household(self, household: str) -> list[Alert]:
        """Alerts recorded against the household itself (what /api/alerts?household= lists)."""
        return self.by_household.get(household, [])

    def away_for(self, household: str, last_activity: int | None) -> AwayPeriod | None:
        """The away period holding this household's welfare alerts now, if any."""
        return active_away(self.away.get(household, ()), household, self.now, last_activity)

    def for_gateways(self, gateways: Iterable[str]) -> list[Alert]:
        """Gateway-wide alerts of these gateways."""
        return [a for g in sorted(set(gateways)) for a in self.by_gateway.get(g, ())]


def meter_public(meter: Meter, live: MeterSummary | None) -> MeterPublic:
    """A registered meter with its live state, if the state knows it."""
    return MeterPublic(
        id=meter.id, household=meter.household, kind=meter.kind, unit=UNITS[meter.kind],
        gateway=meter.gateway,
        last_ts=live.last_ts if live else None, last_value=live.last_value if live else None,
        last_activity=live.last_activity if live else None, base_load_kw=live.base_load_kw if live else None,
        activity_line_kw=live.activity_line_kw if live else None)


def household_public(
    household: Household, meters: Sequence[Meter], state: HouseholdState, index: AlertIndex
) -> HouseholdPublic:
    """A household with its status, live summary and meters."""
    summary = state.summary(household.id)
    live = {m.meter: m for m in summary.meters} if summary else {}
    own = index.for_household(household.id)
    away = index.away_for(household.id, summary.last_activity if summary else None)
    heard = summary is not None and any(m.last_ts is not None for m in summary.meters)
    status = household_status(heard, bool(summary and summary.offline_gateways), own,
                              index.for_gateways(m.gateway for m in meters), away is not None)
    return HouseholdPublic(
        id=household.id, community=household.community, name=household.name, address=household.address,
        grid=household.grid, status=status,
        last_activity=summary.last_activity if summary else None,
        covered_until=summary.covered_until if summary else None,
        offline_gateways=list(summary.offline_gateways) if summary else [],
        open_alerts=len(own), away_until=away.end if away else None,
        away=away is not None,
        meters=[meter_public(m, live.get(m.id)) for m in meters])


def live_meter(state: HouseholdState, meter: Meter) -> MeterSummary | None:
    """The live state of one meter, or None if the state does not know it."""
    summary = state.summary(meter.household)
    return next((m for m in summary.meters if m.meter == meter.id), None) if summary else None


def visible_household(store: Store, scope: Scope, household_id: str) -> Household:
    """The household, or NotFound if it does not exist or is outside the scope."""
    household = store.household(household_id)
    if not scope.allows_household(household.id):
        raise NotFound(f"household {household_id!r} not found")
    return household


def visible_alert(store: Store, scope: Scope, alert_id: int) -> Alert:
    """The alert, or NotFound if it does not exist or is outside the scope."""
    alert = store.alert(alert_id)
    if not scope.allows_alert(alert):
        raise NotFound(f"alert {alert_id} not found")
    return alert


def alert_detail(store: Store, alert: Alert) -> AlertDetail:
    """An alert with its timeline."""
    detail = AlertDetail.model_validate(alert)
    detail.timeline = [AlertEventPublic.model_validate(e) for e in store.alert_events(alert.id)]
    return detail


def scoped_alerts(store: Store, scope: Scope, limit: int, offset: int, **filters: object) -> list[Alert]:
    """A page of alerts matching the store filters, counting only those inside the scope."""
    if scope.unrestricted:
        return store.alerts(limit=limit, offset=offset, **filters)  # type: ignore[arg-type]
    out: list[Alert] = []
    skipped, scanned = 0, 0
    while len(out) < limit:
        page = store.alerts(limit=SCAN_PAGE, offset=scanned, **filters)  # type: ignore[arg-type]
        for a in page:
            if not scope.allows_alert(a):
                continue
            if skipped < offset:
                skipped += 1
            else:
                out.append(a)
        if len(page) < SCAN_PAGE:
            break
        scanned += SCAN_PAGE
    return out[:limit]

"""Alerts: list with filters, detail with timeline, and the acknowledge/resolve lifecycle steps."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query

from alerts import lifecycle
from api.auth import ActScope, ManageScope, PrincipalDep, ReadScope, acting_as
from api.deps import NowDep, PageDep, StoreDep
from api.schemas import (
    CONFLICT,
    NOT_FOUND,
    AlertAcknowledge,
    AlertDetail,
    AlertPublic,
    AlertReopen,
    AlertResolve,
    AlertTier,
    DeliveryPublic,
    epoch,
)
from api.views import alert_detail, scoped_alerts, visible_alert
from shouwang.domain import AlertCategory, AlertStatus, Outcome

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get("", response_model=list[AlertPublic])
def list_alerts(
    store: StoreDep,
    scope: ReadScope,
    page: PageDep,
    status: AlertStatus | None = None,
    household: Annotated[str | None, Query(max_length=64)] = None,
    category: AlertCategory | None = None,
) -> list[AlertPublic]:
    """Alerts in scope, newest first."""
    alerts = scoped_alerts(store, scope, page.limit, page.offset,
                           status=status, household=household, category=category)
    return [AlertPublic.model_validate(a) for a in alerts]


@router.get("/{alert_id}", response_model=AlertDetail, responses=NOT_FOUND)
def get_alert(alert_id: int, store: StoreDep, scope: ReadScope) -> AlertDetail:
    """One alert with its timeline."""
    return alert_detail(store, visible_alert(store, scope, alert_id))


@router.post("/{alert_id}/acknowledge", response_model=AlertDetail, responses=NOT_FOUND | CONFLICT)
def acknowledge_alert(
    alert_id: int, body: AlertAcknowledge, store: StoreDep, scope: ActScope, now: NowDep,
    principal: PrincipalDep,
) -> AlertDetail:
    """Mark an open alert as being looked into."""
    visible_alert(store, scope, alert_id)
    by = acting_as(principal, body.by)
    alert = store.acknowledge_alert(alert_id, by, now, body.note)
    log.info("alert %d acknowledged by %s", alert_id, by)
    return alert_detail(store, alert)


@router.post("/{alert_id}/resolve", response_model=AlertDetail, responses=NOT_FOUND | CONFLICT)
def resolve_alert(
    alert_id: int, body: AlertResolve, store: StoreDep, scope: ActScope, now: NowDep,
    principal: PrincipalDep,
) -> AlertDetail:
    """Close an open or acknowledged alert with an outcome; `away` holds welfare alerts until activity resumes."""
    visible_alert(store, scope, alert_id)
    by = acting_as(principal, body.by)
    alert = lifecycle.resolve(store, alert_id, Outcome(body.outcome), by, now, body.note,
                              epoch(body.expected_return))
    log.info("alert %d resolved by %s: %s", alert_id, by, alert.outcome)
    return alert_detail(store, alert)


@router.post("/{alert_id}/reopen", response_model=AlertDetail, responses=NOT_FOUND | CONFLICT)
def reopen_alert(
    alert_id: int, body: AlertReopen, store: StoreDep, scope: ActScope, now: NowDep,
    principal: PrincipalDep,
) -> AlertDetail:
    """Reopen a resolved case (it was closed too early); escalation starts again from the first step."""
    visible_alert(store, scope, alert_id)
    by = acting_as(principal, body.by)
    alert = store.reopen_alert(alert_id, by, now, body.note)
    log.info("alert %d reopened by %s", alert_id, by)
    return alert_detail(store, alert)


@router.get("/{alert_id}/deliveries", response_model=list[DeliveryPublic], responses=NOT_FOUND)
def alert_deliveries(alert_id: int, store: StoreDep, scope: ReadScope) -> list[DeliveryPublic]:
    """Every message queued about the alert, with its delivery state (channel addresses are not shown)."""
    visible_alert(store, scope, alert_id)
    return [DeliveryPublic(id=i.id, person=i.person, kind=i.kind, channel=i.channel_index + 1, state=state,
                           attempts=i.attempts, title=i.title)
            for i, state in store.outbox_items(alert_id=alert_id)]


@router.post("/{alert_id}/tier", response_model=AlertDetail, responses=NOT_FOUND | CONFLICT)
def set_tier(
    alert_id: int, body: AlertTier, store: StoreDep, scope: ManageScope, now: NowDep, principal: PrincipalDep
) -> AlertDetail:
    """Mark an unresolved case ordinary or hard; its SLA timer restarts from the opening with that tier's time."""
    alert = visible_alert(store, scope, alert_id)
    lifecycle.set_tier(store, alert, body.tier, acting_as(principal, body.by), now, body.note)
    return alert_detail(store, store.alert(alert_id))

"""The worker's phone page (/m): open alerts, one-tap acknowledge, calls, map, outcome and note, history.

The alert actions here are also what the dashboard's alert page posts to; each does what its JSON API route
does (POST /api/alerts/{id}/acknowledge, /resolve, /reopen, /tier), through the same scope dependencies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from alerts import lifecycle
from api.auth import ActScope, ManageScope, Principal, PrincipalDep, ReadScope, Scope, acting_as
from api.deps import NowDep, StoreDep
from api.pages.common import alert_view, is_open, open_alerts, zones
from api.pages.render import redirect, render, safe_next
from api.schemas import FIRST_YEAR, LAST_YEAR, AlertResolve, DeliveryPublic, ResolutionOutcome
from api.views import visible_alert
from shouwang.domain import AlertStatus, Outcome
from storage import AlertConflict, Store

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

MAX_NOTE = 2000
HISTORY = 50
Text = Annotated[str, Form()]
OUTCOMES = [o.value for o in ResolutionOutcome]  # type: ignore[attr-defined]


@router.get("/m")
def my_alerts(request: Request, store: StoreDep, scope: ReadScope, principal: PrincipalDep) -> Response:
    """My open alerts, newest first, each with what was seen and a one-tap 'on my way'."""
    tz = zones(store)
    views = [alert_view(store, a, tz) for a in open_alerts(store, scope)]
    return render(request, "m_list.html", principal, views=views, is_open=is_open, phone=True,
                  done=request.query_params.get("done"))


@router.get("/m/history")
def my_history(request: Request, store: StoreDep, scope: ReadScope, principal: PrincipalDep) -> Response:
    """Alerts I acknowledged, closed or reopened, newest first."""
    me = principal.actor
    mine = []
    offset = 0
    while len(mine) < HISTORY:
        page = store.alerts(limit=500, offset=offset)
        mine += [a for a in page if scope.allows_alert(a) and me in (a.acknowledged_by, a.resolved_by)]
        if len(page) < 500:
            break
        offset += 500
    tz = zones(store)
    views = [alert_view(store, a, tz) for a in mine[:HISTORY]]
    return render(request, "m_history.html", principal, views=views, phone=True)


def alert_page(request: Request, store: Store, scope: Scope, principal: Principal, alert_id: int,
               dashboard: bool, status: int = 200, error: str | None = None) -> Response:
    """The alert page of the phone or of the dashboard, optionally with an error about the form just sent."""
    alert = visible_alert(store, scope, alert_id)
    view = alert_view(store, alert)
    context: dict[str, object] = {
        "v": view, "timeline": store.alert_events(alert.id), "outcomes": OUTCOMES, "error": error,
        "is_open": is_open(alert), "resolved": alert.status is AlertStatus.RESOLVED,
        "done": request.query_params.get("done"), "phone": not dashboard,
        "escalation": store.escalation(alert.id),
        "here": f"/dashboard/alerts/{alert.id}" if dashboard else f"/m/alerts/{alert.id}"}
    if dashboard:
        context["deliveries"] = [
            DeliveryPublic(id=i.id, person=i.person, kind=i.kind, channel=i.channel_index + 1, state=state,
                           attempts=i.attempts, title=i.title) for i, state in store.outbox_items(alert_id=alert.id)]
    return render(request, "alert.html" if dashboard else "m_alert.html", principal, status=status, **context)


@router.get("/m/alerts/{alert_id}")
def phone_alert(alert_id: int, request: Request, store: StoreDep, scope: ReadScope,
                principal: PrincipalDep) -> Response:
    """One alert on the phone: what was seen, the address, whom to call, and the actions."""
    return alert_page(request, store, scope, principal, alert_id, dashboard=False)


def _back(back: str, alert_id: int) -> tuple[str, bool]:
    target = safe_next(back, f"/m/alerts/{alert_id}")
    return target, target.startswith("/dashboard")


def _refuse(request: Request, store: Store, scope: Scope, principal: Principal, alert_id: int, back: str,
            status: int, error: str) -> Response:
    _, dashboard = _back(back, alert_id)
    return alert_page(request, store, scope, principal, alert_id, dashboard, status, error)


def _noted_step(request: Request, store: Store, scope: Scope, principal: Principal, now: int, alert_id: int,
                note: str, back: str, step: Callable[[int, str, int, str], object], done: str) -> Response:
    """Acknowledge or reopen with a note as the logged-in user; a refused form comes back with the reason."""
    visible_alert(store, scope, alert_id)
    if len(note) > MAX_NOTE:
        return _refuse(request, store, scope, principal, alert_id, back, 422, "err_note")
    try:
        step(alert_id, acting_as(principal, None), now, note.strip())
    except AlertConflict:
        return _refuse(request, store, scope, principal, alert_id, back, 409, "err_conflict")
    log.info("alert %d: %s on a page", alert_id, done, extra={"alert": alert_id})
    return redirect(_back(back, alert_id)[0], done)


@router.post("/m/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: int, request: Request, store: StoreDep, scope: ActScope, principal: PrincipalDep,
                now: NowDep, note: Text = "", back: Text = "") -> Response:
    """'On my way': what POST /api/alerts/{id}/acknowledge does, as the logged-in user."""
    return _noted_step(request, store, scope, principal, now, alert_id, note, back, store.acknowledge_alert,
                       "done_ack")


def _expected_return(value: str, zone: str, now: int) -> int | None:
    """The end of the given local day, as epoch seconds; ValueError if not a date after today."""
    if not value.strip():
        return None
    day = date.fromisoformat(value.strip())
    if not FIRST_YEAR <= day.year < LAST_YEAR:
        raise ValueError("bad_date")
    end = int(datetime.combine(day + timedelta(days=1), time(), ZoneInfo(zone)).timestamp())
    if end <= now + 1:
        raise ValueError("date_in_past")
    return end


@router.post("/m/alerts/{alert_id}/resolve")
def resolve(alert_id: int, request: Request, store: StoreDep, scope: ActScope, principal: PrincipalDep,
            now: NowDep, outcome: Text = "", note: Text = "", expected_return: Text = "",
            back: Text = "") -> Response:
    """Record the outcome and a note and close the case: what POST /api/alerts/{id}/resolve does."""
    alert = visible_alert(store, scope, alert_id)
    if outcome not in OUTCOMES:
        return _refuse(request, store, scope, principal, alert_id, back, 422, "err_outcome")
    if len(note) > MAX_NOTE:
        return _refuse(request, store, scope, principal, alert_id, back, 422, "err_note")
    try:
        back_on = _expected_return(expected_return, alert_view(store, alert).zone, now)
    except ValueError as exc:
        key = "date_in_past" if str(exc) == "date_in_past" else "bad_date"
        return _refuse(request, store, scope, principal, alert_id, back, 422, key)
    body = AlertResolve(outcome=outcome, note=note)  # the API's own validation of the same fields
    try:
        lifecycle.resolve(store, alert_id, Outcome(body.outcome), acting_as(principal, None), now, body.note,
                          back_on if outcome == Outcome.AWAY else None)
    except AlertConflict:
        return _refuse(request, store, scope, principal, alert_id, back, 409, "err_conflict")
    log.info("alert %d resolved on a page: %s", alert_id, outcome, extra={"alert": alert_id})
    return redirect(_back(back, alert_id)[0], "done_resolve")


@router.post("/m/alerts/{alert_id}/reopen")
def reopen(alert_id: int, request: Request, store: StoreDep, scope: ActScope, principal: PrincipalDep,
           now: NowDep, note: Text = "", back: Text = "") -> Response:
    """Reopen a closed case: what POST /api/alerts/{id}/reopen does."""
    return _noted_step(request, store, scope, principal, now, alert_id, note, back, store.reopen_alert,
                       "done_reopen")


@router.post("/m/alerts/{alert_id}/tier")
def set_tier(alert_id: int, request: Request, store: StoreDep, scope: ManageScope, principal: PrincipalDep,
             now: NowDep, tier: Text = "", note: Text = "", back: Text = "") -> Response:
    """Mark a case ordinary or hard: what POST /api/alerts/{id}/tier does (managers)."""
    alert = visible_alert(store, scope, alert_id)
    if tier not in ("ordinary", "hard"):
        return _refuse(request, store, scope, principal, alert_id, back, 422, "err_tier")
    if len(note) > MAX_NOTE:
        return _refuse(request, store, scope, principal, alert_id, back, 422, "err_note")
    try:
        lifecycle.set_tier(store, alert, tier, acting_as(principal, None), now, note.strip())
    except AlertConflict:
        return _refuse(request, store, scope, principal, alert_id, back, 409, "err_conflict")
    return redirect(_back(back, alert_id)[0], "done_tier")

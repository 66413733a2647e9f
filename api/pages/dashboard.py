"""The manager dashboard: every household's status, a household page, an alert page and community figures."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.auth import AwayScope, ManageScope, PrincipalDep, ReadScope
from api.deps import NowDep, StateDep, StoreDep
from api.pages.charts import Tick, activity_grid, bar_chart
from api.pages.common import DEFAULT_ZONE, PAGE_STATUSES, contacts, household_rows, zones
from api.pages.i18n import Translator
from api.pages.phone import MAX_NOTE, _expected_return, alert_page
from api.pages.render import language_for, redirect, render
from api.pages.usage import HOUR, Series, household_usage
from api.views import AlertIndex, household_public, visible_household
from shouwang.accounts import Permission
from shouwang.away import AwayPeriod
from shouwang.domain import MeterKind
from shouwang.reports import figures, gather_cases
from storage import NotFound, Store

router = APIRouter(include_in_schema=False)

Filter = Annotated[str, Query(max_length=200)]
PAGE_SIZE = 100  # rows of the dashboard per page unless ?per= asks for another size
MAX_PAGE_SIZE = 500  # the largest ?per= (a page of 500 rows still renders at once in a browser)
WATER_ACTIVITY_L = 1.0  # the project's activity rule: 1 L of water (SHOUWANG_WATER_ACTIVITY_M3)


@router.get("/dashboard")
def dashboard(request: Request, store: StoreDep, state: StateDep, scope: ReadScope, principal: PrincipalDep,
              now: NowDep, grid: Filter = "", status: Filter = "", q: Filter = "", page: Filter = "",
              per: Filter = "") -> Response:
    """Every household in scope at a glance, a page at a time, with filters by grid and status and a search."""
    rows = household_rows(store, state, scope, now)
    communities = {c.id: c.name or c.id for c in store.communities()}
    grids = sorted({f"{r.household.community}/{r.household.grid}" for r in rows})
    errors = []
    if grid and grid not in grids:
        errors.append(("grid", grid))
    if status and status not in PAGE_STATUSES:
        errors.append(("status", status))
    filtered = not errors  # a bad filter shows everything, with the message, rather than a guess
    shown = rows
    if filtered:
        if grid:
            shown = [r for r in shown if f"{r.household.community}/{r.household.grid}" == grid]
        if q.strip():
            needle = q.strip().casefold()
            shown = [r for r in shown if any(needle in f.casefold() for f in
                                             (r.household.id, r.household.name, r.household.address))]
    counts = Counter(r.status for r in shown)  # over grid and search, so each count is what its link shows
    if filtered and status:
        shown = [r for r in shown if r.status == status]
    size = _whole(per, 1, MAX_PAGE_SIZE) if per else PAGE_SIZE
    if size is None:
        errors.append(("per", per))
    size = size or PAGE_SIZE
    pages = max(1, -(-len(shown) // size))
    number = _whole(page, 1, pages) if page else 1
    if number is None:
        errors.append(("page", page))
    number = number or 1
    order = {s: i for i, s in enumerate(PAGE_STATUSES)}
    shown = sorted(shown, key=lambda r: (order.get(r.status, 9), r.household.id))
    first = (number - 1) * size
    keep = {"grid": grid, "status": status, "q": q} if filtered else {}
    keep["per"] = str(size) if size != PAGE_SIZE else ""
    return render(request, "dashboard.html", principal, status=422 if errors else 200,
                  rows=shown[first:first + size], total=len(rows), matching=len(shown), counts=counts,
                  statuses=PAGE_STATUSES, grids=grids, communities=communities, grid=grid, status_filter=status,
                  q=q, errors=errors, page=number, pages=pages, first=first + 1 if shown else 0,
                  last=min(first + size, len(shown)), per=keep["per"], max_per=MAX_PAGE_SIZE,
                  status_link=lambda s: _query({**keep, "status": s}),
                  page_link=lambda n: _query({**keep, "page": str(n) if n > 1 else ""}))


def _whole(text: str, low: int, high: int) -> int | None:
    """``text`` as a whole number from ``low`` to ``high``, or None."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and low <= int(text) <= high else None


def _query(params: dict[str, str]) -> str:
    """The dashboard's address with the non-empty parameters."""
    kept = {k: v for k, v in params.items() if v}
    return "/dashboard" + (f"?{urlencode(kept)}" if kept else "")


def _hour_ticks(series: Series, zone: str, t: Translator) -> list[Tick]:
    tz = ZoneInfo(zone)
    return [Tick(i, datetime.fromtimestamp(b.start, tz).strftime("%m-%d")) for i, b in enumerate(series.bins)
            if datetime.fromtimestamp(b.start, tz).hour == 0]


def _day_ticks(series: Series, zone: str) -> list[Tick]:
    tz = ZoneInfo(zone)
    return [Tick(i, datetime.fromtimestamp(b.start, tz).strftime("%m-%d")) for i, b in enumerate(series.bins)
            if datetime.fromtimestamp(b.start, tz).day in (1, 15)]


def _activity(hourly: list[Series], line_kw: dict[MeterKind, float | None], zone: str) -> list[tuple[str, list]]:
    """Per local day, per hour: whether water was used, or electricity above the meter's learned activity line
    (the state's, shouwang/state.py; None: no data)."""
    tz = ZoneInfo(zone)
    days: dict[str, list[bool | None]] = {}
    for series in hourly:
        line = line_kw.get(series.kind)
        for b in series.bins:
            local = datetime.fromtimestamp(b.start, tz)
            cells = days.setdefault(local.strftime("%m-%d"), [None] * 24)
            if b.actual is None or (series.kind is MeterKind.ELECTRICITY and line is None):
                continue
            if series.kind is MeterKind.WATER:
                active = b.actual >= WATER_ACTIVITY_L
            else:
                active = b.actual > line * HOUR / 3600  # type: ignore[operator]
            cells[local.hour] = bool(cells[local.hour]) or active
    return list(days.items())


def _events(store: Store, household: str, alerts: list, away: list) -> list[tuple[int, str, str, str]]:
    """(time, kind, actor, detail) of the household's recent alerts and away periods, newest first."""
    out = []
    for a in alerts[:20]:
        out += [(e.at, e.kind, e.actor, f"#{a.id} {e.detail}".strip()) for e in store.alert_events(a.id)
                if e.kind in ("opened", "acknowledged", "cleared", "resolved", "reopened", "sla_missed", "tier")]
    for p in away:
        if p.cancelled_at is not None and p.cancelled_at <= p.start:
            continue  # withdrawn before it began: it never happened
        out.append((p.start, "away", p.source, p.note))
        if p.cancelled_at is not None and (p.end is None or p.cancelled_at < p.end):
            out.append((p.cancelled_at, "back", p.source, ""))  # ended early by hand
        elif p.end:
            out.append((p.end, "back", p.source, ""))
    return sorted(out, key=lambda e: e[0], reverse=True)[:40]


@router.get("/dashboard/households/{household_id}")
def household_page(household_id: str, request: Request, store: StoreDep, state: StateDep, scope: ReadScope,
                   principal: PrincipalDep, now: NowDep) -> Response:
    """One household: use beside the usual, activity, alerts and outcomes, away periods, devices, care."""
    return _household_page(request, store, state, scope, principal, now, household_id)


def _household_page(request, store, state, scope, principal, now, household_id, status=200, error=None,
                    form=None) -> Response:
    household = visible_household(store, scope, household_id)
    zone = zones(store).get(household.community, DEFAULT_ZONE)
    meters = store.meters(household.id)
    index = AlertIndex(store.unresolved_alerts(), store.away_periods(household.id, active_at=now), now)
    view = household_public(household, meters, state, index)
    shown_status = view.status.value
    t = Translator(language_for(request, principal))
    hourly, daily = household_usage(store, meters, now, zone)
    label_h = lambda ts: t.time(ts, zone)
    label_d = lambda ts: t.date(ts, zone)
    charts = []
    for h, d in zip(hourly, daily, strict=True):
        name = t("water") if h.kind is MeterKind.WATER else t("electricity")
        charts.append((name, h.unit,
                       bar_chart(h, _hour_ticks(h, zone, t), label_h, f"{name} · {t('usage_hourly')}",
                                 t("usual"), t("no_data")),
                       bar_chart(d, _day_ticks(d, zone), label_d, f"{name} · {t('usage_daily')}",
                                 t("usual"), t("no_data"))))
    lines = {m.kind: m.activity_line_kw for m in view.meters if m.kind is MeterKind.ELECTRICITY}
    grid_chart = activity_grid(_activity(hourly, lines, zone), t("activity_timeline"),
                               (t("active"), t("quiet"), t("no_data")))
    alerts = store.alerts(household=household.id, limit=50)
    every_away = store.away_periods(household.id, include_cancelled=True)
    withdrawn = {p.id for p in every_away if p.cancelled_at is not None}  # ended early (DELETE /api/away/{id})
    gateways = sorted({m.gateway for m in meters})
    statuses = {s.gateway: s for s in store.gateway_statuses() if s.gateway in gateways}
    device_alerts = index.for_gateways(gateways)
    return render(request, "household.html", principal, status=status, h=household, view=view,
                  shown_status=shown_status, zone=zone, charts=charts, grid_chart=grid_chart, alerts=alerts,
                  away=every_away, withdrawn=withdrawn, gateways=gateways, gateway_statuses=statuses,
                  device_alerts=device_alerts,
                  contacts=contacts(store, household), events=_events(store, household.id, alerts, every_away),
                  error=error, form=form or {}, done=request.query_params.get("done"),
                  can_away=principal.user.can(Permission.AWAY), here=f"/dashboard/households/{household.id}")


@router.post("/dashboard/households/{household_id}/away")
def register_away(household_id: str, request: Request, store: StoreDep, state: StateDep, scope: AwayScope,
                  principal: PrincipalDep, now: NowDep, end: Annotated[str, Form()] = "",
                  note: Annotated[str, Form()] = "") -> Response:
    """Register an absence from now: what POST /api/away does."""
    household = visible_household(store, scope, household_id)
    zone = zones(store).get(household.community, DEFAULT_ZONE)
    form = {"end": end[:40], "note": note[:MAX_NOTE]}
    if len(note) > MAX_NOTE:
        return _household_page(request, store, state, scope, principal, now, household_id, 422, "err_note", form)
    try:
        until = _expected_return(end, zone, now)
    except ValueError as exc:
        key = "date_in_past" if str(exc) == "date_in_past" else "bad_date"
        return _household_page(request, store, state, scope, principal, now, household_id, 422, key, form)
    source = "worker" if principal.user.role == "worker" else "family"
    store.add_away(AwayPeriod(household.id, now, until, source, note.strip()))
    return redirect(f"/dashboard/households/{household.id}", "away_saved")


@router.post("/dashboard/households/{household_id}/away/{period_id}/end")
def end_away(household_id: str, period_id: int, request: Request, store: StoreDep, state: StateDep,
             scope: AwayScope, principal: PrincipalDep, now: NowDep) -> Response:
    """End an active or future absence now (she came back early): what DELETE /api/away/{id} does."""
    household = visible_household(store, scope, household_id)
    period = next((p for p in store.away_periods(household.id, include_cancelled=True) if p.id == period_id), None)
    if period is None:
        raise NotFound(f"away period {period_id} not found")
    if period.cancelled_at is not None or (period.end is not None and period.end <= now):
        return _household_page(request, store, state, scope, principal, now, household_id, 409, "err_away_over")
    store.cancel_away(period_id, now)
    return redirect(f"/dashboard/households/{household.id}", "done_away_ended")


@router.get("/dashboard/alerts/{alert_id}")
def dashboard_alert(alert_id: int, request: Request, store: StoreDep, scope: ReadScope,
                    principal: PrincipalDep) -> Response:
    """One alert with its timeline, its notifications and the actions."""
    return alert_page(request, store, scope, principal, alert_id, dashboard=True)


@router.get("/dashboard/reports")
def reports_page(request: Request, store: StoreDep, scope: ManageScope, principal: PrincipalDep, now: NowDep,
                 months: Annotated[str, Query(max_length=10)] = "12") -> Response:
    """Community figures the seed reports use, by month and by grid (GET /api/reports/communities)."""
    count = _whole(months, 1, 36)  # ("²".isdigit() holds, and int("²") fails)
    error = None if count is not None else "bad_request"
    count = count or 12
    rows = figures(gather_cases(store, scope.communities, months_ago(now, count)), now)
    names = {c.id: c.name or c.id for c in store.communities()}
    return render(request, "reports.html", principal, status=422 if error else 200, rows=rows, community_names=names,
                  months=count, error=error)


def months_ago(now: int, months: int, zone: str = DEFAULT_ZONE) -> int:
    """The start of the calendar month ``months - 1`` months before the current one."""
    local = datetime.fromtimestamp(now, ZoneInfo(zone))
    index = local.year * 12 + local.month - 1 - (months - 1)
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=ZoneInfo(zone)).timestamp())

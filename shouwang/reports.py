"""Community figures for the seed reports: alerts per month, response times, SLA and false-alarm shares, by grid.

Pure functions over alerts reduced to ``Case`` records; ``api/routes/reports.py`` gathers them from the store.

Definitions (also in docs/pages.md):
- only welfare alerts of households count (inactivity, water running, unusual usage); device alerts are
  counted apart (``device_alerts``) because they say nothing about a person;
- month: the calendar month, in the community's zone, in which the alert opened;
- time to acknowledge: from opening to the acknowledgement, or to the closing if the case was closed
  without one; time to close: from opening to the closing by a person;
- closed within the SLA: closed at or before opening + the SLA allowance of the case's tier (ordinary or
  hard) under the community's escalation policy; the share counts every case that is closed, or still
  open with its deadline passed;
- false alarm: a closed case whose outcome is ``safe``, ``away`` or ``false_alarm`` (nobody needed help and
  nothing needed fixing); the share is of closed cases.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from shouwang.domain import WELFARE_CATEGORIES, Alert, Outcome

if TYPE_CHECKING:
    from storage import Store

FALSE_ALARM_OUTCOMES = frozenset({Outcome.SAFE, Outcome.AWAY, Outcome.FALSE_ALARM})


@dataclass(frozen=True, slots=True)
class Case:
    """One alert reduced to what the figures need."""

    alert_id: int
    community: str
    grid: str
    month: str  # YYYY-MM in the community's zone
    welfare: bool
    opened_at: int
    acknowledged_at: int | None
    resolved_at: int | None
    outcome: Outcome | None
    sla_deadline: int | None


@dataclass(frozen=True, slots=True)
class Figures:
    """Figures of one community, optionally one grid (``None``: all) and one month (``None``: the period)."""

    community: str
    grid: str | None
    month: str | None
    alerts: int
    device_alerts: int
    closed: int
    still_open: int
    median_ack_s: float | None
    median_close_s: float | None
    sla_due: int
    sla_met: int
    false_alarms: int

    @property
    def sla_share(self) -> float | None:
        """Share of due cases closed within the SLA."""
        return self.sla_met / self.sla_due if self.sla_due else None

    @property
    def false_alarm_share(self) -> float | None:
        """Share of closed cases that were false alarms."""
        return self.false_alarms / self.closed if self.closed else None


def month_of(ts: int, zone: str) -> str:
    """The calendar month (YYYY-MM) of an instant in a zone."""
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m")


def case_of(alert: Alert, community: str, grid: str, zone: str, sla_deadline: int | None) -> Case:
    """An alert as a case of its community and grid."""
    return Case(alert.id, community, grid, month_of(alert.opened_at, zone), alert.category in WELFARE_CATEGORIES,
                alert.opened_at, alert.acknowledged_at, alert.resolved_at,
                Outcome(alert.outcome) if alert.outcome else None, sla_deadline)


def _closed_by_person(c: Case) -> bool:
    return c.resolved_at is not None and c.outcome is not Outcome.DEVICE_RECOVERED


def _median(values: Sequence[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarise(cases: Sequence[Case], now: int, community: str, grid: str | None, month: str | None) -> Figures:
    """The figures of a set of cases (already chosen for this community, grid and month)."""
    welfare = [c for c in cases if c.welfare]
    closed = [c for c in welfare if _closed_by_person(c)]
    responded = [(c.acknowledged_at or c.resolved_at) - c.opened_at for c in welfare  # type: ignore[operator]
                 if c.acknowledged_at is not None or _closed_by_person(c)]
    due = [c for c in welfare if c.sla_deadline is not None
           and (_closed_by_person(c) or (c.resolved_at is None and now >= c.sla_deadline))]
    met = [c for c in due if _closed_by_person(c) and c.resolved_at <= c.sla_deadline]  # type: ignore[operator]
    return Figures(
        community=community, grid=grid, month=month, alerts=len(welfare),
        device_alerts=sum(1 for c in cases if not c.welfare),
        closed=len(closed), still_open=sum(1 for c in welfare if c.resolved_at is None),
        median_ack_s=_median(responded),
        median_close_s=_median([c.resolved_at - c.opened_at for c in closed]),  # type: ignore[operator]
        sla_due=len(due), sla_met=len(met),
        false_alarms=sum(1 for c in closed if c.outcome in FALSE_ALARM_OUTCOMES))


def figures(cases: Iterable[Case], now: int) -> list[Figures]:
    """Figures per community: overall, per month, per grid, and per grid and month (device alerts: no grid)."""
    groups: dict[tuple[str, str | None, str | None], list[Case]] = defaultdict(list)
    for c in cases:
        groups[(c.community, None, None)].append(c)
        groups[(c.community, None, c.month)].append(c)
        if c.welfare:
            groups[(c.community, c.grid, None)].append(c)
            groups[(c.community, c.grid, c.month)].append(c)
    keys = sorted(groups, key=lambda k: (k[0], k[1] or "", k[2] or ""))
    return [summarise(groups[k], now, *k) for k in keys]


def gather_cases(store: Store, communities: frozenset[str] | None, since: int | None = None) -> list[Case]:
    """Every alert of these communities (``None``: all) opened at or after ``since``, as cases."""
    from alerts.policy import DEFAULT_POLICY, load_policy

    zones = {c.id: c.timezone for c in store.communities()}
    homes = {h.id: h for h in store.households()}
    gateway_community = {g.id: g.community for g in store.gateways()}
    meter_household = {m.id: m.household for m in store.meters()}
    policies: dict[str, object] = {}
    cases = []
    for alert in _all_alerts(store):
        household = homes.get(alert.household or meter_household.get(alert.meter or "", ""))
        community = household.community if household else gateway_community.get(alert.gateway or "")
        if community is None or (communities is not None and community not in communities):
            continue
        if since is not None and alert.opened_at < since:
            continue
        zone = zones.get(community, "Asia/Shanghai")
        if community not in policies:
            data = store.community_policy(community)
            policies[community] = load_policy(data, f"community {community}") if data else DEFAULT_POLICY
        policy = policies[community]
        escalation = store.escalation(alert.id)
        allowance = policy.sla.hard if escalation and escalation.tier == "hard" else policy.sla.ordinary  # type: ignore[attr-defined]
        cases.append(case_of(alert, community, household.grid if household else "", zone,
                             allowance.after(alert.opened_at, zone)))
    return cases


def _all_alerts(store: Store, page: int = 500) -> Iterable[Alert]:
    offset = 0
    while True:
        batch = store.alerts(limit=page, offset=offset)
        yield from batch
        if len(batch) < page:
            return
        offset += page

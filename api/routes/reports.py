"""Community figures for the seed reports (what the dashboard's figures page shows)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import ManageScope
from api.deps import NowDep, StoreDep
from api.schemas import QueryTime, epoch
from shouwang.reports import figures as community_figures
from shouwang.reports import gather_cases

router = APIRouter(prefix="/api/reports", tags=["reports"])


class FiguresPublic(BaseModel):
    """Figures of one community, for one grid (or all: null) and one month (or the whole period: null)."""

    community: str
    grid: str | None = Field(description="Grid, or null for the whole community.")
    month: str | None = Field(description="YYYY-MM in the community's zone, or null for the whole period.")
    alerts: int = Field(description="Welfare alerts opened (inactivity, water running, unusual usage).")
    device_alerts: int = Field(description="Device alerts opened (counted apart; null grid rows only).")
    closed: int = Field(description="Welfare alerts closed by a person.")
    still_open: int
    median_ack_s: float | None = Field(description="Median seconds from opening to acknowledgement "
                                                   "(or to closing, when closed without one).")
    median_close_s: float | None = Field(description="Median seconds from opening to closing by a person.")
    sla_due: int = Field(description="Cases closed, or open past their SLA deadline.")
    sla_met: int = Field(description="Cases closed by their SLA deadline.")
    sla_share: float | None = Field(description="sla_met / sla_due.")
    false_alarms: int = Field(description="Closed cases with outcome safe, away or false_alarm.")
    false_alarm_share: float | None = Field(description="false_alarms / closed.")


@router.get("/communities", response_model=list[FiguresPublic])
def community_reports(
    store: StoreDep,
    scope: ManageScope,
    now: NowDep,
    community: Annotated[str | None, Query(max_length=64, description="Only this community.")] = None,
    since: Annotated[QueryTime | None, Query(description="Only alerts opened from this time, RFC 3339.")] = None,
) -> list[FiguresPublic]:
    """Alerts per month, time to acknowledge and to close, share closed within the SLA and share of false alarms,
    per community in scope: overall, per month, per grid, per grid and month (definitions: docs/pages.md)."""
    allowed = scope.communities
    if community is not None:
        allowed = frozenset({community}) if scope.allows_community(community) else frozenset()
    rows = community_figures(gather_cases(store, allowed, epoch(since)), now)
    return [FiguresPublic(community=r.community, grid=r.grid, month=r.month, alerts=r.alerts,
                          device_alerts=r.device_alerts, closed=r.closed, still_open=r.still_open,
                          median_ack_s=r.median_ack_s, median_close_s=r.median_close_s, sla_due=r.sla_due,
                          sla_met=r.sla_met, sla_share=r.sla_share, false_alarms=r.false_alarms,
                          false_alarm_share=r.false_alarm_share) for r in rows]

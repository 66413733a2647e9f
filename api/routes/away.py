"""Away periods: a resident, their family or a worker registers an absence; welfare alerts are held."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth import AwayScope, ReadScope
from api.deps import NowDep, StoreDep
from api.schemas import NOT_FOUND, AwayCreate, AwayPublic, epoch
from api.views import visible_household
from shouwang.away import AwayPeriod

router = APIRouter(prefix="/api/away", tags=["away"])


@router.get("", response_model=list[AwayPublic])
def list_away(
    store: StoreDep,
    scope: ReadScope,
    now: NowDep,
    household: Annotated[str | None, Query(max_length=64)] = None,
    active: Annotated[bool, Query(description="Only periods covering now (by their dates).")] = False,
) -> list[AwayPublic]:
    """Registered absences in scope."""
    if household is not None:
        visible_household(store, scope, household)
    periods = store.away_periods(household, active_at=now if active else None)
    periods = [p for p in periods if scope.allows_household(p.household)]
    return [AwayPublic.model_validate(p) for p in periods]


@router.post("", response_model=AwayPublic, status_code=201, responses=NOT_FOUND)
def create_away(body: AwayCreate, store: StoreDep, scope: AwayScope, now: NowDep) -> AwayPublic:
    """Register an absence; it ends at `end`, or earlier as soon as the household's meters show activity."""
    visible_household(store, scope, body.household)
    start = epoch(body.start) if body.start else now
    end = epoch(body.end)
    if end is not None and end <= start:
        raise HTTPException(422, "end must be after start")
    period = store.add_away(AwayPeriod(body.household, start, end, str(body.source), body.note))
    return AwayPublic.model_validate(period)


@router.delete("/{period_id}", response_model=AwayPublic, responses=NOT_FOUND)
def cancel_away(period_id: int, store: StoreDep, scope: AwayScope, now: NowDep) -> AwayPublic:
    """Withdraw an absence (registered by mistake, or the resident is back)."""
    period = next((p for p in store.away_periods() if p.id == period_id), None)
    if period is None:
        raise HTTPException(404, f"away period {period_id} not found")
    visible_household(store, scope, period.household)
    return AwayPublic.model_validate(store.cancel_away(period_id, now))

"""Meters: list (optionally of one household) and detail, with live state."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import ReadScope
from api.deps import PageDep, StateDep, StoreDep
from api.schemas import NOT_FOUND, MeterPublic
from api.views import live_meter, meter_public, visible_household
from storage import NotFound

router = APIRouter(prefix="/api/meters", tags=["meters"])


@router.get("", response_model=list[MeterPublic])
def list_meters(
    store: StoreDep,
    state: StateDep,
    scope: ReadScope,
    page: PageDep,
    household: Annotated[str | None, Query(max_length=64)] = None,
) -> list[MeterPublic]:
    """Meters in scope, ordered by id."""
    meters = store.meters(household)
    meters = [m for m in meters if scope.allows_household(m.household)]
    meters = meters[page.offset:page.offset + page.limit]
    by_household = defaultdict(list)
    for m in meters:
        by_household[m.household].append(m)
    live = {}
    for h in by_household:
        summary = state.summary(h)
        live.update({s.meter: s for s in summary.meters} if summary else {})
    return [meter_public(m, live.get(m.id)) for m in meters]


@router.get("/{meter_id}", response_model=MeterPublic, responses=NOT_FOUND)
def get_meter(meter_id: str, store: StoreDep, state: StateDep, scope: ReadScope) -> MeterPublic:
    """One meter with its live state."""
    meter = store.meter(meter_id)
    try:
        visible_household(store, scope, meter.household)
    except NotFound:
        raise NotFound(f"meter {meter_id!r} not found") from None
    return meter_public(meter, live_meter(state, meter))

"""Households: list with filters and search, detail with meters, and readings over a time range."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth import ReadScope
from api.deps import NowDep, PageDep, StateDep, StoreDep
from api.schemas import NOT_FOUND, HouseholdPublic, HouseholdStatus, QueryTime, ReadingPublic, epoch
from api.views import AlertIndex, household_public, visible_household
from storage import NotFound

router = APIRouter(prefix="/api/households", tags=["households"])

MAX_READINGS = 10_000
SEARCH = "Case-insensitive search in id, name and address."


@router.get("", response_model=list[HouseholdPublic])
def list_households(
    store: StoreDep,
    state: StateDep,
    scope: ReadScope,
    page: PageDep,
    now: NowDep,
    community: Annotated[str | None, Query(max_length=64)] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    status: HouseholdStatus | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description=SEARCH)] = None,
) -> list[HouseholdPublic]:
    """Households in scope, filtered and searched, ordered by id."""
    households = [h for h in store.households(community) if scope.allows_household(h.id)]
    if grid is not None:
        households = [h for h in households if h.grid == grid]
    if q is not None:
        needle = q.strip().casefold()
        households = [h for h in households if any(needle in f.casefold() for f in (h.id, h.name, h.address))]
    meters = defaultdict(list)
    for m in store.meters():
        meters[m.household].append(m)
    index = AlertIndex(store.unresolved_alerts(), store.away_periods(active_at=now), now)
    if status is None:
        households = households[page.offset:page.offset + page.limit]
        return [household_public(h, meters[h.id], state, index) for h in households]
    views = (household_public(h, meters[h.id], state, index) for h in households)
    matching = [v for v in views if v.status is status]
    return matching[page.offset:page.offset + page.limit]


@router.get("/{household_id}", response_model=HouseholdPublic, responses=NOT_FOUND)
def get_household(
    household_id: str, store: StoreDep, state: StateDep, scope: ReadScope, now: NowDep
) -> HouseholdPublic:
    """One household with its status and meters."""
    household = visible_household(store, scope, household_id)
    index = AlertIndex(store.unresolved_alerts(), store.away_periods(household_id, active_at=now), now)
    return household_public(household, store.meters(household_id), state, index)


@router.get("/{household_id}/readings", response_model=list[ReadingPublic], responses=NOT_FOUND)
def household_readings(
    household_id: str,
    store: StoreDep,
    scope: ReadScope,
    meter: Annotated[str | None, Query(max_length=64, description="Only this meter.")] = None,
    start: Annotated[QueryTime | None, Query(description="From this time (inclusive), RFC 3339.")] = None,
    end: Annotated[QueryTime | None, Query(description="Up to this time (exclusive), RFC 3339.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_READINGS, description="At most this many, the latest.")] = 1000,
) -> list[ReadingPublic]:
    """Readings of a household's meters in [start, end), oldest first; the latest ``limit`` of them."""
    visible_household(store, scope, household_id)
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, detail=[{"type": "value_error", "loc": ["query", "end"],
                                          "msg": "end must be after start", "input": end.isoformat()}])
    meter_ids = [m.id for m in store.meters(household_id)]
    if meter is not None:
        if meter not in meter_ids:
            raise NotFound(f"meter {meter!r} is not a meter of household {household_id!r}")
        meter_ids = [meter]
    readings = [r for m in meter_ids for r in store.readings(m, epoch(start), epoch(end), limit)]
    readings.sort(key=lambda r: (r.ts, r.meter))
    return [ReadingPublic.model_validate(r) for r in readings[-limit:]]

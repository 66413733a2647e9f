"""Request dependencies, as Annotated aliases routes can declare as parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from shouwang.clock import Clock
from shouwang.state import HouseholdState
from storage import Store

MAX_LIMIT = 500


def get_store(request: Request) -> Store:
    """The store the app was created with."""
    return request.app.state.store


def get_household_state(request: Request) -> HouseholdState:
    """The live household state the app was created with."""
    return request.app.state.household_state


def get_clock(request: Request) -> Clock:
    """The clock the app was created with (never the wall clock directly)."""
    return request.app.state.clock


def get_now(clock: Annotated[Clock, Depends(get_clock)]) -> int:
    """Current event time in whole epoch seconds, from the injected clock."""
    return int(clock.now())


@dataclass(frozen=True, slots=True)
class Page:
    """Limit/offset pagination."""

    limit: int
    offset: int


def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Maximum items to return.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
) -> Page:
    """Pagination query parameters with sane bounds."""
    return Page(limit, offset)


StoreDep = Annotated[Store, Depends(get_store)]
StateDep = Annotated[HouseholdState, Depends(get_household_state)]
ClockDep = Annotated[Clock, Depends(get_clock)]
NowDep = Annotated[int, Depends(get_now)]
PageDep = Annotated[Page, Depends(get_page)]

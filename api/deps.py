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
class Scope:
    """The communities a request may see; ``communities=None`` means every community."""

    communities: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        """True when nothing is filtered out."""
        return self.communities is None

    def allows(self, community: str | None) -> bool:
        """Whether records of ``community`` are visible (of no known community: only if unrestricted)."""
        return self.communities is None or (community is not None and community in self.communities)


def community_scope() -> Scope:
    """The one place that decides which communities a request may see.

    Today every request sees everything. When users and authentication arrive, this dependency is where a
    user's communities are looked up and returned as ``Scope(frozenset({...}))``; every route that lists or
    reads households, meters or alerts already takes it and filters by it (records outside the scope are
    left out of lists and answer 404 when asked for by id), so no route needs to change.
    """
    return Scope()


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
CommunityScope = Annotated[Scope, Depends(community_scope)]
PageDep = Annotated[Page, Depends(get_page)]

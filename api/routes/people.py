"""The care network: people (with their channels) and each household's family, volunteer and team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.auth import ManageScope, ReadScope
from api.deps import StoreDep
from api.schemas import NOT_FOUND, CarePublic, CareUpdate, PersonPublic, PersonUpdate
from api.views import visible_household
from shouwang.domain import Assignment, Person, Target
from storage import NotFound

router = APIRouter(prefix="/api", tags=["people"])


def _public(p: Person) -> PersonPublic:
    return PersonPublic(id=p.id, name=p.name, role=p.role, language=p.language, phone=p.phone,
                        channels=[c.split("://", 1)[0] for c in p.channels])


def _people_in_scope(store, scope) -> set[str] | None:
    """Ids of people caring for a household or community in scope (None: everyone)."""
    if scope.unrestricted:
        return None
    return {a.person for a in store.assignments()
            if (a.household and scope.allows_household(a.household))
            or (a.community and scope.allows_community(a.community))}


@router.get("/people", response_model=list[PersonPublic])
def list_people(store: StoreDep, scope: ManageScope) -> list[PersonPublic]:
    """The care network of the communities in scope (an administrator sees everyone)."""
    visible = _people_in_scope(store, scope)
    return [_public(p) for p in store.people() if visible is None or p.id in visible]


@router.put("/people/{person_id}", response_model=PersonPublic)
def put_person(person_id: Annotated[str, Path(min_length=1, max_length=64)], body: PersonUpdate, store: StoreDep,
               scope: ManageScope) -> PersonPublic:
    """Create or replace a person (of the communities in scope); each channel URL is checked before it is stored
    (``${NAME}`` references stay as they are; only ingest fills them in)."""
    from alerts.channels import InvalidChannelURL, channel_from_url
    from alerts.channels.secrets import stand_ins

    visible = _people_in_scope(store, scope)
    if visible is not None and person_id not in visible and person_id in {p.id for p in store.people()}:
        raise NotFound(f"person {person_id!r} not found")

    for i, url in enumerate(body.channels, start=1):
        try:
            channel_from_url(url, secrets=stand_ins(url))  # the api role holds no channel secrets: shape only
        except (InvalidChannelURL, ValueError) as exc:
            raise HTTPException(422, f"channel {i}: {exc}") from None
    person = Person(person_id, body.name, body.role, body.language, body.phone, tuple(body.channels))
    return _public(store.upsert_person(person))


def _care(store, household: str, community: str) -> CarePublic:
    own = store.assignments(household=household)
    shared = store.assignments(community=community)
    volunteer = next((a.person for a in own if a.target == Target.VOLUNTEER), None)
    return CarePublic(household=household, volunteer=volunteer,
                      family=[a.person for a in own if a.target == Target.FAMILY],
                      team=[a.person for a in own if a.target == Target.TEAM],
                      committee=[a.person for a in shared if a.target == Target.COMMITTEE],
                      street=[a.person for a in shared if a.target == Target.STREET])


@router.get("/households/{household_id}/care", response_model=CarePublic, responses=NOT_FOUND)
def get_care(household_id: str, store: StoreDep, scope: ReadScope) -> CarePublic:
    """Who is told about this household, and in which role."""
    household = visible_household(store, scope, household_id)
    return _care(store, household.id, household.community)


@router.put("/households/{household_id}/care", response_model=CarePublic, responses=NOT_FOUND)
def put_care(household_id: str, body: CareUpdate, store: StoreDep, scope: ManageScope) -> CarePublic:
    """Replace the household's family, volunteer and team; every person must exist, and be of the communities in
    scope or of none yet (just created)."""
    household = visible_household(store, scope, household_id)
    wanted = [(Target.FAMILY, p) for p in body.family] + [(Target.TEAM, p) for p in body.team]
    if body.volunteer:
        wanted.append((Target.VOLUNTEER, body.volunteer))
    visible = _people_in_scope(store, scope)
    assigned = None if visible is None else {a.person for a in store.assignments()}
    for _, pid in wanted:
        try:
            store.person(pid)
            # another community's person stays theirs: naming them here would bring them (phone, channels) in scope
            if visible is not None and pid not in visible and pid in assigned:
                raise NotFound(pid)
        except NotFound:
            raise HTTPException(422, f"person {pid!r} does not exist; create it with PUT /api/people/{pid}") from None
    store.set_household_care(household.id, [Assignment(t, p, household=household.id) for t, p in wanted])
    return _care(store, household.id, household.community)

"""Accounts, for administrators: create, list, change (role, scope, password) and disable."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, HTTPException

from api.auth import AdminScope
from api.deps import NowDep, StoreDep
from api.schemas import NOT_FOUND
from api.schemas_accounts import UserCreate, UserPublic, UserUpdate
from shouwang.accounts import User, UserRole, hash_password
from storage import NotFound, Store

router = APIRouter(prefix="/api/users", tags=["users"])

CONFLICT = {409: {"description": "An account with that id exists."}}


def user_public(user: User) -> UserPublic:
    """An account without its password hash."""
    return UserPublic.model_validate({f: getattr(user, f) for f in UserPublic.model_fields})


def check_scope_fields(store: Store, user: User) -> None:
    """Refuse an account whose scope does not fit its role or names things that do not exist (422)."""
    problems: list[str] = []
    communities = {c.id for c in store.communities()}
    households = {h.id: h for h in store.households()}
    problems += [f"community {c!r} does not exist" for c in user.communities if c not in communities]
    problems += [f"household {h!r} does not exist" for h in user.households if h not in households]
    grids = {f"{h.community}/{h.grid}" for h in households.values()}
    problems += [f"grid {g!r} has no households (write it as 'community/grid')" for g in user.grids if g not in grids]
    if user.person is not None:
        try:
            store.person(user.person)
        except NotFound:
            problems.append(f"person {user.person!r} does not exist; create it with PUT /api/people/{user.person}")
    if user.role is UserRole.MANAGER and not user.communities:
        problems.append("a manager needs at least one community in 'communities'")
    if user.role is UserRole.WORKER and not (user.grids or user.person):
        problems.append("a grid worker needs 'grids' or a 'person' in the care network")
    if user.role is UserRole.FAMILY and not (user.households or user.person):
        problems.append("a family member needs 'households' or a 'person' registered as family")
    if problems:
        raise HTTPException(422, "; ".join(problems))


@router.get("", response_model=list[UserPublic])
def list_users(store: StoreDep, _scope: AdminScope) -> list[UserPublic]:
    """Every account."""
    return [user_public(u) for u in store.users()]


@router.post("", response_model=UserPublic, status_code=201, responses=CONFLICT)
def create_user(body: UserCreate, store: StoreDep, now: NowDep, _scope: AdminScope) -> UserPublic:
    """Create an account."""
    user = User(body.id, body.name, body.role, hash_password(body.password), body.language, body.person,
                tuple(body.communities), tuple(body.grids), tuple(body.households), False, now)
    check_scope_fields(store, user)
    return user_public(store.create_user(user))


@router.get("/{user_id}", response_model=UserPublic, responses=NOT_FOUND)
def get_user(user_id: str, store: StoreDep, _scope: AdminScope) -> UserPublic:
    """One account."""
    return user_public(store.user(user_id))


@router.patch("/{user_id}", response_model=UserPublic, responses=NOT_FOUND)
def update_user(user_id: str, body: UserUpdate, store: StoreDep, _scope: AdminScope) -> UserPublic:
    """Change an account; disabling it ends its sessions (its API tokens stop working too)."""
    user = store.user(user_id)
    changes = body.model_dump(exclude_unset=True, exclude={"password"})
    for key in ("communities", "grids", "households"):
        if key in changes:
            changes[key] = tuple(changes[key] or ())
    user = replace(user, **{k: v for k, v in changes.items() if v is not None or k == "person"})
    if body.password is not None:
        user = replace(user, password_hash=hash_password(body.password))
    check_scope_fields(store, user)
    return user_public(store.update_user(user))

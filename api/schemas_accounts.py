"""Pydantic models for accounts, sessions, API tokens and the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from api.schemas import UtcTime, _Public
from shouwang.accounts import UserRole

UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
Password = Annotated[str, StringConstraints(min_length=10, max_length=200)]
Language = Literal["zh", "en"]
Ids = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=64)]], Field(max_length=500)]
GridRefs = Annotated[list[Annotated[str, StringConstraints(pattern=r"^[^/\s]{1,64}/[^/\s]{1,64}$")]],
                     Field(max_length=500, description="Grids as 'community/grid'.")]


class LoginBody(BaseModel):
    """Log in with a user id and password."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class UserPublic(_Public):
    """An account as others see it (never its password hash)."""

    id: str
    name: str
    role: UserRole
    language: str
    person: str | None
    communities: list[str]
    grids: list[str]
    households: list[str]
    disabled: bool


class Me(UserPublic):
    """The logged-in user, with the CSRF token their page must send on every change."""

    csrf: str | None = Field(None, description="Send as the X-CSRF-Token header (session logins only).")


class UserCreate(BaseModel):
    """A new account; its scope fields must match its role."""

    model_config = ConfigDict(extra="forbid")

    id: UserId
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    role: UserRole
    password: Password
    language: Language = "zh"
    person: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    communities: Ids = []
    grids: GridRefs = []
    households: Ids = []


class UserUpdate(BaseModel):
    """Change an account; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    role: UserRole | None = None
    password: Password | None = None
    language: Language | None = None
    person: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    communities: Ids | None = None
    grids: GridRefs | None = None
    households: Ids | None = None
    disabled: bool | None = None


class MeUpdate(BaseModel):
    """What users may change about themselves: language, and password (with the current one)."""

    model_config = ConfigDict(extra="forbid")

    language: Language | None = None
    current_password: Annotated[str, StringConstraints(max_length=200)] | None = None
    new_password: Password | None = None

    @field_validator("new_password")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("the new password must not be blank")
        return v


class TokenCreate(BaseModel):
    """A new API token, for the caller (or, by an administrator, for another user)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    user: UserId | None = Field(None, description="Administrators only: whose token it is.")


class TokenPublic(_Public):
    """A token's record; its secret is shown once, at creation."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: UtcTime
    last_used_at: UtcTime | None = None
    revoked_at: UtcTime | None = None


class TokenCreated(TokenPublic):
    """A token just created: copy ``token`` now, it cannot be shown again."""

    token: str


class AuditPublic(_Public):
    """One audit entry."""

    id: int
    at: UtcTime
    actor: str
    action: str
    path: str
    status: int
    household: str | None
    ip: str

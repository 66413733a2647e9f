"""User accounts: roles, what each role may do, password hashing and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "sw_"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("not a real password")


class UserRole(StrEnum):
    """What a login account is; each role sees a different part of the data."""

    ADMIN = "admin"  # everything, including accounts and the audit log
    MANAGER = "manager"  # property manager: every household of their communities
    WORKER = "worker"  # grid worker: the households of their grids and the alerts sent to them
    FAMILY = "family"  # a family member: only their relative's household


class Permission(StrEnum):
    """One thing a request may do; routes declare the permission they need."""

    READ = "read"  # households, meters, readings, alerts, away periods in scope
    ACT = "act"  # acknowledge, resolve, reopen alerts in scope
    AWAY = "away"  # register and cancel away periods in scope
    MANAGE = "manage"  # tiers, care networks, people, rejections
    ADMIN = "admin"  # accounts, API tokens of others, audit log


PERMISSIONS: dict[UserRole, frozenset[Permission]] = {
    UserRole.ADMIN: frozenset(Permission),
    UserRole.MANAGER: frozenset({Permission.READ, Permission.ACT, Permission.AWAY, Permission.MANAGE}),
    UserRole.WORKER: frozenset({Permission.READ, Permission.ACT, Permission.AWAY}),
    UserRole.FAMILY: frozenset({Permission.READ, Permission.ACT, Permission.AWAY}),
}


@dataclass(frozen=True, slots=True)
class User:
    """A login account; ``person`` links it to the care network (whose alerts it receives).

    ``communities`` scope a manager, ``grids`` (``community/grid``) a worker, ``households`` a family member
    (who also sees the households they are registered as family for through ``person``).
    """

    id: str
    name: str
    role: UserRole
    password_hash: str = ""
    language: str = "zh"
    person: str | None = None
    communities: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()
    households: tuple[str, ...] = ()
    disabled: bool = False
    created_at: int = 0

    def can(self, permission: Permission) -> bool:
        """Whether the role grants ``permission`` (a disabled account can do nothing)."""
        return not self.disabled and permission in PERMISSIONS[self.role]


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token for integrations: only its hash is stored; it acts as its user."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A browser session: the cookie holds the secret, the database its hash and the form (CSRF) token."""

    user: str
    csrf: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who viewed or changed what, when, from where."""

    at: int
    actor: str
    action: str
    path: str
    status: int
    household: str | None = None
    ip: str = ""
    id: int | None = None


def hash_password(password: str) -> str:
    """An argon2id hash of the password (salted, with the parameters embedded)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches; unknown users are checked against a dummy hash to keep timing even."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def secret_digest(secret: str) -> str:
    """SHA-256 of a high-entropy random secret (tokens, session ids), as stored in the database."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    """A new API token: a recognisable prefix and 32 random bytes."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    """A random session id or CSRF token."""
    return secrets.token_urlsafe(32)


class LoginThrottle:
    """Refuses logins for a user id after too many recent failures (clock-injected, in memory)."""

    def __init__(self, max_failures: int = 5, window_s: int = 900) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, list[int]] = {}

    def blocked(self, user_id: str, now: int) -> bool:
        """Whether logins for this id are refused right now."""
        recent = [t for t in self._failures.get(user_id, ()) if now - t < self.window_s]
        self._failures[user_id] = recent
        return len(recent) >= self.max_failures

    def failed(self, user_id: str, now: int) -> None:
        """Note a failed login."""
        self._failures.setdefault(user_id, []).append(now)
        if len(self._failures) > 100_000:  # bound memory under a spray of made-up ids
            self._failures.clear()

    def succeeded(self, user_id: str) -> None:
        """Forget failures after a good login."""
        self._failures.pop(user_id, None)

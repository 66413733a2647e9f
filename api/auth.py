"""Who is asking, and what they may see: the one place every route and page gets its scope from."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import SecurityScopes
from starlette.concurrency import run_in_threadpool

from shouwang.accounts import Permission, User, UserRole, secret_digest
from shouwang.domain import Alert, Target
from storage import Store

log = logging.getLogger(__name__)

SESSION_COOKIE = "shouwang_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user, how they proved it, and (for a browser session) its CSRF token."""

    user: User
    via: str  # "session" or "token"
    csrf: str | None = None
    session_digest: str | None = None

    @property
    def actor(self) -> str:
        """The name written into timelines: the linked care-network person, else the login id."""
        return self.user.person or self.user.id


@dataclass(frozen=True, slots=True)
class Scope:
    """What a request may see; ``households=None`` means everything (an administrator)."""

    user: User | None = None
    households: frozenset[str] | None = None
    gateways: frozenset[str] | None = None
    communities: frozenset[str] | None = None
    alerts: frozenset[int] = frozenset()  # alerts sent to this user's person, wherever they are

    @property
    def unrestricted(self) -> bool:
        """True when nothing is filtered out."""
        return self.households is None

    def allows_household(self, household: str | None) -> bool:
        """Whether this household's records are visible."""
        return self.households is None or (household is not None and household in self.households)

    def allows_gateway(self, gateway: str | None) -> bool:
        """Whether this gateway's device records are visible."""
        return self.gateways is None or (gateway is not None and gateway in self.gateways)

    def allows_community(self, community: str | None) -> bool:
        """Whether community-wide figures of this community are visible."""
        return self.communities is None or (community is not None and community in self.communities)

    def allows_alert(self, alert: Alert) -> bool:
        """Whether an alert is visible: its household or gateway is in scope, or it was sent to this user."""
        if self.unrestricted or alert.id in self.alerts:
            return True
        if alert.household:
            return self.allows_household(alert.household)
        return self.allows_gateway(alert.gateway)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def _csrf_ok(request: Request, expected: str) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)  # Starlette caches the parsed form for the route
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


async def current_principal(request: Request) -> Principal:
    """The authenticated user: a bearer API token, or a session cookie (with a CSRF token on changes)."""
    store: Store = request.app.state.store
    now = int(request.app.state.clock.now())
    token = _bearer(request)
    principal: Principal | None = None
    if token is not None:
        user = await run_in_threadpool(store.token_user, secret_digest(token), now)
        if user is not None:
            principal = Principal(user, "token")
    elif (cookie := request.cookies.get(SESSION_COOKIE)) is not None:
        digest = secret_digest(cookie)
        session = await run_in_threadpool(store.session, digest, now)
        if session is not None:
            user = await run_in_threadpool(store.user, session.user)
            principal = Principal(user, "session", session.csrf, digest)
    if principal is None or principal.user.disabled:
        raise HTTPException(401, "log in, or send an API token as 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if (principal.via == "session" and request.method not in SAFE_METHODS
            and not await _csrf_ok(request, principal.csrf or "")):
        raise HTTPException(403, f"missing or wrong CSRF token (send the {CSRF_HEADER} header "
                                     f"or the '{CSRF_FIELD}' form field from the page)")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def acting_as(principal: Principal, named: str | None) -> str:
    """Who a change is recorded as: the user themselves, or someone a manager or administrator names."""
    if named and named != principal.actor:
        if not principal.user.can(Permission.MANAGE):
            raise HTTPException(403, "you can act only as yourself; leave 'by' out")
        return named
    return principal.actor


def scope_of(store: Store, user: User) -> Scope:
    """The households, gateways, communities and alerts a user may see, by role."""
    if user.role is UserRole.ADMIN:
        return Scope(user)
    households = store.households()
    if user.role is UserRole.MANAGER:
        communities = frozenset(user.communities)
        homes = frozenset(h.id for h in households if h.community in communities)
        gateways = frozenset(g.id for g in store.gateways() if g.community in communities)
        return Scope(user, homes, gateways, communities)
    cared = {a.household for a in store.assignments() if user.person and a.person == user.person and a.household}
    sent = frozenset(store.alerts_sent_to(user.person)) if user.person else frozenset()
    if user.role is UserRole.WORKER:
        grids = set(user.grids)
        homes = frozenset({h.id for h in households if f"{h.community}/{h.grid}" in grids} | cared)
        gateways = frozenset(m.gateway for m in store.meters() if m.household in homes)
        return Scope(user, homes, gateways, frozenset(), sent)
    family = {a.household for a in store.assignments()
              if user.person and a.person == user.person and a.target == Target.FAMILY and a.household}
    homes = frozenset(set(user.households) | family)
    return Scope(user, homes, frozenset(), frozenset(), sent)


async def request_scope(security: SecurityScopes, request: Request, principal: PrincipalDep) -> Scope:
    """The scope of the request, after checking the route's required permissions against the user's role."""
    for needed in security.scopes:
        if not principal.user.can(Permission(needed)):
            raise HTTPException(403, f"a {principal.user.role} account may not do this ({needed})")
    return await run_in_threadpool(scope_of, request.app.state.store, principal.user)


ReadScope = Annotated[Scope, Security(request_scope, scopes=[Permission.READ])]
ActScope = Annotated[Scope, Security(request_scope, scopes=[Permission.READ, Permission.ACT])]
AwayScope = Annotated[Scope, Security(request_scope, scopes=[Permission.READ, Permission.AWAY])]
ManageScope = Annotated[Scope, Security(request_scope, scopes=[Permission.READ, Permission.MANAGE])]
AdminScope = Annotated[Scope, Security(request_scope, scopes=[Permission.ADMIN])]
AnyUserScope = Annotated[Scope, Security(request_scope, scopes=[])]

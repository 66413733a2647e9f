"""Logging in and out: password checks with a throttle, and browser sessions behind a cookie."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request, Response

from api.auth import SESSION_COOKIE, Principal
from shouwang.accounts import (
    LoginThrottle,
    Session,
    User,
    hash_password,
    needs_rehash,
    new_secret,
    secret_digest,
)
from shouwang.accounts import verify_password as password_matches
from storage import NotFound, Store

log = logging.getLogger(__name__)


def authenticate(request: Request, username: str, password: str) -> User:
    """The user whose password this is; 401 on a wrong id or password, 429 after repeated failures."""
    store: Store = request.app.state.store
    throttle: LoginThrottle = request.app.state.login_throttle
    now = int(request.app.state.clock.now())
    if throttle.blocked(username, now):
        raise HTTPException(429, "too many failed logins for this account; try again in 15 minutes")
    try:
        user = store.user(username)
    except NotFound:
        user = None
    if user is None or not password_matches(user.password_hash, password) or user.disabled:
        if user is None:
            password_matches("", password)  # same work as for a real account: no timing hint
        throttle.failed(username, now)
        log.info("failed login", extra={"user": username})
        raise HTTPException(401, "wrong user id or password")
    throttle.succeeded(username)
    if needs_rehash(user.password_hash):
        from dataclasses import replace

        user = store.update_user(replace(user, password_hash=hash_password(password)))
    return user


def start_session(request: Request, response: Response, user: User) -> Session:
    """Open a browser session for the user and set its cookie (HttpOnly, SameSite=Lax)."""
    now = int(request.app.state.clock.now())
    ttl = request.app.state.session_ttl_s
    cookie = new_secret()
    session = Session(user.id, new_secret(), now, now + ttl)
    request.app.state.store.add_session(secret_digest(cookie), session)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=ttl, httponly=True, samesite="lax",
                        secure=request.app.state.secure_cookies, path="/")
    log.info("login", extra={"user": user.id})
    return session


def end_session(request: Request, response: Response, principal: Principal | None) -> None:
    """Forget the session in the database and in the browser."""
    if principal is not None and principal.session_digest:
        request.app.state.store.delete_session(principal.session_digest)
    response.delete_cookie(SESSION_COOKIE, path="/")

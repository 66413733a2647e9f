"""Logging in and out, and what the logged-in user may change about themselves."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, HTTPException, Request, Response

from api.auth import AnyUserScope, PrincipalDep
from api.schemas_accounts import LoginBody, Me, MeUpdate
from api.sessions import authenticate, end_session, start_session
from shouwang.accounts import User, hash_password, verify_password

router = APIRouter(prefix="/api/auth", tags=["auth"])

UNAUTHORIZED = {401: {"description": "Not logged in, or a wrong password."}}


def me_public(user: User, csrf: str | None) -> Me:
    """The user as they see themselves."""
    return Me.model_validate({**{f: getattr(user, f) for f in Me.model_fields if f != "csrf"}, "csrf": csrf})


@router.post("/login", response_model=Me, responses=UNAUTHORIZED | {429: {"description": "Too many failures."}})
def login(body: LoginBody, request: Request, response: Response) -> Me:
    """Log in with a password: sets the session cookie and returns the CSRF token for changes."""
    user = authenticate(request, body.username, body.password)
    session = start_session(request, response, user)
    return me_public(user, session.csrf)


@router.post("/logout", status_code=204, responses=UNAUTHORIZED)
def logout(request: Request, response: Response, principal: PrincipalDep) -> Response:
    """End the current browser session."""
    end_session(request, response, principal)
    response.status_code = 204
    return response


@router.get("/me", response_model=Me, responses=UNAUTHORIZED)
def get_me(principal: PrincipalDep, _scope: AnyUserScope) -> Me:
    """Who is logged in (and the CSRF token to send with changes)."""
    return me_public(principal.user, principal.csrf)


@router.patch("/me", response_model=Me, responses=UNAUTHORIZED)
def update_me(body: MeUpdate, request: Request, principal: PrincipalDep, _scope: AnyUserScope) -> Me:
    """Change one's own language, or password (giving the current one)."""
    user = principal.user
    if body.new_password is not None:
        if not body.current_password or not verify_password(user.password_hash, body.current_password):
            raise HTTPException(403, "the current password is wrong")
        user = replace(user, password_hash=hash_password(body.new_password))
    if body.language is not None:
        user = replace(user, language=body.language)
    user = request.app.state.store.update_user(user)
    return me_public(user, principal.csrf)

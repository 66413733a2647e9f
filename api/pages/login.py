"""Logging in and out on a page, the language switch, the home redirect, the manifest and the service worker."""

from __future__ import annotations

import hmac
import json
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.auth import AnyUserScope, PrincipalDep
from api.pages import STATIC_DIR
from api.pages.i18n import LANGUAGES
from api.pages.render import home_of, redirect, render, safe_next
from api.sessions import authenticate, end_session, start_session
from shouwang.accounts import new_secret

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "shouwang_login_csrf"  # double-submit token of the login form (no session yet)
Field = Annotated[str, Form(max_length=2000)]


@router.get("/")
def root(principal: PrincipalDep, _scope: AnyUserScope) -> RedirectResponse:
    """The user's home page."""
    return redirect(home_of(principal))


def _login_page(request: Request, status: int = 200, error: str | None = None, username: str = "",
                next_path: str = "") -> Response:
    token = new_secret()
    response = render(request, "login.html", None, status=status, error=error, username=username,
                      login_csrf=token, next_path=next_path, logged_out="out" in request.query_params)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=request.app.state.secure_cookies, path="/login")
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    """The login form (in the browser's language; ?lang=en or ?lang=zh switches)."""
    return _login_page(request, next_path=safe_next(request.query_params.get("next"), ""))


@router.post("/login")
def login_submit(request: Request, username: Field = "", password: Field = "", csrf: Field = "",
                 next: Field = "") -> Response:
    """Check the password, start a session and go to the page asked for (or the user's home)."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    next_path = safe_next(next, "")
    if not cookie or not hmac.compare_digest(cookie, csrf):
        return _login_page(request, 403, "login_expired", username, next_path)
    if not username.strip() or not password:
        return _login_page(request, 422, "login_missing", username, next_path)
    try:
        user = authenticate(request, username.strip()[:64], password[:200])
    except HTTPException as exc:
        return _login_page(request, exc.status_code, "throttled" if exc.status_code == 429 else "wrong_password",
                           username, next_path)
    home = "/m" if user.role in ("worker", "family") else "/dashboard"
    response = redirect(next_path or home)
    start_session(request, response, user)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, principal: PrincipalDep) -> Response:
    """End the session and forget what the browser kept of the pages (cache and service worker)."""
    lang = principal.user.language
    response = redirect(f"/login?out=1&lang={lang}")
    end_session(request, response, principal)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@router.post("/language")
def set_language(principal: PrincipalDep, _scope: AnyUserScope, request: Request, language: Field = "",
                 back: Field = "") -> Response:
    """Switch the user's language (what PATCH /api/auth/me with {"language": ...} does)."""
    if language not in LANGUAGES:
        return render(request, "error.html", principal, status=422, message_key="bad_request")
    request.app.state.store.update_user(replace(principal.user, language=language))
    return redirect(safe_next(back, home_of(principal)))


MANIFEST = {
    "name": "守望 Shouwang", "short_name": "守望", "start_url": "/m", "scope": "/m", "display": "standalone",
    "background_color": "#f6f7f5", "theme_color": "#0b5d4b", "lang": "zh-CN",
    "description": "独居老人水电守望 · Watching over elders who live alone",
    "icons": [{"src": "/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
              {"src": "/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
              {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
}


@router.get("/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest of the phone page (installable, starts at /m)."""
    return Response(json.dumps(MANIFEST, ensure_ascii=False), media_type="application/manifest+json")


@router.get("/sw.js")
def service_worker() -> FileResponse:
    """The service worker, served from the root so it may control /m."""
    return FileResponse(STATIC_DIR / "sw.js", media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})

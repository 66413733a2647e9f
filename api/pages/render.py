"""Rendering pages: the Jinja2 environment, the per-request context, and the security headers of every page."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.auth import CSRF_FIELD, Principal
from api.pages.i18n import Translator, from_accept_language, language_of
from shouwang.accounts import Permission, UserRole

env = Environment(loader=PackageLoader("api.pages", "templates"), autoescape=select_autoescape(default=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

# Everything comes from this server: no script, style, font or image from anywhere else.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "Cache-Control": "private, no-cache"}


def language_for(request: Request, principal: Principal | None) -> str:
    """The user's own language, else the one asked for in ?lang=, else the browser's."""
    if principal is not None:
        return language_of(principal.user.language)
    asked = request.query_params.get("lang")
    return language_of(asked) if asked else from_accept_language(request.headers.get("accept-language"))


def home_of(principal: Principal) -> str:
    """Where a user lands: workers and family on the phone page, managers and administrators on the dashboard."""
    return "/m" if principal.user.role in (UserRole.WORKER, UserRole.FAMILY) else "/dashboard"


def safe_next(target: str | None, default: str) -> str:
    """A local path to go back to (never another site)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def render(request: Request, template: str, principal: Principal | None, status: int = 200,
           **context: object) -> HTMLResponse:
    """A page in the user's language, with the CSRF token for its forms and the page headers."""
    lang = language_for(request, principal)
    t = Translator(lang)
    now = int(request.app.state.clock.now())
    user = principal.user if principal else None
    names = {p.id: p.name or p.id for p in request.app.state.store.people()} if principal else {}
    html = env.get_template(template).render(
        t=t, lang=lang, user=user, csrf=(principal.csrf or "") if principal else "", csrf_field=CSRF_FIELD,
        now=now, path=request.url.path,
        full_path=_full_path(request) if request.method == "GET" else str(context.get("here") or ""),
        names=names, can_manage=bool(user and user.can(Permission.MANAGE)), home=home_of(principal) if principal else "/login",
        **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def redirect(target: str, flash: str | None = None) -> RedirectResponse:
    """A 303 redirect after a form post, optionally carrying a message key to show."""
    if flash:
        target += ("&" if "?" in target else "?") + f"done={flash}"
    return RedirectResponse(target, status_code=303)


def _full_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")

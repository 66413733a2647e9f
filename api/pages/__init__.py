"""Web pages: the manager dashboard, the worker phone page (an installable web app) and login, in zh and en.

``install_pages(app)`` adds the page routes, the static files, and the error handling of pages: a page asked
for by a browser without a login redirects to /login; other errors of pages are shown as a page.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.pages.render import redirect, render, safe_next
from storage import NotFound

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"



def is_page(request: Request) -> bool:
    """Whether the request was routed to a page (not to the JSON API)."""
    endpoint = request.scope.get("endpoint")
    return getattr(endpoint, "__module__", "").startswith("api.pages")


def wants_html(request: Request) -> bool:
    """Whether the client is a browser asking for a page (API clients and tests get the JSON error)."""
    return "text/html" in request.headers.get("accept", "")


async def _page_error(request: Request, status: int, detail: str) -> Response:
    if status == 401 and wants_html(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":  # a form sent after the session ended: back to the page it was on
            target = request.headers.get("referer") or "/"
        return redirect(f"/login?next={quote(safe_next(_local(target), '/'))}")
    principal = getattr(request.state, "principal", None)
    key = {403: "csrf" if "CSRF" in detail else "forbidden", 404: "not_found"}.get(status, "bad_request")
    return render(request, "error.html", principal, status=status, message_key=key)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def install_pages(app: FastAPI) -> None:
    """Add the page routes, /static, the manifest and service worker, and the page error handling."""
    from api.pages import dashboard, login, phone

    for module in (login, dashboard, phone):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    not_found = app.exception_handlers.get(NotFound)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_page(request) and (exc.status_code != 401 or wants_html(request)):
            return await _page_error(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)  # API clients get the JSON error and its headers

    async def missing(request: Request, exc: Exception) -> Response:
        if is_page(request):
            return await _page_error(request, 404, str(exc))
        assert not_found is not None
        return await not_found(request, exc)

    async def invalid(request: Request, exc: Exception) -> Response:
        if is_page(request):
            return await _page_error(request, 422, "bad_request")
        # FastAPI's own handler echoes the input as UTF-8, and a lone surrogate in a JSON body (\ud800) made that a
        # 500; ASCII JSON escapes it (the same JSON for everything else)
        assert isinstance(exc, RequestValidationError)
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    if not_found is not None:
        app.add_exception_handler(NotFound, missing)

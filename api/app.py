"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError

import shouwang
from api.audit import install_audit
from api.pages import install_pages
from api.routes import (
    ack,
    alerts,
    audit,
    auth,
    away,
    households,
    meters,
    metrics,
    people,
    rejections,
    reports,
    tokens,
    users,
)
from api.routes import health as health_routes
from shouwang.accounts import LoginThrottle
from shouwang.clock import Clock
from shouwang.state import HouseholdState
from storage import AccountConflict, AlertConflict, NotFound, Store

log = logging.getLogger(__name__)


def _operation_id(route: APIRoute) -> str:
    """Stable operation ids for generated clients: <tag>-<function name>."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refuses (a NUL character, a number out of range, text too long): the request's fault."""
    log.info("%s %s: the database refused a value (%s)", request.method, request.url.path,
             type(getattr(exc, "orig", exc)).__name__)
    return JSONResponse({"detail": "a value in the request cannot be stored or looked up (a NUL character, a "
                                   "number out of range, or text too long)"}, status_code=422)


def create_app(
    store: Store,
    state: HouseholdState,
    clock: Clock,
    *,
    health: Callable[[], dict[str, bool]] | None = None,
    secret: str = "dev-only-insecure-secret",
    metrics_registry: object | None = None,
    session_ttl_s: int = 14 * 86400,
    secure_cookies: bool = False,
) -> FastAPI:
    """Build the API over a store, the live household state and a clock; ``health`` adds readiness checks."""
    app = FastAPI(
        title="Shouwang",
        version=shouwang.__version__,
        description="Watching over elderly people who live alone through their water and electricity meters.",
        docs_url="/docs",
        generate_unique_id_function=_operation_id,
    )
    app.state.store = store
    app.state.household_state = state
    app.state.clock = clock
    app.state.health = health
    app.state.secret = secret
    app.state.metrics = metrics_registry
    app.state.session_ttl_s = session_ttl_s
    app.state.secure_cookies = secure_cookies
    app.state.login_throttle = LoginThrottle()
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(AlertConflict, _conflict)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(AccountConflict, _conflict)
    for module in (auth, users, tokens, audit, households, meters, alerts, away, people, rejections,
                   health_routes, ack, metrics, reports):
        app.include_router(module.router)
    install_pages(app)
    install_audit(app)
    log.debug("API created (version %s)", shouwang.__version__)
    return app

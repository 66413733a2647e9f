"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

import shouwang
from api.routes import ack, alerts, away, households, meters, metrics, people, rejections
from api.routes import health as health_routes
from shouwang.clock import Clock
from shouwang.state import HouseholdState
from storage import AlertConflict, NotFound, Store

log = logging.getLogger(__name__)


def _operation_id(route: APIRoute) -> str:
    """Stable operation ids for generated clients: <tag>-<function name>."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


def create_app(
    store: Store,
    state: HouseholdState,
    clock: Clock,
    *,
    health: Callable[[], dict[str, bool]] | None = None,
    secret: str = "dev-only-insecure-secret",
    metrics_registry: object | None = None,
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
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(AlertConflict, _conflict)
    for module in (households, meters, alerts, away, people, rejections, health_routes, ack, metrics):
        app.include_router(module.router)
    log.debug("API created (version %s)", shouwang.__version__)
    return app

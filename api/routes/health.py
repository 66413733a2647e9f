"""Probes: liveness (the process works) and readiness (store and broker reachable); 503 when a check fails."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from api.deps import StoreDep
from api.schemas import Health
from storage import Store

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])
RESPONSES: dict = {503: {"model": Health, "description": "At least one check failed."}}


def _store_reachable(store: Store) -> bool:
    try:
        store.communities()  # a small table: cheap on any backend
    except Exception:
        log.exception("health: store unreachable")
        return False
    return True


def _run(checks: dict[str, bool], extra: Callable[[], dict[str, bool]] | None, response: Response) -> Health:
    if extra is not None:
        try:
            checks.update({name: bool(ok) for name, ok in extra().items()})
        except Exception:
            log.exception("health: checks failed to run")
            checks["checks"] = False
    healthy = all(checks.values())
    if not healthy:
        response.status_code = 503
        log.warning("health: failing checks %s", sorted(k for k, ok in checks.items() if not ok))
    return Health(status="ok" if healthy else "unavailable", checks=checks)


@router.get("/api/health/ready", response_model=Health, responses=RESPONSES)
def ready(request: Request, response: Response, store: StoreDep) -> Health:
    """Readiness: the database answers and the service's own checks (broker connection, …) pass."""
    return _run({"store": _store_reachable(store)}, request.app.state.health, response)


@router.get("/healthz", response_model=Health, responses=RESPONSES)
def healthz(request: Request, response: Response, store: StoreDep) -> Health:
    """Readiness, at its older address."""
    return ready(request, response, store)


@router.get("/api/health/live", response_model=Health, responses=RESPONSES)
def live(request: Request, response: Response) -> Health:
    """Liveness: the process and its worker threads run (no outside dependency: restarting would not help)."""
    return _run({}, getattr(request.app.state, "liveness", None), response)


def probe_app(store: Store, *, health: Callable[[], dict[str, bool]] | None = None,
              liveness: Callable[[], dict[str, bool]] | None = None, metrics_registry: object | None = None):
    """The probes and /metrics alone, for `run --role ingest` (no public API in that process)."""
    from fastapi import FastAPI

    from api.routes import metrics

    app = FastAPI(title="Shouwang ingest probes", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.health = health
    app.state.liveness = liveness
    app.state.metrics = metrics_registry
    app.include_router(router)
    app.include_router(metrics.router)
    return app

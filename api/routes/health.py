"""Liveness and readiness: 200 when every check passes, 503 otherwise."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from api.deps import StoreDep
from api.schemas import Health
from storage import Store

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


def _store_reachable(store: Store) -> bool:
    try:
        store.communities()  # a small table: cheap on any backend
    except Exception:
        log.exception("health: store unreachable")
        return False
    return True


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Health, "description": "At least one check failed."}})
def healthz(request: Request, response: Response, store: StoreDep) -> Health:
    """Run the store check and the service's own checks."""
    checks = {"store": _store_reachable(store)}
    extra: Callable[[], dict[str, bool]] | None = request.app.state.health
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

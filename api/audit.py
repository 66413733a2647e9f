"""Audit middleware: every authenticated view or change is written down with who, what and when."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from shouwang.accounts import AuditEntry

log = logging.getLogger(__name__)

NOT_AUDITED = ("/api/health", "/metrics", "/static", "/api/auth/me", "/manifest", "/sw.js")


def install_audit(app: FastAPI) -> None:
    """Record each request that an authenticated user made (after routing, with its status)."""

    @app.middleware("http")
    async def audit(request: Request, call_next):
        response = await call_next(request)
        principal = getattr(request.state, "principal", None)
        path = request.url.path
        if principal is None or path.startswith(NOT_AUDITED):
            return response
        params = request.scope.get("path_params") or {}
        household = params.get("household_id") or request.query_params.get("household")
        query = f"?{request.url.query}" if request.url.query else ""
        entry = AuditEntry(int(request.app.state.clock.now()), principal.user.id, request.method, path + query,
                           response.status_code, household, request.client.host if request.client else "")
        try:
            await run_in_threadpool(request.app.state.store.add_audit, [entry])
        except Exception:  # the audit log must not turn a served answer into an error; it is logged loudly
            log.exception("could not write the audit entry", extra={"household": household})
        return response

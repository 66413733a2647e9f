"""Prometheus metrics at /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    """Metrics in the Prometheus text format."""
    registry: CollectorRegistry = request.app.state.metrics or CollectorRegistry()
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

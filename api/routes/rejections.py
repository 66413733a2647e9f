"""Rejections: refused messages and readings, with counts by reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import AdminScope
from api.deps import PageDep, StoreDep
from api.schemas import RejectionList, RejectionPublic

router = APIRouter(prefix="/api/rejections", tags=["rejections"])


@router.get("", response_model=RejectionList)
def list_rejections(
    store: StoreDep,
    _scope: AdminScope,
    page: PageDep,
    reason: Annotated[str | None, Query(max_length=64, description="e.g. bad_json, unknown_meter.")] = None,
) -> RejectionList:
    """Rejections, newest first, and how many there are of each reason (see docs/protocol.md)."""
    items = store.rejections(limit=page.limit, offset=page.offset, reason=reason)
    counts = store.rejection_counts()
    total = counts.get(reason, 0) if reason is not None else sum(counts.values())
    return RejectionList(items=[RejectionPublic.model_validate(r) for r in items], counts=counts, total=total)

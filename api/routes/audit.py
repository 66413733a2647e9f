"""The audit log: who viewed a resident's data or changed anything, for administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import AdminScope
from api.deps import PageDep, StoreDep
from api.schemas_accounts import AuditPublic

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=list[AuditPublic])
def list_audit(
    store: StoreDep,
    _scope: AdminScope,
    page: PageDep,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    household: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditPublic]:
    """Audit entries, newest first."""
    return [AuditPublic.model_validate(e) for e in store.audit(page.limit, page.offset, actor, household)]

"""API tokens for integrations: create (shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.auth import AnyUserScope, PrincipalDep
from api.deps import NowDep, StoreDep
from api.schemas import NOT_FOUND
from api.schemas_accounts import TokenCreate, TokenCreated, TokenPublic
from shouwang.accounts import Permission, new_token, secret_digest
from storage import NotFound

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


@router.get("", response_model=list[TokenPublic])
def list_tokens(store: StoreDep, principal: PrincipalDep, _scope: AnyUserScope) -> list[TokenPublic]:
    """One's own tokens (an administrator sees everyone's); never their secrets."""
    is_admin = principal.user.can(Permission.ADMIN)
    return [TokenPublic.model_validate(t) for t in store.tokens(None if is_admin else principal.user.id)]


@router.post("", response_model=TokenCreated, status_code=201, responses=NOT_FOUND)
def create_token(body: TokenCreate, store: StoreDep, now: NowDep, principal: PrincipalDep,
                 _scope: AnyUserScope) -> TokenCreated:
    """A new token acting as its user, with that user's scope; copy it now, it is stored only as a hash."""
    owner = body.user or principal.user.id
    if owner != principal.user.id:
        if not principal.user.can(Permission.ADMIN):
            raise HTTPException(403, "only an administrator may create tokens for someone else")
        store.user(owner)
    secret = new_token()
    token = store.add_token(owner, body.name, secret_digest(secret), secret[:8], now)
    return TokenCreated.model_validate({**TokenPublic.model_validate(token).model_dump(), "token": secret})


@router.delete("/{token_id}", response_model=TokenPublic, responses=NOT_FOUND)
def revoke_token(token_id: int, store: StoreDep, now: NowDep, principal: PrincipalDep,
                 _scope: AnyUserScope) -> TokenPublic:
    """Revoke a token (one's own; an administrator any)."""
    token = next((t for t in store.tokens() if t.id == token_id), None)
    if token is None or (token.user != principal.user.id and not principal.user.can(Permission.ADMIN)):
        raise NotFound(f"token {token_id} not found")
    return TokenPublic.model_validate(store.revoke_token(token_id, now))

"""Making accounts and logged-in API clients for tests."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from shouwang.accounts import User, UserRole, hash_password, new_token, secret_digest
from storage import Store

PASSWORD = "correct horse battery staple"


def make_user(store: Store, user_id: str, role: UserRole = UserRole.ADMIN, **fields: object) -> User:
    """Create an account with the test password."""
    return store.create_user(User(user_id, user_id.title(), role, hash_password(PASSWORD), **fields))  # type: ignore[arg-type]


def token_for(store: Store, user_id: str) -> str:
    """A fresh API token for the user."""
    secret = new_token()
    store.add_token(user_id, "test", secret_digest(secret), secret[:8], 0)
    return secret


def api_client(app: FastAPI, user_id: str = "admin", role: UserRole = UserRole.ADMIN, **fields: object) -> TestClient:
    """A TestClient sending a bearer token of a (new) account with this role."""
    store = app.state.store
    make_user(store, user_id, role, **fields)
    return TestClient(app, headers={"Authorization": f"Bearer {token_for(store, user_id)}"})

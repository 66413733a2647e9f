"""Accounts: password login with a session cookie and CSRF, API tokens, throttling, the audit log."""

from __future__ import annotations

import logging

import pytest
from accounts_support import PASSWORD, api_client, make_user, token_for
from conftest import small_registry
from fastapi.testclient import TestClient

from api import create_app
from shouwang.accounts import UserRole, hash_password, verify_password
from shouwang.clock import ManualClock
from shouwang.state import HouseholdState
from storage import open_store

T0 = 1_795_300_200


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(tmp_path, clock):
    store = open_store(f"sqlite:///{tmp_path / 'acc.db'}")
    registry = small_registry()
    store.upsert_registry(registry)
    make_user(store, "admin")
    make_user(store, "mgr", UserRole.MANAGER, communities=("c1",))
    yield create_app(store, HouseholdState(registry, started_at=T0), clock, session_ttl_s=3600)
    store.close()


def login(client: TestClient, user: str = "mgr", password: str = PASSWORD):
    return client.post("/api/auth/login", json={"username": user, "password": password})


def test_password_hash_is_argon2id_and_verifies():
    h = hash_password("a long enough password")
    assert h.startswith("$argon2id$") and "a long enough password" not in h
    assert verify_password(h, "a long enough password") and not verify_password(h, "wrong")
    assert not verify_password("", "anything") and not verify_password("not a hash", "x")


def test_login_sets_an_httponly_session_cookie_and_changes_need_the_csrf_token(app):
    with TestClient(app) as c:
        r = login(c)
        assert r.status_code == 200 and r.json()["id"] == "mgr" and r.json()["role"] == "manager"
        csrf = r.json()["csrf"]
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "password" not in r.text
        assert c.get("/api/households").status_code == 200
        assert c.get("/api/auth/me").json()["csrf"] == csrf
        body = {"household": "H1", "source": "family"}
        assert c.post("/api/away", json=body).status_code == 403  # no CSRF token: refused, nothing stored
        assert c.post("/api/away", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert c.post("/api/away", json=body, headers={"X-CSRF-Token": "é".encode()}
                      ).status_code == 403
        assert c.get("/api/away").json() == []
        assert c.post("/api/away", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
        assert c.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert c.get("/api/households").status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_answer_then_a_throttle(app):
    with TestClient(app) as c:
        wrong, unknown = login(c, password="nope"), login(c, user="ghost")
        assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()
        for _ in range(4):  # five failures in all
            login(c, password="nope")
        assert login(c, password="nope").status_code == 429
        assert login(c).status_code == 429  # even the right password, until the window passes
        assert login(c, user="admin").status_code == 200  # other accounts are unaffected


def test_throttle_window_passes_on_the_injected_clock(app, clock):
    with TestClient(app) as c:
        for _ in range(5):
            login(c, password="nope")
        assert login(c).status_code == 429
        clock.advance(901)
        assert login(c).status_code == 200


def test_session_expires(app, clock):
    with TestClient(app) as c:
        login(c)
        clock.advance(3601)
        assert c.get("/api/households").status_code == 401


def test_tokens_are_shown_once_stored_hashed_and_revocable(app):
    store = app.state.store
    with api_client(app, "integrator", UserRole.MANAGER, communities=("c1",)) as c:
        created = c.post("/api/tokens", json={"name": "erp"}).json()
        secret = created["token"]
        assert secret.startswith("sw_") and created["prefix"] == secret[:8]
        listed = c.get("/api/tokens").json()
        assert all("token" not in t for t in listed) and secret not in str(listed)
        with store.engine.connect() as conn:
            assert secret not in str(conn.exec_driver_sql("SELECT * FROM api_tokens").fetchall())
        other = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
        assert other.get("/api/households").status_code == 200
        assert c.delete(f"/api/tokens/{created['id']}").json()["revoked_at"] is not None
        assert other.get("/api/households").status_code == 401
        assert c.post("/api/tokens", json={"name": "x", "user": "admin"}).status_code == 403


def test_disabling_an_account_stops_its_session_and_tokens(app):
    store = app.state.store
    token = token_for(store, "mgr")
    with TestClient(app) as browser, api_client(app, "root") as admin:
        login(browser)
        assert admin.patch("/api/users/mgr", json={"disabled": True}).json()["disabled"] is True
        assert browser.get("/api/households").status_code == 401
        assert TestClient(app, headers={"Authorization": f"Bearer {token}"}).get("/api/households").status_code == 401
        assert login(browser).status_code == 401


def test_admin_creates_accounts_with_checked_scope(app):
    with api_client(app, "root") as c:
        ok = c.post("/api/users", json={"id": "w1", "role": "worker", "password": "0123456789ab",
                                        "grids": ["c1/grid-1"], "language": "en"})
        assert ok.status_code == 201 and "password" not in ok.text and ok.json()["grids"] == ["c1/grid-1"]
        assert c.post("/api/users", json={"id": "w1", "role": "worker", "password": "0123456789ab",
                                          "grids": ["c1/grid-1"]}).status_code == 409
        bad = c.post("/api/users", json={"id": "m2", "role": "manager", "password": "0123456789ab",
                                         "communities": ["nowhere"]})
        assert bad.status_code == 422 and "community 'nowhere' does not exist" in bad.text
        assert c.post("/api/users", json={"id": "w2", "role": "worker", "password": "0123456789ab"}).status_code == 422
        assert c.post("/api/users", json={"id": "w3", "role": "worker", "password": "short",
                                          "grids": ["c1/grid-1"]}).status_code == 422
        assert c.get("/api/users/w2").status_code == 404


def test_own_password_change_needs_the_current_one(app):
    with api_client(app, "w", UserRole.FAMILY, households=("H1",)) as c:
        assert c.patch("/api/auth/me", json={"new_password": "another long one", "current_password": "x"}
                       ).status_code == 403
        assert c.patch("/api/auth/me", json={"new_password": "another long one", "current_password": PASSWORD,
                                             "language": "en"}).json()["language"] == "en"
    with TestClient(app) as c:
        assert login(c, "w").status_code == 401 and login(c, "w", "another long one").status_code == 200


def test_every_view_and_change_is_audited_without_secrets(app, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(app) as c:
        csrf = login(c).json()["csrf"]
        c.get("/api/households/H1")
        c.get("/api/alerts", params={"household": "H2"})
        c.post("/api/away", json={"household": "H1", "source": "family"}, headers={"X-CSRF-Token": csrf})
    entries = app.state.store.audit(actor="mgr")
    seen = [(e.action, e.path, e.status, e.household) for e in reversed(entries)]
    assert ("GET", "/api/households/H1", 200, "H1") in seen
    assert ("GET", "/api/alerts?household=H2", 200, "H2") in seen
    assert ("POST", "/api/away", 201, None) in seen
    assert PASSWORD not in caplog.text and csrf not in caplog.text
    with api_client(app, "root") as admin:
        assert any(e["path"] == "/api/households/H1" for e in admin.get("/api/audit", params={"actor": "mgr"}).json())

"""Accounts, API tokens, sessions and the audit log, for SqlStore."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from shouwang.accounts import ApiToken, AuditEntry, Session, User, UserRole
from storage import schema as t
from storage.base import AccountConflict, NotFound

TOKEN_USE_RESOLUTION_S = 60  # a token's last use is noted to the minute, not written on every request


def _user(r: Any) -> User:
    return User(r.id, r.name, UserRole(r.role), r.password_hash, r.language, r.person,
                tuple(r.communities or ()), tuple(r.grids or ()), tuple(r.households or ()), bool(r.disabled),
                r.created_at)


def _user_row(u: User) -> dict:
    return {"id": u.id, "name": u.name, "role": str(u.role), "password_hash": u.password_hash,
            "language": u.language, "person": u.person, "communities": list(u.communities),
            "grids": list(u.grids), "households": list(u.households), "disabled": u.disabled,
            "created_at": u.created_at}


def _token(r: Any) -> ApiToken:
    return ApiToken(r.id, r.user_id, r.name, r.prefix, r.created_at, r.last_used_at, r.revoked_at)


class AccountStoreMixin:
    """Users and their credentials; the audit log of who saw and changed what."""

    engine: Any

    def create_user(self, user: User) -> User:
        """Add an account; AccountConflict if the id is taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(t.users.insert(), _user_row(user))
        except IntegrityError:
            raise AccountConflict(f"user {user.id!r} already exists") from None
        return user

    def update_user(self, user: User) -> User:
        """Replace an existing account (password hash included)."""
        with self.engine.begin() as conn:
            n = conn.execute(update(t.users).where(t.users.c.id == user.id).values(**_user_row(user))).rowcount
            if not n:
                raise NotFound(f"user {user.id!r} not found")
            if user.disabled:  # a disabled account loses its sessions at once
                conn.execute(delete(t.sessions).where(t.sessions.c.user_id == user.id))
        return user

    def user(self, user_id: str) -> User:
        """One account, or NotFound."""
        if not t.fits(t.users.c.id, user_id):
            raise NotFound(f"user {user_id!r} not found")
        with self.engine.connect() as conn:
            row = conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"user {user_id!r} not found")
        return _user(row)

    def users(self) -> list[User]:
        """Every account, by id."""
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(t.users).order_by(t.users.c.id))]

    # ------------------------------------------------------------------ API tokens
    def add_token(self, user_id: str, name: str, digest: str, prefix: str, at: int) -> ApiToken:
        """Store a new token's digest for a user."""
        with self.engine.begin() as conn:
            token_id = conn.execute(t.api_tokens.insert().values(
                user_id=user_id, name=name, digest=digest, prefix=prefix, created_at=at)).inserted_primary_key[0]
        return ApiToken(token_id, user_id, name, prefix, at)

    def tokens(self, user_id: str | None = None) -> list[ApiToken]:
        """Tokens (never their secrets), optionally of one user."""
        q = select(t.api_tokens).order_by(t.api_tokens.c.id)
        if user_id is not None:
            q = q.where(t.api_tokens.c.user_id == user_id)
        with self.engine.connect() as conn:
            return [_token(r) for r in conn.execute(q)]

    def token_user(self, digest: str, at: int) -> User | None:
        """The user of a live token with this digest (and note its use, to the minute), or None."""
        with self.engine.begin() as conn:
            row = conn.execute(select(t.api_tokens.c.id, t.api_tokens.c.user_id, t.api_tokens.c.last_used_at)
                               .where(t.api_tokens.c.digest == digest, t.api_tokens.c.revoked_at.is_(None))).first()
            if row is None:
                return None
            if row.last_used_at is None or at - row.last_used_at >= TOKEN_USE_RESOLUTION_S:
                conn.execute(update(t.api_tokens).where(t.api_tokens.c.id == row.id).values(last_used_at=at))
            user = conn.execute(select(t.users).where(t.users.c.id == row.user_id)).first()
        return _user(user) if user is not None else None

    def revoke_token(self, token_id: int, at: int) -> ApiToken:
        """Revoke a token for good (revoking twice keeps the first time)."""
        with self.engine.begin() as conn:
            conn.execute(update(t.api_tokens).where(t.api_tokens.c.id == token_id,
                                                    t.api_tokens.c.revoked_at.is_(None)).values(revoked_at=at))
            row = conn.execute(select(t.api_tokens).where(t.api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token {token_id} not found")
        return _token(row)

    # ------------------------------------------------------------------ sessions
    def add_session(self, digest: str, session: Session) -> None:
        """Store a new browser session under the digest of its cookie value (and forget expired ones)."""
        with self.engine.begin() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.expires_at <= session.created_at))
            conn.execute(t.sessions.insert().values(digest=digest, user_id=session.user, csrf=session.csrf,
                                                    created_at=session.created_at, expires_at=session.expires_at))

    def session(self, digest: str, now: int) -> Session | None:
        """A live session by the digest of its cookie value, or None (a read only: logins clear expired ones)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.sessions).where(t.sessions.c.digest == digest,
                                                        t.sessions.c.expires_at > now)).first()
        return Session(row.user_id, row.csrf, row.created_at, row.expires_at) if row else None

    def delete_session(self, digest: str) -> None:
        """Log a session out."""
        with self.engine.begin() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.digest == digest))

    # ------------------------------------------------------------------ audit
    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append audit entries."""
        if not entries:
            return
        with self.engine.begin() as conn:
            conn.execute(t.audit_log.insert(), [
                {"at": e.at, "actor": e.actor, "action": e.action, "path": e.path[:500], "status": e.status,
                 "household": e.household, "ip": e.ip} for e in entries])

    def audit(self, limit: int = 100, offset: int = 0, actor: str | None = None,
              household: str | None = None) -> list[AuditEntry]:
        """Audit entries, newest first, optionally of one actor or household."""
        q = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit).offset(offset)
        if actor is not None:
            q = q.where(t.audit_log.c.actor == actor)
        if household is not None:
            q = q.where(t.audit_log.c.household == household)
        with self.engine.connect() as conn:
            return [AuditEntry(r.at, r.actor, r.action, r.path, r.status, r.household, r.ip, r.id)
                    for r in conn.execute(q)]

    def count_audit(self) -> int:
        """How many audit entries there are."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.audit_log)).scalar_one()

    def alerts_sent_to(self, person: str) -> set[int]:
        """Ids of the alerts a person has been sent (or is queued to be sent) a message about."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.outbox.c.alert_ids).where(t.outbox.c.person == person))
            return {int(a) for r in rows for a in (r.alert_ids or ())}

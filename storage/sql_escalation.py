"""Escalation state and the durable outbox, for SqlStore."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select, update

from shouwang.domain import AlertEvent, Escalation, OutboxItem
from storage import schema as t
from storage.base import AlertConflict, StaleEscalation


def _esc(r: Any) -> Escalation:
    return Escalation(r.alert_id, r.community, r.step, r.next_step_at, r.reminder_at, r.sla_at, r.sla_level,
                      r.tier, tuple(r.notified or ()), r.version)


def _esc_row(e: Escalation, done: bool) -> dict:
    return {"alert_id": e.alert_id, "community": e.community, "step": e.step, "next_step_at": e.next_step_at,
            "reminder_at": e.reminder_at, "sla_at": e.sla_at, "sla_level": e.sla_level, "tier": e.tier,
            "notified": list(e.notified), "done": done}


def event_row(e: AlertEvent) -> dict:
    """A timeline entry as a row of ``alert_events``."""
    return {"alert_id": e.alert_id, "at": e.at, "kind": e.kind, "actor": e.actor, "detail": e.detail}


def _item(r: Any) -> OutboxItem:
    return OutboxItem(tuple(r.alert_ids), r.url, r.kind, r.title, r.text, r.data or {}, r.person,
                      r.channel_index, r.attempts, r.next_attempt_at, r.deadline_at, r.id)


def _item_row(i: OutboxItem) -> dict:
    return {"alert_ids": list(i.alert_ids), "person": i.person, "channel_index": i.channel_index, "url": i.url,
            "kind": i.kind, "title": i.title, "text": i.text, "data": i.data, "state": "pending",
            "attempts": i.attempts, "next_attempt_at": i.next_attempt_at, "deadline_at": i.deadline_at,
            "last_error": ""}


def _of_communities(communities: Collection[str]) -> Any:
    """Outbox rows whose (first) alert belongs to a household or gateway of one of ``communities`` (shards)."""
    a, h, g = t.alerts, t.households, t.gateways
    return (select(a.c.id).select_from(a.outerjoin(h, h.c.id == a.c.household).outerjoin(g, g.c.id == a.c.gateway))
            .where(a.c.id == t.outbox.c.alert_ids[0].as_integer(),
                   func.coalesce(h.c.community, g.c.community).in_(list(communities)))
            .exists())


class EscalationStoreMixin:
    """Atomic escalation steps: new state, the messages it sends and the timeline entries, in one transaction."""

    engine: Any

    def save_escalation_steps(
        self, steps: Sequence[tuple[Escalation, bool]], items: Sequence[OutboxItem], events: Sequence[AlertEvent]
    ) -> None:
        """Write escalations' new states (and whether done), queue their messages and timeline, atomically.

        A stored escalation is written only over the version it was read at (``Escalation.version``); if another
        write came between (a reopen, a tier set), nothing is written and StaleEscalation is raised."""
        c = t.escalations.c
        with self.engine.begin() as conn:
            for escalation, done in steps:
                exists = conn.execute(select(c.alert_id).where(c.alert_id == escalation.alert_id)).first()
                row = _esc_row(escalation, done)
                if not exists:
                    conn.execute(t.escalations.insert(), row)
                elif not conn.execute(update(t.escalations).where(c.alert_id == escalation.alert_id,
                                                                  c.version == escalation.version)
                                      .values(**row, version=escalation.version + 1)).rowcount:
                    raise StaleEscalation(f"the escalation of alert {escalation.alert_id} changed since it was read")
            if items:
                conn.execute(t.outbox.insert(), [_item_row(i) for i in items])
            if events:
                conn.execute(t.alert_events.insert(), [event_row(e) for e in events])

    def set_escalation_tier(self, alert_id: int, tier: str, sla_at: int | None, event: AlertEvent) -> None:
        """Make a running escalation ordinary or hard, its SLA counted afresh to ``sla_at``; leaves its step be."""
        c = t.escalations.c
        with self.engine.begin() as conn:
            if not conn.execute(update(t.escalations).where(c.alert_id == alert_id, c.done.is_(False))
                                .values(tier=tier, sla_level=0, sla_at=sla_at, version=c.version + 1)).rowcount:
                raise AlertConflict(f"alert {alert_id} has no running escalation (resolved, or not escalated)")
            conn.execute(t.alert_events.insert(), event_row(event))

    def escalation(self, alert_id: int) -> Escalation | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(t.escalations).where(t.escalations.c.alert_id == alert_id)).first()
        return _esc(r) if r else None

    def active_escalations(self, communities: Collection[str] | None = None) -> list[Escalation]:
        """Escalations not finished (their alert not resolved); only those of ``communities`` if given."""
        q = select(t.escalations).where(t.escalations.c.done.is_(False)).order_by(t.escalations.c.alert_id)
        if communities is not None:
            q = q.where(t.escalations.c.community.in_(list(communities)))
        with self.engine.connect() as conn:
            return [_esc(r) for r in conn.execute(q)]

    def claim_due(self, now: float, limit: int = 50, communities: Collection[str] | None = None) -> list[OutboxItem]:
        """Mark up to ``limit`` due pending messages as being sent and return them.

        Safe with several processes on PostgreSQL: rows another claim holds are skipped (FOR UPDATE SKIP LOCKED),
        and a row claimed and committed meanwhile is re-checked and left out. ``communities``: a shard's only."""
        c = t.outbox.c
        q = select(t.outbox).where(c.state == "pending", c.next_attempt_at <= now)
        if communities is not None:
            q = q.where(_of_communities(communities))
        with self.engine.begin() as conn:
            rows = conn.execute(q.order_by(c.next_attempt_at, c.id).limit(limit)
                                .with_for_update(skip_locked=True, of=t.outbox)).all()
            if rows:
                conn.execute(update(t.outbox).where(c.id.in_([r.id for r in rows])).values(state="sending"))
        return [_item(r) for r in rows]

    def finish_delivery(
        self, item_id: int, state: str, attempts: int, next_attempt_at: float, error: str, sent_at: float | None,
        events: Sequence[AlertEvent] = (), followup: OutboxItem | None = None,
    ) -> None:
        """Record an attempt's result (sent / pending again / failed), its timeline entries and any failover."""
        with self.engine.begin() as conn:
            conn.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(
                state=state, attempts=attempts, next_attempt_at=next_attempt_at, last_error=error, sent_at=sent_at))
            if followup is not None:
                conn.execute(t.outbox.insert(), _item_row(followup))
            if events:
                conn.execute(t.alert_events.insert(), [event_row(e) for e in events])

    def requeue_interrupted(self, communities: Collection[str] | None = None) -> int:
        """After a crash: messages left 'sending' go back to 'pending' (at-least-once for that window).

        ``communities``: only a shard's, so a worker starting never requeues what another worker is sending."""
        q = update(t.outbox).where(t.outbox.c.state == "sending")
        if communities is not None:
            q = q.where(_of_communities(communities))
        with self.engine.begin() as conn:
            return conn.execute(q.values(state="pending")).rowcount

    def outbox_items(self, state: str | None = None, alert_id: int | None = None) -> list[tuple[OutboxItem, str]]:
        """Messages with their state, for the API and tests."""
        q = select(t.outbox).order_by(t.outbox.c.id)
        if state is not None:
            q = q.where(t.outbox.c.state == state)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        items = [(_item(r), r.state) for r in rows]
        if alert_id is not None:
            items = [(i, s) for i, s in items if alert_id in i.alert_ids]
        return items

"""Lifecycle steps beyond the store's own: clearing gone conditions, resolving (away), SLA tiers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from alerts.policy import DEFAULT_POLICY, load_policy
from detectors.base import Detector
from shouwang.away import AwayPeriod
from shouwang.domain import Alert, AlertCategory, AlertEvent, AlertStatus, Outcome
from shouwang.state import HouseholdState
from storage.base import AlertConflict, Store

log = logging.getLogger(__name__)


DEVICE_BACK = "device reporting again"


def clear_gone_conditions(
    store: Store,
    detectors: Mapping[str, Detector],
    state: HouseholdState,
    now: int,
    on_change: Callable[[int, str], None] | None = None,
    alerts: Iterable[Alert] | None = None,
    announce: Callable[[Alert, str], None] | None = None,
) -> list[int]:
    """Resolve device alerts whose device is back; mark welfare alerts cleared (a person still closes them).

    Welfare cases stay open after activity resumes because every case is closed with an outcome by
    someone who checked; the `cleared_at` time tells them the meters moved again. ``alerts``: the unresolved
    alerts to look at (a shard's), every unresolved one by default. ``announce`` queues the notice of the change
    (the alert as it will be) before the change is written: a process stopping in between announces it again at the
    next sweep, where the other order would never announce it. ``on_change`` is called after each change.
    """
    changed = []
    for alert in store.unresolved_alerts() if alerts is None else alerts:
        detector = detectors.get(alert.detector)
        if detector is None or alert.cleared_at is not None or not detector.cleared(alert, state, now):
            continue
        if alert.category == AlertCategory.DEVICE:
            event, after = "resolved", replace(alert, status=AlertStatus.RESOLVED, resolved_by="shouwang",
                                               resolved_at=now, outcome=Outcome.DEVICE_RECOVERED, note=DEVICE_BACK)
        else:
            event, after = "cleared", replace(alert, cleared_at=now)
        if announce:
            announce(after, event)
        try:
            if alert.category == AlertCategory.DEVICE:
                store.resolve_alert(alert.id, Outcome.DEVICE_RECOVERED, "shouwang", now, DEVICE_BACK)
            else:
                store.clear_alert(alert.id, now)
        except AlertConflict:
            continue  # a person changed it meanwhile (what was announced is still so: the meters moved again)
        log.info("alert %s %s", alert.id, event, extra={"alert": alert.id, "household": alert.household})
        changed.append(alert.id)
        if on_change:
            on_change(alert.id, event)
    return changed


def resolve(
    store: Store, alert_id: int, outcome: Outcome, by: str, now: int, note: str = "",
    expected_return: int | None = None,
) -> Alert:
    """Close a case; closing as `away` opens an away period that holds welfare alerts until activity resumes."""
    alert = store.resolve_alert(alert_id, outcome, by, now, note)
    if outcome == Outcome.AWAY and alert.household:
        period = store.add_away(AwayPeriod(alert.household, now, expected_return, f"alert:{alert_id}", note))
        log.info("away period %s opened by closing alert %s", period.id, alert_id,
                 extra={"alert": alert_id, "household": alert.household})
    return alert


def set_tier(store: Store, alert: Alert, tier: str, by: str, now: int, note: str = "") -> None:
    """Make a case ordinary or hard: its SLA deadline becomes opening time + that tier's allowance."""
    esc = store.escalation(alert.id)
    if esc is None or alert.status == AlertStatus.RESOLVED:
        raise AlertConflict(f"alert {alert.id} has no running escalation (resolved, or not escalated)")
    data = store.community_policy(esc.community)
    policy = load_policy(data, f"community {esc.community}") if data else DEFAULT_POLICY
    zone = next((c.timezone for c in store.communities() if c.id == esc.community), "Asia/Shanghai")
    allowance = policy.sla.hard if tier == "hard" else policy.sla.ordinary
    # one UPDATE of the tier and its deadline only: a step the escalation takes meanwhile is neither undone nor
    # repeated, and the tick's next write, made over an older version, is dropped rather than undoing this
    store.set_escalation_tier(alert.id, tier, allowance.after(alert.opened_at, zone) if policy.sla_escalates_to
                              else None, AlertEvent(alert.id, now, "tier", by, f"{tier}: {note}".rstrip(": ")))

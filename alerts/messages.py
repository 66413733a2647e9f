"""Short notification texts: what a worker needs at the door."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.channels.base import Notification
from shouwang.domain import Alert, AlertCategory, Household

TITLES = {
    AlertCategory.INACTIVITY: "No activity / 无用水用电",
    AlertCategory.WATER_RUNNING: "Water running / 长时间用水",
    AlertCategory.UNUSUAL_USAGE: "Unusual usage / 用量异常",
    AlertCategory.DEVICE: "Device problem / 设备异常",
}


def local_time(ts: int, zone: str) -> str:
    """A timestamp as local wall time in the community's zone."""
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def build(alert: Alert, household: Household | None, event: str, public_url: str, zone: str) -> Notification:
    """The notification for an alert event ("opened", "cleared", "resolved")."""
    who = f"{household.id} {household.name} ({household.address})" if household else (
        f"gateway {alert.gateway}" if alert.gateway else f"meter {alert.meter}")
    verb = {"opened": "", "cleared": "cleared: ", "resolved": "resolved: "}.get(event, f"{event}: ")
    title = f"{verb}{TITLES[alert.category]} — {who}"
    link = f"{public_url.rstrip('/')}/api/alerts/{alert.id}"
    since = "Last activity" if alert.category == AlertCategory.INACTIVITY else "Since"
    text = f"{alert.reason}. {since} {local_time(alert.since, zone)}. Acknowledge: {link}"
    data = {"alert": {"id": alert.id, "category": str(alert.category), "severity": str(alert.severity),
                      "household": alert.household, "gateway": alert.gateway, "meter": alert.meter,
                      "detector": alert.detector, "reason": alert.reason, "since": alert.since,
                      "opened_at": alert.opened_at, "status": str(alert.status)},
            "household": ({"id": household.id, "name": household.name, "address": household.address,
                           "grid": household.grid} if household else None),
            "link": link}
    return Notification(alert.id, event, title, text, data)

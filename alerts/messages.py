"""Short notification texts in the recipient's language: what a worker needs at the door."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from shouwang.domain import Alert, AlertCategory, Household

log = logging.getLogger(__name__)

CATEGORY = {
    "zh": {AlertCategory.INACTIVITY: "无用水用电", AlertCategory.WATER_RUNNING: "长时间用水",
           AlertCategory.UNUSUAL_USAGE: "用量异常", AlertCategory.DEVICE: "设备异常"},
    "en": {AlertCategory.INACTIVITY: "No activity", AlertCategory.WATER_RUNNING: "Water running",
           AlertCategory.UNUSUAL_USAGE: "Unusual usage", AlertCategory.DEVICE: "Device problem"},
}
KIND = {
    "zh": {"opened": "", "escalated": "升级：", "reminder": "提醒：", "sla": "超时未办结：",
           "cleared": "已恢复用水用电：", "resolved": "已办结："},
    "en": {"opened": "", "escalated": "Escalated: ", "reminder": "Reminder: ", "sla": "Overdue: ",
           "cleared": "Activity resumed: ", "resolved": "Closed: "},
}
SEEN_ZH = {
    AlertCategory.INACTIVITY: "自 {since} 起未见用水用电",
    AlertCategory.WATER_RUNNING: "自 {since} 起用水一直未停",
    AlertCategory.UNUSUAL_USAGE: "自 {since} 起用量远超平常",
    AlertCategory.DEVICE: "自 {since} 起设备无数据或离线",
}
LABELS = {
    "zh": {"since": "起始", "last": "最后用水用电", "phone": "电话", "notes": "注意", "also": "同时通知",
           "ack": "确认前往", "more": "另有 {n} 条"},
    "en": {"since": "Since", "last": "Last activity", "phone": "Phone", "notes": "Note", "also": "Also notified",
           "ack": "Acknowledge", "more": "and {n} more"},
}


def language(code: str | None) -> str:
    """A supported language code (zh or en), defaulting to Chinese."""
    return code if code in CATEGORY else "zh"


def local_time(ts: int, zone: str, fmt: str = "%m-%d %H:%M") -> str:
    """A timestamp as local wall time in the community's zone; "?" for one no calendar holds (a message about an
    alert must still go out, and a sweep's other alerts with it; a page must still show)."""
    try:
        return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime(fmt)
    except (OverflowError, OSError, ValueError):
        log.warning("timestamp %r is out of range; shown as ?", ts)
        return "?"


def ack_token(secret: str, alert_id: int, person: str) -> str:
    """The token in a person's one-tap acknowledge link (HMAC of alert and person)."""
    return hmac.new(secret.encode(), f"{alert_id}:{person}".encode(), hashlib.sha256).hexdigest()[:24]


def ack_link(public_url: str, secret: str, alert_id: int, person: str | None) -> str:
    """Where a recipient acknowledges: a personal one-tap link, or the alert in the API."""
    base = public_url.rstrip("/")
    if person is None:
        return f"{base}/api/alerts/{alert_id}"
    return f"{base}/ack/{alert_id}/{person}/{ack_token(secret, alert_id, person)}"


def _who(alert: Alert, household: Household | None) -> str:
    if household:
        return f"{household.name or household.id} ({household.address})" if household.address else household.id
    return alert.gateway or alert.meter or "?"


def compose(
    alerts: Sequence[tuple[Alert, Household | None]],
    kind: str,
    lang: str,
    zone: str,
    link: str,
    also_notified: Sequence[str] = (),
) -> tuple[str, str]:
    """(title, text) about one or more alerts for one recipient; the first alert leads."""
    lang = language(lang)
    lab = LABELS[lang]
    first, hh = alerts[0]
    title = f"{KIND[lang].get(kind, '')}{CATEGORY[lang][first.category]} — {_who(first, hh)}"
    if len(alerts) > 1:
        title += " " + lab["more"].format(n=len(alerts) - 1)
    since = local_time(first.since, zone)
    if lang == "zh":
        lines = [f"{SEEN_ZH[first.category].format(since=since)}（{first.reason}）。"]
    else:
        since_label = lab["last"] if first.category == AlertCategory.INACTIVITY else lab["since"]
        lines = [f"{first.reason}. {since_label} {since}."]
    if hh and hh.phone:
        lines.append(f"{lab['phone']}: {hh.phone}")
    if hh and hh.notes:
        lines.append(f"{lab['notes']}: {hh.notes}")
    for other, ohh in alerts[1:]:
        lines.append(f"+ {CATEGORY[lang][other.category]} — {_who(other, ohh)}: {other.reason}")
    if also_notified:
        lines.append(f"{lab['also']}: {', '.join(also_notified)}")
    lines.append(f"{lab['ack']}: {link}")
    return title, "\n".join(lines)


def alert_data(alert: Alert, household: Household | None) -> dict:
    """The structured facts behind a message (for webhooks and integrations)."""
    return {"alert": {"id": alert.id, "category": str(alert.category), "severity": str(alert.severity),
                      "household": alert.household, "gateway": alert.gateway, "meter": alert.meter,
                      "detector": alert.detector, "reason": alert.reason, "since": alert.since,
                      "opened_at": alert.opened_at, "status": str(alert.status)},
            "household": ({"id": household.id, "name": household.name, "address": household.address,
                           "grid": household.grid, "phone": household.phone, "notes": household.notes}
                          if household else None)}

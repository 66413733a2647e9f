"""One-tap acknowledge links sent in notifications: GET shows the case, POST says "on my way"."""

from __future__ import annotations

import hmac
from html import escape

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from alerts import messages
from api.deps import NowDep, StoreDep
from storage import AlertConflict, NotFound

router = APIRouter(prefix="/ack", tags=["ack"])

PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1.2em;max-width:32em}}button{{font-size:1.3em;padding:.6em 1.2em}}
.done{{color:#176117}}</style></head><body><h1>{title}</h1><p>{body}</p>{action}</body></html>"""


def _check(request: Request, store, alert_id: int, person: str, token: str):
    secret = request.app.state.secret
    if not hmac.compare_digest(token.encode(), messages.ack_token(secret, alert_id, person).encode()):
        raise HTTPException(404, "unknown or expired link")
    try:
        return store.alert(alert_id), store.person(person)
    except NotFound:
        raise HTTPException(404, "unknown or expired link") from None


def _page(alert, person, note: str = "") -> str:
    zh = person.language == "zh"
    title = messages.CATEGORY[messages.language(person.language)][alert.category]
    body = escape(f"{alert.household or alert.gateway or ''}: {alert.reason}")
    if alert.status in ("open", "notified"):
        label = "确认前往" if zh else "On my way"
        action = f'<form method="post"><button type="submit">{label}</button></form>'
    else:
        who = escape(alert.acknowledged_by or alert.resolved_by or "")
        action = f'<p class="done">{escape(str(alert.status))} — {who} {escape(note)}</p>'
    return PAGE.format(lang="zh" if zh else "en", title=escape(title), body=body, action=action)


@router.get("/{alert_id}/{person}/{token}", response_class=HTMLResponse)
def ack_page(alert_id: int, person: str, token: str, request: Request, store: StoreDep) -> HTMLResponse:
    """The case and an "on my way" button; looking changes nothing."""
    alert, who = _check(request, store, alert_id, person, token)
    return HTMLResponse(_page(alert, who))


@router.post("/{alert_id}/{person}/{token}", response_class=HTMLResponse)
def ack_submit(
    alert_id: int, person: str, token: str, request: Request, store: StoreDep, now: NowDep,
    note: str = Form("", max_length=2000),
) -> HTMLResponse:
    """Acknowledge as the person the link was sent to."""
    alert, who = _check(request, store, alert_id, person, token)
    try:
        alert = store.acknowledge_alert(alert_id, who.id, now, note or "on my way (link)")
    except AlertConflict:
        alert = store.alert(alert_id)  # someone else was quicker; show who
    return HTMLResponse(_page(alert, who))

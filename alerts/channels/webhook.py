"""Webhook channel: HTTP POST of the notification as JSON."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx

from alerts.channels.base import Notification, PermanentError, RetryableError

# httpx and httpcore log full request URLs, where webhook tokens live: keep them above INFO/DEBUG.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def redact_url(url: str) -> str:
    """scheme://host[:port]/… — enough to say where, never the path, query or credentials (tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


class WebhookChannel:
    """POSTs {"alert_id", "event", "title", "text", ...data} to a URL; 5xx/429/timeouts are retryable."""

    def __init__(self, url: str, timeout_s: float = 5.0, client: httpx.Client | None = None) -> None:
        self._url = url
        self.name = f"webhook {redact_url(url)}"
        self._client = client or httpx.Client(timeout=timeout_s)

    def send(self, notification: Notification) -> None:
        body = {"alert_id": notification.alert_id, "event": notification.event, "title": notification.title,
                "text": notification.text, **notification.data}
        try:
            response = self._client.post(self._url, json=body)
        except httpx.TimeoutException:
            raise RetryableError(f"{self.name}: timed out") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"{self.name}: {type(exc).__name__}") from None
        code = response.status_code
        if code < 300:
            return
        if code in (408, 425, 429) or code >= 500:
            raise RetryableError(f"{self.name}: HTTP {code}")
        raise PermanentError(f"{self.name}: HTTP {code}")

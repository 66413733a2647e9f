"""Notification channels; every one keeps the contract in alerts.channels.base."""

from __future__ import annotations

from alerts.channels.apprise_channel import AppriseChannel, InvalidChannelURL
from alerts.channels.base import Channel, Notification, PermanentError, RetryableError
from alerts.channels.console import ConsoleChannel
from alerts.channels.webhook import WebhookChannel


def channel_from_url(url: str, *, timeout_s: float | None = None) -> Channel:
    """One channel per URL: ``console://`` → ConsoleChannel (the log), ``http(s)://`` → WebhookChannel (our
    plain JSON POST), anything else → AppriseChannel (``wecombot://``, ``dingtalk://``, ``feishu://``,
    ``ntfy://``, ``mailto://``, ``json://``, …). Raises InvalidChannelURL for a URL nobody can use."""
    scheme = url.strip().split("://", 1)[0].lower() if "://" in url else ""
    kwargs = {} if timeout_s is None else {"timeout_s": timeout_s}
    if scheme == "console":
        return ConsoleChannel()
    if scheme in ("http", "https"):
        return WebhookChannel(url.strip(), **kwargs)
    return AppriseChannel(url, **kwargs)


__all__ = ["AppriseChannel", "Channel", "ConsoleChannel", "InvalidChannelURL", "Notification", "PermanentError",
           "RetryableError", "WebhookChannel", "channel_from_url"]

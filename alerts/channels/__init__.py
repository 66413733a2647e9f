"""Notification channels; every one keeps the contract in alerts.channels.base."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.channels.apprise_channel import AppriseChannel, InvalidChannelURL
from alerts.channels.base import Channel, Notification, PermanentError, RetryableError
from alerts.channels.console import ConsoleChannel
from alerts.channels.secrets import ChannelSecretError, resolve
from alerts.channels.webhook import WebhookChannel


def channel_from_url(url: str, *, timeout_s: float | None = None, secrets: Mapping[str, str] | None = None) -> Channel:
    """One channel per URL: ``console://`` → ConsoleChannel (the log), ``http(s)://`` → WebhookChannel (our
    plain JSON POST), anything else → AppriseChannel (``wecombot://``, ``dingtalk://``, ``feishu://``,
    ``ntfy://``, ``mailto://``, ``json://``, …). ``${NAME}`` references are filled in from ``secrets``
    (alerts.channels.secrets). Raises InvalidChannelURL for a URL nobody can use, ChannelSecretError for a
    reference that is malformed or not in ``secrets``."""
    url = resolve(url, secrets or {})
    scheme = url.strip().split("://", 1)[0].lower() if "://" in url else ""
    kwargs = {} if timeout_s is None else {"timeout_s": timeout_s}
    if scheme == "console":
        return ConsoleChannel()
    if scheme in ("http", "https"):
        return WebhookChannel(url.strip(), **kwargs)
    return AppriseChannel(url, **kwargs)


__all__ = ["AppriseChannel", "Channel", "ChannelSecretError", "ConsoleChannel", "InvalidChannelURL", "Notification", "PermanentError",
           "RetryableError", "WebhookChannel", "channel_from_url"]

"""The channel contract: send() succeeds, or raises RetryableError or PermanentError."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ChannelError(Exception):
    """A delivery failed; the message never contains a secret."""


class RetryableError(ChannelError):
    """Worth trying again later (timeout, connection refused, 5xx, 429)."""


class PermanentError(ChannelError):
    """Trying again will not help (4xx, bad address, rejected credentials)."""


@dataclass(frozen=True, slots=True)
class Notification:
    """What is sent about one alert: a short text and the structured facts behind it."""

    alert_id: int
    event: str  # "opened" or "cleared" or "resolved"
    title: str
    text: str
    data: dict = field(default_factory=dict)


class Channel(Protocol):
    """A way to reach people; ``name`` is safe to log (no secrets)."""

    name: str

    def send(self, notification: Notification) -> None: ...

"""Notification channels; every one keeps the contract in alerts.channels.base."""

from alerts.channels.base import Channel, Notification, PermanentError, RetryableError
from alerts.channels.console import ConsoleChannel
from alerts.channels.webhook import WebhookChannel

__all__ = ["Channel", "ConsoleChannel", "Notification", "PermanentError", "RetryableError", "WebhookChannel"]

"""Retry with backoff until a deadline: the policy the outbox uses, and deliver() for a one-off send."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from alerts.channels.base import Channel, Notification, PermanentError, RetryableError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from ``first_delay_s`` up to ``max_delay_s``, giving up after ``deadline_s``."""

    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    deadline_s: float = 300.0

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.first_delay_s * 2 ** (attempt - 1), self.max_delay_s)

    def delays(self) -> list[float]:
        """The waits between attempts, in order, that fit before the deadline."""
        out, total = [], 0.0
        while total + (d := self.delay(len(out) + 1)) <= self.deadline_s:
            out.append(d)
            total += d
        return out


def deliver(channel: Channel, notification: Notification, policy: RetryPolicy,
            sleep: Callable[[float], None] = time.sleep) -> tuple[bool, int, str]:
    """Send with retries; return (delivered, attempts, last error). Never raises for channel errors."""
    attempts, error = 0, ""
    for wait in [0.0, *policy.delays()]:
        if wait:
            sleep(wait)
        attempts += 1
        try:
            channel.send(notification)
            return True, attempts, ""
        except RetryableError as exc:
            error = str(exc)
            log.warning("delivery via %s failed (attempt %d): %s", channel.name, attempts, error,
                        extra={"alert": notification.alert_id})
        except PermanentError as exc:
            return False, attempts, str(exc)
        except Exception as exc:  # noqa: BLE001 - a channel bug must not kill the worker
            return False, attempts, f"{type(exc).__name__} in {channel.name}"
    return False, attempts, error or "deadline passed"

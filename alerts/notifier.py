"""Notifier: delivers notifications on a worker thread, retrying with backoff until a deadline."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from alerts.channels.base import Channel, Notification, PermanentError, RetryableError
from shouwang.clock import Clock
from shouwang.domain import AlertEvent
from storage.base import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from ``first_delay_s`` up to ``max_delay_s``, giving up after ``deadline_s``."""

    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    deadline_s: float = 300.0

    def delays(self) -> list[float]:
        """The waits between attempts, in order, that fit before the deadline."""
        out, delay, total = [], self.first_delay_s, 0.0
        while total + delay <= self.deadline_s:
            out.append(delay)
            total += delay
            delay = min(delay * 2, self.max_delay_s)
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


class Notifier:
    """A queue and a worker thread; each delivery's outcome goes onto the alert's timeline."""

    def __init__(self, store: Store, clock: Clock, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self._queue: queue.Queue[tuple[Channel, Notification] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    def enqueue(self, channel: Channel, notification: Notification) -> None:
        self._queue.put((channel, notification))

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued notification has been delivered or given up on."""
        q = self._queue
        with q.all_tasks_done:
            return q.all_tasks_done.wait_for(lambda: q.unfinished_tasks == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._deliver(*job)
            finally:
                self._queue.task_done()

    def _deliver(self, channel: Channel, n: Notification) -> None:
        ok, attempts, error = deliver(channel, n, self.policy, self.sleep)
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.error("giving up on %s after %d attempts: %s", channel.name, attempts, error,
                      extra={"alert": n.alert_id})
        kind = "notified" if ok else "notify_failed"
        detail = f"{n.event} via {channel.name} after {attempts} attempt(s)" + (f": {error}" if error else "")
        try:
            self.store.add_alert_event(AlertEvent(n.alert_id, int(self.clock.now()), kind, "notifier", detail))
        except Exception:
            log.exception("could not record delivery", extra={"alert": n.alert_id})

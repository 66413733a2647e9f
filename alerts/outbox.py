"""OutboxWorker: delivers queued messages, retrying with backoff, failing over to a person's next channel."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

from alerts.channels.base import Channel, Notification, PermanentError, RetryableError
from alerts.notifier import RetryPolicy
from shouwang.clock import Clock
from shouwang.domain import AlertEvent, AlertStatus, OutboxItem
from storage.base import NotFound, Store

log = logging.getLogger(__name__)

# Messages that ask a person to act on a case; one still queued when the case is closed is not sent.
CASE_STEPS = frozenset({"opened", "escalated", "reminder", "sla"})


class OutboxWorker:
    """Polls the outbox; each attempt's result goes on the alert's timeline; nothing is lost in a crash.

    A message is marked 'sending' before the attempt and 'sent' after it, so a crash in between means it is
    sent again after the restart (at-least-once in that short window, never lost).
    """

    def __init__(
        self,
        store: Store,
        event_clock: Clock,
        wall: Clock,
        make_channel: Callable[[str], Channel],
        policy: RetryPolicy | None = None,
        poll_s: float = 0.2,
        communities: Collection[str] | None = None,
    ) -> None:
        self.store = store
        self.communities = communities  # a shard's: only their messages are claimed (shouwang/sharding.py)
        self.event_clock = event_clock
        self.wall = wall
        self.make_channel = make_channel
        self.policy = policy or RetryPolicy()
        self.poll_s = poll_s
        self._channels: dict[str, Channel] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self.sent = 0
        self.failed = 0
        self.cancelled = 0

    def start(self) -> None:
        requeued = self.store.requeue_interrupted(self.communities)
        if requeued:
            log.warning("%d message(s) were being sent when the service stopped; sending them again", requeued)
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (new messages were queued)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.drain_once()
            except Exception:
                log.exception("outbox pass failed; trying again")
                busy = 0
            if not busy:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def drain_once(self, limit: int = 50) -> int:
        """Attempt every due message once; return how many were attempted."""
        items = self.store.claim_due(self.wall.now(), limit, self.communities)
        for item in items:
            self._attempt(item)
        return len(items)

    def _channel(self, url: str) -> Channel:
        if url not in self._channels:
            self._channels[url] = self.make_channel(url)
        return self._channels[url]

    def _case_closed(self, item: OutboxItem) -> bool:
        """A person's call to act on cases that are all closed by now (retried, or queued before the closing)."""
        if item.person is None or item.kind not in CASE_STEPS:
            return False
        try:
            return all(self.store.alert(a).status == AlertStatus.RESOLVED for a in item.alert_ids)
        except NotFound:
            return False
        except Exception:  # the store hiccuped: better a message too many than one stuck in 'sending'
            log.exception("could not read the status of alerts %s; sending", item.alert_ids,
                          extra={"alert": item.alert_ids[0]})
            return False

    def _attempt(self, item: OutboxItem) -> None:
        assert item.id is not None
        attempts = item.attempts + 1
        now_event = int(self.event_clock.now())
        who = item.person or "watcher"
        if self._case_closed(item):
            self.cancelled += 1
            log.info("not sending %s to %s: the case is closed", item.kind, who, extra={"alert": item.alert_ids[0]})
            events = [AlertEvent(a, now_event, "not_sent", "outbox", f"{item.kind} to {who}: the case was closed first")
                      for a in item.alert_ids]
            self.store.finish_delivery(item.id, "cancelled", item.attempts, item.next_attempt_at, "case closed", None,
                                       events)
            return
        try:
            channel = self._channel(item.url)
            name = channel.name
            channel.send(Notification(item.alert_ids[0], item.kind, item.title, item.text, item.data))
        except RetryableError as exc:
            delay = self.policy.delay(attempts)
            retry_at = self.wall.now() + delay
            if retry_at <= item.deadline_at:
                self.store.finish_delivery(item.id, "pending", attempts, retry_at, str(exc), None)
                return
            self._give_up(item, attempts, str(exc), now_event)
            return
        except (PermanentError, ValueError) as exc:
            self._give_up(item, attempts, str(exc), now_event)
            return
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the outbox
            self._give_up(item, attempts, f"{type(exc).__name__} in channel", now_event)
            return
        self.sent += 1
        events = [AlertEvent(a, now_event, "notified", "outbox",
                             f"{item.kind} to {who} via {name} (attempt {attempts})") for a in item.alert_ids]
        self.store.finish_delivery(item.id, "sent", attempts, item.next_attempt_at, "", self.wall.now(), events)
        for a in item.alert_ids:
            self.store.mark_notified(a, now_event)

    def _give_up(self, item: OutboxItem, attempts: int, error: str, now_event: int) -> None:
        """Mark failed; fail over to the person's next channel if there is one."""
        assert item.id is not None
        self.failed += 1
        followup = None
        nxt = item.channel_index + 1
        if item.person is not None:
            try:
                channels = self.store.person(item.person).channels
            except NotFound:
                channels = ()
            if nxt < len(channels):
                t0 = self.wall.now()
                followup = OutboxItem(item.alert_ids, channels[nxt], item.kind, item.title, item.text, item.data,
                                      item.person, nxt, 0, t0, t0 + self.policy.deadline_s)
        what = f"failing over to channel {nxt + 1}" if followup else "no channel left"
        log.error("giving up on %s after %d attempt(s): %s; %s", item.person or "watcher", attempts, error, what,
                  extra={"alert": item.alert_ids[0]})
        events = [AlertEvent(a, now_event, "notify_failed", "outbox",
                             f"{item.kind} to {item.person or 'watcher'} failed after {attempts} attempt(s): "
                             f"{error}; {what}") for a in item.alert_ids]
        self.store.finish_delivery(item.id, "failed", attempts, item.next_attempt_at, error, None, events, followup)


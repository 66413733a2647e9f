"""BatchWriter: stores validated readings in batches and acknowledges them; a thread beside it updates the state."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ingest.acks import send_acks
from ingest.handler import HandleResult
from ingest.stats import IngestStats
from shouwang.domain import GatewayStatus, Reading, Rejection
from shouwang.state import HouseholdState
from storage.base import Store

log = logging.getLogger(__name__)
LINGER_POLL_S = 0.002  # while a batch waits for more messages, how often the writer looks at the queue
FOLD_IDLE_S = 1.0  # when no fold is due, the fold thread asks again after the next batch or this long
APPLY_AHEAD = 2  # stored batches that may wait for the state thread before the writer waits for it
APPLY_BESIDE_MIN = 1000  # readings in a batch from which it goes to the state thread (a smaller one, with none
# waiting there, is applied on the writer's own thread: handing a few hundred readings over costs more than it saves)


@dataclass(frozen=True, slots=True)
class Pending:
    """A handled message waiting to be stored; ``ack`` tells the broker we have it."""

    result: HandleResult
    ack: Callable[[], None] | None = None


class HandOff(queue.Queue):
    """The bounded queue between the MQTT thread and the writer, with the writer's side done a batch at a time:
    ``take`` moves every queued message up to a number of readings in one lock, ``done`` marks a stored batch in
    one; ``put`` (and the back-pressure when full), ``join`` and the counters are ``queue.Queue``'s own."""

    def take(self, readings: int) -> tuple[list[Pending], int]:
        """Queued messages, oldest first, until they carry at least ``readings`` readings or none are left; and how
        many readings they carry."""
        out: list[Pending] = []
        got = 0
        with self.mutex:
            q = self.queue
            while q and got < readings:
                item = q.popleft()
                out.append(item)
                got += len(item.result.readings)
            if out:
                self.not_full.notify(len(out))
        return out, got

    def done(self, n: int) -> None:
        """``task_done`` for ``n`` messages at once."""
        with self.all_tasks_done:
            unfinished = self.unfinished_tasks - n
            if unfinished < 0:
                raise ValueError("done() called for more messages than were put")
            self.unfinished_tasks = unfinished
            if unfinished == 0:
                self.all_tasks_done.notify_all()


class BatchWriter:
    """One thread that turns a bounded queue of handled messages into durable batches.

    A message is acknowledged only after everything it carried is stored, so a crash before that point
    makes the broker deliver it again (at-least-once; storage is idempotent). When the store is down, the
    writer retries with backoff, the queue fills, ``submit`` blocks, and the broker holds the rest.

    A stored batch goes on to the household state on a thread of its own ("state"), so that folding one batch
    into the state (Python, holding the GIL) overlaps storing the next (mostly SQLite, without it). The state is
    rebuilt from the store on a restart, so a batch acknowledged but not yet in the state is not lost by a crash.
    At most ``APPLY_AHEAD`` stored batches wait for it; ``wait_idle`` returns once a batch is in the state too.
    A batch of fewer than ``apply_beside_min`` readings, with none waiting, is applied on the writer's thread.
    """

    def __init__(
        self,
        store: Store,
        state: HouseholdState,
        stats: IngestStats,
        *,
        max_readings: int = 5000,
        max_delay_s: float = 0.2,
        queue_size: int = 10_000,
        gate: Callable[[], None] | None = None,
        on_applied: Callable[[], None] | None = None,
        apply_beside_min: int = APPLY_BESIDE_MIN,
    ) -> None:
        self.store = store
        self.on_applied = on_applied  # called after each batch is stored and in the state (wakes the detectors)
        self.gate = gate  # called before each batch is stored; blocks while an exporter lags (storage/influx.py)
        self.state = state
        self.stats = stats
        self.max_readings = max_readings
        self.max_delay_s = max_delay_s
        self._queue = HandOff(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        # The store's fold of recent readings (SQLite) runs beside the batches, mostly inside SQLite without the GIL;
        # the store gives a waiting batch the write lock before the next fold slice (storage/sql_recent.py).
        self._fold_thread = threading.Thread(target=self._fold_loop, name="fold", daemon=True)
        self._stored = threading.Event()  # set after each batch: a fold may have fallen due
        self._to_apply: queue.Queue[tuple[list[Reading], list[GatewayStatus], int] | None] = queue.Queue(APPLY_AHEAD)
        self._apply_thread = threading.Thread(target=self._apply_loop, name="state", daemon=True)
        self.apply_beside_min = apply_beside_min

    def start(self) -> None:
        self._thread.start()
        self._fold_thread.start()
        self._apply_thread.start()

    def submit(self, item: Pending) -> None:
        """Queue a handled message; blocks when the queue is full (back-pressure on the broker)."""
        self._queue.put(item)

    def wait_idle(self, timeout: float) -> bool:
        """Block until everything submitted so far is stored and in the state (for tests and graceful shutdown)."""
        q = self._queue
        with q.all_tasks_done:
            return q.all_tasks_done.wait_for(lambda: q.unfinished_tasks == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Drain what is queued, store it, then stop."""
        self._stop.set()
        self._stored.set()
        self._thread.join(timeout)
        self._fold_thread.join(timeout)
        self._apply_thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                batch = self._collect()
                if batch:
                    self._flush(batch)
                    self._stored.set()
                elif self._stop.is_set():
                    return
        finally:
            self._to_apply.put(None)  # the state thread ends after the batches before it

    def _collect(self) -> list[Pending]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch, n = [first], len(first.result.readings)
        deadline = time.monotonic() + self.max_delay_s
        while n < self.max_readings:
            more, got = self._queue.take(self.max_readings - n)
            if more:
                batch += more
                n += got
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Look again in a moment rather than block on the queue: a blocked get wakes this thread for every
            # single message, and that hand-over of the GIL per message cost more than the storing.
            time.sleep(min(remaining, LINGER_POLL_S))
        return batch

    def _flush(self, batch: list[Pending]) -> None:
        readings: list[Reading] = [r for p in batch for r in p.result.readings]
        rejections: list[Rejection] = [r for p in batch for r in p.result.rejections]
        statuses: list[GatewayStatus] = [p.result.status for p in batch if p.result.status is not None]
        duplicates = sum(p.result.duplicates for p in batch)
        if self.gate is not None:
            self.gate()  # back-pressure: nothing is acknowledged, so the broker holds the rest meanwhile
        late = [pair for p in batch for pair in p.result.late]
        if late:
            readings, found, conflicts = self._settle_late(readings, late)
            duplicates += found
            rejections += conflicts
        # each write retried on its own: a retry never stores (and counts, and feeds) the readings again
        self._durably(lambda: self._store_readings(readings))
        self._durably(lambda: self.store.add_rejections(rejections))
        for s in statuses:
            self._durably(lambda s=s: self.store.set_gateway_status(s))
        self.stats.add("messages", len(batch))
        self.stats.add("duplicates", duplicates)
        for rej in rejections:
            self.stats.add(f"rejected.{rej.reason}")
        self.acknowledge([p.ack for p in batch])
        # the state thread's batches were stored before this one: while it has any, this one queues behind them
        if len(readings) < self.apply_beside_min and self._to_apply.unfinished_tasks == 0:
            self._apply(readings, statuses, len(batch))
        else:
            self._to_apply.put((readings, statuses, len(batch)))  # waits while APPLY_AHEAD batches are waiting

    def _apply_loop(self) -> None:
        """Fold stored batches into the household state, in the order they were stored."""
        while (job := self._to_apply.get()) is not None:
            try:
                self._apply(*job)
            finally:
                self._to_apply.task_done()

    def _apply(self, readings: list[Reading], statuses: list[GatewayStatus], messages: int) -> None:
        """Fold a stored batch into the household state and wake the detectors; its messages are then done."""
        try:
            self.state.apply(readings)
            for s in statuses:
                self.state.set_gateway_status(s)
            if self.on_applied is not None and (readings or statuses):
                self.on_applied()
        except Exception:  # a bug here must not stop ingest: the readings are stored, a restart rebuilds state
            self.stats.add("state_errors")
            log.exception("updating the household state with %d stored readings failed", len(readings))
        finally:
            self._queue.done(messages)

    def acknowledge(self, acks: list[Callable[[], None] | None]) -> int:
        """Tell the broker a stored batch's messages are safe (ingest/acks.py); how many acknowledgements went."""
        return send_acks(acks)

    def _fold_loop(self) -> None:
        """Slice after slice of the store's fold of recent readings while one is due; otherwise wait for a batch."""
        while not self._stop.is_set():
            if not self._fold():
                self._stored.wait(FOLD_IDLE_S)
                self._stored.clear()

    def _fold(self) -> int:
        """One slice of the store's fold of recent readings, when one is due; how many readings it moved."""
        try:
            folded = self.store.fold_readings()
        except Exception:  # the readings stay in the recent table; the next try starts the pass over
            self.stats.add("fold_errors")
            log.exception("folding recent readings failed; trying again shortly")
            return 0
        if folded:
            self.stats.add("readings_folded", folded)
        return folded

    def _settle_late(self, readings: list[Reading], late: list[tuple[Reading, Rejection]],
                     ) -> tuple[list[Reading], int, list[Rejection]]:
        """Late readings whose time the store already holds: the same value is a duplicate (a redelivery), another
        one is refused as conflicting_duplicate; both leave the batch. (readings, duplicates, rejections)."""
        stored: dict[tuple[str, int], float] = {}

        def look_up() -> None:
            stored.update(self.store.stored_values([(r.meter, r.ts) for r, _ in late]))

        self._durably(look_up)
        held, conflicts = set(), []
        for r, rejection in late:
            key = (r.meter, r.ts)
            value = stored.get(key)
            if value is None:
                stored[key] = r.value  # stored with this batch: a second late reading of that time meets it
                continue
            held.add(id(r))
            if value != r.value:
                conflicts.append(replace(rejection, detail=f"meter {r.meter}: {r.value} at {r.ts} differs from "
                                                           f"the stored {value}"))
        kept = [r for r in readings if id(r) not in held] if held else readings
        return kept, len(held) - len(conflicts), conflicts

    def _store_readings(self, readings: list[Reading]) -> None:
        new = self.store.write_readings(readings)
        self.stats.add("readings_stored", new)
        self.stats.add("readings_accepted", len(readings))

    def _durably(self, write: Callable[[], None]) -> None:
        delay = 0.1
        while True:
            try:
                write()
                return
            except Exception as exc:  # noqa: BLE001 - store down or slow: keep the batch, back off, retry
                self.stats.add("store_errors")
                log.warning("store write failed (%s); retrying in %.1f s", type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

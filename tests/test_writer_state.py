"""The batch writer's state thread: stored batches are acknowledged, then folded into the household state beside
the next batch's storing; the writer runs at most a few batches ahead of it, and a failure there stops nothing."""

from __future__ import annotations

import threading

import pytest
from conftest import small_registry
from faults_support import wait_until

from ingest.handler import HandleResult
from ingest.stats import IngestStats
from ingest.writer import APPLY_AHEAD, BatchWriter, Pending
from shouwang.domain import Reading
from shouwang.state import NEVER, ActivityModel, HouseholdState
from storage.sql import open_store


class GatedState(HouseholdState):
    """A real household state whose ``apply`` waits for ``gate`` (a slow state thread; only on the calls numbered
    in ``gated_calls``, if given), or raises on the calls numbered in ``fail_calls``."""

    def __init__(self, *args, fail_calls: frozenset[int] = frozenset(), gated_calls: frozenset[int] | None = None,
                 **kw) -> None:
        super().__init__(*args, **kw)
        self.gate, self.calls, self.fail_calls, self.gated_calls = threading.Event(), 0, fail_calls, gated_calls

    def apply(self, readings: list[Reading]) -> None:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError("a bug in the state")
        if self.gated_calls is None or self.calls in self.gated_calls:
            assert self.gate.wait(30)
        super().apply(readings)


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'writer.db'}")
    s.upsert_registry(small_registry())
    yield s
    s.close()


def _messages(n: int) -> list[list[Reading]]:
    """``n`` messages of one reading per meter of the small registry, each a quarter hour after the last."""
    meters = [m.id for m in small_registry().meters]
    return [[Reading(m, 1_000 + k * 900, float(k)) for m in meters] for k in range(n)]


def test_batches_are_acknowledged_once_stored_and_the_writer_runs_only_a_few_ahead_of_the_state(store) -> None:
    state = GatedState(small_registry(), ActivityModel())
    stats, acked = IngestStats(), []
    messages = _messages(8)
    per_message = len(messages[0])
    writer = BatchWriter(store, state, stats, max_readings=per_message, max_delay_s=0.0,  # a message a batch
                         apply_beside_min=0)  # every batch to the state thread, however small
    writer.start()
    submitted = 0

    def submit(n: int) -> None:
        nonlocal submitted
        for k in range(submitted, submitted + n):
            writer.submit(Pending(HandleResult(readings=messages[k]), ack=lambda k=k: acked.append(k)))
        submitted += n

    try:
        submit(APPLY_AHEAD + 1)  # one batch in the state thread, the others waiting for it
        wait_until(lambda: len(acked) == APPLY_AHEAD + 1, 10, "the writer to store and acknowledge the batches")
        assert stats.get("readings_stored") == (APPLY_AHEAD + 1) * per_message
        assert not writer.wait_idle(0.3)  # stored, but not in the state yet: not idle
        assert (state.last_ts == NEVER).all()
        submit(len(messages) - submitted)  # one more is stored and waits to join the others; then the writer waits
        wait_until(lambda: len(acked) == APPLY_AHEAD + 2, 10, "the writer to store one more batch")
        assert not writer.wait_idle(0.3)
        assert acked == list(range(APPLY_AHEAD + 2)) and stats.get("readings_stored") == len(acked) * per_message
        state.gate.set()
        assert writer.wait_idle(10)
    finally:
        writer.stop()
    assert acked == list(range(len(messages)))
    assert int(state.last_ts.min()) == messages[-1][0].ts  # every batch reached the state, in order


def test_a_failure_in_the_state_is_counted_and_later_batches_go_on(store) -> None:
    state = GatedState(small_registry(), ActivityModel(), fail_calls=frozenset({2}))
    state.gate.set()
    stats = IngestStats()
    messages = _messages(4)
    writer = BatchWriter(store, state, stats, max_readings=len(messages[0]), max_delay_s=0.0, apply_beside_min=0)
    writer.start()
    try:
        for readings in messages:
            writer.submit(Pending(HandleResult(readings=readings)))
        assert writer.wait_idle(10)
    finally:
        writer.stop()
    assert stats.get("state_errors") == 1 and state.calls == len(messages)
    assert stats.get("readings_stored") == sum(map(len, messages))
    assert int(state.last_ts.min()) == messages[-1][0].ts
    assert len(list(store.readings_since(0))) == sum(map(len, messages))  # stored whatever the state did


def test_a_small_batch_with_none_waiting_is_applied_on_the_writers_thread(store) -> None:
    """A few hundred readings cost less to apply than to hand over: the writer applies them itself, so it stores
    nothing more until the state has the batch."""
    state = GatedState(small_registry(), ActivityModel())
    stats, acked = IngestStats(), []
    messages = _messages(3)
    writer = BatchWriter(store, state, stats, max_readings=len(messages[0]), max_delay_s=0.0)
    assert len(messages[0]) < writer.apply_beside_min
    writer.start()
    try:
        for k, readings in enumerate(messages):
            writer.submit(Pending(HandleResult(readings=readings), ack=lambda k=k: acked.append(k)))
        wait_until(lambda: acked == [0], 10, "the first batch to be stored and acknowledged")
        assert not writer.wait_idle(0.3) and acked == [0]  # the writer itself waits in the state's apply
        state.gate.set()
        assert writer.wait_idle(10)
    finally:
        writer.stop()
    assert acked == [0, 1, 2] and int(state.last_ts.min()) == messages[-1][0].ts


def test_a_small_batch_waits_behind_a_large_one_in_the_state_thread(store) -> None:
    """Batches reach the state in the order they were stored: a small one stored while a large one is still in the
    state thread queues behind it rather than being applied at once (its newer readings would make the large
    batch's older ones late, and the state would skip them)."""
    state = GatedState(small_registry(), ActivityModel(), gated_calls=frozenset({1}))
    stats, acked = IngestStats(), []
    (t1, t2, t3) = (m[0].ts for m in _messages(3))
    large, small = [r for m in _messages(2) for r in m], _messages(3)[2]
    writer = BatchWriter(store, state, stats, max_readings=len(large), max_delay_s=0.0,
                         apply_beside_min=len(small) + 1)
    writer.start()
    try:
        writer.submit(Pending(HandleResult(readings=large), ack=lambda: acked.append("large")))
        wait_until(lambda: acked == ["large"] and state.calls == 1, 10, "the large batch in the state thread")
        writer.submit(Pending(HandleResult(readings=small), ack=lambda: acked.append("small")))
        wait_until(lambda: acked == ["large", "small"], 10, "the small batch to be stored")
        assert not writer.wait_idle(0.3) and state.calls == 1  # it waits behind the large one
        state.gate.set()
        assert writer.wait_idle(10)
    finally:
        writer.stop()
    assert (state.first_ts == t1).all() and (state.last_ts == t3).all() and t1 < t2 < t3

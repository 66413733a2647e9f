"""The fold of recent readings beside the batch writer: turns at SQLite's write lock, and the writer's fold thread."""

from __future__ import annotations

import threading

from conftest import small_registry
from faults_support import wait_until

from ingest.handler import HandleResult
from ingest.stats import IngestStats
from ingest.writer import BatchWriter, Pending
from shouwang.domain import Reading
from shouwang.state import ActivityModel, HouseholdState
from storage.sql import open_store
from storage.sql_recent import WritersFirst


def test_a_waiting_batch_goes_before_the_next_fold_slice() -> None:
    turns, order = WritersFirst(), []
    in_slice, end_slice = threading.Event(), threading.Event()

    def first_slice() -> None:
        with turns.fold():
            in_slice.set()
            end_slice.wait(10)
            order.append("slice 1")

    def batch() -> None:
        with turns.write():
            order.append("batch")

    def second_slice() -> None:
        with turns.fold():
            order.append("slice 2")

    threads = [threading.Thread(target=f) for f in (first_slice, batch, second_slice)]
    threads[0].start()
    assert in_slice.wait(10)
    threads[1].start()
    wait_until(lambda: turns.writes_waiting == 1, 10, "the batch to wait for its turn")
    threads[2].start()  # asks while the batch waits: it must come after it
    end_slice.set()
    for th in threads:
        th.join(10)
    assert order == ["slice 1", "batch", "slice 2"]


def test_a_fold_slice_waits_for_the_batch_under_way() -> None:
    turns, order = WritersFirst(), []
    in_batch, end_batch = threading.Event(), threading.Event()

    def batch() -> None:
        with turns.write():
            in_batch.set()
            end_batch.wait(10)
            order.append("batch")

    def fold_slice() -> None:
        with turns.fold():
            order.append("slice")

    b, f = threading.Thread(target=batch), threading.Thread(target=fold_slice)
    b.start()
    assert in_batch.wait(10)
    f.start()
    f.join(0.2)
    assert f.is_alive() and order == []  # still waiting
    end_batch.set()
    b.join(10)
    f.join(10)
    assert order == ["batch", "slice"]


def test_the_writer_folds_on_its_own_thread_and_every_reading_is_kept_once(tmp_path) -> None:
    registry = small_registry()
    store = open_store(f"sqlite:///{tmp_path / 'fold.db'}")
    store.upsert_registry(registry)
    store.fold_rows, store.fold_keep_s = 30, 0  # a pass after every few batches, the whole recent table each time
    stats = IngestStats()
    writer = BatchWriter(store, HouseholdState(registry, ActivityModel()), stats, max_readings=20, max_delay_s=0.0)
    meters = [m.id for m in registry.meters]
    readings = [Reading(m, 1_000 + step * 900, float(step)) for step in range(40) for m in meters]
    acked: list[int] = []
    writer.start()
    try:
        for r in range(0, len(readings), 40):  # rounds of four messages: the recent table grows by 40, a pass is due
            folded = stats.get("readings_folded")
            for i in range(r, r + 40, 10):
                writer.submit(Pending(HandleResult(readings=readings[i:i + 10]), ack=lambda i=i: acked.append(i)))
            assert writer.wait_idle(30)
            wait_until(lambda f=folded: stats.get("readings_folded") > f, 30, "the fold thread to fold the round")
    finally:
        writer.stop()
    left = store.recent_count()
    store.close()
    assert len(acked) == len(readings) // 10
    assert stats.get("readings_stored") == len(readings) == stats.get("readings_folded") + left
    reopened = open_store(f"sqlite:///{tmp_path / 'fold.db'}")
    try:
        assert list(reopened.readings_since(0)) == sorted(readings, key=lambda r: (r.ts, r.meter))
    finally:
        reopened.close()


def _wal_frames(store) -> int:
    """Frames in the WAL now, as a passive checkpoint reports them."""
    with store.engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1]


def test_the_fold_thread_checkpoints_the_wal_and_the_pass_connection_goes_back_durable(tmp_path) -> None:
    registry = small_registry()
    store = open_store(f"sqlite:///{tmp_path / 'ckpt.db'}")
    meters = [m.id for m in registry.meters]
    try:
        store.upsert_registry(registry)
        with store.engine.connect() as conn:  # small writes leave checkpoints to the fold thread
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
        store.write_readings([Reading(m, 1_000 + s * 900, float(s)) for s in range(3000) for m in meters])
        store.fold_span_s = 10**9
        assert store.fold_readings() == 0  # no pass due: only the checkpoint
        store.write_readings([Reading(meters[0], 1_000 + 3000 * 900, 3000.0)])
        # the WAL began again after the checkpoint: it holds the last write's few pages, not everything before
        assert _wal_frames(store) < 10

        store.fold_keep_s, store.fold_slice_rows = 0, 40
        assert store.fold_all() > 0  # passes commit with synchronous=NORMAL on a connection of the pool
        assert store.fold_all() == 0  # and a pass that finds the recent table empty gives its connection back too
        conns = [store.engine.connect() for _ in range(5)]  # the pool's connections, the pass's among them
        try:
            assert {c.exec_driver_sql("PRAGMA synchronous").scalar() for c in conns} == {2}  # all FULL again
        finally:
            for c in conns:
                c.close()
    finally:
        store.close()

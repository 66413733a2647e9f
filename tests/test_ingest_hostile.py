"""Hostile input through the real handler and writer into each store: what PostgreSQL cannot keep as sent (NUL,
over-long ids and topics) is kept cleaned, and never holds up the good readings beside it or after it."""

from __future__ import annotations

import json

import pytest
from conftest import small_registry

from ingest.handler import MessageHandler
from ingest.stats import IngestStats
from ingest.writer import BatchWriter, Pending
from shouwang.state import ActivityModel, HouseholdState

NOW = 1_795_300_000
T = "shouwang/v1/c1/G1/readings"


def reading(meter: str, ts: int, value: float, kind: str = "water") -> dict:
    return {"meter": meter, "kind": kind, "ts": ts, "value": value}


HOSTILE = [  # (topic, payload, reasons refused), each with good readings beside it or after it
    (T, {"readings": [reading("H1-W", NOW - 900, 1.0), reading("M" * 65, NOW - 900, 1.0)]}, ["invalid_field"]),
    (T, {"readings": [reading("H1-\x00W", NOW - 800, 1.0), reading("H2-W", NOW - 800, 2.0)]}, ["unknown_meter"]),
    (T, b'{"meter": "H1-W", "note": "\x00\x00', ["bad_json"]),
    ("shouwang/v1/c1/" + "G" * 320 + "/readings", {"readings": [reading("H1-W", NOW - 700, 1.1)]},
     ["unknown_gateway"]),
    (T, {"readings": [reading("H1-W", NOW - 600, 1.2), reading("H1-E", NOW - 600, 7.0, "electricity")]}, []),
]


@pytest.fixture
def writer(any_store):
    any_store.upsert_registry(small_registry())
    stats = IngestStats()
    w = BatchWriter(any_store, HouseholdState(small_registry(), ActivityModel()), stats, max_readings=1,
                    max_delay_s=0.0)
    w.start()
    yield w, any_store, stats
    w.stop()


def test_hostile_messages_are_kept_cleaned_and_every_good_reading_is_stored_and_acknowledged(writer) -> None:
    w, store, stats = writer
    handler = MessageHandler(small_registry(), "shouwang/v1", "Asia/Shanghai", 600)
    acked: list[int] = []
    for n, (topic, payload, _reasons) in enumerate(HOSTILE):
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        w.submit(Pending(handler.handle(topic, raw, NOW), ack=lambda n=n: acked.append(n)))
    assert w.wait_idle(20)
    assert acked == list(range(len(HOSTILE))) and stats.get("store_errors") == 0
    assert sorted((r.meter, r.ts) for r in store.readings_since(0)) == [
        ("H1-E", NOW - 600), ("H1-W", NOW - 900), ("H1-W", NOW - 600), ("H2-W", NOW - 800)]
    kept = store.rejections()[::-1]
    assert [r.reason for r in kept] == [reason for *_, reasons in HOSTILE for reason in reasons]
    long_meter, nul_meter, nul_payload, long_topic = kept
    assert long_meter.meter is None and "M" * 65 in long_meter.payload  # the id does not fit; the payload has it
    assert nul_meter.meter is None and "H1-\\u0000W" in nul_meter.payload
    assert "\x00" not in nul_payload.payload and "\ufffd\ufffd" in nul_payload.payload
    assert len(long_topic.topic) == 300 and long_topic.topic.startswith("shouwang/v1/c1/GGG")
    assert stats.get("readings_accepted") == 4


def test_a_write_failing_after_the_readings_are_stored_is_retried_alone(writer, monkeypatch) -> None:
    """The rejections' write fails once (the database dropped the connection) after the readings' commit: only it is
    tried again, so the readings are not stored, counted or fed to followers a second time."""
    w, store, stats = writer
    real, calls = store.add_rejections, []

    def fails_once(rejections):
        calls.append(len(rejections))
        if len(calls) == 1:
            raise ConnectionError("server closed the connection")
        real(rejections)

    monkeypatch.setattr(store, "add_rejections", fails_once)
    monkeypatch.setattr(store, "write_readings", counting := _Counting(store.write_readings))
    handler = MessageHandler(small_registry(), "shouwang/v1", "Asia/Shanghai", 600)
    topic, payload, _ = HOSTILE[0]
    w.submit(Pending(handler.handle(topic, json.dumps(payload).encode(), NOW)))
    assert w.wait_idle(20)
    assert stats.get("store_errors") == 1 and calls == [1, 1] and counting.calls == 1
    assert stats.get("readings_accepted") == 1 and stats.get("readings_stored") == 1
    assert [r.reason for r in store.rejections()] == ["invalid_field"]


class _Counting:
    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


def test_a_late_reading_is_stored_refused_or_counted_as_the_store_holds_its_time(writer) -> None:
    """A reading older than its meter's latest is checked against the store: a time it does not hold is stored, the
    same value again is a duplicate (a redelivery), another value is refused as conflicting_duplicate and kept."""
    w, store, stats = writer
    handler = MessageHandler(small_registry(), "shouwang/v1", "Asia/Shanghai", 600)
    messages = [
        [reading("H1-W", NOW - 900, 1.0), reading("H1-W", NOW - 300, 2.0)],
        [reading("H1-W", NOW - 900, 1.5)],  # late, and the store holds 1.0 at that time
        [reading("H1-W", NOW - 900, 1.0)],  # late, the very reading again
        [reading("H1-W", NOW - 600, 1.2)],  # late, a time the store does not hold
        [reading("H1-W", NOW - 450, 1.3), reading("H1-W", NOW - 450, 1.35)],  # late twice at a new time: one kept
    ]
    for readings in messages:
        w.submit(Pending(handler.handle(T, json.dumps({"readings": readings}).encode(), NOW)))
    assert w.wait_idle(20)
    assert [(r.ts, r.value) for r in store.readings("H1-W")] == [
        (NOW - 900, 1.0), (NOW - 600, 1.2), (NOW - 450, 1.3), (NOW - 300, 2.0)]
    conflict, second = store.rejections()[::-1]
    assert conflict.reason == "conflicting_duplicate" and conflict.meter == "H1-W"
    assert conflict.detail == f"meter H1-W: 1.5 at {NOW - 900} differs from the stored 1.0"
    assert second.detail == f"meter H1-W: 1.35 at {NOW - 450} differs from the stored 1.3"
    assert (stats.get("duplicates"), stats.get("readings_accepted"), stats.get("rejected.conflicting_duplicate")) == (
        1, 4, 2)

"""Ingest validation: every way a message can be wrong, and good readings beside bad ones are kept."""

from __future__ import annotations

import json

import pytest
from conftest import small_registry

from ingest.handler import MessageHandler

NOW = 1_795_300_000  # 2026-11-21T22:26:40Z, 06:26:40 in Shanghai
T = "shouwang/v1/c1/G1/readings"


@pytest.fixture
def handler():
    return MessageHandler(small_registry(), "shouwang/v1", "Asia/Shanghai", 600)


def r(meter="H1-W", kind="water", ts=NOW - 60, value=1.5, **extra):
    return {"meter": meter, "kind": kind, "ts": ts, "value": value, **extra}


@pytest.mark.parametrize("topic,payload,reason", [
    ("shouwang/v1/c1/G1", b"{}", "bad_topic"),
    ("other/v1/c1/G1/readings", b"{}", "bad_topic"),
    ("shouwang/v1/c1/G9/readings", b"{}", "unknown_gateway"),
    ("shouwang/v1/c2/G1/readings", b"{}", "unknown_gateway"),
    (T, b"{not json", "bad_json"),
    (T, b"\xff\xfe", "bad_json"),
    (T, b"[1, 2]", "bad_shape"),
    (T, b'{"readings": 5}', "bad_shape"),
    (T, json.dumps(r(value="12.5")).encode(), "invalid_field"),
    (T, json.dumps(r(value=None)).encode(), "invalid_field"),
    (T, json.dumps(r(kind="gas")).encode(), "invalid_field"),
    (T, json.dumps({"kind": "water", "ts": NOW, "value": 1}).encode(), "bad_shape"),
    (T, json.dumps(r(value=-0.5)).encode(), "negative_value"),
    (T, json.dumps(r(ts="yesterday")).encode(), "bad_timestamp"),
    (T, json.dumps(r(ts=-5)).encode(), "bad_timestamp"),
    (T, json.dumps(r(ts="1969-12-31T23:59:59Z")).encode(), "bad_timestamp"),  # a string before 1970, as a number is
    (T, json.dumps(r(ts="0001-01-01T00:00:00+14:00")).encode(), "bad_timestamp"),
    (T, json.dumps(r(ts="9999-12-31T23:59:59-14:00")).encode(), "bad_timestamp"),
    (T, json.dumps(r(ts="2026-11-21")).encode(), "bad_timestamp"),  # a date alone: Python reads it, the protocol not
    (T, json.dumps(r(ts="2026-W47-6")).encode(), "bad_timestamp"),
    (T, b'{"meter": "H1-W", "kind": "water", "ts": 1795299940, "value": NaN}', "invalid_field"),
    (T, b'{"meter": "H1-W", "kind": "water", "ts": 1795299940, "value": 1e400}', "invalid_field"),
    (T, b'{"meter": "H1-W", "kind": "water", "ts": Infinity, "value": 1.5}', "bad_timestamp"),
    (T, '{"meter": "H1-W", "kind": "water", "ts": 1795299940, "value": 1}'.encode("utf-16"), "bad_json"),
    (T, b'{"meter": "\\ud800", "kind": "water", "ts": 1795299940, "value": NaN}', "bad_json"),  # a lone surrogate
    (T, b'{"meter": "H1-W", "kind": "water", "ts": 1795299940, "value": 1' + b"0" * 400 + b"}", "invalid_field"),
    (T, json.dumps(r(ts=NOW + 3600)).encode(), "future_timestamp"),
    (T, json.dumps(r(meter="H9-W")).encode(), "unknown_meter"),
    (T, json.dumps(r(meter="H3-W")).encode(), "wrong_gateway"),
    (T, json.dumps(r(kind="electricity")).encode(), "kind_mismatch"),
    ("shouwang/v1/c1/G1/status", b"maybe", "bad_shape"),
])
def test_bad_messages_are_rejected_with_a_reason(handler, topic, payload, reason):
    result = handler.handle(topic, payload, NOW)
    assert result.readings == []
    assert [x.reason for x in result.rejections] == [reason]
    rej = result.rejections[0]
    assert rej.topic == topic and rej.detail and rej.received_at == NOW


def test_good_readings_in_a_batch_survive_bad_neighbours(handler):
    batch = {"gateway": "G1", "readings": [
        r(ts=NOW - 900, value=1.0), r(value="x"), r(meter="H2-E", kind="electricity", value=10.0),
        r(meter="nope"), r(ts=NOW - 600, value=0.5),  # backwards relative to the first
        r(ts="2026-11-22 06:25:00", value=1.2),  # local time = NOW - 100 s
    ]}
    result = handler.handle(T, json.dumps(batch).encode(), NOW)
    assert sorted((x.meter, x.value) for x in result.readings) == [("H1-W", 1.0), ("H1-W", 1.2), ("H2-E", 10.0)]
    assert sorted(x.reason for x in result.rejections) == ["invalid_field", "register_backwards", "unknown_meter"]


def test_one_number_no_double_holds_loses_only_its_reading(handler):
    """orjson refuses a whole payload for 1e400 or NaN (Python's json module writes NaN by default)."""
    payload = (b'{"readings": [{"meter": "H1-W", "kind": "water", "ts": 1795299000, "value": 1.0},'
               b' {"meter": "H1-E", "kind": "electricity", "ts": 1795299000, "value": NaN},'
               b' {"meter": "H2-W", "kind": "water", "ts": 1795299000, "value": 1e400},'
               b' {"meter": "H2-E", "kind": "electricity", "ts": 1795299000, "value": 3.0}]}')
    result = handler.handle(T, payload, NOW)
    assert [(x.meter, x.value) for x in result.readings] == [("H1-W", 1.0), ("H2-E", 3.0)]
    assert [(x.reason, x.meter) for x in result.rejections] == [("invalid_field", "H1-E"), ("invalid_field", "H2-W")]


def test_time_zones_naive_local_offset_and_epoch(handler):
    from datetime import UTC, datetime

    midnight_utc = int(datetime(2026, 11, 21, tzinfo=UTC).timestamp())
    payload = {"readings": [
        r(ts="2026-11-21 08:00:00", value=1),            # naive: Asia/Shanghai, 00:00Z
        r(ts="2026-11-21T02:00:00+01:00", value=2),      # 01:00Z
        r(ts="2026-11-21T02:00:00Z", value=3),           # 02:00Z
        r(ts=midnight_utc + 3 * 3600, value=4),          # epoch seconds, 03:00Z
    ]}
    got = [(x.ts - midnight_utc) // 3600 for x in handler.handle(T, json.dumps(payload).encode(), NOW).readings]
    assert got == [0, 1, 2, 3]


def test_duplicates_are_not_rejections_but_conflicts_are(handler):
    one = json.dumps(r(ts=NOW - 100, value=2.0)).encode()
    assert len(handler.handle(T, one, NOW).readings) == 1
    again = handler.handle(T, one, NOW)
    assert again.readings == [] and again.rejections == [] and again.duplicates == 1
    clash = handler.handle(T, json.dumps(r(ts=NOW - 100, value=2.5)).encode(), NOW)
    assert [x.reason for x in clash.rejections] == ["conflicting_duplicate"]


def test_late_readings_fit_or_are_rejected(handler):
    handler.handle(T, json.dumps(r(ts=NOW - 100, value=2.0)).encode(), NOW)
    ok = handler.handle(T, json.dumps(r(ts=NOW - 5000, value=1.9)).encode(), NOW)
    assert len(ok.readings) == 1
    bad = handler.handle(T, json.dumps(r(ts=NOW - 5000, value=2.1)).encode(), NOW)
    assert [x.reason for x in bad.rejections] == ["register_backwards"]


def test_status_online_offline_text_and_json(handler):
    st = "shouwang/v1/c1/G2/status"
    assert handler.handle(st, b"offline", NOW).status.online is False
    assert handler.handle(st, b'{"status": "online", "firmware": "1.2"}', NOW).status.online is True


def test_rejected_payload_is_truncated(handler):
    big = b"x" * 10_000
    rej = handler.handle(T, big, NOW).rejections[0]
    assert len(rej.payload) < 2100 and rej.payload.startswith("xxx")


def test_recorded_gateway_payloads_are_accepted_whole():
    """Payloads a gateway (the simulator) really published, for community `demo` of build_community(10, seed=3)."""
    from pathlib import Path

    from simulators.community import build_community

    fixtures = Path(__file__).parent / "fixtures" / "gateway_payloads"
    h = MessageHandler(build_community(10, seed=3), "shouwang/v1", "Asia/Shanghai", 600)
    now = 1_798_000_000
    batch = h.handle("shouwang/v1/demo/GW-01/readings", (fixtures / "batch.json").read_bytes(), now)
    assert batch.rejections == [] and len(batch.readings) == 20
    single = h.handle("shouwang/v1/demo/GW-01/readings", (fixtures / "single.json").read_bytes(), now)
    assert single.rejections == [] and len(single.readings) + single.duplicates == 1
    will = json.loads((fixtures / "status_will_offline.json").read_text())
    status = h.handle("shouwang/v1/demo/GW-01/status", will.encode() if isinstance(will, str) else
                      json.dumps(will).encode(), now).status
    assert status is not None and status.online is False

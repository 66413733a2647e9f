"""reading_fields (the handler's fast path) accepts and refuses exactly what the pydantic model does."""

from __future__ import annotations

import pytest

from ingest.protocol import ProtocolError, parse_reading, reading_fields

GOOD = {"meter": "H1-W", "kind": "water", "ts": 1_795_300_000, "value": 1.5}


@pytest.mark.parametrize("raw", [
    GOOD,
    {**GOOD, "kind": "electricity", "value": 3},
    {**GOOD, "ts": 1_795_300_000.5},
    {**GOOD, "ts": "2026-11-21 08:00:00"},
    {**GOOD, "value": 0},
    {**GOOD, "meter": "x" * 64},
    {**GOOD, "extra": [1, 2]},
])
def test_valid_readings_give_the_models_fields(raw):
    r = parse_reading(raw)
    assert reading_fields(raw) == (r.meter, str(r.kind), r.ts, r.value)


@pytest.mark.parametrize("raw", [
    {**GOOD, "value": -0.5},
    {**GOOD, "value": -3, "kind": "gas"},  # negative is reported before anything else, as before
    {**GOOD, "value": "1.5"},
    {**GOOD, "value": True},
    {**GOOD, "value": None},
    {**GOOD, "value": float("inf")},
    {**GOOD, "value": float("nan")},
    {**GOOD, "kind": "WATER"},
    {**GOOD, "kind": "gas"},
    {**GOOD, "kind": 1},
    {**GOOD, "meter": ""},
    {**GOOD, "meter": "x" * 65},
    {**GOOD, "meter": 7},
    {**GOOD, "ts": True},
    {**GOOD, "ts": None},
    {**GOOD, "ts": "x" * 41},
    {k: v for k, v in GOOD.items() if k != "ts"},
    {k: v for k, v in GOOD.items() if k != "meter"},
    [1, 2],
    "reading",
])
def test_invalid_readings_raise_the_same_reason_and_detail(raw):
    with pytest.raises(ProtocolError) as slow:
        parse_reading(raw)
    with pytest.raises(ProtocolError) as fast:
        reading_fields(raw)
    assert (fast.value.reason, fast.value.detail) == (slow.value.reason, slow.value.detail)

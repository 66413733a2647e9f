"""The gateway protocol at the edge: topics and JSON payloads, validated with pydantic."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from shouwang.domain import MeterKind


class Reason(StrEnum):
    """Why a message or reading was rejected (see docs/protocol.md)."""

    BAD_TOPIC = "bad_topic"
    UNKNOWN_GATEWAY = "unknown_gateway"
    BAD_JSON = "bad_json"
    BAD_SHAPE = "bad_shape"
    INVALID_FIELD = "invalid_field"
    NEGATIVE_VALUE = "negative_value"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    UNKNOWN_METER = "unknown_meter"
    WRONG_GATEWAY = "wrong_gateway"
    KIND_MISMATCH = "kind_mismatch"
    REGISTER_BACKWARDS = "register_backwards"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    INTERNAL_ERROR = "internal_error"


class ProtocolError(ValueError):
    """A message or reading that breaks the protocol, with the reason code to count it under."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed gateway topic."""

    community: str
    gateway: str
    channel: str  # "readings" or "status"


def parse_topic(topic: str, prefix: str) -> Topic:
    """Split ``<prefix>/<community>/<gateway>/<readings|status>``."""
    parts = topic.split("/")
    head = prefix.split("/")
    if len(parts) != len(head) + 3 or parts[: len(head)] != head or parts[-1] not in ("readings", "status"):
        raise ProtocolError(Reason.BAD_TOPIC, f"expected {prefix}/<community>/<gateway>/readings|status")
    return Topic(parts[-3], parts[-2], parts[-1])


class ReadingIn(BaseModel):
    """One reading as a gateway sends it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    meter: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    kind: MeterKind
    ts: StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=40)]
    value: Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]


def decode_json(payload: bytes) -> Any:
    """Parse a payload as JSON or raise ProtocolError(bad_json).

    orjson refuses a whole payload for one number no double holds (1e400) or for NaN / Infinity (which some
    encoders write); the standard parser reads those as non-finite floats, so only the readings that carry one
    are refused (invalid_field, bad_timestamp) and their neighbours are kept.
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            data = json.loads(payload.decode("utf-8"), parse_int=_int_as_orjson)
            orjson.dumps(data)  # what orjson refuses besides the numbers: a lone surrogate (\ud800), say
            return data
        except (ValueError, RecursionError, orjson.JSONEncodeError):
            raise ProtocolError(Reason.BAD_JSON, f"not valid UTF-8 JSON: {exc}") from None


def _int_as_orjson(digits: str) -> int | float:
    """An integer as orjson reads it: a float past 64 bits (inf past a double), so nothing later overflows."""
    value = int(digits)
    return value if -(2 ** 63) <= value < 2 ** 64 else float(digits)


def split_batch(data: Any) -> list[Any]:
    """Return the list of raw readings in a single-reading or batch payload."""
    if isinstance(data, dict) and "readings" in data:
        items = data["readings"]
        if not isinstance(items, list):
            raise ProtocolError(Reason.BAD_SHAPE, "'readings' must be a list")
        return items
    if isinstance(data, dict) and "meter" in data:
        return [data]
    raise ProtocolError(Reason.BAD_SHAPE, "expected a reading object or {\"readings\": [...]}")


def parse_reading(raw: Any) -> ReadingIn:
    """Validate one raw reading; raise ProtocolError with the most specific reason."""
    if isinstance(raw, dict):
        value = raw.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ProtocolError(Reason.NEGATIVE_VALUE, f"value {value} is negative; registers count up from 0")
    try:
        return ReadingIn.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "reading"
        raise ProtocolError(Reason.INVALID_FIELD, f"{field}: {err['msg']}") from None


_KINDS = frozenset(str(k) for k in MeterKind)


def reading_fields(raw: Any) -> tuple[str, str, int | float | str, int | float]:
    """(meter, kind, ts, value) of one raw reading, with exactly parse_reading's acceptance and reasons.

    The common case, a plain JSON object whose fields all have the right type, is checked here directly
    (building a pydantic model per reading is the largest single cost of ingest); anything else goes through
    parse_reading, which raises the same errors as before.
    """
    if type(raw) is dict:
        meter, kind, ts, value = raw.get("meter"), raw.get("kind"), raw.get("ts"), raw.get("value")
        t_ts, t_value = type(ts), type(value)
        if (type(meter) is str and 0 < len(meter) <= 64
                and type(kind) is str and kind in _KINDS
                and (t_ts is int or t_ts is float or (t_ts is str and len(ts) <= 40))
                and (t_value is int or (t_value is float and math.isfinite(value))) and value >= 0):
            return meter, kind, ts, value
    r = parse_reading(raw)
    return r.meter, str(r.kind), r.ts, r.value


def parse_ts(ts: float | str, zone: tzinfo) -> int:
    """Epoch seconds (UTC) from epoch seconds, RFC 3339, or a naive local time in ``zone``."""
    if isinstance(ts, (int, float)):
        if not 0 <= ts < 1e11:
            raise ProtocolError(Reason.BAD_TIMESTAMP, f"epoch seconds {ts} out of range")
        return int(ts)
    try:
        # fromisoformat also takes a date alone, or a week date: the protocol takes a date and a time
        if len(ts) < 16 or ts[4] != "-" or ts[7] != "-" or ts[10] not in "Tt ":
            raise ValueError
        dt = datetime.fromisoformat(ts)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=zone)
        out = int(dt.timestamp())
    except (ValueError, OverflowError):
        raise ProtocolError(Reason.BAD_TIMESTAMP, f"{ts!r} is not RFC 3339 or 'YYYY-MM-DD HH:MM:SS'") from None
    if not 0 <= out < 1e11:
        raise ProtocolError(Reason.BAD_TIMESTAMP, f"{ts!r} is out of range (before 1970 or after 5138)")
    return out


def parse_status(payload: bytes) -> bool:
    """True for ``online``, False for ``offline`` (plain text or {"status": ...})."""
    text = payload.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        data = decode_json(payload)
        text = str(data.get("status", "")) if isinstance(data, dict) else ""
    if text.lower() in ("online", "offline"):
        return text.lower() == "online"
    raise ProtocolError(Reason.BAD_SHAPE, "status must be 'online' or 'offline'")

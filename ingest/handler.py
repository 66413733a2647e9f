"""MessageHandler: one MQTT message in, accepted readings and reasoned rejections out (no I/O)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import orjson

from ingest.protocol import (
    ProtocolError,
    Reason,
    Topic,
    decode_json,
    parse_status,
    parse_topic,
    parse_ts,
    reading_fields,
    split_batch,
)
from shouwang.domain import GatewayStatus, Meter, Reading, Registry, Rejection

log = logging.getLogger(__name__)
PAYLOAD_KEEP = 2000  # bytes of a rejected payload kept for inspection
NEW, LATE, DUPLICATE = "new", "late", "duplicate"  # where a reading stands against its meter's latest


def truncate(payload: bytes | str, limit: int = PAYLOAD_KEEP) -> str:
    """A payload as text, cut to ``limit`` characters for logs and the dead-letter table."""
    text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
    return text if len(text) <= limit else text[:limit] + f"…(+{len(text) - limit})"


@dataclass(slots=True)
class HandleResult:
    """What one message turned into."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    status: GatewayStatus | None = None
    duplicates: int = 0
    # readings older than their meter's latest (also in ``readings``), each with the rejection it gets if the store
    # holds another value at its time: only the store can tell a late reading from a conflicting or a redelivered one
    late: list[tuple[Reading, Rejection]] = field(default_factory=list)


class MessageHandler:
    """Validates messages against the protocol, the registry and each meter's last accepted reading."""

    def __init__(self, registry: Registry, prefix: str, default_tz: str, max_future_skew_s: int) -> None:
        self.prefix = prefix
        self.max_future_skew_s = max_future_skew_s
        self.meters: dict[str, Meter] = {m.id: m for m in registry.meters}
        self.gateway_community = {g.id: g.community for g in registry.gateways}
        self._topics: dict[str, Topic] = {}  # topics already found valid (bounded: two per registered gateway)
        self.zones = {c.id: ZoneInfo(c.timezone or default_tz) for c in registry.communities}
        self.default_zone = ZoneInfo(default_tz)
        self.last: dict[str, tuple[int, float]] = {}  # meter → (ts, value) of its latest accepted reading

    def prime(self, latest: dict[str, Reading]) -> None:
        """Seed each meter's last accepted reading from the store (after a restart)."""
        for r in latest.values():
            self.last[r.meter] = (r.ts, r.value)

    def handle(self, topic: str, payload: bytes, now: int) -> HandleResult:
        """Validate one message; never raises for bad input."""
        result = HandleResult()
        try:
            where = self._topics.get(topic)
            if where is None:
                where = parse_topic(topic, self.prefix)
                if self.gateway_community.get(where.gateway) != where.community:
                    raise ProtocolError(Reason.UNKNOWN_GATEWAY,
                                        f"gateway {where.gateway!r} is not registered in community "
                                        f"{where.community!r}")
                self._topics[topic] = where
            if where.channel == "status":
                result.status = GatewayStatus(where.gateway, parse_status(payload), now)
                return result
            items = split_batch(decode_json(payload))
        except ProtocolError as exc:
            result.rejections.append(Rejection(now, topic, exc.reason, exc.detail, truncate(payload)))
            return result
        self._readings(where, items, now, topic, result)
        return result

    def _readings(self, where: Topic, items: list, now: int, topic: str, result: HandleResult) -> None:
        zone = self.zones.get(where.community, self.default_zone)
        gateway, latest = where.gateway, now + self.max_future_skew_s
        registered = self.meters
        parsed: list[tuple[Reading, object]] = []
        for raw in items:
            try:
                meter, kind, raw_ts, value = reading_fields(raw)
                ts = raw_ts if type(raw_ts) is int and 0 <= raw_ts < 100_000_000_000 else parse_ts(raw_ts, zone)
                m = registered.get(meter)
                if m is None or m.gateway != gateway or m.kind != kind:  # (MeterKind is a StrEnum)
                    self._check_registry(meter, kind, gateway)  # raises with the precise reason
                if ts > latest:
                    raise ProtocolError(Reason.FUTURE_TIMESTAMP,
                                        f"ts {ts} is {ts - now} s ahead of the service clock")
                parsed.append((Reading(meter, ts, float(value)), raw))
            except ProtocolError as exc:
                meter = raw.get("meter") if isinstance(raw, dict) else None
                result.rejections.append(self._reject(now, topic, exc, raw, meter))
        if len(parsed) > 1:
            parsed.sort(key=lambda pr: pr[0].ts)
        last_of, accepted = self.last, result.readings
        for reading, raw in parsed:
            last = last_of.get(reading.meter)
            if last is None or (reading.ts > last[0] and reading.value >= last[1]):  # the usual case, inline
                last_of[reading.meter] = (reading.ts, reading.value)
                accepted.append(reading)
                continue
            try:
                seq = self._check_sequence(reading)
            except ProtocolError as exc:
                result.rejections.append(self._reject(now, topic, exc, raw, reading.meter))
                continue
            if seq == DUPLICATE:
                result.duplicates += 1
                continue
            result.readings.append(reading)
            if seq == LATE:  # the writer gives the rejection its detail, with the value the store holds
                conflict = ProtocolError(Reason.CONFLICTING_DUPLICATE, "")
                result.late.append((reading, self._reject(now, topic, conflict, raw, reading.meter)))

    def _check_registry(self, meter_id: str, kind: str, gateway: str) -> None:
        meter = self.meters.get(meter_id)
        if meter is None:
            raise ProtocolError(Reason.UNKNOWN_METER, f"meter {meter_id!r} is not in the registry")
        if meter.gateway != gateway:
            raise ProtocolError(Reason.WRONG_GATEWAY,
                                f"meter {meter_id!r} belongs to gateway {meter.gateway!r}, not {gateway!r}")
        if str(meter.kind) != kind:
            raise ProtocolError(Reason.KIND_MISMATCH, f"meter {meter_id!r} is {meter.kind}, message says {kind}")

    def _check_sequence(self, r: Reading) -> str:
        """NEW, LATE (before the meter's latest, fitting it), or DUPLICATE of the latest; raises if the register ran
        backwards or the latest's time has another value."""
        last = self.last.get(r.meter)
        if last is None or r.ts > last[0]:
            if last is not None and r.value < last[1]:
                raise ProtocolError(Reason.REGISTER_BACKWARDS,
                                    f"meter {r.meter}: {r.value} at {r.ts} is below {last[1]} at {last[0]}")
            self.last[r.meter] = (r.ts, r.value)
            return NEW
        if r.ts == last[0]:
            if r.value == last[1]:
                return DUPLICATE
            raise ProtocolError(Reason.CONFLICTING_DUPLICATE,
                                f"meter {r.meter}: {r.value} at {r.ts} differs from stored {last[1]}")
        if r.value > last[1]:
            raise ProtocolError(Reason.REGISTER_BACKWARDS,
                                f"meter {r.meter}: late {r.value} at {r.ts} is above {last[1]} at later {last[0]}")
        return LATE  # fits before the latest one; the writer asks the store whether it holds that time already

    @staticmethod
    def _reject(now: int, topic: str, exc: ProtocolError, raw: object, meter: object) -> Rejection:
        try:
            text = orjson.dumps(raw).decode()
        except TypeError:
            text = repr(raw)
        return Rejection(now, topic, exc.reason, exc.detail, truncate(text),
                         meter if isinstance(meter, str) else None)

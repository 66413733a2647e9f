"""PUBACKs for stored messages: a batch's acknowledgements go to paho as one buffer, not one packet per message."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)
PUBACK = 0x40  # MQTT control packet type 4, no flags; remaining length 2 (the packet id)


@dataclass(frozen=True, slots=True)
class PubAck:
    """The acknowledgement of one received message, sent once what it carried is stored."""

    client: mqtt.Client
    mid: int
    qos: int

    def __call__(self) -> None:
        self.client.ack(self.mid, self.qos)


def _bulk_ready(client: mqtt.Client) -> bool:
    """Whether this paho queues packets the way ``send_acks`` relies on (paho-mqtt 2.x)."""
    return getattr(client, "_manual_ack", False) and callable(getattr(client, "_packet_queue", None))


def send_acks(acks: Sequence[Callable[[], None] | None]) -> int:
    """Acknowledge a stored batch's messages; return how many acknowledgements went out.

    QoS 1 ``PubAck``s of one client become one buffer of PUBACK packets, queued with paho's own packet queue in a
    single call: what ``Client.ack`` does per message (a lock-free queue entry, a wake-up of paho's network
    thread through its socket pair, then a socket write of four bytes) is done once per batch. MQTT is a byte
    stream, so the broker reads the same packets either way. Anything else (QoS 2, another callable) is called on
    its own. Never raises: a failed acknowledgement is logged and the broker redelivers that message.
    """
    mids: dict[int, tuple[mqtt.Client, list[int]]] = {}
    alone: list[Callable[[], None]] = []
    for ack in acks:
        if type(ack) is PubAck and ack.qos == 1:
            mids.setdefault(id(ack.client), (ack.client, []))[1].append(ack.mid)
        elif ack is not None:
            alone.append(ack)
    sent = 0
    for client, ids in mids.values():
        if not _bulk_ready(client):
            alone += [PubAck(client, mid, 1) for mid in ids]
            continue
        packets = struct.pack(f"!{len(ids)}I", *[(PUBACK << 24) | (2 << 16) | mid for mid in ids])
        try:
            client._packet_queue(PUBACK, packets, 0, 0)  # paho's own queue, as Client.ack uses it
            sent += len(ids)
        except Exception:
            log.exception("acknowledging %d stored messages failed; the broker will redeliver them", len(ids))
    for ack in alone:
        try:
            ack()
            sent += 1
        except Exception:
            log.exception("acknowledging a stored message failed; the broker will redeliver it")
    return sent

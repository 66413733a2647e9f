"""Bulk PUBACKs (ingest/acks.py); tests/test_subscriber_session.py checks them against the real broker."""

from __future__ import annotations

import struct

import paho.mqtt.client as mqtt

from ingest.acks import PubAck, send_acks


class RecordingClient(mqtt.Client):
    """A paho client that records what it would write instead of writing it."""

    def __init__(self) -> None:
        super().__init__(mqtt.CallbackAPIVersion.VERSION2, client_id="acks-test", protocol=mqtt.MQTTv311)
        self.manual_ack_set(True)
        self.queued: list[tuple[int, bytes]] = []

    def _packet_queue(self, command, packet, mid, qos, info=None):  # type: ignore[override]
        self.queued.append((command, bytes(packet)))
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


def test_a_batch_of_qos1_acks_is_one_buffer_of_pubacks_and_the_rest_go_one_by_one():
    client, called = RecordingClient(), []
    acks = [PubAck(client, 7, 1), None, PubAck(client, 65535, 1), lambda: called.append("other"),
            PubAck(client, 9, 2)]
    assert send_acks(acks) == 4
    pubacks = [(c, p) for c, p in client.queued if c == 0x40]
    assert pubacks == [(0x40, struct.pack("!BBH", 0x40, 2, 7) + struct.pack("!BBH", 0x40, 2, 65535))]
    assert called == ["other"]
    assert (0x70, struct.pack("!BBH", 0x70, 2, 9)) in client.queued  # QoS 2: Client.ack's own PUBCOMP


def test_what_client_ack_writes_is_what_the_buffer_holds():
    one, many = RecordingClient(), RecordingClient()
    for mid in (1, 300, 40_000):
        one.ack(mid, 1)
    send_acks([PubAck(many, mid, 1) for mid in (1, 300, 40_000)])
    assert b"".join(p for _, p in one.queued) == many.queued[0][1]


def test_a_failing_ack_is_logged_and_the_others_still_go(caplog):
    client = RecordingClient()

    def broken() -> None:
        raise OSError("socket gone")

    assert send_acks([broken, PubAck(client, 3, 1)]) == 1
    assert len(client.queued) == 1 and "will redeliver" in caplog.text

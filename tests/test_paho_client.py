"""BufferedClient: the same messages, in the same order, whatever the read size; nothing left in the buffer."""

from __future__ import annotations

import socket
import struct
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from faults_support import wait_until

from ingest import paho_client
from ingest.paho_client import BufferedClient


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, qos: int, mid: int) -> bytes:
    """An MQTT 3.1.1 PUBLISH as a broker sends it."""
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


# (topic, payload, qos): a remaining length of one byte, of two bytes (> 127), of three bytes (> 16,383)
MESSAGES = [(f"t/{i}", bytes([65 + i % 26]) * size, qos)
            for i, (size, qos) in enumerate([(5, 1), (200, 1), (0, 0), (20_000, 1), (1, 0), (90, 1), (3, 1)])]


@pytest.fixture
def wired():
    """A BufferedClient reading from one end of a socket pair (as if connected); the test writes the other."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id="buffered-test")
    client._sock = ours
    got: list[tuple[str, bytes, int]] = []
    client.on_message = lambda _c, _u, m: got.append((m.topic, m.payload, m.qos))
    yield client, theirs, got
    client._sock_close()
    theirs.close()


def _pubacks(theirs: socket.socket) -> list[int]:
    theirs.setblocking(False)
    data = b""
    try:
        while chunk := theirs.recv(65536):
            data += chunk
    except BlockingIOError:
        pass
    assert len(data) % 4 == 0 and all(data[i] == 0x40 and data[i + 1] == 2 for i in range(0, len(data), 4))
    return [struct.unpack("!H", data[i + 2:i + 4])[0] for i in range(0, len(data), 4)]


@pytest.mark.parametrize("read_size", [1, 2, 5, 17, 4096, 65536])
def test_every_message_arrives_in_order_whatever_the_read_size(wired, monkeypatch, read_size):
    client, theirs, got = wired
    monkeypatch.setattr(paho_client, "READ_SIZE", read_size)
    theirs.sendall(b"".join(publish_packet(t, p, q, i + 1) for i, (t, p, q) in enumerate(MESSAGES)))
    for _ in range(100_000):  # what the network thread does each time select() finds the socket readable
        if len(got) == len(MESSAGES):
            break
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    assert got == MESSAGES
    assert client.buffered() == 0
    assert _pubacks(theirs) == [i + 1 for i, (_t, _p, q) in enumerate(MESSAGES) if q == 1]


def test_one_loop_read_drains_what_one_recv_buffered(wired):
    """select() cannot see bytes already read into the buffer, so one loop_read must hand all of them to paho."""
    client, theirs, got = wired
    theirs.sendall(b"".join(publish_packet(f"t/{i}", b"x", 0, 0) for i in range(500)))
    assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    assert len(got) == 500 and client.buffered() == 0


def test_a_packet_split_across_reads_is_completed_by_the_next(wired):
    client, theirs, got = wired
    whole = publish_packet("t/split", b"y" * 300, 1, 7) + publish_packet("t/next", b"z", 1, 8)
    theirs.sendall(whole[:150])
    assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    assert got == []
    theirs.sendall(whole[150:])
    assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    assert got == [("t/split", b"y" * 300, 1), ("t/next", b"z", 1)]
    assert _pubacks(theirs) == [7, 8]


def test_acknowledgements_leave_while_a_chunk_is_still_being_read(wired):
    """PUBACKs queued while a buffered chunk is handed out go out between packets, not after the whole chunk: a
    broker waiting for them must not see a large chunk's worth of messages unacknowledged."""
    client, theirs, got = wired
    client._thread = threading.current_thread()  # as under loop_start(): paho leaves queued packets to its loop
    seen_by_broker: list[int] = []
    client.on_message = lambda _c, _u, m: (got.append(m.mid), seen_by_broker.extend(_pubacks(theirs)))
    theirs.sendall(b"".join(publish_packet(f"t/{i}", b"a", 1, i) for i in range(1, 201)))
    assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    assert len(got) == 200
    # when message 200 was handled, the broker already had the PUBACKs of nearly all before it
    assert len(seen_by_broker) >= 190, len(seen_by_broker)


def test_closing_the_socket_drops_what_was_buffered(wired):
    client, theirs, got = wired
    theirs.sendall(publish_packet("t/a", b"1", 0, 0) + publish_packet("t/b", b"2", 0, 0)[:3])
    client.loop_read()
    assert got == [("t/a", b"1", 0)] and client.buffered() == 0  # the partial packet went to paho's own state
    theirs.sendall(publish_packet("t/c", b"3", 0, 0) * 3)
    first = client._sock_recv(1)  # reads all three into the buffer, hands out one byte
    assert first and client.buffered() > 0
    client._sock_close()
    assert client.buffered() == 0


def test_a_burst_through_a_real_broker_arrives_whole_and_acknowledged(own_mosquitto):
    """A real Mosquitto (the deploy limits): 3,000 QoS 1 messages published as fast as possible, then one more
    alone a moment later (it must not wait in the buffer for more traffic); a reconnect on the same persistent
    session gets nothing again, so every message was acknowledged."""
    topic = f"buffered-test/{uuid.uuid4().hex[:8]}"
    client_id = f"buffered-{uuid.uuid4().hex[:8]}"
    got: list[bytes] = []
    lock = threading.Lock()

    def subscriber() -> BufferedClient:
        sub = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                             protocol=mqtt.MQTTv311)
        sub.username_pw_set(*own_mosquitto.accounts["service"])
        sub.max_inflight_messages_set(1000)

        def on_message(_c, _u, m):
            with lock:
                got.append(m.payload)

        subscribed = threading.Event()
        sub.on_message = on_message
        sub.on_subscribe = lambda *_a: subscribed.set()
        sub.connect("127.0.0.1", own_mosquitto.port)
        sub.subscribe(topic, 1)
        sub.loop_start()
        assert subscribed.wait(10)
        return sub

    sub = subscriber()
    pub = own_mosquitto.client("gateway", f"{client_id}-pub", clean_session=True)
    pub.max_inflight_messages_set(0)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", own_mosquitto.port)
    pub.loop_start()
    try:
        infos = [pub.publish(topic, str(i).encode(), qos=1) for i in range(3000)]
        for info in infos:
            info.wait_for_publish(30)
        wait_until(lambda: len(got) == 3000, 30, "the burst to arrive")
        pub.publish(topic, b"last", qos=1).wait_for_publish(10)
        wait_until(lambda: len(got) == 3001, 5, "the lone last message")
        assert got == [str(i).encode() for i in range(3000)] + [b"last"]
        sub.disconnect()
        sub.loop_stop()
        got.clear()
        sub = subscriber()  # same persistent session: every message was acknowledged, so none comes again
        pub.publish(topic, b"after", qos=1).wait_for_publish(10)
        wait_until(lambda: len(got) >= 1, 10, "a message after the reconnect")
        assert got == [b"after"]
    finally:
        sub.disconnect()
        sub.loop_stop()
        pub.disconnect()
        pub.loop_stop()

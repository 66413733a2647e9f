"""MqttIngest: a paho-mqtt 2.x subscriber with a persistent session, QoS 1 and manual acknowledgement."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt

from ingest.acks import PubAck
from ingest.handler import HandleResult, MessageHandler, truncate
from ingest.paho_client import BufferedClient
from ingest.protocol import Reason
from ingest.stats import IngestStats
from ingest.writer import BatchWriter, Pending
from shouwang.clock import Clock
from shouwang.domain import Rejection

log = logging.getLogger(__name__)


class MqttIngest:
    """Subscribes to every gateway's readings and status; hands messages to the handler and the writer."""

    def __init__(
        self,
        handler: MessageHandler,
        writer: BatchWriter,
        clock: Clock,
        stats: IngestStats,
        *,
        host: str,
        port: int,
        client_id: str,
        prefix: str,
        username: str | None = None,
        password: str | None = None,
        clean_session: bool = False,
        topics: Sequence[str] | None = None,
    ) -> None:
        self.handler = handler
        # topic filters subscribed to: every gateway's readings and status, or a shard's communities' only
        self.topics = list(topics) if topics is not None else [f"{prefix}/+/+/readings", f"{prefix}/+/+/status"]
        self.writer = writer
        self.clock = clock
        self.stats = stats
        self.host, self.port, self.prefix = host, port, prefix
        self.client_id = client_id
        self.connected = False
        self.subscribed = threading.Event()  # set once the broker has granted every topic filter (each connect)
        self._pending_subs: set[int] = set()
        self._closing = False
        self._taking = threading.Lock()  # held while a message is handed to the writer; stop() waits for it
        self._barrier_lock = threading.Lock()
        self._barrier: tuple[int, threading.Event] | None = None
        self.client = BufferedClient(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
            protocol=mqtt.MQTTv311)
        self.client.manual_ack_set(True)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(1, 30)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self, drain_s: float = 30.0) -> None:
        """Stop taking messages, let the writer store and acknowledge what it holds, then disconnect.

        No UNSUBSCRIBE: it would delete the subscriptions from the persistent session, and the broker would
        drop every reading published until the service is back. Messages arriving while we stop are left
        unacknowledged, so the broker delivers them again to the next run."""
        taken = self._taking.acquire(timeout=drain_s)  # a message being handed over (blocks while the queue is full)
        self._closing = True
        if taken:
            self._taking.release()
        if not self.writer.wait_idle(drain_s):
            log.warning("the writer did not drain within %.0f s; unacknowledged messages will be redelivered",
                        drain_s)
        if self.connected and not self._acks_delivered(5.0):
            log.warning("the broker did not confirm the last acknowledgements; it may deliver those messages again")
        self.client.disconnect()
        self.client.loop_stop()

    def _acks_delivered(self, timeout: float) -> bool:
        """Wait until the broker has read our last PUBACKs: it answers a connection's packets in order, so the
        SUBACK of a throw-away subscription sent after them proves it. Without this, closing the socket while
        the broker still sends us messages makes the kernel reset the connection, and the broker can lose
        PUBACKs it had not read yet (it then redelivers messages we stored: harmless, but avoidable)."""
        topic = f"{self.prefix}/_shutdown/{self.client_id}"  # nobody publishes here
        done = threading.Event()
        with self._barrier_lock:
            _rc, mid = self.client.subscribe(topic, 1)
            self._barrier = (mid, done)
        ok = done.wait(timeout)
        self.client.unsubscribe(topic)  # keep the persistent session as it was
        return ok

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._barrier_lock:
            if self._barrier is not None and self._barrier[0] == mid:
                self._barrier[1].set()
            if mid in self._pending_subs:
                self._pending_subs.discard(mid)
                if not self._pending_subs:
                    self.subscribed.set()

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        self.connected = True
        log.info("connected to broker %s:%s (session present: %s)", self.host, self.port,
                 getattr(flags, "session_present", None))
        with self._barrier_lock:
            self.subscribed.clear()
            self._pending_subs.clear()
            for i in range(0, len(self.topics), 100):  # a shard may own many communities: 100 filters a SUBSCRIBE
                _rc, mid = client.subscribe([(topic, 1) for topic in self.topics[i:i + 100]])
                self._pending_subs.add(mid)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected = False
        self.subscribed.clear()
        if self._closing:
            log.info("disconnected from broker: %s", reason)
        else:
            log.warning("disconnected from broker: %s; paho reconnects", reason)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """Never raises: a bad message becomes a rejection and the loop goes on."""
        with self._taking:
            if not self._closing:
                self._take(client, msg)

    def _take(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        now = int(self.clock.now())
        try:
            result = self.handler.handle(msg.topic, msg.payload, now)
        except Exception as exc:
            log.exception("handler failed on topic %s payload %s", msg.topic, truncate(msg.payload, 200))
            result = HandleResult(rejections=[Rejection(now, msg.topic, Reason.INTERNAL_ERROR,
                                                        type(exc).__name__, truncate(msg.payload))])
        for rej in result.rejections:
            log.info("rejected %s on %s: %s | %s", rej.reason, msg.topic, rej.detail, truncate(rej.payload, 200),
                     extra={"meter": rej.meter})
        mid, qos = msg.mid, msg.qos
        try:
            self.writer.submit(Pending(result, PubAck(client, mid, qos) if qos > 0 else None))
        except Exception:
            log.exception("could not queue message from %s; it stays unacknowledged", msg.topic)

"""MqttIngest: a paho-mqtt 2.x subscriber with a persistent session, QoS 1 and manual acknowledgement."""

from __future__ import annotations

import logging
from typing import Any

import paho.mqtt.client as mqtt

from ingest.handler import HandleResult, MessageHandler, truncate
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
    ) -> None:
        self.handler = handler
        self.writer = writer
        self.clock = clock
        self.stats = stats
        self.host, self.port, self.prefix = host, port, prefix
        self.connected = False
        self.client = mqtt.Client(
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

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Stop taking messages, then let the writer store and acknowledge what it holds."""
        self.client.unsubscribe([f"{self.prefix}/+/+/readings", f"{self.prefix}/+/+/status"])
        self.writer.wait_idle(10.0)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        self.connected = True
        log.info("connected to broker %s:%s (session present: %s)", self.host, self.port,
                 getattr(flags, "session_present", None))
        client.subscribe([(f"{self.prefix}/+/+/readings", 1), (f"{self.prefix}/+/+/status", 1)])

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected = False
        log.warning("disconnected from broker: %s; paho reconnects", reason)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """Never raises: a bad message becomes a rejection and the loop goes on."""
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
            self.writer.submit(Pending(result, (lambda: client.ack(mid, qos)) if qos > 0 else None))
        except Exception:
            log.exception("could not queue message from %s; it stays unacknowledged", msg.topic)

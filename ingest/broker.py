"""Broker discovery, and an embedded amqtt broker when no Mosquitto is reachable (demo, fresh machines)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import warnings

log = logging.getLogger(__name__)


def broker_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """An in-process MQTT 3.1.1 broker (amqtt) on its own thread and event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._broker = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            raise RuntimeError(f"embedded broker failed to start on {self.host}:{self.port}: {self._error}")
        log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from amqtt.broker import Broker

            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "sys_interval": 0,
                "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
                "topic-check": {"enabled": False},
            }
            try:
                self._broker = Broker(config, loop=self._loop)
                self._loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                self._error = exc
                self._ready.set()
                return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._broker is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(5)
            except Exception:
                log.debug("embedded broker shutdown raised", exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def ensure_broker(host: str, port: int, allow_embedded: bool) -> EmbeddedBroker | None:
    """Use the broker at host:port if one answers; otherwise start an embedded one (if allowed)."""
    if broker_reachable(host, port):
        return None
    if not allow_embedded:
        raise RuntimeError(f"no MQTT broker at {host}:{port} and the embedded fallback is off")
    log.warning("no MQTT broker at %s:%s; starting the embedded one (for demos, not production)", host, port)
    broker = EmbeddedBroker(host, port)
    broker.start()
    return broker

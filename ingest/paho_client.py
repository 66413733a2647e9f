"""BufferedClient: paho's Client reading the broker's stream in large chunks instead of a few bytes at a time."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt

READ_SIZE = 64 * 1024


class BufferedClient(mqtt.Client):
    """paho-mqtt 2.x ``Client`` whose socket reads are buffered in user space.

    paho reads each packet with at least three ``recv()`` calls (the type byte, each byte of the remaining length,
    then the rest) and goes back to ``select()`` after every packet, so a small QoS 1 message costs four system
    calls, and each of them lets go of the GIL and has to win it back from the threads storing readings. Here one
    ``recv()`` takes up to 64 KiB and the header bytes and payloads are served from it; ``loop_read`` goes on while
    bytes are buffered, since ``select()`` cannot see them, and writes what was queued meanwhile (acknowledgements)
    between packets, as paho's own loop would. What paho parses is the same byte stream either way.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object | None = None  # the socket the buffered bytes came from

    def _sock_recv(self, bufsize: int) -> bytes:
        pos = self._rpos
        if pos >= len(self._rbuf) or self._rsock is not self._sock:
            data = super()._sock_recv(READ_SIZE)  # raises as paho expects: BlockingIOError when nothing is there
            if len(data) <= bufsize:
                self._rbuf, self._rpos, self._rsock = b"", 0, None
                return data
            self._rbuf, pos, self._rsock = data, 0, self._sock
        end = min(pos + bufsize, len(self._rbuf))
        self._rpos = end
        return self._rbuf[pos:end]

    def _sock_close(self) -> None:
        self._rbuf, self._rpos, self._rsock = b"", 0, None
        super()._sock_close()

    def buffered(self) -> int:
        """Bytes read from the socket and not yet handed to paho's parser."""
        return len(self._rbuf) - self._rpos if self._rsock is self._sock else 0

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTT_ERR_SUCCESS and self._sock is not None and self.buffered():
            if self._out_packet:  # acknowledgements queued meanwhile leave now, not after the whole chunk
                rc = self.loop_write()
                if rc or self._sock is None:
                    return rc
            rc = super().loop_read(max_packets)
        return rc

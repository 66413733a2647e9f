"""Console channel: writes each notification to the log (and stdout in the demo)."""

from __future__ import annotations

import logging
from typing import TextIO

from alerts.channels.base import Notification

log = logging.getLogger("shouwang.alerts")


class ConsoleChannel:
    """Prints one line per notification; never fails."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, notification: Notification) -> None:
        log.info("%s | %s", notification.title, notification.text, extra={"alert": notification.alert_id})
        if self.stream is not None:
            print(f"[ALERT] {notification.title} | {notification.text}", file=self.stream, flush=True)

"""Logging set-up with fixed context keys: household, meter, alert."""

from __future__ import annotations

import logging
import sys

CONTEXT_KEYS = ("household", "meter", "alert")


class ContextFormatter(logging.Formatter):
    """Appends `key=value` for each context key a record carries."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if getattr(record, k, None) is not None)
        return f"{line} [{ctx}]" if ctx else line


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr with timestamps and context keys; quiet down chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("amqtt", "transitions", "httpx", "uvicorn.access", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

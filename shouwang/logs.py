"""Logging set-up with fixed context keys (household, meter, alert), as text lines or JSON objects."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

CONTEXT_KEYS = ("household", "meter", "alert")
NOISY = ("amqtt", "transitions", "httpx", "uvicorn.access", "httpcore", "alembic.runtime", "alembic.autogenerate")


class ContextFormatter(logging.Formatter):
    """Appends `key=value` for each context key a record carries (on the message line, before any traceback)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ctx = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if getattr(record, k, None) is not None)
        return f"{line} [{ctx}]" if ctx else line


class ContextJsonFormatter(JsonFormatter):
    """One JSON object a line: timestamp (UTC), level, logger, message, then the context keys and other extras."""

    def __init__(self) -> None:
        super().__init__("{levelname}{name}{message}", style="{", timestamp=True, json_ensure_ascii=False,
                         rename_fields={"levelname": "level", "name": "logger"}, json_default=str)

    def add_fields(self, log_record: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_record, record, message_dict)
        for key in CONTEXT_KEYS:  # absent or None: left out, so a collector's field is only there when known
            if log_record.get(key) is None:
                log_record.pop(key, None)


def formatter(fmt: str = "text") -> logging.Formatter:
    """The formatter for SHOUWANG_LOG_FORMAT: ``text`` (one readable line) or ``json``."""
    if fmt == "json":
        return ContextJsonFormatter()
    if fmt == "text":
        return ContextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    raise ValueError(f"unknown log format {fmt!r}: use 'text' or 'json'")


def setup_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Log to stderr (or ``stream``) with context keys; quiet down chatty libraries."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)

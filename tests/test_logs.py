"""Log formats: text lines and JSON objects, both carrying the household/meter/alert context keys."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shouwang.logs import setup_logging
from shouwang.settings import Settings


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit(fmt: str) -> list[str]:
    out = io.StringIO()
    setup_logging("INFO", fmt, out)
    log = logging.getLogger("shouwang.test")
    log.info("alert %s opened for 王阿姨", 7, extra={"alert": 7, "household": "H1", "meter": None})
    log.debug("not shown at INFO")
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        log.exception("store write failed", extra={"meter": "H1-W"})
    log.warning("plain")
    return out.getvalue().splitlines()


def test_json_lines_carry_the_context_keys_only_when_present(restore_logging):
    lines = _emit("json")
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == 3
    opened, failed, plain = records
    assert opened["message"] == "alert 7 opened for 王阿姨" and opened["level"] == "INFO"
    assert opened["logger"] == "shouwang.test" and opened["timestamp"].startswith("20")
    assert (opened["alert"], opened["household"]) == (7, "H1") and "meter" not in opened
    assert failed["meter"] == "H1-W" and "ZeroDivisionError: boom" in failed["exc_info"]
    assert not {"alert", "household", "meter"} & set(plain)


def test_text_lines_append_the_context_keys(restore_logging):
    lines = _emit("text")
    assert lines[0].endswith("alert 7 opened for 王阿姨 [household=H1 alert=7]")
    assert "[meter=H1-W]" in lines[1]
    assert any(line.startswith("ZeroDivisionError: boom") for line in lines)
    assert lines[-1].endswith("plain")


def test_log_format_setting_is_checked(monkeypatch):
    monkeypatch.setenv("SHOUWANG_LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("SHOUWANG_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()

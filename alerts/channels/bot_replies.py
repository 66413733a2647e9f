"""Group-bot replies (WeCom, DingTalk, Feishu, Lark): read the error code these platforms put in an HTTP 200 body.

These platforms refuse a message (bad key, keyword or signature check failed, rate limit) with HTTP 200 and a
non-zero code in the JSON body. apprise's WeCom and DingTalk plugins look at the HTTP status only, so apprise
says "delivered"; its Feishu and Lark plugins notice, but report the refusal like any other failure.
This module records the replies that ``requests`` receives on the current thread while a capture is active,
and ``refusal`` reads the platform's code from them.

The recording is a wrapper around ``requests.Session.send``, installed once when this module is imported (the
same way the redacting log filter is installed). It is a pass-through on any thread with no capture active.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
import requests

# scheme → the JSON field holding the platform's result code (0 = accepted)
CODE_FIELD = {"wecombot": "errcode", "dingtalk": "errcode", "feishu": "code", "lark": "code"}

# Codes that mean "try again later": rate limits and the platform being busy. Any other non-zero code is
# permanent (bad key, bot removed, keyword or signature check failed): retrying cannot help, fail over instead.
# Sources: WeCom "全局错误码" (-1 system busy, 45009 frequency limit); DingTalk robot docs (130101 sending too
# fast, -1 busy); Feishu/Lark custom bot docs (11232 frequency limited, 9499 is a malformed request: permanent).
RETRY_CODES = {"wecombot": {-1, 45009}, "dingtalk": {-1, 130101}, "feishu": {11232}, "lark": {11232}}

_KEEP = 4096  # bytes of a reply body kept for the check


@dataclass(frozen=True, slots=True)
class Refusal:
    """A platform's refusal of a message that came back with HTTP 200."""

    code: int | None  # None: the reply was not the platform's JSON at all
    retryable: bool


class _Capture(threading.local):
    replies: list[tuple[int, bytes]] | None = None


_LOCAL = _Capture()
_original_send = requests.Session.send


def _recording_send(self: requests.Session, request: requests.PreparedRequest, **kwargs) -> requests.Response:
    response = _original_send(self, request, **kwargs)
    replies = _LOCAL.replies
    if replies is not None and not kwargs.get("stream"):
        replies.append((response.status_code, response.content[:_KEEP]))
    return response


if getattr(requests.Session.send, "__name__", "") != _recording_send.__name__:
    requests.Session.send = _recording_send  # type: ignore[method-assign]


@contextmanager
def captured() -> Iterator[list[tuple[int, bytes]]]:
    """Record (status, body) of every HTTP reply ``requests`` gets on this thread inside the block."""
    previous, _LOCAL.replies = _LOCAL.replies, []
    try:
        yield _LOCAL.replies
    finally:
        _LOCAL.replies = previous


def refusal(scheme: str, replies: list[tuple[int, bytes]]) -> Refusal | None:
    """The first refusal among the HTTP 200 replies of a bot platform's send, or None if each one accepted.

    A 200 reply that is not a JSON object with the platform's code field counts as a refusal that may be retried:
    something between us and the platform (a proxy, a captive portal) answered, so the message did not arrive.
    """
    field = CODE_FIELD[scheme]
    for status, body in replies:
        if status != 200:
            continue  # apprise already reported it as failed
        try:
            reply = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Refusal(None, retryable=True)
        code = reply.get(field) if isinstance(reply, dict) else None
        if field == "code" and code is None and isinstance(reply, dict):
            code = reply.get("StatusCode")  # older Feishu hooks answer {"StatusCode": 0, ...}
        if not isinstance(code, int):
            return Refusal(None, retryable=True)
        if code != 0:
            return Refusal(code, retryable=code in RETRY_CODES[scheme])
    return None

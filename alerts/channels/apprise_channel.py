"""Apprise channel: one apprise URL (WeCom/DingTalk/Feishu group bots, ntfy, e-mail, SMS gateways, generic
JSON/form webhooks, …) kept to the channel contract in alerts.channels.base.

apprise reports a failed delivery by returning False; what went wrong is only in its log lines. And those
lines are not safe to keep: apprise masks passwords when it prints a URL, but at DEBUG it logs the full
request URL (WeCom's ``?key=``, webhook paths, ntfy topics), payloads and exception texts, its construction
errors quote the rejected token, and urllib3 logs every request line with its path and query.

So a log filter sits on apprise's and urllib3's loggers. For records emitted by a thread while that thread is
inside an AppriseChannel call (construction or send) it
  * replaces every part of the URL that ``name`` does not show (user-info, bot keys, path segments, query
    values) by ``***`` before any handler sees the record, and
  * keeps the redacted messages, from which send() reads the HTTP status apprise logged ("error=503").
Records from other threads pass untouched. Classification needs apprise's WARNING lines, so if the
``apprise`` logger is configured above WARNING every failure counts as retryable (the safe side).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, unquote_plus, urlsplit

import apprise

from alerts.channels import bot_replies
from alerts.channels.base import Notification, PermanentError, RetryableError

# Where URL parts can show up in log records during a send.
_LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.connection", "urllib3.poolmanager",
            "urllib3.util.retry", "urllib3.response")

# apprise's own options, whose values are never secrets (everything else in a query string is treated as one).
_PLAIN_OPTIONS = frozenset({"format", "overflow", "method", "mode", "priority", "verify", "cto", "rto", "retry",
                            "wait", "optional", "image", "emojis", "tz", "lang", "smtp", "auth"})

_STATUS = re.compile(r"\berror=(\d{3})\b")  # how apprise's HTTP plugins log the status of a failed request
_NOTIFY_TYPE = {"opened": apprise.NotifyType.WARNING, "resolved": apprise.NotifyType.SUCCESS,
                "cleared": apprise.NotifyType.SUCCESS}


class InvalidChannelURL(PermanentError, ValueError):
    """A channel URL that cannot be used. A PermanentError (retrying will not help) and a ValueError (so
    settings validation reports it). The message names the scheme only, never the rest of the URL."""


class _Call:
    """One construction or send on one thread: the secrets to hide, and the (redacted) messages seen."""

    def __init__(self, secrets: set[str]) -> None:
        # Short "secrets" (< 8 chars: a path word like "hook", a short password) only as whole words, so
        # "webhook" stays readable; long ones (real tokens) wherever they appear. Longest first.
        alternatives = [re.escape(s) if len(s) >= 8 else rf"(?<![0-9A-Za-z]){re.escape(s)}(?![0-9A-Za-z])"
                        for s in sorted(secrets, key=len, reverse=True)]
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None
        self.messages: list[str] = []

    def redact(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern else text


class _RedactingFilter(logging.Filter):
    """Installed once on the loggers above; acts only on the threads that are inside a call."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        call: _Call | None = getattr(self._local, "call", None)
        if call is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not break the send; keep its template
            message = str(record.msg)
        if record.exc_info:  # a traceback's exception text can hold a URL too: fold it in, redacted
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = call.redact(message), None
        if record.stack_info:
            record.stack_info = call.redact(record.stack_info)
        call.messages.append(record.msg)
        return True

    @contextmanager
    def active(self, call: _Call) -> Iterator[_Call]:
        previous = getattr(self._local, "call", None)
        self._local.call = call
        try:
            yield call
        finally:
            self._local.call = previous


_FILTER = _RedactingFilter()
for _name in _LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


def _scheme(url: str) -> str:
    """The URL's scheme if it looks like one (safe to print), else '?'."""
    head = url.split("://", 1)[0].strip().lower() if "://" in url else ""
    return head if re.fullmatch(r"[a-z][a-z0-9+.-]{0,31}", head) else "?"


def _secret_parts(url: str, shown: str) -> set[str]:
    """Every part of ``url`` that ``shown`` (the privacy-safe name) does not show, in the forms it may be
    logged in (as written, percent-decoded, percent-encoded). Parts shorter than 3 characters are left."""
    parts = urlsplit(url.strip())
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = re.sub(r":\d*$", "", hostport)  # as written: urlsplit().hostname would lower-case a bot key
    found = [*userinfo.split(":", 1), host, *parts.path.split("/"), parts.fragment]
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key).lower().lstrip("+-:") not in _PLAIN_OPTIONS:
            found += [value, *unquote_plus(value).split()]  # "Bearer TOKEN" as a whole and word by word
    visible = set(re.split(r"[:/@?&=]+", shown))
    secrets: set[str] = set()
    for part in filter(None, found):
        for form in {part, unquote(part), unquote_plus(part), quote(unquote(part), safe="")}:
            if len(form) >= 3 and form not in visible:
                secrets.add(form)
    return secrets


class AppriseChannel:
    """Delivers title and text through one apprise URL, e.g. ``wecombot://KEY``, ``dingtalk://TOKEN/``,
    ``feishu://TOKEN``, ``ntfy://host/topic``, ``mailto://user:pass@host:port?to=…``, ``json://host:port/path``.

    * Construction: an unparseable or unsupported URL raises InvalidChannelURL (PermanentError, ValueError).
    * ``name``: ``scheme://<apprise's privacy-masked host part>/…`` — apprise masks passwords and tokens
      there; the path and query are dropped because apprise does not mask them (webhook paths, ntfy topics,
      custom headers such as ``+Authorization=…``).
    * send(): returns when apprise reports success; raises PermanentError when every HTTP status apprise
      logged is a 4xx other than 408/425/429 (bad key, unknown bot), RetryableError otherwise (5xx, 429,
      refused connection, timeout, SMTP failure, anything unexplained). Messages hold the name and the
      status only.
    * Time: ``timeout_s`` bounds each connect and each read (URL options ``cto``/``rto`` may only lower it);
      apprise also spaces consecutive sends on one channel (up to 5.5 s for most bot plugins, none for
      json/form) to respect the platforms' rate limits.
    * Threads: sends on one channel are serialised by a lock (apprise plugins keep per-instance state);
      different channels send in parallel.

    * Group bots (``wecombot``, ``dingtalk``, ``feishu``, ``lark``): those platforms refuse a message with HTTP 200
      and a non-zero code in the body. apprise's WeCom and DingTalk plugins take that for success; its Feishu and
      Lark plugins see it but report no reason. send() reads the reply itself (alerts.channels.bot_replies): a
      rate-limit or "busy" code is retryable, any other code permanent.
    """

    def __init__(self, url: str, *, timeout_s: float = 10) -> None:
        scheme = _scheme(url)
        asset = apprise.AppriseAsset(app_id="Shouwang", app_desc="Shouwang", secure_logging=True)
        # Until the name is known, hide every part of the URL beyond the scheme.
        with _FILTER.active(_Call(_secret_parts(url, scheme))):
            try:
                plugin = apprise.Apprise.instantiate(url.strip(), asset=asset)
            except Exception:  # noqa: BLE001 - whatever apprise raises, the URL is unusable
                plugin = None
            if plugin is None:
                raise InvalidChannelURL(f"unusable apprise URL {scheme}://… (unsupported scheme or malformed; "
                                        "see apprise's log lines, redacted)")
            masked = plugin.url(privacy=True)
        self.name = f"{scheme}://{re.split(r'[/?#]', masked.partition('://')[2], maxsplit=1)[0]}/…"
        self._secrets = _secret_parts(url, self.name)
        query = {k.lower(): v for k, _, v in (p.partition("=") for p in urlsplit(url).query.split("&"))}
        plugin.socket_connect_timeout = min(timeout_s, _as_float(query.get("cto"), timeout_s))
        plugin.socket_read_timeout = min(timeout_s, _as_float(query.get("rto"), timeout_s))
        self._plugin = plugin
        self._bot = scheme if scheme in bot_replies.CODE_FIELD else None
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        with self._lock, _FILTER.active(_Call(self._secrets)) as call, bot_replies.captured() as replies:
            try:
                ok = self._plugin.notify(body=notification.text, title=notification.title,
                                         notify_type=_NOTIFY_TYPE.get(notification.event, apprise.NotifyType.INFO),
                                         body_format=apprise.NotifyFormat.TEXT)
            except Exception as exc:  # noqa: BLE001 - apprise should not raise; if it does, try again later
                raise RetryableError(f"{self.name}: {type(exc).__name__} in apprise") from None
        refused = bot_replies.refusal(self._bot, replies) if self._bot else None
        if refused is not None:  # the code only: a platform's message text may quote the key
            what = f"refused with code {refused.code}" if refused.code is not None else "unexpected reply"
            raise (RetryableError if refused.retryable else PermanentError)(f"{self.name}: {what}")
        if ok:
            return
        statuses = [int(s) for message in call.messages for s in _STATUS.findall(message)]
        if statuses:
            if all(400 <= s < 500 and s not in (408, 425, 429) for s in statuses):
                raise PermanentError(f"{self.name}: HTTP {statuses[-1]}")
            raise RetryableError(f"{self.name}: HTTP {statuses[-1]}")
        refused = any("connection error" in m.lower() for m in call.messages)
        raise RetryableError(f"{self.name}: {'connection error' if refused else 'not delivered'}")


def _as_float(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default

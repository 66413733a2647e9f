"""AppriseChannel against real receivers: a local HTTP server standing in for bot webhooks and SMS gateways,
a real SMTP server (aiosmtpd) for e-mail. Every secret in these URLs contains "s3cr3t"; no log record captured
during a call (at DEBUG, apprise's and urllib3's own included) and no error message may contain it."""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import ExitStack

import apprise
import pytest
from receivers import SmtpReceiver, WebhookReceiver, free_port

from alerts.channels import (
    AppriseChannel,
    ConsoleChannel,
    InvalidChannelURL,
    Notification,
    PermanentError,
    RetryableError,
    WebhookChannel,
    channel_from_url,
)
from alerts.notifier import RetryPolicy, deliver

NOTE = Notification(7, "opened", "无活动 — H1 王阿姨", "no water or electricity use since 07:40 (通常 07:00 前有用水)")
SECRET = "s3cr3t"


@pytest.fixture
def smtp():
    s = SmtpReceiver(user="shouwang", password="s3cr3t-pw")
    yield s
    s.close()


@pytest.fixture
def debug_logs(caplog):
    """caplog at DEBUG on the root and explicitly on apprise's and urllib3's loggers (the noisy ones)."""
    with ExitStack() as stack:
        for name in (None, "apprise", "urllib3"):
            stack.enter_context(caplog.at_level(logging.DEBUG, logger=name))
        yield caplog


def assert_no_secret(caplog, *texts: str) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = [formatter.format(r) for r in caplog.records]
    assert logged, "nothing was logged: the leak check would be vacuous"
    leaks = [line for line in [*logged, *texts] if SECRET in line.lower()]
    assert not leaks


def json_url(receiver: WebhookReceiver, **query: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return f"json://shouwang:s3cr3t-pw@{receiver.host}:{receiver.port}{receiver.path}" + (f"?{q}" if q else "")


# --- delivery through the receivers ---------------------------------------------------------------------------

def test_json_webhook_gets_title_and_text(receiver, debug_logs):
    channel = AppriseChannel(json_url(receiver), timeout_s=2)
    channel.send(NOTE)
    (body,) = receiver.wait_for(1)
    assert body["title"] == NOTE.title and body["message"] == NOTE.text and body["type"] == "warning"
    assert receiver.paths == ["/hook/s3cr3t-token"]
    assert receiver.requests[0].headers["Authorization"].startswith("Basic ")  # user:password reached it
    assert_no_secret(debug_logs, channel.name)
    assert any(r.name == "apprise" and r.levelno == logging.DEBUG for r in debug_logs.records)
    assert any(r.name.startswith("urllib3") for r in debug_logs.records)  # its request line, redacted


def test_form_gateway_gets_title_and_text(receiver, debug_logs):
    AppriseChannel(f"form://{receiver.host}:{receiver.port}/sms/send?-apikey=s3cr3t-key", timeout_s=2).send(NOTE)
    (body,) = receiver.wait_for(1)
    assert body["title"] == NOTE.title and body["message"] == NOTE.text
    assert receiver.paths == ["/sms/send?apikey=s3cr3t-key"]  # "-name=value": a query parameter for the gateway
    assert_no_secret(debug_logs)


def test_ntfy_to_a_local_server(receiver, debug_logs):
    channel = channel_from_url(f"ntfy://{receiver.host}:{receiver.port}/s3cr3t-topic", timeout_s=2)
    channel.send(NOTE)
    (body,) = receiver.wait_for(1)
    assert body == {"topic": "s3cr3t-topic", "title": NOTE.title, "message": NOTE.text}
    assert_no_secret(debug_logs, channel.name)


BOTS = {  # scheme → (a URL whose key holds the secret, the plugin's platform address with its placeholder)
    "wecombot": ("wecombot://s3cr3tKEYabc", "/cgi-bin/webhook/send?key={key}"),
    "dingtalk": ("dingtalk://s3cr3tTOKENabc/", "/robot/send?access_token={token}"),
    "feishu": ("feishu://s3cr3tTOKENabc", "/open-apis/bot/v2/hook/{token}/"),
    "lark": ("lark://s3cr3tTOKENabc", "/open-apis/bot/v2/hook/"),
}


@pytest.mark.parametrize("url,endpoint", BOTS.values())
def test_chinese_group_bots_through_the_real_plugins(receiver, debug_logs, monkeypatch, url, endpoint):
    """apprise's WeCom, DingTalk, Feishu and Lark plugins, with only their fixed platform address pointed at the
    local receiver: the payload the platform would get, and the key (in the URL's path or query) kept out of
    the logs."""
    plugin_class = type(apprise.Apprise.instantiate(url))
    monkeypatch.setattr(plugin_class, "notify_url", f"http://{receiver.host}:{receiver.port}{endpoint}")
    receiver.ok_body = b'{"errcode": 0, "errmsg": "ok", "code": 0}'
    channel = AppriseChannel(url, timeout_s=2)
    channel.send(NOTE)
    (body,) = receiver.wait_for(1)
    assert "s3cr3t" in receiver.paths[0].lower()  # the key did reach the (stand-in) platform
    text = str(body)
    assert NOTE.text in text and NOTE.title in text  # the title is folded into the text where there is none
    assert_no_secret(debug_logs, channel.name)


def test_email_through_a_real_smtp_server(smtp, debug_logs):
    url = (f"mailto://shouwang:s3cr3t-pw@{smtp.host}:{smtp.port}"
           f"?to=worker@example.org&from=shouwang@example.org&smtp={smtp.host}")
    channel = channel_from_url(url, timeout_s=5)
    channel.send(NOTE)
    (message,) = smtp.wait_for(1)
    assert smtp.logins == ["shouwang"]
    assert smtp.envelopes == [("shouwang@example.org", ["worker@example.org"])]
    assert message["Subject"] == NOTE.title
    assert NOTE.text in message.get_body(("plain", "html")).get_content()
    assert_no_secret(debug_logs, channel.name)


# --- failures ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status,error", [(503, RetryableError), (500, RetryableError), (429, RetryableError),
                                          (404, PermanentError), (401, PermanentError), (400, PermanentError)])
def test_http_failures_are_classified_without_leaking(receiver, debug_logs, status, error):
    receiver.fail_next, receiver.status_on_fail = 1, status
    with pytest.raises(error) as exc:
        AppriseChannel(json_url(receiver), timeout_s=2).send(NOTE)
    assert f"HTTP {status}" in str(exc.value)
    assert_no_secret(debug_logs, str(exc.value))


def test_connection_refused_is_retryable(debug_logs):
    with pytest.raises(RetryableError) as exc:
        AppriseChannel(f"json://shouwang:s3cr3t-pw@127.0.0.1:{free_port()}/hook/s3cr3t-token").send(NOTE)
    assert "connection error" in str(exc.value)
    assert_no_secret(debug_logs, str(exc.value))


def test_smtp_server_down_is_retryable(debug_logs):
    url = f"mailto://shouwang:s3cr3t-pw@127.0.0.1:{free_port()}?to=worker@example.org&from=shouwang@example.org"
    with pytest.raises(RetryableError) as exc:
        AppriseChannel(url, timeout_s=2).send(NOTE)
    assert_no_secret(debug_logs, str(exc.value))


def test_a_receiver_that_never_answers_is_bounded_by_the_timeout(debug_logs):
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        with pytest.raises(RetryableError) as exc:
            AppriseChannel(f"json://127.0.0.1:{port}/hook/s3cr3t-token", timeout_s=0.2).send(NOTE)
    assert_no_secret(debug_logs, str(exc.value))


@pytest.mark.parametrize("url", ["bogus://s3cr3t-token", "s3cr3t-token-without-scheme", "wecombot://bad!s3cr3t!key",
                                 "json://", "mailto://shouwang:s3cr3t-pw@127.0.0.1:25?to=not-an-address",
                                 "dingtalk://s3cr3t*token/"])
def test_unusable_urls_fail_at_construction_without_leaking(debug_logs, url):
    with pytest.raises(InvalidChannelURL) as exc:
        channel_from_url(url)
    assert isinstance(exc.value, PermanentError) and isinstance(exc.value, ValueError)
    assert_no_secret(debug_logs, str(exc.value))




@pytest.mark.parametrize("scheme,reply,outcome", [
    # the platforms refuse with HTTP 200 and a code in the body; apprise alone would call each of these delivered
    ("wecombot", b'{"errcode": 93000, "errmsg": "invalid webhook url, key s3cr3tKEYabc"}', PermanentError),
    ("wecombot", b'{"errcode": 45009, "errmsg": "api freq out of limit"}', RetryableError),
    ("wecombot", b'{"errcode": 0, "errmsg": "ok"}', None),
    ("dingtalk", b'{"errcode": 310000, "errmsg": "keywords not in content"}', PermanentError),
    ("dingtalk", b'{"errcode": 130101, "errmsg": "send too fast"}', RetryableError),
    ("dingtalk", b'{"errcode": 0, "errmsg": "ok"}', None),
    ("feishu", b'{"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}',
     PermanentError),
    ("feishu", b'{"code": 11232, "msg": "frequency limited"}', RetryableError),
    ("feishu", b'{"StatusCode": 0, "StatusMessage": "success"}', None),
    ("lark", b'{"code": 9499, "msg": "Bad Request", "data": {}}', PermanentError),
    ("lark", b'{"code": 0, "msg": "success", "data": {}}', None),
    # something else answered 200 (a proxy's page): the message did not reach the platform
    ("wecombot", b"<html>Welcome to the guest network</html>", RetryableError),
    ("feishu", b'{"ok": true}', RetryableError),
])
def test_group_bot_replies_with_http_200_are_read(receiver, debug_logs, monkeypatch, scheme, reply, outcome):
    url, endpoint = BOTS[scheme]
    monkeypatch.setattr(type(apprise.Apprise.instantiate(url)), "notify_url",
                        f"http://{receiver.host}:{receiver.port}{endpoint}")
    receiver.ok_body = reply
    channel = AppriseChannel(url, timeout_s=2)
    if outcome is None:
        channel.send(NOTE)
        assert len(receiver.wait_for(1)) == 1
        assert_no_secret(debug_logs, channel.name)
        return
    with pytest.raises(outcome) as exc:
        channel.send(NOTE)
    assert len(receiver.requests) == 1  # it did reach the stand-in platform, which said no
    assert_no_secret(debug_logs, str(exc.value))  # the platform's message text is not passed on: it may quote the key
    assert exc.value.__class__ is outcome


def test_replies_on_other_threads_and_outside_a_send_are_not_recorded(receiver):
    import requests

    from alerts.channels import bot_replies

    receiver.ok_body = b'{"errcode": 1}'
    with bot_replies.captured() as mine:
        other = threading.Thread(target=requests.post, args=(receiver.url,), kwargs={"json": {}})
        other.start()
        other.join(5)
        assert mine == []
        requests.post(receiver.url, json={}, timeout=5)
    requests.post(receiver.url, json={}, timeout=5)
    assert mine == [(200, b'{"errcode": 1}')]


# --- names, factory, threads, retries ---------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "wecombot://s3cr3tKEYabcdef",
    "dingtalk://s3cr3tSECRET@s3cr3tTOKENabcdef/",
    "feishu://s3cr3tTOKENabcdef",
    "ntfy://ntfy.sh/s3cr3t-topic",
    "ntfys://ntfy.example.org/topic?token=tk_s3cr3t",
    "ntfy://shouwang:s3cr3t-pw@127.0.0.1:8080/topic",
    "mailtos://shouwang:s3cr3t-pw@smtp.example.org?to=worker@example.org",
    "json://shouwang:s3cr3t-pw@hooks.example.org/hook/s3cr3t-token?+Authorization=Bearer%20s3cr3t",
    "form://sms.example.org/send?-apikey=s3cr3t-key",
    "tgram://123456789:s3cr3tBOTTOKENabcdefghijklmnopqr/12345",
    "discord://1234/s3cr3tTOKEN",
    "slack://T1JJ3T3L2/A1BRTD4JD/s3cr3tTOKENtokenTOKEN1/#alerts",
])
def test_names_hide_tokens_passwords_topics_and_headers(url):
    name = AppriseChannel(url).name
    assert SECRET not in name.lower() and name.startswith(url.split("://")[0] + "://") and name.endswith("/…")


def test_factory_maps_schemes_to_channels(receiver):
    assert isinstance(channel_from_url("console://"), ConsoleChannel)
    assert isinstance(channel_from_url(receiver.url), WebhookChannel)
    assert isinstance(channel_from_url("HTTPS://hooks.example.org/x"), WebhookChannel)
    for url in (json_url(receiver), "wecombot://KEY", "mailto://u:p@example.org?to=a@example.org"):
        assert isinstance(channel_from_url(url), AppriseChannel)


def test_concurrent_sends_on_two_channels_all_arrive_and_nothing_leaks(receiver, debug_logs):
    channels = [AppriseChannel(json_url(receiver), timeout_s=2),
                AppriseChannel(f"form://{receiver.host}:{receiver.port}/sms/send?-apikey=s3cr3t-key", timeout_s=2)]
    threads = [threading.Thread(target=channels[i % 2].send, args=(NOTE,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(receiver.wait_for(8)) == 8
    assert_no_secret(debug_logs)


def test_deliver_retries_until_the_receiver_recovers(receiver, debug_logs):
    receiver.fail_next = 3
    waits: list[float] = []
    ok, attempts, error = deliver(AppriseChannel(json_url(receiver), timeout_s=2), NOTE, RetryPolicy(1, 60, 300),
                                  waits.append)
    assert (ok, attempts, error, waits) == (True, 4, "", [1, 2, 4])
    assert len(receiver.received) == 1 and len(receiver.requests) == 4
    assert_no_secret(debug_logs)


def test_deliver_gives_up_at_once_on_a_permanent_failure(receiver):
    receiver.fail_next, receiver.status_on_fail = 5, 403
    waits: list[float] = []
    ok, attempts, error = deliver(AppriseChannel(json_url(receiver)), NOTE, RetryPolicy(), waits.append)
    assert (ok, attempts, waits) == (False, 1, []) and "HTTP 403" in error and SECRET not in error

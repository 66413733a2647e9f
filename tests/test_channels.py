"""Channel contract tests against real receivers, and retry/backoff behaviour."""

from __future__ import annotations

import logging

import pytest

from alerts.channels import (
    AppriseChannel,
    ConsoleChannel,
    Notification,
    PermanentError,
    RetryableError,
    WebhookChannel,
)
from alerts.notifier import RetryPolicy, deliver

NOTE = Notification(7, "opened", "No activity — H1", "no use since 07:40", {"household": {"id": "H1"}})


@pytest.fixture(params=["console", "webhook", "apprise"])
def channel(request, receiver):
    """Every channel; each must keep the same contract."""
    if request.param == "console":
        return ConsoleChannel()
    if request.param == "apprise":
        return AppriseChannel(f"json://shouwang:s3cr3t-pw@{receiver.host}:{receiver.port}{receiver.path}", timeout_s=2)
    return WebhookChannel(receiver.url, timeout_s=2)


def test_channel_contract_send_succeeds_and_name_has_no_secret(channel):
    channel.send(NOTE)
    assert "s3cr3t" not in channel.name


def test_webhook_posts_json(receiver):
    WebhookChannel(receiver.url).send(NOTE)
    (body,) = receiver.wait_for(1)
    assert body["alert_id"] == 7 and body["title"].startswith("No activity") and body["household"]["id"] == "H1"


@pytest.mark.parametrize("status,error", [(503, RetryableError), (429, RetryableError), (500, RetryableError),
                                          (404, PermanentError), (401, PermanentError)])
def test_webhook_classifies_failures_without_leaking_the_url(receiver, status, error):
    receiver.fail_next, receiver.status_on_fail = 1, status
    with pytest.raises(error) as exc:
        WebhookChannel(receiver.url).send(NOTE)
    assert "s3cr3t" not in str(exc.value) and str(status) in str(exc.value)


def test_webhook_connection_refused_is_retryable():
    with pytest.raises(RetryableError) as exc:
        WebhookChannel("http://127.0.0.1:9/hook?token=s3cr3t").send(NOTE)
    assert "s3cr3t" not in str(exc.value)


def test_retry_until_delivered_with_backoff(receiver, caplog):
    receiver.fail_next = 3
    waits: list[float] = []
    with caplog.at_level(logging.DEBUG):
        ok, attempts, _ = deliver(WebhookChannel(receiver.url), NOTE, RetryPolicy(1, 60, 300), waits.append)
    assert ok and attempts == 4 and waits == [1, 2, 4]
    assert len(receiver.received) == 1
    assert "s3cr3t" not in caplog.text


def test_backoff_stops_at_the_deadline(receiver):
    receiver.fail_next = 1000
    waits: list[float] = []
    ok, attempts, error = deliver(WebhookChannel(receiver.url), NOTE, RetryPolicy(1, 8, 30), waits.append)
    assert not ok and sum(waits) <= 30 and attempts == len(waits) + 1 and "503" in error
    assert waits == [1, 2, 4, 8, 8]


def test_permanent_error_is_not_retried(receiver):
    receiver.fail_next, receiver.status_on_fail = 5, 400
    waits: list[float] = []
    ok, attempts, _ = deliver(WebhookChannel(receiver.url), NOTE, RetryPolicy(), waits.append)
    assert (ok, attempts, waits) == (False, 1, [])

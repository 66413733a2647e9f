"""``${NAME}`` references in channel URLs: checked at load, filled in only where notifications leave, never stored."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from accounts_support import api_client
from pydantic import ValidationError

from alerts.channels import ChannelSecretError, WebhookChannel, channel_from_url
from alerts.channels.secrets import STAND_IN, references, resolve, stand_ins, unresolved
from api import create_app
from shouwang.clock import ManualClock
from shouwang.domain import (
    AlertCategory,
    Assignment,
    Community,
    Finding,
    Gateway,
    Household,
    Meter,
    MeterKind,
    Person,
    Registry,
    Role,
    Severity,
    Target,
)
from shouwang.registry import RegistryError, load_registry
from shouwang.service import Service
from shouwang.settings import Settings, insecure_settings
from shouwang.state import ActivityModel, HouseholdState
from storage import open_store

RECEIVER_PATH = ""  # the receiver fixture (conftest) at its bare address
T0 = 1_795_300_000
SON_KEY = "k-5f1e9a7c3b2d4e60"


@pytest.mark.parametrize(("url", "names"), [
    ("wecombot://${WECOM_GRID1}", ["WECOM_GRID1"]),
    ("mailto://u:${MAIL_PW}@example.org?to=${MAIL_TO}", ["MAIL_PW", "MAIL_TO"]),
    ("https://hooks.example.org/plain", []),
    ("https://hooks.example.org/a$b{c}", []),  # a lone $ or { is not a reference
])
def test_references_are_found(url, names):
    assert references(url) == names


@pytest.mark.parametrize("url", ["wecombot://${wecom}", "wecombot://${}", "wecombot://${1KEY}",
                                 "wecombot://${WECOM", "wecombot://${WE-COM}"])
def test_a_malformed_reference_is_refused_with_what_to_write(url):
    with pytest.raises(ChannelSecretError, match=r"write \$\{NAME\} with capital letters"):
        references(url)


def test_resolve_fills_in_every_reference_and_names_only_what_is_missing():
    assert resolve("mailto://u:${PW}@x.org?to=${TO}", {"PW": "p w", "TO": "a@x.org"}) == "mailto://u:p w@x.org?to=a@x.org"
    with pytest.raises(ChannelSecretError) as exc:
        resolve("https://h/${A}/${B}", {"A": "value-of-a"})
    assert "${B}" in str(exc.value) and "value-of-a" not in str(exc.value)
    assert unresolved([("p1", "https://h/${A}"), ("p2", "https://h/${B}"), ("p3", "x://${b}")], {"A": "1"}) == [
        "p2: ${B} is not in SHOUWANG_CHANNEL_SECRETS",
        "p3: channel URL has a malformed secret reference (${b}): write ${NAME} with capital letters, digits and "
        + "underscores, starting with a letter"]


def test_channel_from_url_without_the_secret_is_a_permanent_error_and_with_it_the_real_channel():
    with pytest.raises(ChannelSecretError):  # a PermanentError: the outbox fails over instead of retrying
        channel_from_url("https://hooks.example.org/${TOKEN}")
    channel = channel_from_url("https://hooks.example.org/${TOKEN}", secrets={"TOKEN": "t-1"})
    assert isinstance(channel, WebhookChannel) and channel._url == "https://hooks.example.org/t-1"
    assert stand_ins("wecombot://${A}") == {"A": STAND_IN}
    channel_from_url("wecombot://${A}", secrets=stand_ins("wecombot://${A}"))  # the shape check the API does


def test_settings_refuse_a_secret_name_no_reference_can_use(monkeypatch):
    monkeypatch.setenv("SHOUWANG_CHANNEL_SECRETS", '{"wecom-grid": "x"}')
    with pytest.raises(ValidationError, match="channel secret name 'wecom-grid'"):
        Settings()
    monkeypatch.setenv("SHOUWANG_CHANNEL_SECRETS", "null")  # what compose passes when .env leaves it unset
    assert Settings().channel_secrets == {}


def test_a_placeholder_channel_secret_is_refused_outside_demo_mode():
    problems = insecure_settings(Settings(channel_secrets={"WECOM_GRID1": "changeme", "DINGTALK_ST": "d-7f2c"}))
    assert "SHOUWANG_CHANNEL_SECRETS: WECOM_GRID1 is empty or a placeholder: set the real value" in problems
    assert not [p for p in problems if "DINGTALK_ST" in p or "d-7f2c" in p]


def _registry_file(tmp_path: Path, channel: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({
        "people": [{"id": "p1", "name": "Wang", "role": "volunteer", "channels": [channel]}],
        "communities": [{"id": "c1", "gateways": ["G1"], "households": [
            {"id": "H1", "volunteer": "p1", "meters": [{"id": "H1-W", "kind": "water", "gateway": "G1"}]}]}],
    }))
    return path


def test_the_registry_refuses_a_malformed_reference_and_keeps_a_good_one_as_written(tmp_path):
    with pytest.raises(RegistryError, match=r"malformed secret reference \(\$\{wecom\}\)"):
        load_registry(_registry_file(tmp_path, "wecombot://${wecom}"))
    registry = load_registry(_registry_file(tmp_path, "wecombot://${WECOM_GRID1}"))
    assert registry.people[0].channels == ("wecombot://${WECOM_GRID1}",)


def test_ingest_refuses_to_start_while_a_reference_is_undefined(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env |= {"SHOUWANG_DEMO_MODE": "true", "SHOUWANG_DATABASE_URL": f"sqlite:///{tmp_path}/s.db",
            "SHOUWANG_REGISTRY_FILE": str(_registry_file(tmp_path, "wecombot://${WECOM_GRID1}")),
            "SHOUWANG_WEBHOOK_URLS": '["https://hooks.example.org/${WATCH_TOKEN}"]',
            "SHOUWANG_CHANNEL_SECRETS": '{"WATCH_TOKEN": "w-1"}'}
    proc = subprocess.run([sys.executable, "-m", "shouwang.cli", "run", "--role", "ingest"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "person p1, channel 1: ${WECOM_GRID1} is not in SHOUWANG_CHANNEL_SECRETS" in proc.stderr
    assert "WATCH_TOKEN" not in proc.stderr  # defined, so not a problem


def _care(url: str) -> Registry:
    people = (Person("p-son", "SON", Role.FAMILY, "en", "", (f"{url}/son/${{SON_KEY}}",)),
              Person("p-vol", "VOL", Role.VOLUNTEER, "zh", "", (f"{url}/vol/${{NOT_GIVEN}}", f"{url}/vol/plain")))
    return Registry((Community("c1", "C1"),), (Gateway("G1", "c1"),),
                    (Household("H1", "c1", "Resident", "1-101", "g1", "", ""),),
                    (Meter("H1-W", "H1", MeterKind.WATER, "G1"),), people,
                    (Assignment(Target.FAMILY, "p-son", household="H1"),
                     Assignment(Target.VOLUNTEER, "p-vol", household="H1")))


def test_the_service_sends_to_the_real_url_and_stores_and_logs_only_the_reference(tmp_path, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "loop.db"
    svc = Service(Settings(notify_deadline_s=60, channel_secrets={"SON_KEY": SON_KEY}), open_store(f"sqlite:///{db}"),
                  _care(receiver.url), ManualClock(T0), watchers=[], wall=ManualClock(1000.0))
    (alert,) = svc.pipeline.run([Finding(AlertCategory.INACTIVITY, "no-change-48h", Severity.CRITICAL,
                                         T0 - 49 * 3600, "no use for 49 h", household="H1")], T0)
    while svc.outbox.drain_once():
        pass
    # the son's key reached the receiver; the volunteer's undefined one failed over to the plain channel at once
    assert sorted(receiver.paths) == [f"/son/{SON_KEY}", "/vol/plain"]
    failed = [e.detail for e in svc.store.alert_events(alert.id) if e.kind == "notify_failed"]
    assert len(failed) == 1 and "${NOT_GIVEN}" in failed[0] and "failing over to channel 2" in failed[0]
    svc.store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("loop.db*"))
    assert b"${SON_KEY}" in stored and SON_KEY.encode() not in stored
    assert SON_KEY not in caplog.text


def test_the_api_stores_a_reference_as_written_and_refuses_a_malformed_one(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/api.db")
    registry = _care("https://hooks.example.org")
    store.upsert_registry(registry)
    app = create_app(store, HouseholdState(registry, ActivityModel()), ManualClock(T0), health=dict)
    with api_client(app) as client:
        ok = client.put("/api/people/p-new", json={"name": "New", "role": "volunteer",
                                                    "channels": ["wecombot://${WECOM_GRID1}"]})
        assert ok.status_code == 200, ok.text
        assert store.person("p-new").channels == ("wecombot://${WECOM_GRID1}",)
        bad = client.put("/api/people/p-bad", json={"name": "Bad", "role": "volunteer",
                                                     "channels": ["wecombot://${wecom}"]})
        assert bad.status_code == 422 and "malformed secret reference" in bad.text

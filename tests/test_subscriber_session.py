"""MqttIngest.subscribed: set only once the broker has granted every topic filter, again after each reconnect."""

from __future__ import annotations

import uuid

import pytest
from conftest import small_registry
from faults_support import Mosquitto, wait_until

from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "mosquitto", persistence=True)
    b.start()
    yield b
    b.stop()


def test_subscribed_waits_for_the_grant_and_follows_reconnects(tmp_path, broker):
    user, password = broker.accounts["service"]
    settings = Settings(mqtt_port=broker.port, mqtt_username=user, mqtt_password=password,
                        mqtt_client_id=f"sub-{uuid.uuid4().hex[:6]}", mqtt_clean_session=False, tick_s=3600)
    svc = Service(settings, open_store(f"sqlite:///{tmp_path}/s.db"), small_registry(2), ManualClock(1e9),
                  watchers=[])
    assert not svc.ingest.subscribed.is_set()
    svc.start()
    try:
        assert svc.ingest.subscribed.wait(10)
        broker.stop()
        wait_until(lambda: not svc.ingest.connected, 10, "the service to see the broker gone")
        assert not svc.ingest.subscribed.is_set()  # a reconnect must subscribe again before readings are trusted
        broker.start()
        assert svc.ingest.subscribed.wait(40)  # paho reconnects with backoff (1 s, 2 s, ...)
        assert svc.ingest.connected
    finally:
        svc.stop()

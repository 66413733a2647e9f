"""MqttIngest.subscribed: set only once the broker has granted every topic filter, again after each reconnect."""

from __future__ import annotations

import uuid

from conftest import small_registry
from faults_support import wait_until

from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store


def test_subscribed_waits_for_the_grant_and_follows_reconnects(tmp_path, own_mosquitto):
    user, password = own_mosquitto.accounts["service"]
    settings = Settings(mqtt_port=own_mosquitto.port, mqtt_username=user, mqtt_password=password,
                        mqtt_client_id=f"sub-{uuid.uuid4().hex[:6]}", mqtt_clean_session=False, tick_s=3600)
    svc = Service(settings, open_store(f"sqlite:///{tmp_path}/s.db"), small_registry(2), ManualClock(1e9),
                  watchers=[])
    assert not svc.ingest.subscribed.is_set()
    svc.start()
    try:
        assert svc.ingest.subscribed.wait(10)
        own_mosquitto.stop()
        wait_until(lambda: not svc.ingest.connected, 10, "the service to see the broker gone")
        assert not svc.ingest.subscribed.is_set()  # a reconnect must subscribe again before readings are trusted
        own_mosquitto.start()
        assert svc.ingest.subscribed.wait(40)  # paho reconnects with backoff (1 s, 2 s, ...)
        assert svc.ingest.connected
    finally:
        svc.stop()

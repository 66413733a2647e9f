"""MqttIngest.subscribed: set only once the broker has granted every topic filter, again after each reconnect."""

from __future__ import annotations

import uuid

from conftest import small_registry
from faults_support import wait_until

from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

T0 = 1_760_000_000  # readings' event time; the services' clocks stand a day later


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


def test_every_stored_message_is_acknowledged_to_the_broker_once(tmp_path):
    """The broker sends 10 unacknowledged messages at most, so 300 arrive only if the stored batches' PUBACKs
    reach it; after a restart on the same persistent session it redelivers nothing (all were acknowledged)."""
    from faults_support import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto", inflight=10)
    broker.start()
    user, password = broker.accounts["service"]
    settings = Settings(mqtt_port=broker.port, mqtt_username=user, mqtt_password=password,
                        mqtt_client_id=f"acks-{uuid.uuid4().hex[:6]}", mqtt_clean_session=False, tick_s=3600,
                        database_url=f"sqlite:///{tmp_path}/acks.db")
    gateway = broker.client("gateway", f"gw-{uuid.uuid4().hex[:6]}", clean_session=True)
    gateway.connect("127.0.0.1", broker.port)
    gateway.loop_start()

    def publish(first: int, n: int) -> None:
        for i in range(first, first + n):
            gateway.publish("shouwang/v1/c1/G1/readings",
                            f'{{"meter": "H1-W", "kind": "water", "ts": {T0 + 60 * i}, "value": {i}}}',
                            qos=1).wait_for_publish(10)

    try:
        svc = Service(settings, open_store(settings.database_url), small_registry(2), ManualClock(T0 + 86_400),
                      watchers=[])
        svc.start()
        assert svc.ingest.subscribed.wait(10)
        publish(0, 300)
        wait_until(lambda: svc.stats.get("readings_stored") == 300, 30, "300 readings to be stored")
        svc.stop()
        again = Service(settings, open_store(settings.database_url), small_registry(2), ManualClock(T0 + 86_400),
                        watchers=[])
        again.start()
        assert again.ingest.subscribed.wait(10)
        publish(300, 1)  # a marker behind anything the broker might still redeliver
        wait_until(lambda: again.stats.get("readings_stored") == 1, 30, "the marker to be stored")
        assert again.writer.wait_idle(10)
        assert again.stats.get("messages") == 1  # nothing came back: every earlier message was acknowledged
        again.stop()
    finally:
        gateway.loop_stop()
        gateway.disconnect()
        broker.stop()

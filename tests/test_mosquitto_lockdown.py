"""A locked-down Mosquitto: per-gateway credentials and ACL; refused messages are never stored."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from faults_support import mqtt_login
from receivers import free_port

from ingest.broker import broker_reachable
from ingest.provision import SERVICE_USER, add_gateway, mosquitto_hash, set_password
from shouwang.clock import ManualClock
from shouwang.registry import load_registry
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

REGISTRY = """
communities:
  - id: qd
    gateways: []
    households:
      - id: H1
        meters: [{id: H1-W, kind: water, gateway: GA}]
      - id: H2
        meters: [{id: H2-W, kind: water, gateway: GB}]
"""
NOW = 1_795_300_000


@pytest.fixture
def broker(tmp_path: Path):
    """Mosquitto on a free port with the provisioned password file and ACL."""
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    ga = add_gateway("qd", "GA", passwd_file=passwd, acl_file=acl, registry_file=registry)
    gb = add_gateway("qd", "GB", passwd_file=passwd, acl_file=acl, registry_file=registry)
    service = set_password(passwd, SERVICE_USER)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {passwd}\nacl_file {acl}\npersistence false\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not broker_reachable("127.0.0.1", port, 0.2) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield {"port": port, "GA": ga, "GB": gb, "service": service, "registry": registry}
    proc.terminate()
    proc.wait(5)


def test_hash_format_matches_mosquitto_passwd(tmp_path):
    h = mosquitto_hash("pw", salt=b"0123456789ab")
    assert h.startswith("$7$101$") and len(h.split("$")) == 5


def test_gateways_publish_only_under_their_own_topic(tmp_path, broker):
    reg = load_registry(broker["registry"])
    assert [g.id for g in reg.gateways] == ["GA", "GB"]  # provisioning added them to the registry
    settings = Settings(database_url=f"sqlite:///{tmp_path}/lock.db", mqtt_port=broker["port"],
                        mqtt_username=SERVICE_USER, mqtt_password=broker["service"].password,
                        mqtt_client_id=f"svc-{uuid.uuid4().hex[:6]}", mqtt_clean_session=True, tick_s=3600)
    svc = Service(settings, open_store(settings.database_url), reg, ManualClock(NOW), watchers=[])
    svc.start()
    try:
        deadline = time.monotonic() + 10
        while not svc.ingest.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.ingest.connected
        time.sleep(0.3)

        ga, ok = mqtt_login(broker["port"], broker["GA"].username, broker["GA"].password, timeout=5)
        assert not ok[0].is_failure
        reading = '{"meter": "%s", "kind": "water", "ts": %d, "value": %s}'
        ga.publish("shouwang/v1/qd/GA/readings", reading % ("H1-W", NOW - 60, 1.5), qos=1).wait_for_publish(5)
        # GA pretends to be GB: the broker drops it, the service never sees it
        ga.publish("shouwang/v1/qd/GB/readings", reading % ("H2-W", NOW - 60, 9.9), qos=1).wait_for_publish(5)
        # the service account cannot publish either
        svc.ingest.client.publish("shouwang/v1/qd/GB/readings", reading % ("H2-W", NOW - 50, 9.9), qos=1)

        bad, refused = mqtt_login(broker["port"], broker["GB"].username, "wrong password", timeout=5)
        assert refused and refused[0].is_failure
        bad.loop_stop()

        deadline = time.monotonic() + 5
        while svc.stats.get("readings_accepted") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # give any wrongly delivered message time to arrive
        assert svc.writer.wait_idle(5)
        assert [(r.meter, r.value) for r in svc.store.readings_since(0)] == [("H1-W", 1.5)]
        ga.loop_stop()
        ga.disconnect()
    finally:
        svc.stop()


def test_provisioning_refuses_unknown_community(tmp_path):
    reg = tmp_path / "r.yaml"
    reg.write_text(REGISTRY)
    with pytest.raises(ValueError, match="not in"):
        add_gateway("nowhere", "G1", passwd_file=tmp_path / "p", acl_file=tmp_path / "a", registry_file=reg)
    with pytest.raises(ValueError, match="must be"):
        add_gateway("qd", "bad/id", passwd_file=tmp_path / "p", acl_file=tmp_path / "a")

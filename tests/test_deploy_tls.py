"""deploy/mosquitto/mosquitto.conf with its TLS block uncommented: gateways connect over TLS, same accounts and ACL."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from faults_support import mqtt_login
from receivers import free_port

from ingest.broker import broker_reachable
from ingest.provision import SERVICE_USER, add_gateway, set_password

ROOT = Path(__file__).resolve().parents[1]
TLS_BLOCK = re.compile(r"^#(listener 8883|certfile .*|keyfile .*|cafile .*|tls_version .*)$", re.MULTILINE)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(d: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, made the way deploy/mosquitto/certs/README.md says."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)


@pytest.fixture
def tls_broker(tmp_path: Path):
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    certs = tmp_path / "certs"
    certs.mkdir()
    _certificates(certs)
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    gw = add_gateway("qd", "GA", passwd_file=passwd, acl_file=acl)
    service = set_password(passwd, SERVICE_USER)
    plain, tls = free_port(), free_port()
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    enabled = TLS_BLOCK.sub(r"\1", conf)
    assert enabled.count("\nlistener ") == 2, "the TLS block in mosquitto.conf changed shape"
    enabled = (enabled.replace("listener 1883", f"listener {plain} 127.0.0.1")
               .replace("listener 8883", f"listener {tls} 127.0.0.1")
               .replace("/mosquitto/config/certs", str(certs))
               .replace("/mosquitto/config/passwd", str(passwd)).replace("/mosquitto/config/acl", str(acl))
               .replace("persistence true", "persistence false"))
    (tmp_path / "mosquitto.conf").write_text("user root\n" + enabled)
    proc = subprocess.Popen(["mosquitto", "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not broker_reachable("127.0.0.1", tls, 0.2) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield {"port": tls, "ca": certs / "ca.crt", "gw": gw, "service": service}
    proc.terminate()
    proc.wait(5)


def test_gateway_publishes_over_tls_and_the_service_reads_it(tls_broker):
    port, ca = tls_broker["port"], tls_broker["ca"]
    got: list[bytes] = []
    svc, codes = mqtt_login(port, SERVICE_USER, tls_broker["service"].password, ca=ca)
    assert codes and not codes[0].is_failure
    subscribed: list = []
    svc.on_message = lambda _c, _u, msg: got.append(msg.payload)
    svc.on_subscribe = lambda *a: subscribed.append(a[3])
    svc.subscribe("shouwang/v1/#", qos=1)
    deadline = time.monotonic() + 10
    while not subscribed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert subscribed and not subscribed[0][0].is_failure
    gw, codes = mqtt_login(port, tls_broker["gw"].username, tls_broker["gw"].password, ca=ca)
    assert codes and not codes[0].is_failure
    gw.publish("shouwang/v1/qd/GA/readings", b'{"meter": "M1"}', qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert got == [b'{"meter": "M1"}']
    for c in (gw, svc):
        c.loop_stop()
        c.disconnect()


def test_wrong_password_is_refused_over_tls(tls_broker):
    c, codes = mqtt_login(tls_broker["port"], tls_broker["gw"].username, "not-the-password", ca=tls_broker["ca"])
    c.loop_stop()
    assert codes and codes[0].is_failure

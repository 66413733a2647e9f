"""A real server speaking InfluxDB's v2 write API for the exporter tests, and a TCP proxy to take it away.

INFLUXDB_URL (+ INFLUXDB_TOKEN, INFLUXDB_ORG, INFLUXDB_BUCKET) names a real InfluxDB 2, queried back with Flux;
otherwise Debian's `victoria-metrics` is started on a free port with its own data directory and queried back
through its export API. Neither available: skipped, except under CI, where a missing victoria-metrics fails.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from receivers import TcpProxy, free_port

from storage.influx import FIELD, TAGS

VM_BINARY = "victoria-metrics"


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A point as the server returns it: tags, seconds, value."""

    tags: tuple[tuple[str, str], ...]
    ts: int
    value: float


class Backend:
    """Where points go and how to read them back."""

    kind: str
    url: str
    token: str
    org: str
    bucket: str
    keeps_duplicates: bool  # VictoriaMetrics keeps a point written twice; InfluxDB overwrites it

    def points(self, measurement: str) -> list[StoredPoint]:
        raise NotImplementedError


class VictoriaMetrics(Backend):
    """`victoria-metrics` on a free loopback port with its data under ``data``."""

    kind, token, org, bucket, keeps_duplicates = "victoria-metrics", "vm-ignores-tokens", "shouwang", "readings", True

    def __init__(self, binary: str, data: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = data / "vm.log"
        data.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={data / 'storage'}",
             "-retentionPeriod=100y", "-loggerLevel=ERROR"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError(f"victoria-metrics did not start: {self.log.read_text()[-2000:]}")

    def points(self, measurement: str) -> list[StoredPoint]:
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()
        reply = httpx.get(f"{self.url}/api/v1/export", params={"match[]": f'{{__name__="{measurement}_{FIELD}"}}'},
                          timeout=30)
        reply.raise_for_status()
        out = []
        for line in reply.text.splitlines():
            series = json.loads(line)
            tags = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "__name__"))
            out += [StoredPoint(tags, ms // 1000, v) for v, ms in zip(series["values"], series["timestamps"],
                                                                       strict=True)]
        return out

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class InfluxDB2(Backend):
    """A real InfluxDB 2 named by INFLUXDB_URL, queried back with Flux."""

    kind, keeps_duplicates = "influxdb", False

    def __init__(self) -> None:
        self.url = os.environ["INFLUXDB_URL"]
        self.token = os.environ.get("INFLUXDB_TOKEN", "")
        self.org = os.environ.get("INFLUXDB_ORG", "shouwang")
        self.bucket = os.environ.get("INFLUXDB_BUCKET", "readings")

    def points(self, measurement: str) -> list[StoredPoint]:
        from influxdb_client import InfluxDBClient

        flux = (f'from(bucket: "{self.bucket}") |> range(start: 0) '
                f'|> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{FIELD}")')
        with InfluxDBClient(url=self.url, token=self.token, org=self.org, timeout=30_000) as client:
            tables = client.query_api().query(flux, org=self.org)
        return [StoredPoint(tuple(sorted((k, rec.values[k]) for k in TAGS if rec.values.get(k) is not None)),
                            int(rec.get_time().timestamp()), rec.get_value())
                for table in tables for rec in table.records]

    def close(self) -> None:
        pass


def start_backend(tmp: Path) -> Backend:
    """InfluxDB 2 if INFLUXDB_URL is set, else VictoriaMetrics; skip (fail under CI) when neither can run."""
    if os.environ.get("INFLUXDB_URL"):
        return InfluxDB2()
    binary = shutil.which(VM_BINARY)
    if binary is None:
        reason = ("neither INFLUXDB_URL (a real InfluxDB 2) nor the victoria-metrics binary is available: "
                  "`apt-get install victoria-metrics` (.ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return VictoriaMetrics(binary, tmp)


class Proxy(TcpProxy):
    """A TCP forwarder to an HTTP ``upstream``; ``down()`` cuts and refuses connections, ``up()`` lets them in."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split("/")[0].rsplit(":", 1)
        super().__init__(host, int(port))
        self.url = f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.restore()

    def down(self) -> None:
        self.cut()


class StubInflux:
    """A real HTTP server at the v2 write path that answers as ``answer(lines)`` says: (status, body).

    It records each request's headers and line-protocol lines (gzip undone); the default answer echoes the
    request's headers in a 503 body, as a misbehaving proxy might, to catch a token leaking into logs."""

    def __init__(self, answer: Callable[[list[str], dict[str, str]], tuple[int, str]] | None = None) -> None:
        self.answer = answer or (lambda lines, headers: (503, f"upstream error; request headers: {headers}"))
        self.requests: list[tuple[dict[str, str], list[str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                lines = [line for line in body.decode().splitlines() if line]
                headers = dict(self.headers)
                stub.requests.append((headers, lines))
                status, text = stub.answer(lines, headers)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

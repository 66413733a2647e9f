"""The provisioned Grafana datasource and dashboard agree with the exporter's schema and with docker-compose.yml;
with a real InfluxDB 2 (INFLUXDB_URL) the dashboard's Flux queries run and give the expected water use."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from shouwang.settings import Settings
from storage.influx import FIELD, TAGS

ROOT = Path(__file__).resolve().parent.parent
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DASHBOARD = PROVISIONING / "dashboards" / "json" / "shouwang-readings.json"
MOUNT = "/etc/grafana/provisioning"  # where docker-compose.yml mounts deploy/grafana/provisioning


def _datasource() -> dict:
    (ds,) = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())["datasources"]
    return ds


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _queries(dash: dict) -> list[str]:
    return ([t["query"] for p in dash["panels"] for t in p["targets"]]
            + [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"])


def test_the_datasource_is_influxdb_flux_filled_from_the_environment_compose_gives_grafana() -> None:
    ds = _datasource()
    assert (ds["type"], ds["jsonData"]["version"]) == ("influxdb", "Flux")
    used = set(re.findall(r"\$([A-Z_]+)", json.dumps(ds)))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert used <= set(grafana["environment"]), "the datasource reads variables compose does not give Grafana"
    assert any(v.endswith(f":{MOUNT}:ro") and v.startswith("./deploy/grafana/provisioning") for v in grafana["volumes"])
    assert "token" in ds["secureJsonData"] and "token" not in ds["jsonData"]


def test_the_dashboard_provider_loads_the_dashboard_file() -> None:
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "shouwang.yaml").read_text())["providers"]
    path = provider["options"]["path"]
    assert path.startswith(MOUNT + "/")
    assert (PROVISIONING / path.removeprefix(MOUNT + "/") / DASHBOARD.name).is_file()


def test_every_panel_queries_the_provisioned_datasource_within_the_schema() -> None:
    dash, uid = _dashboard(), _datasource()["uid"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for item in dash["panels"] + [v for v in dash["templating"]["list"] if v["type"] == "query"]:
        assert item["datasource"]["uid"] == uid, item.get("title") or item["name"]
    constants = {v["name"]: v["query"] for v in dash["templating"]["list"] if v["type"] == "constant"}
    assert constants["measurement"] == Settings().influxdb_measurement
    for q in _queries(dash):
        columns = set(re.findall(r"\br\.(\w+)", q))
        assert columns <= {*TAGS, "_measurement", "_field", "_value", "_time"}, q
        assert '_measurement == "${measurement}"' in q
        if "r._field" in q:
            assert f'r._field == "{FIELD}"' in q
        assert q.count("(") == q.count(")") and q.count("{") == q.count("}"), q


# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.environ.get("INFLUXDB_URL"), reason="Flux needs a real InfluxDB 2 (set INFLUXDB_URL)")
def test_the_dashboard_queries_run_on_influxdb_and_show_the_water_used(store) -> None:
    import uuid
    from collections import defaultdict

    from influxdb_client import InfluxDBClient
    from test_influx import REGISTRY, make_exporter, readings
    from test_influx_backend import InfluxDB2

    backend, measurement = InfluxDB2(), f"readings_{uuid.uuid4().hex[:10]}"
    store.upsert_registry(REGISTRY)
    store.write_readings(readings(8 * 16))  # four hours; every register rises 1 m³ per 15 minutes
    exporter = make_exporter(store, backend.url, backend, measurement)
    try:
        while exporter.export_once()[1]:
            pass
    finally:
        exporter.stop()
    fill = {"${measurement}": measurement, "${community}": "c1", "${household:json}": '["H1", "H2"]',
            "${timezone}": "Asia/Shanghai", "v.defaultBucket": f'"{backend.bucket}"',
            "v.timeRangeStart": "-7d", "v.timeRangeStop": "now()"}
    results: dict[str, list] = {}
    with InfluxDBClient(url=backend.url, token=backend.token, org=backend.org, timeout=30_000) as client:
        for panel in _dashboard()["panels"]:
            q = panel["targets"][0]["query"]
            for key, value in fill.items():
                q = q.replace(key, value)
            results[panel["title"]] = [r.values for t in client.query_api().query(q) for r in t.records]
    hourly = defaultdict(list)
    for row in results["Water used per hour (litres)"]:
        hourly[row["household"]].append(row["_value"])
    assert set(hourly) == {"H1", "H2"}
    assert all(v == pytest.approx(4000.0) for values in hourly.values() for v in values[1:-1])
    assert {r["meter"] for r in results["Last reading of each meter (30 days)"]} == {"H1-W", "H1-E", "H2-W", "H2-E"}

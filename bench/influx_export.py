"""Benchmark (not a test): store readings with export off and on, then export the queue to InfluxDB's v2 write API.

    .venv/bin/python bench/influx_export.py [--readings 500000] [--batch 5000] [--export off|on|both] [--database URL]

Each mode stores into a fresh database (SQLite in a temporary directory, or --database, emptied first) and prints
the write time and the bytes a reading takes; with export on, the queue is then drained to a real InfluxDB 2 when
INFLUXDB_URL (+ INFLUXDB_TOKEN, INFLUXDB_ORG, INFLUXDB_BUCKET) is set, else to a victoria-metrics started on a free
port in a temporary directory. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import small_registry
from pydantic import SecretStr
from sqlalchemy import text
from test_influx_backend import start_backend

from shouwang.domain import Reading
from storage import open_store
from storage import schema as t
from storage.influx import InfluxConfig, InfluxExporter
from storage.influx_feed import ExportQueue
from storage.sql import SqlStore


def size_bytes(store: SqlStore, url: str) -> int:
    """The database's size: the SQLite file (with its WAL checkpointed), or PostgreSQL's readings + export_queue."""
    if url.startswith("sqlite"):
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return Path(url.removeprefix("sqlite:///")).stat().st_size
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT pg_total_relation_size('readings') + pg_total_relation_size('export_queue')")
                            ).scalar_one()


def run(args: argparse.Namespace, tmp: str, export: bool) -> None:
    label = "on" if export else "off"
    url = args.database or f"sqlite:///{tmp}/bench-{label}.db"
    registry = small_registry(args.households, per_gateway=50)
    meters = [m.id for m in registry.meters]
    store = open_store(url, upgrade=True, export=export)
    try:
        with store.engine.begin() as conn:  # (TRUNCATE gives PostgreSQL's space back, DELETE would not)
            if store.engine.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE readings, export_queue"))
            else:
                conn.execute(t.readings.delete())
                conn.execute(t.export_queue.delete())
        before = size_bytes(store, url)
        store.upsert_registry(registry)
        t0 = time.time() // 900 * 900 - 30 * 86400
        rows = [Reading(meters[i % len(meters)], int(t0 + (i // len(meters)) * 900), float(i))
                for i in range(args.readings)]
        start = time.perf_counter()
        for i in range(0, len(rows), args.batch):
            store.write_readings(rows[i:i + args.batch])
        stored_s = time.perf_counter() - start
        print(f"export {label}: store.write_readings, {args.batch:,} a transaction: "
              f"{stored_s / len(rows) * 1e6:.1f} µs/reading ({len(rows) / stored_s:,.0f} readings/s)")
        grown = size_bytes(store, url) - (before if args.database else 0)
        print(f"export {label}: {'SQLite file' if url.startswith('sqlite') else 'PostgreSQL'}: "
              f"{grown / len(rows):.1f} bytes/reading" + (" (queue not yet exported)" if export else ""))
        if export:
            export_queue(args, tmp, store, url, len(rows))
    finally:
        store.close()


def export_queue(args: argparse.Namespace, tmp: str, store: SqlStore, url: str, n: int) -> None:
    backend = start_backend(Path(tmp) / "influx")
    try:
        config = InfluxConfig(url=backend.url, token=SecretStr(backend.token), org=backend.org,
                              bucket=backend.bucket, measurement=f"bench_{uuid.uuid4().hex[:8]}",
                              batch_size=args.batch)
        exporter = InfluxExporter(ExportQueue(store.engine), config)
        start = time.perf_counter()
        more = True
        while more:
            _, more = exporter.export_once()
        export_s = time.perf_counter() - start
        exporter.stop()
        print(f"export on: export to {backend.kind}, {args.batch:,} a write: {n / export_s:,.0f} readings/s "
              f"({export_s:.1f} s for {n:,}); queued now {exporter.queue.count()}")
        print(f"export on: points read back: {len(backend.points(config.measurement)):,}")
        if url.startswith("sqlite"):
            print(f"export on: SQLite file after the export: {size_bytes(store, url) / n:.1f} bytes/reading "
                  "(the queue's pages are free for the next readings, the file does not shrink)")
    finally:
        backend.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=500_000)
    ap.add_argument("--households", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=5000, help="readings per store transaction and per InfluxDB write")
    ap.add_argument("--export", choices=("off", "on", "both"), default="both")
    ap.add_argument("--database", default=None, help="store URL, emptied of readings first (default: SQLite in a "
                    "temporary directory)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for export in {"off": (False,), "on": (True,), "both": (False, True)}[args.export]:
            run(args, tmp, export)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

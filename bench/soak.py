"""Soak benchmark (issue 7): a simulated district through the real broker for weeks of simulated time.

By default 10,000 households (20,000 meters behind 100 gateways) report every 15 minutes for 30 simulated
days. simulators/ publishes them (one paho client per gateway, QoS 1, one batch per gateway and interval) to a
Mosquitto of the benchmark's own (limits as deploy/mosquitto/mosquitto.conf), and `shouwang run` takes them in
from a child process (SQLite, default detectors sweeping every 5 s, API with /metrics), both following one
scaled clock. Every --sample-s wall seconds it prints the simulated day, readings published and stored, and the
resident memory (RSS) of the service and of Mosquitto; at the end, counts in against counts out (rows and
distinct (meter, ts) in the store, rejections) and how RSS moved over the run.

    .venv/bin/python bench/soak.py                                  # the issue's district (see docs/benchmarks.md)
    .venv/bin/python bench/soak.py --households 500 --days 3        # a smoke run, under a minute
    .venv/bin/python bench/soak.py --help

Not part of the test suite. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from faults_support import Mosquitto, ServiceProcess, prepare_session

from shouwang.clock import ScaledClock
from simulators.community import build_community
from simulators.publisher import Simulator

TZ = ZoneInfo("Asia/Shanghai")
DAY = 86400


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB (VmRSS from /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def stored_readings(api_port: int) -> int | None:
    """The service's own count of readings newly stored (Prometheus counter at /metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("shouwang_readings_stored_total "):
                    return int(float(line.split()[1]))
    except OSError:
        return None
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--households", type=int, default=10_000)
    p.add_argument("--days", type=float, default=30.0, help="simulated days")
    p.add_argument("--interval-s", type=int, default=900, help="meter reporting interval (simulated seconds)")
    p.add_argument("--speed", type=float, default=1200.0, help="simulated seconds per wall second")
    p.add_argument("--per-gateway", type=int, default=100, help="households behind one gateway")
    p.add_argument("--sample-s", type=float, default=10.0, help="wall seconds between samples")
    p.add_argument("--start", default="2026-10-01T00:00:00+08:00", help="simulated start (RFC 3339)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the store and logs here (default: temp, removed)")
    p.add_argument("--json", type=Path, default=None, help="write the samples and totals here")
    args = p.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="shouwang-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = datetime.fromisoformat(args.start).timestamp()
    end = start + args.days * DAY
    registry = build_community(args.households, community_id="soak", households_per_gateway=args.per_gateway)
    meters = len(registry.meters)
    per_s = meters * args.speed / args.interval_s
    print(f"soak: {args.households} households, {meters} meters, {len(registry.gateways)} gateways, "
          f"every {args.interval_s} s for {args.days:g} days = {meters * args.days * DAY / args.interval_s:,.0f} "
          f"readings; speed {args.speed:g}x = {per_s:,.0f} readings/s offered, about "
          f"{args.days * DAY / args.speed / 60:.1f} wall minutes", flush=True)

    broker = Mosquitto(workdir / "mosquitto", persistence=False, anonymous=True)  # the simulator logs in anonymously
    broker.start()
    client_id = "shouwang-soak"
    prepare_session(broker, client_id)  # the broker queues for the service from the first reading on
    db = workdir / "soak.db"
    service = ServiceProcess(workdir / "service", registry, broker, f"sqlite:///{db}", client_id,
                             clock_start=str(start), clock_speed=str(args.speed),
                             max_future_skew_s=str(DAY))  # the service's clock starts a few seconds late
    sim = Simulator(registry, None, broker_port=broker.port, start=start, interval_s=args.interval_s,
                    batch=True, client_id_prefix="soak-sim", ack_timeout_s=60)
    sim.connect()
    clock = ScaledClock(start, args.speed)
    wall0 = time.monotonic()
    service.start()
    stop = threading.Event()
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("run", sim.run(clock, stop)), daemon=True)
    runner.start()
    api_port = int(service.env["SHOUWANG_API_PORT"])
    samples: list[dict] = []
    first_tick = math.ceil(start / args.interval_s) * args.interval_s

    def sample(published: int) -> dict:
        s = {"wall_s": round(time.monotonic() - wall0, 1), "sim_day": round((clock.now() - start) / DAY, 2),
             "published": published, "stored": stored_readings(api_port),
             "service_rss_mb": round(rss_mb(service.proc.pid), 1),
             "mosquitto_rss_mb": round(rss_mb(broker.proc.pid), 1)}
        samples.append(s)
        print("  ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in s.items()), flush=True)
        return s

    print("wall_s / simulated day / readings published (approx. while running) / stored / RSS", flush=True)
    try:
        while clock.now() < end:
            time.sleep(min(args.sample_s, max(0.05, (end - clock.now()) / args.speed)))
            if not service.alive():
                raise SystemExit(f"the service died: see {service.log}")
            ticks = max(0, math.floor((min(clock.now(), end) - first_tick) / args.interval_s) + 1)
            sample(ticks * meters)
        stop.set()
        runner.join(60)
        totals = result["run"]
        extra = sim.step_to(totals.until)  # waits for every PUBACK
        published = totals.readings + extra.readings
        sim_days = (totals.until - start) / DAY
        caught_up_at = None
        last, still = -1, time.monotonic()
        while True:
            s = sample(published)
            if s["stored"] is not None and s["stored"] >= published:
                caught_up_at = s["wall_s"]
                break
            if s["stored"] != last:
                last, still = s["stored"], time.monotonic()
            elif time.monotonic() - still > 120:
                print("stored count did not move for 120 s; stopping", flush=True)
                break
            time.sleep(min(args.sample_s, 5))
        rc = service.terminate(timeout=120)
    finally:
        stop.set()
        service.ensure_stopped()
        sim.close(announce_offline=False)
        broker.stop()

    t = time.monotonic()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        both = "(SELECT meter, ts FROM readings UNION ALL SELECT meter, ts FROM readings_recent)"  # sql_recent.py
        rows = conn.execute(f"SELECT count(*) FROM {both}").fetchone()[0]
        distinct = conn.execute(f"SELECT count(*) FROM (SELECT DISTINCT meter, ts FROM {both})").fetchone()[0]
        rejections = dict(conn.execute("SELECT reason, count(*) FROM rejections GROUP BY reason").fetchall())
        alerts = dict(conn.execute("SELECT category, count(*) FROM alerts GROUP BY category").fetchall())
    count_s = time.monotonic() - t
    rss = [s["service_rss_mb"] for s in samples if s["sim_day"] <= sim_days]
    quarter = max(1, len(rss) // 4)
    totals_out = {
        "households": args.households, "meters": meters, "interval_s": args.interval_s, "speed": args.speed,
        "simulated_days": round(sim_days, 2), "published": published, "messages": totals.messages,
        "rows": rows, "distinct_meter_ts": distinct, "rejections": rejections, "alerts": alerts,
        "service_exit": rc, "wall_s_to_caught_up": caught_up_at, "count_query_s": round(count_s, 1),
        "rss_first_quarter_mb": round(sum(rss[:quarter]) / quarter, 1) if rss else None,
        "rss_last_quarter_mb": round(sum(rss[-quarter:]) / quarter, 1) if rss else None,
        "rss_max_mb": max(rss) if rss else None,
        "machine": f"{platform.node()} {platform.machine()} nproc={__import__('os').cpu_count()} "
                   f"python {platform.python_version()}",
    }
    print(json.dumps(totals_out, indent=1, ensure_ascii=False))
    ok = rows == distinct == published and not rejections
    print(f"counts in {published:,} = rows {rows:,} = distinct (meter, ts) {distinct:,}: {'yes' if ok else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps({"totals": totals_out, "samples": samples}, indent=1))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

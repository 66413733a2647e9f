"""Scale-out benchmark (issue 7): one ingest worker against two, communities sharded by topic partitions.

Each run gets a fresh PostgreSQL database and a Mosquitto of its own (deploy limits: max_inflight_messages 1000,
max_queued_messages 1000000, so no QoS 1 message is dropped), then starts N worker processes, each a full
`Service` (validate → store in PostgreSQL → household state → event-driven detector sweeps → alerts) with
SHOUWANG_SHARD_INDEX=i and SHOUWANG_SHARD_COUNT=N. The parent publishes pre-encoded QoS 1 messages over one
raw socket, never more than --window messages ahead of what the workers have stored, and measures from the
first message to the last reading stored. Runs of one and of two workers are interleaved --repeat times; the
medians and their ratio are printed, with the CPU each process type used, because on a 2-core machine the
publisher, Mosquitto and PostgreSQL share the cores with the workers.

    .venv/bin/python bench/scaleout.py                 # batched uploads and single readings, 3 repeats
    .venv/bin/python bench/scaleout.py --quick         # a smoke run
    .venv/bin/python bench/scaleout.py --help

Not part of the test suite. Results and what limits them: docs/benchmarks.md (scale-out).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
bi = importlib.util.module_from_spec(_spec)
sys.modules["bench_ingest"] = bi
_spec.loader.exec_module(bi)  # its helpers: raw publisher, private broker, packets; puts ROOT on sys.path

import orjson

STEP = 900
BROKER_LIMITS = ["max_inflight_messages 1000", "max_queued_messages 1000000", "max_queued_bytes 0"]


# ====================================================================== the city
def community_id(c: int) -> str:
    return f"c{c:03d}"


def city(communities: int, households: int, per_gateway: int = 100):
    """``households`` (a water and an electricity meter each) spread over ``communities``, 100 meters a gateway."""
    from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Registry

    cs, gws, hhs, meters = [], [], [], []
    per = -(-households // communities)
    for c in range(communities):
        cid = community_id(c)
        cs.append(Community(cid, cid))
        mine = range(c * per, min((c + 1) * per, households))
        for k, h in enumerate(mine):
            hid = bi.household_id(h)
            hhs.append(Household(hid, cid, hid, "", "g"))
            for kind, suffix in ((MeterKind.WATER, "W"), (MeterKind.ELECTRICITY, "E")):
                gid = f"GW-{cid}-{(2 * k) // per_gateway:03d}"
                if not gws or gws[-1].id != gid:
                    gws.append(Gateway(gid, cid))
                meters.append(Meter(f"{hid}-{suffix}", hid, kind, gid))
    return Registry(tuple(cs), tuple(gws), tuple(hhs), tuple(meters))


def messages(registry, prefix: str, rounds: int, batch: int, t0: int) -> tuple[list[bytes], int]:
    """Pre-encoded PUBLISH packets: per round, each gateway's meters at one instant, ``batch`` readings a message.

    Gateways report at about the same time, so messages are interleaved across communities (round-robin over the
    gateways, taking each community's first gateway first): in community order, the publisher's window would hold
    one community, hence one worker, at a time."""
    by_gw: dict[str, list] = {}
    for m in registry.meters:
        by_gw.setdefault(m.gateway, []).append(m)
    community = {g.id: g.community for g in registry.gateways}
    place: dict[str, int] = {}
    rank = {}
    for g in registry.gateways:
        rank[g.id] = place.get(g.community, 0)
        place[g.community] = rank[g.id] + 1
    order = sorted(by_gw, key=lambda g: (rank[g], community[g]))
    packets, n = [], 0
    for r in range(rounds):
        ts = t0 + r * STEP
        chunks = {g: [by_gw[g][i:i + batch] for i in range(0, len(by_gw[g]), batch)] for g in order}
        for k in range(max(len(c) for c in chunks.values())):
            for gid in order:
                if k >= len(chunks[gid]):
                    continue
                rows = [{"meter": m.id, "kind": str(m.kind), "ts": ts,
                         "value": round(100 + r * (0.002 if m.id.endswith("W") else 0.15), 3)} for m in chunks[gid][k]]
                payload = orjson.dumps(rows[0] if batch == 1 else {"gateway": gid, "readings": rows})
                topic = f"{prefix}/{community[gid]}/{gid}/readings"
                packets.append(bi.mqtt_publish_packet(topic, payload, len(packets) % 65535 + 1))
                n += len(rows)
    return packets, n


# ====================================================================== one worker process
def worker(cfg: dict, index: int, count: int, stored, handled, ready, stop, results) -> None:
    """A Service owning shard ``index`` of ``count``; publishes its counts into the shared arrays."""
    try:
        import logging

        logging.basicConfig(level=logging.WARNING)
        from shouwang.clock import SystemClock
        from shouwang.service import Service
        from shouwang.settings import Settings
        from storage.sql import open_store

        registry = city(cfg["communities"], cfg["households"])
        settings = Settings(database_url=cfg["db"], mqtt_host="127.0.0.1", mqtt_port=cfg["port"],
                            mqtt_topic_prefix=cfg["prefix"], mqtt_client_id=cfg["client"], mqtt_clean_session=True,
                            mqtt_embedded_fallback=False, shard_index=index, shard_count=count)
        store = open_store(cfg["db"])
        svc = Service(settings, store, registry, SystemClock(), watchers=[])
        svc.start()
        if not svc.ingest.subscribed.wait(30):
            raise RuntimeError("worker did not subscribe")
        ready.set()
        cpu0 = time.process_time()
        while not stop.wait(0.005):
            stored[index] = svc.stats.get("readings_stored")
            handled[index] = svc.stats.get("messages")
        stored[index] = svc.stats.get("readings_stored")
        results.put({"index": index, "cpu_s": time.process_time() - cpu0, "sweeps": svc.sweeps,
                     "households": len(svc.state.household_ids), "accepted": svc.stats.get("readings_accepted"),
                     "stored": svc.stats.get("readings_stored"), "messages": svc.stats.get("messages"),
                     "rejected": sum(v for k, v in svc.stats.snapshot().items() if k.startswith("rejected."))})
        svc.stop()
        store.close()
    except BaseException as exc:  # noqa: BLE001 - report to the parent instead of hanging it
        ready.set()
        results.put({"index": index, "error": f"{type(exc).__name__}: {exc}"})


# ====================================================================== CPU accounting from /proc
def _ticks(pids_or_name) -> float:
    """CPU seconds used so far by the given pids, or by every process with that command name."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        if isinstance(pids_or_name, set) and int(p.name) not in pids_or_name:
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if isinstance(pids_or_name, str) and name != pids_or_name:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / hz


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    hz = os.sysconf("SC_CLK_TCK")
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = v[3] + v[4]
    return (sum(v) - idle) / hz, sum(v) / hz


# ====================================================================== one run
def run_once(args: argparse.Namespace, port: int, workers: int, batch: int, rounds: int) -> dict:
    from sqlalchemy import create_engine, text

    from storage.sql import open_store

    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = args.pg_admin.rsplit("/", 1)[0] + f"/{name}"
    ctx = mp.get_context("spawn")
    procs = []
    stop = ctx.Event()
    try:
        registry = city(args.communities, args.households)
        setup = open_store(db)
        setup.upsert_registry(registry)
        setup.close()
        prefix = f"scale-{uuid.uuid4().hex[:8]}/v1"
        t0 = int(time.time()) - rounds * STEP
        packets, total = messages(registry, prefix, rounds, batch, t0)
        cfg = {"db": db, "port": port, "prefix": prefix, "client": f"scale-{uuid.uuid4().hex[:6]}",
               "communities": args.communities, "households": args.households}
        stored, handled = ctx.RawArray("q", workers), ctx.RawArray("q", workers)
        results = ctx.Queue()
        readies = []
        for i in range(workers):
            ready = ctx.Event()
            p = ctx.Process(target=worker, args=(cfg, i, workers, stored, handled, ready, stop, results), daemon=True)
            p.start()
            procs.append(p)
            readies.append(ready)
        for ready in readies:
            if not ready.wait(300):
                raise RuntimeError("a worker did not get ready")
        time.sleep(1.0)  # let the start-up sweeps settle
        pub = bi.RawPublisher("127.0.0.1", port, f"{cfg['client']}-pub")
        worker_pids = {p.pid for p in procs}
        cpu0 = (_ticks(worker_pids), _ticks("mosquitto"), _ticks("postgres"), time.process_time(), _machine_busy())
        t_start = time.perf_counter()
        sent = 0
        deadline = time.monotonic() + args.timeout
        while sent < len(packets) and time.monotonic() < deadline:
            allowed = min(sum(handled) + args.window - sent, len(packets) - sent, 200)
            if allowed <= 0:
                time.sleep(0.0005)
                continue
            pub.send(packets[sent:sent + allowed])
            sent += allowed
        while sum(stored) < total and time.monotonic() < deadline:
            time.sleep(0.002)
        t_end = time.perf_counter()
        cpu1 = (_ticks(worker_pids), _ticks("mosquitto"), _ticks("postgres"), time.process_time(), _machine_busy())
        pub.close()
        elapsed = t_end - t_start
        done = sum(stored)
        stop.set()
        reports = [results.get(timeout=60) for _ in procs]
        errors = [r["error"] for r in reports if "error" in r]
        if errors:
            raise RuntimeError("; ".join(errors))
        check = open_store(db)
        in_db = check.count_readings()
        check.close()
        busy = cpu1[4][0] - cpu0[4][0], cpu1[4][1] - cpu0[4][1]
        return {"workers": workers, "batch": batch, "readings": total, "stored": done, "in_db": in_db,
                "seconds": elapsed, "rate": done / elapsed,
                "cpu_s": {"workers": cpu1[0] - cpu0[0], "mosquitto": cpu1[1] - cpu0[1],
                          "postgres (all)": cpu1[2] - cpu0[2], "publisher": cpu1[3] - cpu0[3],
                          "machine": busy[0], "machine capacity": busy[1]},
                "per_worker": sorted(reports, key=lambda r: r["index"])}
    finally:
        stop.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def ceiling(runs: list[dict]) -> dict:
    """What the CPU the runs used allows two workers on this many idle cores, and how busy the rest of the machine was."""
    def med(workers: int, key) -> float:
        return statistics.median(key(r) for r in runs if r["workers"] == workers)

    def ours(r: dict) -> float:
        c = r["cpu_s"]
        return c["workers"] + c["mosquitto"] + c["postgres (all)"] + c["publisher"]

    readings = runs[0]["readings"]
    two_s = max(med(2, ours) / (os.cpu_count() or 1), med(2, lambda r: max(w["cpu_s"] for w in r["per_worker"])))
    others = statistics.median((r["cpu_s"]["machine"] - ours(r)) / r["cpu_s"]["machine capacity"] for r in runs)
    return {"workers_cpu": {n: med(n, lambda r: r["cpu_s"]["workers"]) for n in (1, 2)},
            "ours_cpu": {n: med(n, ours) for n in (1, 2)}, "two_ceiling": readings / two_s, "others_share": others}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pg-admin", default=os.environ.get("SHOUWANG_TEST_PG",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
                   help="PostgreSQL URL allowed to create and drop the throwaway databases")
    p.add_argument("--households", type=int, default=20_000, help="households (two meters each)")
    p.add_argument("--communities", type=int, default=40)
    p.add_argument("--rounds", type=int, default=10, help="15-minute rounds of batched uploads")
    p.add_argument("--batch", type=int, default=100, help="readings a message in the batched runs")
    p.add_argument("--single-rounds", type=int, default=1, help="rounds of single-reading messages (0: skip)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs of each worker count; medians reported")
    p.add_argument("--window", type=int, default=2000, help="messages the publisher runs ahead of what is stored")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.households, args.rounds, args.repeat = 4000, 3, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sqlalchemy import create_engine, text

    engine = create_engine(args.pg_admin)
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    mosq = subprocess.run(["mosquitto", "-h"], check=False, capture_output=True, text=True).stdout.split("\n")[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; PostgreSQL {pg}; {mosq}")
    shapes = [("batched", args.batch, args.rounds)]
    if args.single_rounds:
        shapes.append(("single", 1, args.single_rounds))
    out: dict = {"args": vars(args), "runs": []}
    with bi.private_broker(BROKER_LIMITS) as port:
        for label, batch, rounds in shapes:
            rates: dict[int, list[float]] = {1: [], 2: []}
            for rep in range(args.repeat):
                for workers in (1, 2):
                    r = run_once(args, port, workers, batch, rounds)
                    r["shape"] = label
                    out["runs"].append(r)
                    rates[workers].append(r["rate"])
                    cpu = ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_s"].items())
                    print(f"[{label} {rep + 1}/{args.repeat}] {workers} worker(s): {r['stored']:,}/{r['readings']:,} "
                          f"readings in {r['seconds']:.1f} s = {r['rate']:,.0f} readings/s "
                          f"({r['in_db']:,} in the database); CPU s: {cpu}")
                    for w in r["per_worker"]:
                        print(f"    worker {w['index']}: {w['households']:,} households, {w['messages']:,} messages, "
                              f"{w['stored']:,} stored, {w['sweeps']} sweeps, {w['cpu_s']:.1f} CPU s")
            m1, m2 = statistics.median(rates[1]), statistics.median(rates[2])
            out[label] = {"one": m1, "two": m2, "ratio": m2 / m1, **ceiling([r for r in out["runs"]
                                                                             if r["shape"] == label])}
            c = out[label]
            print(f"==> {label} ({batch} a message): one worker {m1:,.0f}, two workers {m2:,.0f} readings/s "
                  f"(medians of {args.repeat}): {m2 / m1:.2f}x   [target >= 1.6x]")
            print(f"    CPU a run (medians): workers {c['workers_cpu'][1]:.1f} s (one) / {c['workers_cpu'][2]:.1f} s "
                  f"(two), with Mosquitto, PostgreSQL and the publisher {c['ours_cpu'][1]:.1f} / {c['ours_cpu'][2]:.1f} s;"
                  f" other processes on the machine used {c['others_share']:.0%} of it meanwhile. On {os.cpu_count()} "
                  f"idle cores that CPU allows two workers at most {c['two_ceiling']:,.0f} readings/s, "
                  f"{c['two_ceiling'] / m1:.2f}x the one-worker rate measured")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

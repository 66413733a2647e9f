"""City benchmark (issue 7): one process holding a whole city's households, fed at a city's reading rate.

Issue 7 asks for "a city of 1,000,000 households at a 15-minute cadence (about 2,200 readings per second) on
one process". This starts a Mosquitto of its own (deploy limits) and ONE worker process: a full `Service`
(validate → store → household state for every household → event-driven sweeps of the default detectors →
alert pipeline) over a fresh PostgreSQL database (the production store; `--store sqlite` for the embedded one).
The parent publishes each 15-minute round (every meter once, 100 readings a gateway message, gateways
interleaved) over one raw socket, paced at `--rate` readings/s (0: as fast as the worker stores). Every
`--sample-s` it prints readings sent and stored, the backlog between them, the worker's RSS, its sweeps so
far and the duration of its last sweep. At the end: rows in the store against readings sent, the worst
backlog, and how long after each round's last message its last reading was stored.

    .venv/bin/python bench/city.py                                  # 1,000,000 households, 2 rounds at 2,222/s
    .venv/bin/python bench/city.py --rate 0 --rounds 2              # capacity: as fast as it goes
    .venv/bin/python bench/city.py --households 20000 --rounds 2    # a smoke run

Not part of the test suite. Results: docs/benchmarks.md ("A city on one process").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scaleout as so  # the city, its messages, the raw publisher, CPU accounting (and bench/ingest)

bi = so.bi


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def city_worker(cfg: dict, shared, ready, stop, results) -> None:
    """The service under test; publishes [stored, messages, sweeps, last sweep ms, start-up s] into ``shared``."""
    try:
        import logging

        logging.basicConfig(level=logging.WARNING)
        from shouwang.clock import SystemClock
        from shouwang.service import Service
        from shouwang.settings import Settings
        from storage.sql import open_store

        t0 = time.monotonic()
        registry = so.city(cfg["communities"], cfg["households"])
        settings = Settings(database_url=cfg["db"], mqtt_host="127.0.0.1", mqtt_port=cfg["port"],
                            mqtt_topic_prefix=cfg["prefix"], mqtt_client_id=cfg["client"], mqtt_clean_session=True,
                            mqtt_embedded_fallback=False, state_feed=cfg["followers"])
        store = open_store(cfg["db"])
        svc = Service(settings, store, registry, SystemClock(), watchers=[])
        svc.start()
        if not svc.ingest.subscribed.wait(60):
            raise RuntimeError("worker did not subscribe")
        shared[4] = int((time.monotonic() - t0) * 1000)
        ready.set()
        longest = 0.0
        while not stop.wait(0.01):
            shared[0] = svc.stats.get("readings_stored")
            shared[1] = svc.stats.get("messages")
            shared[2] = svc.sweeps
            shared[3] = int(svc.last_sweep_s * 1000)
            longest = max(longest, svc.last_sweep_s)
        shared[0] = svc.stats.get("readings_stored")
        results.put({"sweeps": svc.sweeps, "longest_sweep_ms": round(longest * 1000),
                     "households": len(svc.state.household_ids), "meters": len(svc.state.meter_ids),
                     "accepted": svc.stats.get("readings_accepted"), "stored": svc.stats.get("readings_stored"),
                     "rejected": sum(v for k, v in svc.stats.snapshot().items() if k.startswith("rejected.")),
                     "alerts_open": len(store.unresolved_alerts())})
        svc.stop()
        store.close()
    except BaseException as exc:  # noqa: BLE001 - report to the parent instead of hanging it
        ready.set()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def city_follower(cfg: dict, feed: bool, shared, ready, stop) -> None:
    """`run --role api`'s follower of the same store, by the state feed or by re-reading; publishes
    [refreshes, total ms, longest ms, readings read, start-up ms] into ``shared``."""
    try:
        import logging

        logging.basicConfig(level=logging.WARNING)
        from shouwang.clock import SystemClock
        from shouwang.service import StateFollower
        from shouwang.settings import Settings
        from storage.sql import open_store

        t0 = time.monotonic()
        follower = StateFollower(Settings(database_url=cfg["db"], state_feed=feed), open_store(cfg["db"]),
                                 so.city(cfg["communities"], cfg["households"]), SystemClock())
        follower.refresh()
        shared[4] = int((time.monotonic() - t0) * 1000)
        ready.set()
        while not stop.wait(cfg["refresh_s"]):
            t = time.monotonic()
            shared[3] += follower.refresh()
            took = int((time.monotonic() - t) * 1000)
            shared[0] += 1
            shared[1] += took
            shared[2] = max(shared[2], took)
    except BaseException as exc:  # noqa: BLE001 - the parent sees it as a follower that never got ready
        print(f"follower ({'feed' if feed else 're-read'}) failed: {type(exc).__name__}: {exc}", flush=True)
        ready.set()


def database(args: argparse.Namespace, workdir: Path) -> tuple[str, callable]:
    """A fresh database URL and a function that drops it."""
    if args.store == "sqlite":
        path = workdir / f"city-{uuid.uuid4().hex[:6]}.db"
        return f"sqlite:///{path}", lambda: [p.unlink(missing_ok=True) for p in workdir.glob(path.name + "*")]
    from sqlalchemy import create_engine, text

    name = f"bench_city_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return args.pg_admin.rsplit("/", 1)[0] + f"/{name}", drop


def run(args: argparse.Namespace, port: int) -> dict:
    from storage.sql import open_store

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db, drop = database(args, workdir)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = None
    try:
        t = time.monotonic()
        registry = so.city(args.communities, args.households)
        setup = open_store(db)
        setup.upsert_registry(registry)
        setup.close()
        print(f"registry: {len(registry.households):,} households, {len(registry.meters):,} meters, "
              f"{len(registry.gateways):,} gateways in {len(registry.communities)} communities; "
              f"built and stored in {time.monotonic() - t:.0f} s", flush=True)
        prefix = f"city-{uuid.uuid4().hex[:8]}/v1"
        cfg = {"db": db, "port": port, "prefix": prefix, "client": f"city-{uuid.uuid4().hex[:6]}",
               "communities": args.communities, "households": args.households, "followers": args.followers,
               "refresh_s": 10.0}
        shared = ctx.RawArray("q", 5)
        results = ctx.Queue()
        ready = ctx.Event()
        proc = ctx.Process(target=city_worker, args=(cfg, shared, ready, stop, results), daemon=True)
        proc.start()
        if not ready.wait(1800):
            raise RuntimeError("the worker did not get ready")
        print(f"worker ready after {shared[4] / 1000:.0f} s (state for every household built); "
              f"RSS {rss_mb(proc.pid):,.0f} MB", flush=True)
        followers = []
        for feed in (True, False) if args.followers else ():
            f_shared, f_ready = ctx.RawArray("q", 5), ctx.Event()
            f_proc = ctx.Process(target=city_follower, args=(cfg, feed, f_shared, f_ready, stop), daemon=True)
            f_proc.start()
            followers.append(("feed" if feed else "re-read", f_proc, f_shared, f_ready))
        for name, f_proc, f_shared, f_ready in followers:
            f_ready.wait(1800)
            print(f"follower ({name}) ready after {f_shared[4] / 1000:.0f} s; RSS {rss_mb(f_proc.pid):,.0f} MB",
                  flush=True)
        f_cpu0 = {name: so._ticks({f_proc.pid}) for name, f_proc, _s, _r in followers}
        time.sleep(2.0)
        pub = bi.RawPublisher("127.0.0.1", port, f"{cfg['client']}-pub")
        t0 = int(time.time()) - args.rounds * so.STEP
        sent = 0
        samples, round_lags, worst_backlog = [], [], 0
        wall0 = time.monotonic()
        next_sample = wall0
        cpu0 = (so._ticks({proc.pid}), so._machine_busy())

        def sample(force: bool = False) -> None:
            nonlocal next_sample, worst_backlog
            now = time.monotonic()
            backlog = sent - shared[0]
            worst_backlog = max(worst_backlog, backlog)
            if now < next_sample and not force:
                return
            next_sample = now + args.sample_s
            s = {"wall_s": round(now - wall0, 1), "sent": sent, "stored": shared[0], "backlog": backlog,
                 "rss_mb": round(rss_mb(proc.pid)), "sweeps": shared[2], "last_sweep_ms": shared[3]}
            samples.append(s)
            print("  ".join(f"{k} {v:,}" for k, v in s.items()), flush=True)

        for r in range(args.rounds):
            packets, n = so.messages(registry, prefix, 1, args.batch, t0 + r * so.STEP)
            round_start = time.monotonic()
            per_packet = n / len(packets)
            for i in range(0, len(packets), 20):
                if args.rate:  # paced: this chunk may go when the round's schedule says so
                    due = round_start + (i * per_packet) / args.rate
                    while time.monotonic() < due:
                        sample()
                        time.sleep(min(0.01, max(0.0, due - time.monotonic())))
                else:  # as fast as it stores: at most --window messages ahead
                    while shared[1] + args.window < i + r * len(packets):
                        sample()
                        time.sleep(0.001)
                pub.send(packets[i:i + 20])
                sent += int(per_packet * len(packets[i:i + 20]))
                sample()
            sent = (r + 1) * n
            last_sent = time.monotonic()
            while shared[0] < sent:
                sample()
                time.sleep(0.005)
                if time.monotonic() - last_sent > args.timeout:
                    raise RuntimeError(f"round {r}: {sent - shared[0]:,} readings not stored after {args.timeout} s")
            round_lags.append(round(time.monotonic() - last_sent, 2))
            print(f"round {r + 1}/{args.rounds}: {n:,} readings in {last_sent - round_start:.0f} s; the last one "
                  f"stored {round_lags[-1]} s after it was sent", flush=True)
        elapsed = time.monotonic() - wall0
        sample(force=True)
        cpu1 = (so._ticks({proc.pid}), so._machine_busy())
        follower_report = {name: {"refreshes": f_shared[0], "mean_ms": round(f_shared[1] / max(f_shared[0], 1)),
                                  "longest_ms": f_shared[2], "readings_read": f_shared[3],
                                  "startup_s": f_shared[4] / 1000,
                                  "cpu_s": round(so._ticks({f_proc.pid}) - f_cpu0[name], 1),
                                  "rss_mb": round(rss_mb(f_proc.pid))}
                           for name, f_proc, f_shared, _r in followers}
        pub.close()
        stop.set()
        report = results.get(timeout=300)
        if "error" in report:
            raise RuntimeError(report["error"])
        check = open_store(db)
        in_db = check.count_readings()
        check.close()
        return {"households": args.households, "rounds": args.rounds, "rate_asked": args.rate,
                "store": args.store, "readings_sent": sent, "rows_in_store": in_db,
                "seconds": round(elapsed, 1), "readings_per_s": round(sent / elapsed),
                "worst_backlog": worst_backlog, "round_lag_s": round_lags,
                "worker_cpu_s": round(cpu1[0] - cpu0[0], 1),
                "machine_busy_share": round((cpu1[1][0] - cpu0[1][0]) / (cpu1[1][1] - cpu0[1][1]), 2),
                "startup_s": shared[4] / 1000, "rss_mb_max": max(s["rss_mb"] for s in samples),
                "rss_mb_last": samples[-1]["rss_mb"], "worker": report, "followers": follower_report,
                "samples": samples,
                "machine": f"{platform.node()} nproc={os.cpu_count()} python {platform.python_version()}"}
    finally:
        stop.set()
        if proc is not None:
            proc.join(120)
            if proc.is_alive():
                proc.kill()
        drop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--households", type=int, default=1_000_000, help="households (a water and an electricity meter each)")
    p.add_argument("--communities", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2, help="15-minute rounds (every meter once a round)")
    p.add_argument("--rate", type=float, default=2222, help="readings/s to publish at (0: as fast as stored)")
    p.add_argument("--batch", type=int, default=100, help="readings a gateway message")
    p.add_argument("--window", type=int, default=2000, help="with --rate 0: messages ahead of what is handled")
    p.add_argument("--store", choices=("pg", "sqlite"), default="pg")
    p.add_argument("--followers", action="store_true",
                   help="also run two `run --role api` followers of the store: by the state feed and by re-reading")
    p.add_argument("--pg-admin", default=os.environ.get("SHOUWANG_TEST_PG",
                                                         "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--workdir", default="var/bench-city")
    p.add_argument("--sample-s", type=float, default=30.0)
    p.add_argument("--timeout", type=float, default=900, help="seconds a round may take to be stored after its end")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with bi.private_broker(so.BROKER_LIMITS) as port:
        result = run(args, port)
    shown = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(shown, indent=1, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    ok = result["rows_in_store"] == result["readings_sent"] and not result["worker"]["rejected"]
    print(f"every reading stored once: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

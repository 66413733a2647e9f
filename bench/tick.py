"""What a whole sweep of the service costs with alerts standing: the detectors, then the alert handling after them.

    .venv/bin/python bench/tick.py                                        # 1,000,000 meters, SQLite in a temp dir
    .venv/bin/python bench/tick.py --night                                # every household quiet for 3-10 h
    .venv/bin/python bench/tick.py --url postgresql://postgres@127.0.0.1:5432/scratch_db

`detectors.measure` times the detectors' ``evaluate`` alone. A sweep of the service (``Service.tick``) then runs
their findings through the alert pipeline (route → inhibit → silence → dedupe → escalate → record), reads the open
alerts, asks each one's detector whether its condition has gone, and steps the escalations. Findings of conditions
that already have an open alert come back every sweep. This builds a `Service` over ``--meters`` meters whose state
looks four weeks old (the state of `detectors.measure`), lets a first sweep open the alerts its findings call for,
then times ``--repeats`` further sweeps (1 % of the households touched before each, as between the service's
sweeps) and, before each, the default detectors' ``evaluate`` alone. The PostgreSQL database must exist; its alert tables
are emptied afterwards (the registry it was given stays). Not part of the test suite; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from detectors.measure import registry, swept_state
from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

ALERT_TABLES = ("escalations", "outbox", "alert_events", "alerts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--url", help="a store URL (default: SQLite in a temporary directory)")
    ap.add_argument("--meters", type=int, default=1_000_000)
    ap.add_argument("--night", action="store_true", help="every household quiet for 3-10 h (by day: a quarter 3-4 h)")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    t0 = time.perf_counter()
    state, now = swept_state(args.meters, args.night)
    store = open_store(args.url or f"sqlite:///{tempfile.mkdtemp()}/tick.db", upgrade=True)
    svc = Service(Settings(), store, registry(args.meters // 2), ManualClock(now), watchers=[])
    svc.state = state  # the same registry: the service's sweep reads this state
    setup = time.perf_counter() - t0
    try:
        first = time.perf_counter()
        opened = svc.tick(now)
        first = time.perf_counter() - first
        print(f"{store.engine.dialect.name}, {args.meters:,} meters, {'night' if args.night else 'day'} (set up in "
              f"{setup:.0f} s): the first sweep opened {len(opened):,} alerts in {first * 1000:,.0f} ms")
        rng = np.random.default_rng(11)
        households = args.meters // 2
        evaluate, tick = [], []
        for _ in range(args.repeats):
            state.touch(rng.choice(households, households // 100, replace=False))
            t = time.perf_counter()
            findings = sum(len(d.evaluate(state, now)) for d in svc.detectors)
            evaluate.append(time.perf_counter() - t)
            state.touch(rng.choice(households, households // 100, replace=False))
            t = time.perf_counter()
            again = svc.tick(now)
            tick.append(time.perf_counter() - t)
            assert again == [], "a later sweep opened alerts: the findings should all have open alerts by now"
        ev, tk = statistics.median(evaluate), statistics.median(tick)
        print(f"  {findings:,} findings a sweep, {len(store.unresolved_alerts()):,} open alerts; medians of "
              f"{args.repeats}: detectors {ev * 1000:.1f} ms, the whole sweep {tk * 1000:.1f} ms, so the alert "
              f"handling {max(tk - ev, 0) * 1000:.1f} ms (sweeps {', '.join(f'{x * 1000:.0f}' for x in tick)} ms)")
    finally:
        with store.engine.begin() as conn:
            for table in ALERT_TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        store.close()


if __name__ == "__main__":
    main()

"""What reading the open alerts costs a sweep, with a long history of resolved ones beside them.

    .venv/bin/python bench/open_alerts.py                                   # SQLite in a temporary directory
    .venv/bin/python bench/open_alerts.py --url postgresql://postgres@127.0.0.1:5432/scratch_db
    .venv/bin/python bench/open_alerts.py --alerts 1000000 --open 5000

Fills ``alerts`` with ``--alerts`` rows of which ``--open`` are not resolved (every k-th), then times
``Store.unresolved_alerts()`` (best of 7) and prints the database's plan for its query. Each sweep of the service
reads the open alerts once (shouwang/service.py, ``tick``); alerts are never deleted. Then it times
``Store.open_alerts()`` for the findings a sweep makes again while their alerts are open (one per open alert; best
of 7): the pipeline's dedupe stage, every sweep. The PostgreSQL database must
exist and is emptied of alerts afterwards. Not part of the test suite; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sqlalchemy import text

from shouwang.domain import Finding
from storage import open_store

FILL = ("INSERT INTO alerts (key, category, detector, severity, status, reason, since, opened_at, household, note) "
        "SELECT 'inactivity:H' || i, 'inactivity', 'routine', 'critical', CASE WHEN i % :every = 0 THEN 'open' ELSE 'resolved' END, "
        "'no activity for 9 h (usually at most 6 h at this time)', i, i, 'H' || i, '' FROM {rows}")
ROWS = {"sqlite": "(WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) SELECT i FROM g)",
        "postgresql": "generate_series(1, :n) AS g(i)"}
PLAN = {"sqlite": "EXPLAIN QUERY PLAN ", "postgresql": "EXPLAIN "}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a store URL (default: SQLite in a temporary directory)")
    ap.add_argument("--alerts", type=int, default=200_000)
    ap.add_argument("--open", type=int, default=2_000)
    args = ap.parse_args()
    store = open_store(args.url or f"sqlite:///{tempfile.mkdtemp()}/open-alerts.db", upgrade=True)
    dialect = store.engine.dialect.name
    try:
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM alerts"))
            conn.execute(text(FILL.format(rows=ROWS[dialect])), {"n": args.alerts, "every": args.alerts // args.open})
            if dialect == "postgresql":
                conn.execute(text("ANALYZE alerts"))
        best, got = float("inf"), []
        for _ in range(7):
            t = time.perf_counter()
            got = store.unresolved_alerts()
            best = min(best, time.perf_counter() - t)
        print(f"{dialect}: {args.alerts:,} alerts, unresolved_alerts() read {len(got):,} in {best * 1000:.1f} ms "
              f"({best * 1e6 / max(len(got), 1):.1f} µs an open alert)")
        with store.engine.connect() as conn:
            for row in conn.execute(text(PLAN[dialect] + "SELECT * FROM alerts WHERE status != 'resolved' ORDER BY id")):
                print("   plan:", " ".join(str(x) for x in row))
        again = [Finding(a.category, a.detector, a.severity, a.since, a.reason, household=a.household) for a in got]
        best, opened = float("inf"), []
        for _ in range(7):
            t = time.perf_counter()
            opened = store.open_alerts(again, 10 * args.alerts)
            best = min(best, time.perf_counter() - t)
        print(f"{dialect}: open_alerts() for {len(again):,} findings whose alerts are open: {best * 1000:.1f} ms "
              f"({best * 1e6 / max(len(again), 1):.1f} µs a finding; {sum(a is not None for a in opened)} opened)")
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM alerts"))
        store.close()


if __name__ == "__main__":
    main()

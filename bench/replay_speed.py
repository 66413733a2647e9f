"""Replay speed: a year of hourly water and electricity readings for 1,000 households, timed end to end.

    .venv/bin/python bench/replay_speed.py [--households 1000] [--days 365] [--detectors NAMES]

The readings file is generated once (quick numpy model: meals, showers, flushes, fridge) and cached under
var/bench/; the figure printed is load (parse + validate + sort) and replay (walk in 15-minute steps).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators.replay import Replayer, build_detectors, default_detector_names, load_readings

TZ = "Asia/Shanghai"


def generate(path: Path, households: int, days: int, seed: int = 1) -> int:
    """Write hourly cumulative registers (water m³, electricity kWh) for every household; return rows."""
    rng = np.random.default_rng(seed)
    hours = days * 24
    start = datetime(2025, 1, 1, tzinfo=ZoneInfo(TZ))
    stamps = [(start + timedelta(hours=k)).strftime("%Y-%m-%d %H:%M:%S") for k in range(1, hours + 1)]
    hod = np.arange(hours) % 24
    awake = ((hod >= 6) & (hod < 22)).astype(float)
    rows = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write("household,meter,kind,ts,value\n")
        for h in range(households):
            hid = f"H{h + 1:04d}"
            shift = rng.integers(-2, 3)
            act = np.roll(awake, shift) * (rng.random(hours) < 0.55)
            water = np.round(np.cumsum(act * rng.uniform(0.002, 0.03, hours)) + rng.uniform(30, 900), 3)
            base = rng.uniform(0.03, 0.08)
            elec = np.round(np.cumsum(base + act * rng.uniform(0.05, 1.2, hours)) + rng.uniform(800, 20000), 3)
            for meter, kind, values in ((f"{hid}-W", "water", water), (f"{hid}-E", "electricity", elec)):
                prefix = f"{hid},{meter},{kind},"
                f.write("".join(f"{prefix}{s},{v:.3f}\n" for s, v in zip(stamps, values.tolist(), strict=True)))
                rows += hours
    return rows


class Timed:
    """A detector wrapped to add up the time spent in it."""

    def __init__(self, inner: object) -> None:
        self.inner, self.name, self.seconds = inner, inner.name, 0.0

    def evaluate(self, state, now):
        t = time.perf_counter()
        try:
            return self.inner.evaluate(state, now)
        finally:
            self.seconds += time.perf_counter() - t

    def cleared(self, alert, state, now):
        t = time.perf_counter()
        try:
            return self.inner.cleared(alert, state, now)
        finally:
            self.seconds += time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    """Generate (once) and time the replay."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--households", type=int, default=1000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--detectors", default=None, help="comma-separated names (default: the service's defaults)")
    p.add_argument("--step-s", type=int, default=900)
    args = p.parse_args(argv)
    path = ROOT / "var" / "bench" / f"year-{args.households}x{args.days}.csv.gz"
    if not path.exists():
        t = time.perf_counter()
        n = generate(path, args.households, args.days)
        print(f"generated {n:,} readings in {time.perf_counter() - t:.1f} s → {path}")
    names = args.detectors.split(",") if args.detectors else default_detector_names()
    t0 = time.perf_counter()
    table = load_readings(path, TZ)
    t1 = time.perf_counter()
    timed = [Timed(d) for d in build_detectors(names)]
    rp = Replayer(table, timed, tz=TZ, step_s=args.step_s)
    alerts = rp.run()
    t2 = time.perf_counter()
    print(f"{len(table):,} readings, {args.households} households, {args.days} days, detectors {','.join(names)}")
    print(f"load {t1 - t0:.1f} s + replay {t2 - t1:.1f} s ({rp.steps:,} steps of {args.step_s} s) "
          f"= {t2 - t0:.1f} s; {len(alerts)} alerts; {table.bad.total} bad rows")
    spent = sum(d.seconds for d in timed)
    print("of the replay: " + ", ".join(f"{d.name} {d.seconds:.1f} s" for d in timed)
          + f"; state updates and the alert lifecycle {t2 - t1 - spent:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

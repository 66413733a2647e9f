"""How good can any alert line on water timing be on DAIAD? An in-sample bound for issue 3's `routine` target.

Issue 3 asks `routine`, on real water data, for a median time to alert no longer than `kizuki`'s (7.6 h on
DAIAD) *and* no more false alarms than `no-change-48h`. This script asks whether any detector of routine's
kind could do it: one that alerts when the time since the last water use passes a line, where the line may
differ per home, per hour of the day the quiet spell began and (``--cells``) per day type and per how busy the
home was just before. For every such cell it picks the line **knowing the whole recording** (the false
alarms it will cause and the incidents it will catch), which no learning detector can beat; then it traces
the best trade-off between false alarms and the share of incidents alerted within 7.6 h (a median of 7.6 h
needs at least half of them).

The accounting follows bench/detection.py as closely as a closed form allows:
- quiet spells run between readings that show water use (0.001 m³ or more), from each home's 15th day on;
  a spell with a reporting hole over 6 h is left out (a silent meter is a `device` matter, not welfare);
- a line of L hours gives one false alarm for every spell longer than L; `no-change-48h` is the line 48 h;
- incidents start at a uniformly random moment of a spell's first 12 h (the benchmark injects them where the
  home used water in the 12 h before); a line of L alerts L − g after an incident that began g into its spell;
- lines are at most 70 h, so every incident is alerted within the benchmark's 72 h window.

``--split`` also fits the lines on each home's first half and scores them on its second: what learning
from the past could reach at best with this model (still optimistic: it picks per cell with hindsight of a
half year).

    .venv/bin/python bench/detection_bound.py
    .venv/bin/python bench/detection_bound.py --cells hour,daytype,busy --split
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators.replay import load_readings

H = 3600
DAY = 24 * H
LINES_H = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20, 24, 30, 36, 42, 48, 60, 70], float)
KIZUKI_MEDIAN_H = 7.6
DATA = ROOT.parent / "shared" / "datasets" / "daiad-alicante" / "readings.csv.gz"


@dataclass(frozen=True, slots=True)
class Spells:
    """Quiet spells of all homes: cell key, start, length in hours; and household-days counted."""

    keys: list[tuple]
    start: np.ndarray
    hours: np.ndarray
    days: float


def quiet_spells(path: Path, tz: str, cells: set[str], warmup_days: int = 14) -> Spells:
    """Every home's quiet spells after its warm-up, each with the cell its line belongs to."""
    table = load_readings(path, tz)
    zone = ZoneInfo(tz)
    keys, starts, lengths, days = [], [], [], 0.0
    for m, hid in enumerate(table.households):
        sel = np.flatnonzero(table.meter == m)
        ts, v = table.ts[sel], table.value[sel]
        used = ts[1:][np.round(np.diff(v), 3) >= 0.001]
        t0 = ts[0] + warmup_days * DAY
        days += max(0, ts[-1] - t0) / DAY
        a, b = used[:-1], used[1:]
        keep = a >= t0
        hole = np.zeros(a.size, bool)  # a reporting hole of more than 6 h inside the spell
        big = np.flatnonzero(np.diff(ts) > 6 * H)
        for i in big:
            hole |= (a <= ts[i]) & (ts[i + 1] <= b)
        keep &= ~hole
        busy = np.searchsorted(used, a, "right") - np.searchsorted(used, a - 6 * H, "right")
        for s, e, n in zip(a[keep].tolist(), b[keep].tolist(), busy[keep].tolist(), strict=True):
            local = datetime.fromtimestamp(s, zone)
            key = [hid]
            if "hour" in cells:
                key.append(local.hour)
            if "daytype" in cells:
                key.append(local.weekday() >= 5)
            if "busy" in cells:
                key.append(0 if n <= 1 else 1 if n <= 3 else 2)
            keys.append(tuple(key))
            starts.append(s)
            lengths.append((e - s) / H)
    return Spells(keys, np.array(starts), np.array(lengths), days)


def cell_tables(sp: Spells, pick: np.ndarray) -> dict[tuple, tuple[np.ndarray, np.ndarray, float]]:
    """Per cell: false alarms and fast-incident weight for each line, and the cell's incident weight."""
    groups: dict[tuple, list[float]] = {}
    for i in np.flatnonzero(pick):
        groups.setdefault(sp.keys[i], []).append(sp.hours[i])
    out = {}
    for key, g in groups.items():
        g = np.array(g)
        reach = np.minimum(g, 12.0)
        fa = (g[None, :] > LINES_H[:, None]).sum(axis=1)
        fast = np.maximum(0.0, reach[None, :] - np.maximum(0.0, LINES_H[:, None] - KIZUKI_MEDIAN_H)).sum(axis=1)
        out[key] = (fa, fast, float(reach.sum()))
    return out


def choose(tables: dict, lam: float) -> dict[tuple, int]:
    """The line per cell that maximises fast incidents minus ``lam`` per false alarm (hindsight)."""
    return {k: int(np.argmax(fast - lam * fa)) for k, (fa, fast, _) in tables.items()}


def score(tables: dict, lines: dict[tuple, int], default: int) -> tuple[int, float]:
    """(false alarms, share of incident weight alerted within kizuki's median) of a choice of lines."""
    fa = fast = total = 0.0
    for k, (f, s, w) in tables.items():
        i = lines.get(k, default)
        fa, fast, total = fa + f[i], fast + s[i], total + w
    return int(fa), fast / total if total else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--readings", type=Path, default=DATA)
    p.add_argument("--tz", default="Europe/Madrid")
    p.add_argument("--cells", default="hour", help="what a line may depend on besides the home: "
                   "comma-separated from hour, daytype (weekend or not), busy (water in the 6 h before)")
    p.add_argument("--split", action="store_true", help="also fit on each home's first half, score on its second")
    a = p.parse_args()
    cells = set(filter(None, a.cells.split(",")))
    sp = quiet_spells(a.readings, a.tz, cells)
    every = np.ones(sp.hours.size, bool)
    tables = cell_tables(sp, every)
    line48 = int(np.flatnonzero(LINES_H == 48)[0])
    budget, _ = score(tables, {}, line48)
    per = 1000 / sp.days
    print(f"{len(tables)} cells over {sp.days:,.0f} household-days; no-change-48h: {budget} false alarms "
          f"({budget * per:.1f} per 1,000 household-days)")
    print("\nlines picked with hindsight over the whole recording:")
    print("| weight of a false alarm | false alarms / 1,000 hh-days | incidents alerted within 7.6 h |")
    print("|---|---|---|")
    best = 0.0
    for lam in np.geomspace(10, 3000, 25):
        fa, share = score(tables, choose(tables, lam), line48)
        if fa <= budget:
            best = max(best, share)
        print(f"| {lam:.0f} h | {fa * per:.1f} | {share:.0%} |")
    print(f"\nat no more false alarms than no-change-48h, at most {best:.0%} of incidents are alerted within "
          f"{KIZUKI_MEDIAN_H} h (a median of {KIZUKI_MEDIAN_H} h needs 50 %)")
    if a.split:
        mid = {}
        for k, s in zip(sp.keys, sp.start.tolist(), strict=True):
            lo, hi = mid.get(k[0], (s, s))
            mid[k[0]] = (min(lo, s), max(hi, s))
        half = np.array([s < (mid[k[0]][0] + mid[k[0]][1]) / 2 for k, s in zip(sp.keys, sp.start.tolist(),
                                                                                strict=True)])
        fit, test = cell_tables(sp, half), cell_tables(sp, ~half)
        test_budget, _ = score(test, {}, line48)
        print(f"\nfitted on each home's first half, scored on its second (no-change-48h there: "
              f"{test_budget} false alarms); cells not seen in the first half keep 48 h:")
        print("| weight of a false alarm | false alarms (second half) | … of no-change-48h's | within 7.6 h |")
        print("|---|---|---|---|")
        for lam in np.geomspace(10, 3000, 13):
            fa, share = score(test, choose(fit, lam), line48)
            print(f"| {lam:.0f} h | {fa} | {fa / max(test_budget, 1):.1f}× | {share:.0%} |")


if __name__ == "__main__":
    main()

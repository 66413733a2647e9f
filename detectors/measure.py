"""Measure the household state's memory and the detector sweep time (figures for the docs, not tests).

    python -m detectors.measure                      # 100,000 households; 1,000,000 meters swept
    python -m detectors.measure --households 10000 --meters 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from detectors import DEFAULT_DETECTORS, PRESETS, build_detectors
from shouwang.domain import (
    Alert,
    AlertStatus,
    Community,
    Gateway,
    Household,
    Meter,
    MeterKind,
    Reading,
    Registry,
)
from shouwang.state import HISTORY_DAYS, SLOT_S, SLOTS_PER_DAY, HouseholdState

H = 3600


def registry(households: int, per_gateway: int = 50) -> Registry:
    """Households with a water and an electricity meter each, ``per_gateway`` households per gateway."""
    gws = tuple(Gateway(f"G{g}", "c") for g in range(-(-households // per_gateway)))
    hhs = tuple(Household(f"H{i}", "c") for i in range(households))
    meters = tuple(m for i in range(households) for m in (
        Meter(f"H{i}-W", f"H{i}", MeterKind.WATER, f"G{i // per_gateway}"),
        Meter(f"H{i}-E", f"H{i}", MeterKind.ELECTRICITY, f"G{i // per_gateway}")))
    return Registry((Community("c"),), gws, hhs, meters)


def memory(households: int) -> dict:
    """Bytes of HouseholdState for ``households`` households, with readings folded in."""
    reg = registry(households)
    now = int(time.time())
    gc.collect()
    tracemalloc.start()
    state = HouseholdState(reg, started_at=now)
    for k in (2, 1):
        state.apply([Reading(m.id, now - 900 * k, 10.0 + 0.01 * k) for m in reg.meters])
    state.household_last_activity()  # what a sweep keeps besides: the per-household views, the day's usage
    state.window_usage(None, SLOTS_PER_DAY)
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    arrays = state.array_bytes()
    return {"households": households, "meters": len(reg.meters), "array_bytes": arrays, "traced_bytes": traced,
            "per_household": arrays / households}


def swept_state(meters: int, night: bool = False) -> tuple[HouseholdState, int]:
    """A state of ``meters`` meters (half water, half electricity) that looks four weeks old, and its ``now``;
    by day a quarter of the households have been quiet for 3-4 h, at ``night`` all of them for 3-10 h."""
    households = meters // 2
    state = HouseholdState(registry(households), started_at=int(time.time()) - 30 * 86400)
    rng = np.random.default_rng(7)
    now = int(time.time()) // SLOT_S * SLOT_S
    n = len(state.meter_ids)
    state.first_ts[:] = now - 30 * 86400
    state.last_ts[:] = now - rng.integers(0, 900, n)
    state.last_value[:] = rng.random(n) * 1000
    state.last_change[:] = state.last_ts - rng.integers(0, 6 * H, n)
    state.base_rate[:] = np.where(state.meter_kind == 1, 0.08, np.inf)
    state.last_activity[:] = now - (rng.integers(3 * H, 10 * H, n) if night else rng.integers(0, 4 * H, n))
    state.use_total[:] = rng.random(n) * 100
    ring = state.slot_reg.shape[1]
    head = (state.last_ts - 1) // SLOT_S
    behind = (head[:, None] - np.arange(ring)) % ring  # how many slots before the newest each ring entry is
    per_slot = np.where(state.meter_kind == 0, 0.0025, 0.1)[:, None]  # 5 L/h of water, 0.2 kW
    state.slot_reg[:] = (state.use_total[:, None] - behind // 3 * 3 * per_slot).astype(np.float32)  # use 1 in 3
    state.slot_flags[:] = 1
    state.run_start[:] = np.where(rng.random(n) < 0.01, state.last_ts - 1800, state.run_start)
    state.run_learned[:] = 3600
    state.hi_run_learned[:] = 900
    state.run_days[:] = HISTORY_DAYS
    state.days_seen[:] = 28
    state.days_moved[:] = 28
    state.hist_days[:] = HISTORY_DAYS
    state.days_learned[:] = 60
    state.gap_hist[:] = rng.integers(0, 20, state.gap_hist.shape, dtype=np.uint8)
    state.relearn()
    state.daily_median[:] = [0.15, 6.0]
    state.daily_n[:] = HISTORY_DAYS
    state.hh_last_ts[:] = now
    quiet = rng.choice(households, households // 1000, replace=False)
    state.last_activity[np.concatenate((2 * quiet, 2 * quiet + 1))] = now - 50 * H  # 0.1 % quiet for 50 h
    silent = rng.choice(n, n // 10_000, replace=False)
    state.last_ts[silent] = now - 7 * H
    down = rng.choice(len(state.gateway_ids), 5, replace=False)
    state.gateway_online[down] = False
    state.gateway_status_at[down] = now - 2 * H  # their last will, two hours ago
    state.touch()
    return state, now


def sweep(meters: int, repeats: int, night: bool = False, changed: float = 0.01) -> dict:
    """Time every detector's ``evaluate`` over ``meters`` meters whose state looks four weeks old."""
    households = meters // 2
    t0 = time.perf_counter()
    state, now = swept_state(meters, night)
    setup = time.perf_counter() - t0
    dets = build_detectors([*DEFAULT_DETECTORS, *PRESETS])
    times: dict[str, list[float]] = {d.name: [] for d in dets}
    found: dict[str, list] = {}
    rng = np.random.default_rng(11)
    first: dict[str, float] = {}
    for r in range(repeats + 1):
        # as in the service: the first sweep after start-up reduces over every meter, a later one only over the
        # households whose meters reported since the last (by default 1 %: several seconds of a city's readings)
        if r:
            state.touch(rng.choice(households, int(households * changed), replace=False))
        for d in dets:
            t = time.perf_counter()
            found[d.name] = d.evaluate(state, now)
            elapsed = time.perf_counter() - t
            if r:
                times[d.name].append(elapsed)
            else:
                first[d.name] = elapsed
    best = {k: min(v) for k, v in times.items()}
    clearing = {d.name: clear_time(d, found[d.name], state, now) for d in dets}
    return {"meters": len(state.meter_ids), "households": households, "setup_s": setup, "seconds": best,
            "findings": {name: len(fs) for name, fs in found.items()},
            "first_s": first, "clearing": clearing, "default_sweep_s": sum(best[d] for d in DEFAULT_DETECTORS),
            "first_sweep_s": sum(first[d] for d in DEFAULT_DETECTORS)}


def clear_time(det, findings: list, state: HouseholdState, now: int, most: int = 1000) -> tuple[int, float]:
    """Seconds ``det.cleared`` takes for ``findings`` (at most ``most``) as open alerts: what the service asks of every
    open alert after each sweep (alerts.lifecycle.clear_gone_conditions)."""
    alerts = [Alert(i, f.key, f.category, det.name, f.severity, AlertStatus.OPEN, f.reason, f.since, now,
                    household=f.household, meter=f.meter, gateway=f.gateway)
              for i, f in enumerate(findings[:most])]
    t = time.perf_counter()
    for a in alerts:
        det.cleared(a, state, now)
    return len(alerts), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--meters", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--changed", type=float, default=0.01,
                    help="share of households whose meters reported between two sweeps (default 0.01)")
    args = ap.parse_args()
    m = memory(args.households)
    print(f"HouseholdState, {m['households']:,} households ({m['meters']:,} meters): "
          f"arrays {m['array_bytes'] / 2**20:,.0f} MiB ({m['per_household']:,.0f} B per household), "
          f"all allocations {m['traced_bytes'] / 2**20:,.0f} MiB")
    for night in (False, True):
        s = sweep(args.meters, args.repeats, night, args.changed)
        when = "at night (every household quiet for 3-10 h)" if night else "by day (a quarter quiet for 3-4 h)"
        print(f"evaluate over {s['meters']:,} meters / {s['households']:,} households {when} (best of "
              f"{args.repeats}; state set up in {s['setup_s']:.1f} s):")
        for name, sec in s["seconds"].items():
            n, cleared_s = s["clearing"][name]
            print(f"  {name:15s} {sec * 1000:8.1f} ms   {s['findings'][name]:7,} findings   (the first sweep after "
                  f"start-up: {s['first_s'][name] * 1000:.0f} ms; cleared() for {n:,} open alerts: "
                  f"{cleared_s * 1000:.1f} ms)")
        print(f"  default sweep ({', '.join(DEFAULT_DETECTORS)}): {s['default_sweep_s'] * 1000:.0f} ms "
              f"({args.changed:.0%} of households changed since the last sweep; the first after start-up: "
              f"{s['first_sweep_s'] * 1000:.0f} ms)")


if __name__ == "__main__":
    main()

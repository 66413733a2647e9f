"""Real meter data (DAIAD water, ECO electricity) for the detection benchmark, with incidents injected."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from detection_score import DAY, Dataset, Incident

from simulators.replay import ReadingTable, load_readings

H = 3600
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@dataclass(frozen=True, slots=True)
class RealConfig:
    """How incidents are injected into recorded data."""

    seed: int = 1
    per_household: int = 4  # DAIAD: incidents injected per household
    eco_incidents: int = 24
    eco_base_percentile: float = 10  # ECO: the base load an incident falls to, as a percentile of the week before
    eco_noise: float = 0.05  # ECO: relative noise on the base load per interval (the fridge's cycling)
    # ECO: "percentile" (a flat base load with noise, as above) or "night" (each interval drawn from the home's own
    # 15-minute power between 01:00 and 05:00 over the week before: the fridge's cycling and timers as they were),
    # or "nightseq" (those same nights replayed in order, night after night and again from the first, so the
    # fridge's cycle and each night's late use stay as they were instead of being scattered at random)
    eco_base: str = "percentile"
    eco_night_from: int = 1  # ECO, "night" and "nightseq": the night's hours are [eco_night_from, 05:00)
    history_days: int = 35  # each injected copy carries this much of the household's own history
    horizon_h: int = 72
    warmup_days: int = 14
    step_s: int = 1800
    daiad_days: int | None = None  # replay only the first N days of DAIAD for false alarms (None: all)


def _offsets(ts: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """UTC offset in seconds at each instant (looked up once per hour)."""
    hours = ts // H
    uniq, inv = np.unique(hours, return_inverse=True)
    offs = np.array([datetime.fromtimestamp(int(h) * H, zone).utcoffset().total_seconds() for h in uniq])
    return offs[inv].astype(np.int64)


def shift_days(ts: np.ndarray, days: int, zone: ZoneInfo) -> np.ndarray:
    """Move instants by whole days keeping their local clock time (so routines stay at their hours)."""
    local = ts + _offsets(ts, zone) + days * DAY
    guess = local - _offsets(local, zone)
    return local - _offsets(guess, zone)


def _runs(active_ts: np.ndarray, start: int, end: int) -> list[tuple[int, int]]:
    """Stretches between consecutive activity instants (and the data's start and end)."""
    edges = np.concatenate(([start], active_ts, [end]))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def daiad(cfg: RealConfig, path: Path | None = None) -> tuple[Dataset, Dataset]:
    """DAIAD Alicante as recorded (false alarms), and copies with water stopping at a chosen moment."""
    tz = "Europe/Madrid"
    zone = ZoneInfo(tz)
    table = load_readings(path or DATASETS / "daiad-alicante" / "readings.csv.gz", tz)
    if cfg.daiad_days:
        keep = table.ts < int(table.ts.min()) + cfg.daiad_days * DAY
        table = ReadingTable(table.meters, table.households, table.kinds, table.meter[keep], table.ts[keep],
                             table.value[keep], table.bad, table.duplicates)
    rng = np.random.default_rng([cfg.seed, 7])
    hids = sorted(set(table.households))
    first, last, absences = {}, {}, {}
    seg = {}
    for m, hid in enumerate(table.households):
        sel = np.flatnonzero(table.meter == m)
        ts, v = table.ts[sel], table.value[sel]
        seg[hid] = (ts, v)
        first[hid], last[hid] = int(ts[0]), int(ts[-1])
        used = np.round(np.diff(v), 3) >= 0.001
        stretches = _runs(ts[1:][used], first[hid], last[hid])
        absences[hid] = [(a, b, "no water for a day or more") for a, b in stretches if b - a >= DAY]
    group = {h: ("first half" if i < len(hids) // 2 else "held-out half") for i, h in enumerate(hids)}
    originals = Dataset(
        f"DAIAD Alicante water, {len(hids)} homes as recorded", tz, table, cfg.step_s,
        fa_households=set(hids), fa_from={h: first[h] + cfg.warmup_days * DAY for h in hids}, fa_until=last,
        absences=absences, group=group)

    # copies: T where the household was active in the 12 h before and the meter reports through T + horizon
    horizon = cfg.horizon_h * H
    window = int(table.ts.min()) + (cfg.history_days + 7) * DAY  # all copies' incidents land in one week
    week0 = datetime.fromtimestamp(window, zone).replace(hour=0, minute=0, second=0)
    meters, households, kinds, parts, incidents, group_c = [], [], [], [], [], {}
    for hid in hids:
        ts, v = seg[hid]
        used_at = ts[1:][np.round(np.diff(v), 3) >= 0.001]
        made = 0
        for _ in range(400):
            if made == cfg.per_household:
                break
            lo, hi = first[hid] + cfg.history_days * DAY, last[hid] - horizon
            if hi <= lo:
                break
            t = int(rng.integers(lo, hi))
            recent = used_at[(used_at > t - 12 * H) & (used_at <= t)]
            after = ts[(ts > t - 12 * H) & (ts <= t + horizon)]
            if not len(recent) or len(after) < 2 or np.diff(np.concatenate(([t - 12 * H], after))).max() > 6 * H \
                    or t + horizon - after[-1] > 6 * H:
                continue
            sel = (ts >= t - cfg.history_days * DAY) & (ts <= t + horizon)
            cts, cv = ts[sel], v[sel].copy()
            cv[cts > t] = cv[cts <= t][-1]  # from the chosen moment, the register stands still
            days = (week0.date() - datetime.fromtimestamp(t, zone).date()).days
            days += (-days) % 7  # whole weeks: the same weekday and clock time, all within one week
            cid = f"{hid}~{made + 1}"
            meters.append(f"W-{cid}")
            households.append(cid)
            kinds.append("water")
            parts.append(np.stack([np.full(len(cts), len(meters) - 1), shift_days(cts, days, zone), cv]))
            t2 = int(shift_days(np.array([t]), days, zone)[0])
            incidents.append(Incident(cid, f"incapacitation ({group[hid]})", t2, t2 + horizon))
            group_c[cid] = group[hid]
            made += 1
    arr = np.concatenate(parts, axis=1)
    _, first_of = np.unique(arr[0] * 2**40 + arr[1], return_index=True)  # a local hour repeated at DST's end
    arr = arr[:, np.sort(first_of)]
    copies = Dataset(
        f"DAIAD Alicante water, {len(incidents)} incidents injected into copies of the {len(hids)} homes", tz,
        ReadingTable.from_arrays(meters, households, kinds, arr[0].astype(np.int64), arr[1].astype(np.int64),
                                 arr[2]), cfg.step_s, incidents=incidents, group=group_c)
    return originals, copies


def eco(cfg: RealConfig, folder: Path | None = None) -> tuple[Dataset, Dataset]:
    """ECO house 2 as recorded (with occupancy labels), and copies whose electricity falls to base load."""
    tz = "Europe/Zurich"
    zone = ZoneInfo(tz)
    folder = folder or DATASETS / "eco-house2"
    table = load_readings(folder / "readings.csv", tz)
    hid = table.households[0]
    ts, v = table.ts, table.value
    occ_t, occ = [], []
    with open(folder / "occupancy.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["occupied"].strip():
                occ_t.append(int(datetime.fromisoformat(row["timestamp"]).replace(tzinfo=zone).timestamp()))
                occ.append(float(row["occupied"]) >= 0.5)
    occ_t, occ = np.array(occ_t), np.array(occ)
    away_runs, start = [], None
    for t, o in zip(occ_t.tolist(), occ.tolist(), strict=True):
        if not o and start is None:
            start = t
        elif o and start is not None:
            if t - start >= 6 * H:
                away_runs.append((start, t, "labelled absence (6 h or more)"))
            start = None
    t0, t1 = int(ts[0]), int(ts[-1])
    originals = Dataset(f"ECO house 2 electricity ({(t1 - t0) / DAY:.0f} days) as recorded", tz, table, 900,
                        fa_households={hid}, fa_from={hid: t0 + cfg.warmup_days * DAY}, fa_until={hid: t1},
                        absences={hid: away_runs})
    rng = np.random.default_rng([cfg.seed, 9])
    horizon = cfg.horizon_h * H
    lo, hi = t0 + 14 * DAY, t1 - horizon
    kw = np.diff(v) * H / np.diff(ts)
    night = np.array([cfg.eco_night_from <= datetime.fromtimestamp(int(x), zone).hour < 5 for x in ts[1:]])
    meters, households, kinds, parts, incidents = [], [], [], [], []
    slots = np.linspace(lo, hi, cfg.eco_incidents + 1)
    for k in range(cfg.eco_incidents):
        for _ in range(50):
            t = int(rng.uniform(slots[k], slots[k + 1]))
            j = np.searchsorted(occ_t, t, side="right") - 1
            if j >= 0 and occ[j] and occ[max(j - 4, 0)]:  # someone at home (for the last hour)
                break
        before = (ts[1:] > t - 7 * DAY) & (ts[1:] <= t)
        base_kw = float(np.percentile(kw[before], cfg.eco_base_percentile))
        sel = ts <= t + horizon
        cts, cv = ts[sel], v[sel].copy()
        after = cts > t
        k0 = int(np.argmax(after))
        if cfg.eco_base == "night":
            level = rng.choice(kw[before & night], after.sum())
        elif cfg.eco_base == "nightseq":
            level = np.resize(kw[before & night], after.sum())
        else:
            level = base_kw * np.clip(rng.normal(1, cfg.eco_noise, after.sum()), 0, None)
        steps = np.diff(cts[k0 - 1:]) / H * level
        cv[after] = cv[k0 - 1] + np.cumsum(steps)
        cid = f"{hid}~{k + 1}"
        meters.append(f"E-{cid}")
        households.append(cid)
        kinds.append("electricity")
        parts.append(np.stack([np.full(len(cts), len(meters) - 1), cts, np.round(cv, 4)]))
        incidents.append(Incident(cid, "incapacitation", t, t + horizon))
    arr = np.concatenate(parts, axis=1)
    copies = Dataset(f"ECO house 2 electricity, {len(incidents)} incidents injected (electricity falls to base "
                     f"load)", tz, ReadingTable.from_arrays(meters, households, kinds, arr[0].astype(np.int64),
                                                           arr[1].astype(np.int64), arr[2]), 900,
                     incidents=incidents)
    return originals, copies


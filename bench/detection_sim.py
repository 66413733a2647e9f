"""A simulated community with ground truth, from the simulators' routine model, generated in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
from detection_score import DAY, Dataset, Fault, Incident

from shouwang.away import AwayPeriod
from shouwang.domain import MeterKind, Registry
from simulators.community import build_community
from simulators.replay import ReadingTable
from simulators.routine import day_events, make_profiles

H = 3600
L = 0.001


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Size and mix of the simulated community."""

    households: int = 200
    days: int = 90
    interval_s: int = 900
    step_s: int = 1800
    seed: int = 1
    start: date = date(2025, 1, 6)  # a Monday
    tz: str = "Asia/Shanghai"
    learn_days: int = 21  # incidents only after this many days (the routine has learned)
    warmup_days: int = 14  # false alarms are counted after this many days
    horizon_h: int = 72  # an incident is detected if alerted within this many hours
    # share of households with each incident (at most one incident per household)
    incidents: tuple[tuple[str, float], ...] = (("incapacitation", 0.40), ("shower_fall", 0.05),
                                                ("tap_running", 0.10), ("leak", 0.10))
    hospital_p: float = 0.12
    holiday_p: float = 0.20
    registered_p: float = 0.5  # of hospital stays and holidays, the share registered as away
    trip_every_days: float = 21.0
    day_centre_p: float = 0.15
    visits_p: float = 0.20
    gateway_outages: int = 3
    silent_meter_p: float = 0.02
    frozen_meter_p: float = 0.02
    glitches: int = 5


class _Plan:
    """Non-overlapping windows per household (24 h apart), drawn with retries."""

    def __init__(self, rng: np.random.Generator, t0: int, t1: int) -> None:
        self.rng, self.t0, self.t1 = rng, t0, t1
        self.used: dict[int, list[tuple[int, int]]] = {}

    def place(self, h: int, length: int, earliest: int, latest_end: int, tries: int = 30) -> int | None:
        for _ in range(tries):
            if latest_end - length <= earliest:
                return None
            a = int(self.rng.integers(earliest, latest_end - length))
            if all(a + length + DAY <= x or y + DAY <= a for x, y in self.used.get(h, ())):
                self.used.setdefault(h, []).append((a, a + length))
                return a
        return None


def build(cfg: SimConfig) -> tuple[Dataset, Dataset]:
    """The community with water and electricity, and the same lives metered for electricity only."""
    rng = np.random.default_rng([cfg.seed, 42])
    zone = ZoneInfo(cfg.tz)
    reg = build_community(cfg.households, "sim", households_per_gateway=10, seed=cfg.seed, timezone=cfg.tz)
    hids = [h.id for h in reg.households]
    n, dt = len(hids), cfg.interval_s
    t0 = int(datetime.combine(cfg.start, time(0), tzinfo=zone).timestamp())
    t1 = t0 + cfg.days * DAY
    nint = (t1 - t0) // dt
    day0 = cfg.start.toordinal()

    def midnight(day: int) -> int:
        return int(datetime.combine(date.fromordinal(day), time(0), tzinfo=zone).timestamp())

    plan = _Plan(rng, t0, t1)
    absent: list[tuple[int, int, int, bool]] = []  # (household, start, end, out): no activity; out = left home
    flows: list[tuple[int, int, int, float]] = []  # (household, start, end, m³/s): water running
    extra: list[tuple[int, int, int, float, float]] = []  # (household, start, end, m³, kWh): visitors
    incidents, away, absences, excluded = [], [], {}, {}
    learn, horizon = t0 + cfg.learn_days * DAY, cfg.horizon_h * H
    kinds, shares = zip(*cfg.incidents, strict=True)
    draw = rng.choice(len(kinds) + 1, size=n, p=[*shares, 1 - sum(shares)])
    for h in range(n):
        hid = hids[h]
        if draw[h] < len(kinds):
            kind = kinds[draw[h]]
            length = int(rng.uniform(3, 12) * H) if kind == "tap_running" else horizon
            a = plan.place(h, length, learn, t1 - DAY)
            if a is not None:
                b = a + length
                if kind in ("incapacitation", "shower_fall"):
                    absent.append((h, a, a + horizon, False))  # what was running keeps running
                if kind == "shower_fall":
                    flows.append((h, a, b, rng.uniform(6, 9) * L / 60))
                elif kind == "tap_running":
                    flows.append((h, a, b, rng.uniform(3, 8) * L / 60))
                elif kind == "leak":
                    flows.append((h, a, b, rng.uniform(0.5, 5) * L / H))
                incidents.append(Incident(hid, kind, a, b))
                excluded.setdefault(hid, []).append((a, b + DAY))
        for label, p, lo, hi in (("hospital stay", cfg.hospital_p, 3, 10), ("holiday", cfg.holiday_p, 5, 14)):
            if rng.random() < p:
                length = int(rng.uniform(lo, hi) * DAY)
                a = plan.place(h, length, t0 + 7 * DAY, t1)
                if a is not None:
                    registered = rng.random() < cfg.registered_p
                    absent.append((h, a, a + length, True))
                    if registered:
                        away.append(AwayPeriod(hid, a, a + length, source="bench"))
                    absences.setdefault(hid, []).append(
                        (a, a + length, f"{label} ({'registered' if registered else 'not registered'})"))
        for _ in range(rng.poisson(cfg.days / cfg.trip_every_days)):
            day = day0 + int(rng.integers(1, cfg.days - 1))
            a0 = midnight(day) + int(rng.uniform(7.5, 10) * H)
            length = int(rng.uniform(6, 12) * H)
            if all(a0 + length <= x or y <= a0 for x, y in plan.used.get(h, ())):
                absent.append((h, a0, a0 + length, True))
                absences.setdefault(hid, []).append((a0, a0 + length, "day trip"))
        if rng.random() < cfg.day_centre_p:  # Mon, Wed, Fri 08:30-16:30
            for day in range(day0, day0 + cfg.days):
                if date.fromordinal(day).weekday() in (0, 2, 4):
                    absent.append((h, midnight(day) + int(8.5 * H), midnight(day) + int(16.5 * H), True))
        if rng.random() < cfg.visits_p:  # family for Sunday lunch
            for day in range(day0, day0 + cfg.days):
                a, b = midnight(day) + 10 * H, midnight(day) + 15 * H
                if date.fromordinal(day).weekday() == 6 and not any(x < b and a < y for hh, x, y, _ in absent
                                                                      if hh == h):
                    extra.append((h, a, b, 0.06, 1.5))

    # events of every household and day, minus those that start while nobody is (able to be) active
    profiles = make_profiles(hids, cfg.seed)
    ev_h, ev_a, ev_b, ev_w, ev_e = [], [], [], [], []
    for h, p in enumerate(profiles):
        for day in range(day0 - 1, day0 + cfg.days):
            m0 = midnight(day)
            for s, d, w, e in day_events(p, day):
                ev_h.append(h)
                ev_a.append(m0 + s)
                ev_b.append(m0 + s + max(d, 1.0))
                ev_w.append(w)
                ev_e.append(e)
    eh, ea, eb = np.array(ev_h), np.array(ev_a), np.array(ev_b)
    ew, ee = np.array(ev_w), np.array(ev_e)
    keep = np.ones(len(eh), dtype=bool)
    by_h: dict[int, list[tuple[int, int, bool]]] = {}
    for h, a, b, out in absent:
        by_h.setdefault(h, []).append((a, b, out))
    for h, wins in by_h.items():
        sel = np.flatnonzero(eh == h)
        win = np.array(_merge([(a, b) for a, b, _ in wins]), dtype=np.int64)
        k = np.searchsorted(win[:, 0], ea[sel], side="right") - 1
        keep[sel[(k >= 0) & (ea[sel] < win[np.maximum(k, 0), 1])]] = False
        leave = np.array(sorted(a for a, _, out in wins if out), dtype=np.int64)
        if len(leave):  # whoever goes out switches off what was running
            nxt = np.searchsorted(leave, ea[sel], side="right")
            cut = nxt < len(leave)
            cut[cut] &= eb[sel][cut] > leave[nxt[cut]]
            j = sel[cut]
            new_end = leave[nxt[cut]]
            share = (new_end - ea[j]) / (eb[j] - ea[j])
            ew[j] *= share
            ee[j] *= share
            eb[j] = new_end
    rows = [(eh[keep], ea[keep], eb[keep], ew[keep], ee[keep])]
    for h, a, b, rate in flows:
        rows.append((np.array([h]), np.array([a]), np.array([b]), np.array([rate * (b - a)]), np.zeros(1)))
    for h, a, b, w, e in extra:
        rows.append((np.array([h]), np.array([a]), np.array([b]), np.array([w]), np.array([e])))
    eh, ea, eb, ew, ee = (np.concatenate([r[k] for r in rows]) for k in range(5))
    water = _bin(eh, ea, eb, ew, n, t0, dt, nint)
    act = _bin(eh, ea, eb, ee, n, t0, dt, nint)
    base_kw = np.array([p.base_kw for p in profiles])
    wobble = rng.uniform(0.9, 1.1, size=(n, nint // 4 + 1)).repeat(4, axis=1)[:, :nint]
    elec = act + base_kw[:, None] * wobble * dt / H

    # registers and readings (at the end of each interval), then device faults
    init_w, init_e = rng.uniform(30, 900, n), rng.uniform(800, 25000, n)
    regw = np.round(init_w[:, None] + np.cumsum(water, axis=1), 3)
    rege = np.round(init_e[:, None] + np.cumsum(elec, axis=1), 3)
    ts = t0 + dt * np.arange(1, nint + 1, dtype=np.int64)
    meters = [m.id for m in reg.meters]
    m_hh = {m.id: hids.index(m.household) for m in reg.meters}
    values = np.stack([regw[m_hh[m.id]] if m.kind == MeterKind.WATER else rege[m_hh[m.id]] for m in reg.meters])
    present = np.ones(values.shape, dtype=bool)
    faults = []
    gw_meters: dict[str, list[int]] = {}
    for i, m in enumerate(reg.meters):
        gw_meters.setdefault(m.gateway, []).append(i)
    for g in rng.choice(sorted(gw_meters), size=min(cfg.gateway_outages, len(gw_meters)), replace=False):
        a = int(rng.integers(t0 + 10 * DAY, t1 - 2 * DAY))
        b = a + int(rng.uniform(2, 30) * H)
        idx = gw_meters[g]
        present[np.ix_(idx, (ts >= a) & (ts < b))] = False
        faults.append(Fault("gateway_outage", str(g), tuple(sorted({reg.meters[i].household for i in idx})), a, b))
    for i, m in enumerate(reg.meters):
        if rng.random() < cfg.silent_meter_p:
            a = int(rng.integers(t0 + 10 * DAY, t1 - 3 * DAY))
            b = a + int(rng.uniform(8, 48) * H)
            present[i, (ts >= a) & (ts < b)] = False
            faults.append(Fault("meter_silent", m.id, (m.household,), a, b))
        elif rng.random() < cfg.frozen_meter_p:
            a = int(rng.integers(t0 + 20 * DAY, t1 - 4 * DAY))
            b = a + int(rng.uniform(24, 72) * H)
            sel = (ts >= a) & (ts < b)
            k = int(np.argmax(sel))
            values[i, sel] = values[i, max(k - 1, 0)]
            faults.append(Fault("meter_frozen", m.id, (m.household,), a, b))
    for _ in range(cfg.glitches):  # a register read wrongly once: below the previous reading
        i, k = int(rng.integers(len(meters))), int(rng.integers(1, nint))
        values[i, k] = max(0.0, values[i, k - 1] - 0.5)
    mi, ki = np.nonzero(present)
    table = ReadingTable.from_arrays(meters, [m.household for m in reg.meters], [m.kind for m in reg.meters],
                                     mi, ts[ki], values[mi, ki])
    common = {"tz": cfg.tz, "step_s": cfg.step_s, "fa_households": set(hids),
                  "fa_from": {h: t0 + cfg.warmup_days * DAY for h in hids}, "fa_until": {h: t1 for h in hids},
                  "excluded": excluded, "absences": absences}
    full = Dataset(f"simulated community ({n} households, {cfg.days} days, water and electricity)",
                   table=table, registry=reg, away=away, incidents=incidents, faults=faults, **common)
    elec_ids = [m for m in reg.meters if m.kind == MeterKind.ELECTRICITY]
    reg_e = Registry(reg.communities, reg.gateways, reg.households, tuple(elec_ids))
    keep_e = np.isin(table.meter, [meters.index(m.id) for m in elec_ids])
    table_e = ReadingTable(table.meters, table.households, table.kinds, table.meter[keep_e], table.ts[keep_e],
                           table.value[keep_e])
    elec_only = Dataset(f"simulated community ({n} households, {cfg.days} days, electricity only)",
                        table=table_e, registry=reg_e, away=away,
                        incidents=[i for i in incidents if i.kind == "incapacitation"], **common)
    return full, elec_only


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of intervals, sorted and disjoint."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _bin(h: np.ndarray, a: np.ndarray, b: np.ndarray, amount: np.ndarray, n: int, t0: int, dt: int,
         nint: int) -> np.ndarray:
    """Spread each event's amount evenly over [a, b) into (household, interval) bins."""
    a = np.clip(a, t0, t0 + nint * dt)
    b = np.clip(b, t0, t0 + nint * dt)
    ok = b > a
    h, a, b, amount = h[ok], a[ok], b[ok], amount[ok] * 1.0
    dur = b - a
    i0 = ((a - t0) // dt).astype(np.int64)
    i1 = np.minimum(((b - t0 - 1e-6) // dt).astype(np.int64), nint - 1)
    pieces = i1 - i0 + 1
    rep = np.repeat(np.arange(len(h)), pieces)
    k = i0[rep] + (np.arange(len(rep)) - np.repeat(np.cumsum(pieces) - pieces, pieces))
    lo = np.maximum(a[rep], t0 + k * dt)
    hi = np.minimum(b[rep], t0 + (k + 1) * dt)
    part = amount[rep] * (hi - lo) / dur[rep]
    out = np.bincount(h[rep] * nint + k, weights=part, minlength=n * nint)
    return out.reshape(n, nint)


def describe(cfg: SimConfig) -> str:
    """One paragraph on what the simulation contains."""
    inc = ", ".join(f"{k.replace('_', ' ')} {p:.0%}" for k, p in cfg.incidents)
    return (f"{cfg.households} households in walk-ups behind gateways of 10, {cfg.days} days from "
            f"{cfg.start} ({cfg.tz}), readings every {cfg.interval_s // 60} min, the simulators' routine model "
            f"(early risers, regular, late risers, night owls; gas or electric cooking and water heating). "
            f"Ordinary life: day trips (about one every {cfg.trip_every_days:g} days), hospital stays "
            f"({cfg.hospital_p:.0%} of households, 3–10 days) and holidays ({cfg.holiday_p:.0%}, 5–14 days), "
            f"{cfg.registered_p:.0%} of them registered as away; day centre on Mon/Wed/Fri "
            f"({cfg.day_centre_p:.0%}); family visits on Sundays ({cfg.visits_p:.0%}). Incidents, at most one per "
            f"household, after day {cfg.learn_days}, at a uniformly random time of day: {inc} of households "
            f"(incapacitation: activity stops, the fridge runs on; shower fall: the same with the shower running "
            f"6–9 L/min; tap left running 3–8 L/min for 3–12 h; leak 0.5–5 L/h). Faults: "
            f"{cfg.gateway_outages} gateway outages of 2–30 h, {cfg.silent_meter_p:.0%} of meters silent for "
            f"8–48 h, {cfg.frozen_meter_p:.0%} with a register frozen for 1–3 days, {cfg.glitches} single "
            f"readings below the previous one. Seed {cfg.seed}.")


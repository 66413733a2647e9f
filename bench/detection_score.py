"""Ground truth and scoring for the detection benchmark: incidents detected, time to alert, false alarms."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from shouwang.away import AwayPeriod
from shouwang.domain import Registry
from simulators.replay import ReadingTable, ReplayAlert

WELFARE = ("inactivity", "water_running", "unusual_usage")
DAY = 86400


@dataclass(frozen=True, slots=True)
class Incident:
    """Something that should raise a welfare alert for ``household`` between ``start`` and ``until``."""

    household: str
    kind: str  # incapacitation, shower_fall, tap_running, leak
    start: int
    until: int  # end of the window in which an alert counts as a detection


@dataclass(frozen=True, slots=True)
class Fault:
    """A device problem: a gateway or meter silent, or a register frozen, from ``start`` to ``end``."""

    kind: str  # gateway_outage, meter_silent, meter_frozen
    subject: str  # gateway or meter id
    households: tuple[str, ...]
    start: int
    end: int


@dataclass(slots=True)
class Dataset:
    """Readings plus everything needed to score a replay of them."""

    name: str
    tz: str
    table: ReadingTable
    step_s: int
    registry: Registry | None = None
    away: list[AwayPeriod] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    fa_households: set[str] = field(default_factory=set)  # households whose alerts are scored as false alarms
    fa_from: dict[str, int] = field(default_factory=dict)  # per household: count false alarms from here on
    fa_until: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # incident windows (not ordinary)
    absences: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)  # (start, end, label)
    group: dict[str, str] = field(default_factory=dict)  # household → split label (e.g. held-out half)
    notes: list[str] = field(default_factory=list)

    def ordinary_days(self, households: set[str] | None = None) -> float:
        """Household-days of ordinary living in the false-alarm windows (incident windows left out)."""
        total = 0.0
        for h in self.fa_households if households is None else households:
            a, b = self.fa_from.get(h, 0), self.fa_until.get(h, 0)
            if b <= a:
                continue
            out = sum(max(0, min(b, y) - max(a, x)) for x, y in self.excluded.get(h, ()))
            total += (b - a - out) / DAY
        return total


def _inside(t: int, windows: Sequence[tuple]) -> tuple | None:
    for w in windows:
        if w[0] <= t < w[1]:
            return w
    return None


@dataclass(slots=True)
class Score:
    """One detector on one dataset."""

    detected: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # kind → hours to alert
    missed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    false_alarms: int = 0
    fa_by_label: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fa_by_group: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    learning_alerts: int = 0  # welfare alerts in the first days of a household's data (not counted)

    def incidents(self, kinds: Sequence[str] | None = None) -> tuple[int, list[float]]:
        """(how many incidents of these kinds, hours to alert of the detected ones)."""
        ks = kinds or sorted(set(self.detected) | set(self.missed))
        times = [t for k in ks for t in self.detected.get(k, [])]
        return len(times) + sum(self.missed.get(k, 0) for k in ks), times


def score(ds: Dataset, alerts: Sequence[ReplayAlert], detectors: Sequence[str]) -> dict[str, Score]:
    """Score every detector's welfare alerts against the dataset's incidents and ordinary living."""
    by = defaultdict(lambda: defaultdict(list))  # detector → household → welfare alerts
    for a in alerts:
        if a.category in WELFARE and a.household:
            by[a.detector][a.household].append(a)
    out = {}
    for name in detectors:
        s = Score()
        mine = by.get(name, {})
        for inc in ds.incidents:
            hits = [a.opened_at for a in mine.get(inc.household, ()) if inc.start <= a.opened_at <= inc.until]
            if hits:
                s.detected[inc.kind].append((min(hits) - inc.start) / 3600)
            else:
                s.missed[inc.kind] += 1
        for h in ds.fa_households:
            for a in mine.get(h, ()):
                t = a.opened_at
                if _inside(t, ds.excluded.get(h, ())) or t >= ds.fa_until.get(h, t + 1):
                    continue
                if t < ds.fa_from.get(h, 0):
                    s.learning_alerts += 1
                    continue
                s.false_alarms += 1
                w = _inside(t, ds.absences.get(h, ()))
                s.fa_by_label[w[2] if w else "at home"] += 1
                s.fa_by_group[ds.group.get(h, "")] += 1
        out[name] = s
    return out


def score_faults(ds: Dataset, alerts: Sequence[ReplayAlert], step_s: int, silence_s: int = 6 * 3600
                 ) -> list[tuple[str, str]]:
    """One line per fault kind: how many were seen as a device alert, and welfare alerts behind outages."""
    device = [a for a in alerts if a.category == "device"]
    welfare = [a for a in alerts if a.category in WELFARE]
    rows = []
    for kind in ("gateway_outage", "meter_silent", "meter_frozen"):
        fs = [f for f in ds.faults if f.kind == kind]
        if not fs:
            continue
        seen, times, extra = 0, [], 0
        for f in fs:
            if kind == "gateway_outage":
                hits = [a for a in device if a.gateway == f.subject and f.start <= a.opened_at <= f.end + step_s]
                per_meter = [a for a in device if a.meter and a.household in f.households
                             and f.start <= a.opened_at <= f.end + step_s]
                extra += len(per_meter)
            else:
                gw_of = {m.id: m.gateway for m in ds.registry.meters} if ds.registry else {}
                hits = [a for a in device if (a.meter == f.subject or a.gateway == gw_of.get(f.subject))
                        and f.start <= a.opened_at <= f.end + step_s]
            seen += bool(hits)
            times += [(min(a.opened_at for a in hits) - f.start) / 3600] if hits else []
            if kind == "gateway_outage" and len(hits) > 1:
                extra += len(hits) - 1
        long = sum(1 for f in fs if f.end - f.start > silence_s)
        line = (f"{seen} of {len(fs)} raised a device alert ({long} lasted longer than the "
                f"{silence_s // 3600} h silence threshold)"
                + (f", median {_h(np.median(times))} after it began" if times else ""))
        if kind == "gateway_outage":
            behind = sum(1 for f in fs for a in welfare if a.household in f.households and f.start <= a.opened_at < f.end)
            line += f"; further device alerts about them: {extra}; welfare alerts while they were down: {behind}"
        rows.append((kind.replace("_", " "), line))
    return rows


def pct(n: int, total: int) -> str:
    """'97 % (68/70)'."""
    return f"{100 * n / total:.0f} % ({n}/{total})" if total else "–"


def _h(hours: float) -> str:
    return "–" if hours is None or math.isnan(hours) else f"{hours:.1f} h"


def quantiles(times: Sequence[float]) -> tuple[str, str]:
    """Median and 90th percentile of hours to alert, formatted."""
    if not times:
        return "–", "–"
    return _h(float(np.median(times))), _h(float(np.percentile(times, 90)))


def rate(n: int, days: float) -> str:
    """Alerts per 1,000 household-days."""
    return f"{1000 * n / days:.1f}" if days > 0 else "–"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)

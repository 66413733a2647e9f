"""Water and electricity use per hour and per day from cumulative registers, beside the household's usual use.

The usual pattern is derived from stored readings, not from the routine detector (whose learned state is
about gaps between activity, not amounts): for each hour of the day, the median use in that local hour over
the 28 days before the chart begins; for each day, the median daily use over the 28 days before that day.
A median needs at least 7 known values, else there is no usual value yet.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from shouwang.domain import Meter, MeterKind, Reading
from storage import Store

HOUR = 3600
DAY = 86400
USUAL_DAYS = 28
MIN_USUAL = 7
MAX_GAP_S = 3 * HOUR  # a register value between two readings further apart than this is not guessed
DISPLAY_FACTOR = {MeterKind.WATER: 1000.0, MeterKind.ELECTRICITY: 1.0}  # m³ → litres; kWh stays
DISPLAY_UNIT = {MeterKind.WATER: "L", MeterKind.ELECTRICITY: "kWh"}


@dataclass(frozen=True, slots=True)
class Bin:
    """Use in one interval [start, start + length), and the usual use for that interval (display units)."""

    start: int
    actual: float | None
    usual: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """One meter kind's use over a period, hour by hour or day by day."""

    kind: MeterKind
    unit: str
    step_s: int
    bins: tuple[Bin, ...]


def registers_at(ts: np.ndarray, values: np.ndarray, edges: np.ndarray, max_gap_s: int = MAX_GAP_S) -> np.ndarray:
    """Register values at the edges, linearly between the readings around each; NaN where not known."""
    out = np.full(len(edges), np.nan)
    if len(ts) == 0:
        return out
    right = np.searchsorted(ts, edges, side="left")
    exact = (right < len(ts)) & (ts[np.minimum(right, len(ts) - 1)] == edges)
    inside = (right > 0) & (right < len(ts))
    lo, hi = np.maximum(right - 1, 0), np.minimum(right, len(ts) - 1)
    close = inside & ((ts[hi] - ts[lo]) <= max_gap_s)
    known = exact | close
    out[known] = np.interp(edges[known], ts, values)
    return out


def usage_between(registers: np.ndarray) -> list[float | None]:
    """Use in each interval between consecutive register values; unknown where a value is missing or falls."""
    diffs = np.diff(registers)
    return [None if not np.isfinite(d) or d < 0 else float(d) for d in diffs]


def hour_edges(start: int, hours: int) -> np.ndarray:
    """Hour boundaries from ``start`` (aligned down to the hour), ``hours + 1`` of them."""
    first = start - start % HOUR
    return np.arange(first, first + (hours + 1) * HOUR, HOUR, dtype=np.int64)


def day_edges(end: int, days: int, zone: str) -> np.ndarray:
    """Local midnights: the ``days`` whole days up to and including the day of ``end``, ``days + 1`` edges."""
    tz = ZoneInfo(zone)
    today = datetime.fromtimestamp(end, tz).date()
    first = today - timedelta(days=days - 1)
    return np.array([int(datetime.combine(first + timedelta(days=i), datetime.min.time(), tz).timestamp())
                     for i in range(days + 1)], dtype=np.int64)


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(statistics.median(known)) if len(known) >= MIN_USUAL else None


def usual_by_hour(history: Sequence[float | None], edges: np.ndarray, zone: str) -> dict[int, float | None]:
    """Median use per local hour of day over the history's hours (``edges`` are its hour boundaries)."""
    tz = ZoneInfo(zone)
    by_hour: dict[int, list[float | None]] = {h: [] for h in range(24)}
    for start, used in zip(edges[:-1], history, strict=True):
        by_hour[datetime.fromtimestamp(int(start), tz).hour].append(used)
    return {h: _median(v) for h, v in by_hour.items()}


def hourly_series(kind: MeterKind, readings: Sequence[Reading], start: int, hours: int, zone: str) -> Series:
    """Use per hour for ``hours`` from ``start``, beside the median of the same hour over the 28 days before."""
    ts = np.array([r.ts for r in readings], dtype=np.int64)
    values = np.array([r.value for r in readings], dtype=float)
    edges = hour_edges(start, hours)
    history_edges = hour_edges(int(edges[0]) - USUAL_DAYS * DAY, USUAL_DAYS * 24)
    actual = usage_between(registers_at(ts, values, edges))
    usual = usual_by_hour(usage_between(registers_at(ts, values, history_edges)), history_edges, zone)
    tz = ZoneInfo(zone)
    factor = DISPLAY_FACTOR[kind]
    bins = tuple(Bin(int(e), _scaled(a, factor), _scaled(usual[datetime.fromtimestamp(int(e), tz).hour], factor))
                 for e, a in zip(edges[:-1], actual, strict=True))
    return Series(kind, DISPLAY_UNIT[kind], HOUR, bins)


def daily_series(kind: MeterKind, registers: np.ndarray, edges: np.ndarray, shown: int) -> Series:
    """Use per day for the last ``shown`` days, each beside the median daily use of the 28 days before it."""
    used = usage_between(registers)
    factor = DISPLAY_FACTOR[kind]
    first = len(used) - shown
    bins = tuple(Bin(int(edges[i]), _scaled(used[i], factor), _scaled(_median(used[max(0, i - USUAL_DAYS):i]), factor))
                 for i in range(first, len(used)))
    return Series(kind, DISPLAY_UNIT[kind], DAY, bins)


def _scaled(v: float | None, factor: float) -> float | None:
    return None if v is None else round(v * factor, 3)


def registers_at_edges(store: Store, meter: str, edges: np.ndarray, max_gap_s: int = 6 * HOUR) -> np.ndarray:
    """Register value at each edge: the last reading at or before it, if it is at most ``max_gap_s`` older."""
    out = np.full(len(edges), np.nan)
    for i, edge in enumerate(int(e) for e in edges):
        before = store.readings(meter, edge - max_gap_s, edge + 1, limit=1)
        if before:
            out[i] = before[0].value
    return out


def household_usage(store: Store, meters: Sequence[Meter], now: int, zone: str, hours: int = 7 * 24,
                    days: int = 90) -> tuple[list[Series], list[Series]]:
    """Hourly series for the last ``hours`` and daily series for the last ``days``, one of each per meter kind."""
    start = now - hours * HOUR
    hourly, daily = [], []
    for meter in sorted(meters, key=lambda m: (m.kind != MeterKind.WATER, m.id)):
        first = int(hour_edges(start, 0)[0]) - USUAL_DAYS * DAY
        readings = store.readings(meter.id, first - MAX_GAP_S, now + MAX_GAP_S, limit=200_000)
        hourly.append(hourly_series(meter.kind, readings, start, hours, zone))
        edges = day_edges(now, days + USUAL_DAYS, zone)
        daily.append(daily_series(meter.kind, registers_at_edges(store, meter.id, edges), edges, days))
    return hourly, daily

"""Reading replay inputs: the readings CSV (optionally gzipped) into validated arrays, and the away CSV."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import numpy as np

from ingest.protocol import ProtocolError, parse_ts
from shouwang.away import AwayPeriod
from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Registry
from simulators.replay_csv import parse_chunk

log = logging.getLogger(__name__)

COLUMNS = ("household", "meter", "kind", "ts", "value")
DEFAULT_TZ = "Asia/Shanghai"
EXAMPLES_PER_REASON = 3
_BAD_TS = np.iinfo(np.int64).min
_KINDS = {"water": MeterKind.WATER, "electricity": MeterKind.ELECTRICITY}


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One recorded reading as given to the replay (``ts`` and ``value`` may still be text)."""

    household: str
    meter: str
    kind: str
    ts: str | int | float
    value: str | float


@dataclass(slots=True)
class BadRows:
    """Rows that were skipped, counted by reason, with the first few examples of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1, example: str | None = None) -> None:
        """Count ``n`` bad rows under ``reason`` (and keep ``example`` if few are kept yet)."""
        self.counts[reason] += n
        ex = self.examples.setdefault(reason, [])
        if example is not None and len(ex) < EXAMPLES_PER_REASON:
            ex.append(example)

    @property
    def total(self) -> int:
        """All skipped rows."""
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        """A human-readable report: one line per reason, then its examples."""
        out = []
        for reason, n in self.counts.most_common():
            out.append(f"{n} row(s) skipped: {reason}")
            out += [f"    e.g. {e}" for e in self.examples.get(reason, ())]
        return out


@dataclass(slots=True)
class ReadingTable:
    """Validated readings as arrays sorted by meter, then event time; and the meters they belong to."""

    meters: list[str]
    households: list[str]  # household of each meter
    kinds: list[MeterKind]  # kind of each meter
    meter: np.ndarray  # int32 index into ``meters``, per reading
    ts: np.ndarray  # int64 epoch seconds
    value: np.ndarray  # float64 cumulative register
    bad: BadRows = field(default_factory=BadRows)
    duplicates: int = 0  # exact repeats of a reading, dropped silently

    @classmethod
    def from_arrays(cls, meters: Sequence[str], households: Sequence[str], kinds: Sequence[MeterKind | str],
                    meter: np.ndarray, ts: np.ndarray, value: np.ndarray, bad: BadRows | None = None
                    ) -> ReadingTable:
        """Validate (non-finite, negative, duplicate, register backwards) and sort readings given as arrays."""
        bad = bad if bad is not None else BadRows()
        meter, ts, value = np.asarray(meter, np.int64), np.asarray(ts, np.int64), np.asarray(value, np.float64)
        finite = np.isfinite(value)
        if not finite.all():
            bad.add("invalid_field", int((~finite).sum()), "value is not a finite number")
        neg = finite & (value < 0)
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            bad.add("negative_value", int(neg.sum()), f"meter {meters[meter[i]]}: value {value[i]}")
        keep = finite & ~neg
        meter, ts, value = meter[keep], ts[keep], value[keep]
        if len(ts) and len(meters) < 2**21 and int(ts.max()) - int(ts.min()) < 2**42:
            order = np.argsort((meter << 42) | (ts - ts.min()), kind="stable")  # fast on sorted exports
        else:
            order = np.lexsort((ts, meter))
        meter, ts, value = meter[order], ts[order], value[order]
        same = np.zeros(len(ts), dtype=bool)
        same[1:] = (meter[1:] == meter[:-1]) & (ts[1:] == ts[:-1])
        conflict = same.copy()
        conflict[1:] &= value[1:] != value[:-1]
        if conflict.any():
            i = int(np.flatnonzero(conflict)[0])
            bad.add("conflicting_duplicate", int(conflict.sum()),
                    f"meter {meters[meter[i]]} at {ts[i]}: {value[i]} after {value[i - 1]} (the first is kept)")
        duplicates = int(same.sum() - conflict.sum())
        meter, ts, value = meter[~same], ts[~same], value[~same]
        back = np.zeros(len(ts), dtype=bool)
        edges = np.concatenate(([0], np.flatnonzero(np.diff(meter)) + 1, [len(meter)]))
        for a, b in itertools.pairwise(edges):
            if b - a > 1:
                top = np.maximum.accumulate(value[a:b])
                back[a + 1:b] = value[a + 1:b] < top[:-1]
        if back.any():
            for i in np.flatnonzero(back)[:EXAMPLES_PER_REASON]:
                bad.add("register_backwards", 0,
                        f"meter {meters[meter[i]]} at {ts[i]}: {value[i]} is below an earlier reading")
            bad.add("register_backwards", int(back.sum()))
        keep = ~back
        return cls(list(meters), list(households), [MeterKind(k) for k in kinds], meter[keep].astype(np.int32),
                   ts[keep], value[keep], bad, duplicates)

    def __len__(self) -> int:
        return len(self.ts)


def zone_of(tz: str | tzinfo) -> tzinfo:
    """A tzinfo from a zone name (or the tzinfo itself)."""
    return ZoneInfo(tz) if isinstance(tz, str) else tz


class _Loader:
    """Parses rows chunk by chunk into index/ts/value arrays, counting bad rows."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone, self.bad = zone, BadRows()
        self.index: dict[str, int] = {}
        self.hh_of: dict[str, str] = {}
        self.kind_of: dict[str, str] = {}
        self.meters: list[str] = []
        self.households: list[str] = []
        self.kinds: list[MeterKind] = []
        self.ts_cache: dict[Any, int] = {}
        self.hours: dict[str, int] = {}  # 'YYYY-MM-DD HH' → epoch of that local hour
        self.hour_table = (np.zeros(0, np.int64), np.zeros(0, np.int64))  # YYYYMMDDHH keys and their epochs
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _register(self, mt: list, hh: list, kd: list) -> None:
        new = set(mt).difference(self.index)
        first = dict(zip(reversed(mt), range(len(mt) - 1, -1, -1), strict=True))
        for m in sorted(new, key=first.__getitem__):
            j = first[m]
            while m and not (hh[j] and kd[j] in _KINDS):  # rare: its first row is bad, look for a good one
                try:
                    j = mt.index(m, j + 1)
                except ValueError:
                    j = -1
                    break
            if m and j >= 0:
                self.index[m] = len(self.meters)
                self.hh_of[m], self.kind_of[m] = hh[j], kd[j]
                self.meters.append(m)
                self.households.append(hh[j])
                self.kinds.append(_KINDS[kd[j]])

    def _ts(self, raw: Any) -> int:
        try:
            if isinstance(raw, str):
                s = raw.strip()
                if len(s) == 19 and s[13] == ":" and s[16] == ":" and s[10] in " T":  # naive local, the usual case
                    base = self.hour_start(s[:13].replace("T", " "))
                    minute, second = int(s[14:16]), int(s[17:19])
                    if minute > 59 or second > 59:
                        raise ValueError(s)
                    return base + 60 * minute + second
                return parse_ts(float(s) if s.replace(".", "", 1).isdigit() else s, self.zone)
            return parse_ts(raw, self.zone)
        except (ProtocolError, TypeError, ValueError, OverflowError):
            return _BAD_TS

    def code(self, meter: str, household: str, kind: str) -> int:
        """Meter index for a row's (meter, household, kind), registering new meters; negative: a bad-row code."""
        if not meter or not household:
            return _CODES["bad_shape"]
        if kind not in _KINDS:
            return _CODES["unknown_kind"]
        if meter not in self.index:
            self._register([meter], [household], [kind])
        return self.index[meter] if (self.hh_of[meter], self.kind_of[meter]) == (household, kind) \
            else _CODES["kind_mismatch"]

    def hour_start(self, hour: str) -> int:
        """Epoch of the local hour 'YYYY-MM-DD HH' (raises for an invalid one)."""
        base = self.hours.get(hour)
        if base is None:
            base = self.hours[hour] = parse_ts(f"{hour}:00:00", self.zone)
        return base

    def add_columns(self, hh: list, mt: list, kd: list, ts: list, val: list, where: Callable[[int], str]) -> None:
        """Validate one chunk given column-wise; ``where(i)`` describes row i for examples."""
        n = len(mt)
        if not n:
            return
        if not self.index.keys() >= set(mt):
            self._register(mt, hh, kd)
        mi = list(map(self.index.get, mt))
        if None in mi or list(map(self.hh_of.get, mt)) != hh or list(map(self.kind_of.get, mt)) != kd:
            mi = [self.code(m, h, k) for m, h, k in zip(mt, hh, kd, strict=True)]
        cache = self.ts_cache
        tl = list(map(cache.get, ts))
        if None in tl:
            if len(cache) > 1_000_000:
                cache.clear()
            cache.update((s, self._ts(s)) for s in {s for s, t in zip(ts, tl, strict=True) if t is None})
            tl = list(map(cache.get, ts))
        try:
            value = np.array(val, dtype=np.float64)
        except (ValueError, TypeError):
            value = np.array([_to_float(v) for v in val], dtype=np.float64)
        self.add_arrays(np.array(mi, dtype=np.int64), np.array(tl, dtype=np.int64), value, where)

    def add_arrays(self, mi: np.ndarray, tsv: np.ndarray, value: np.ndarray, where: Callable[[int], str]) -> None:
        """Keep the good rows of a parsed chunk; count the bad ones by reason."""
        ok = np.ones(len(mi), dtype=bool)
        for mask, reason in ((mi == _CODES["bad_shape"], "bad_shape"), (mi == _CODES["unknown_kind"], "unknown_kind"),
                             (mi == _CODES["kind_mismatch"], "kind_mismatch"), (tsv == _BAD_TS, "bad_timestamp"),
                             (~np.isfinite(value), "invalid_field"), (value < 0, "negative_value")):
            hit = ok & mask
            if hit.any():
                rows = np.flatnonzero(hit)
                for i in rows[:EXAMPLES_PER_REASON]:
                    self.bad.add(reason, 0, f"{where(int(i))} ({_WHY[reason]})")
                self.bad.add(reason, len(rows))
                ok &= ~mask
        self.parts.append((mi[ok], tsv[ok], value[ok]))

    def add_bytes(self, buf: bytes, cols: list[int], ncols: int, first_line: int) -> int:
        """One chunk of whole CSV lines (ending in a newline); return how many lines it had."""
        if b"\r" in buf:
            buf = buf.replace(b"\r", b"")
        if cols == [0, 1, 2, 3, 4] and b'"' not in buf and b", " not in buf and b" ," not in buf:
            got = parse_chunk(buf, ncols, self._code_bytes, self._hour_keys, self._ts_bytes, _to_float, _BAD_TS)
            if got is not None:
                mi, tsv, value, starts = got
                ends = np.append(starts[1:] - 1, len(buf) - 1)

                def where(i: int) -> str:
                    text = buf[starts[i]:ends[i]].decode("utf-8", errors="replace")
                    return f"line {first_line + i}: {text[:120]!r}"
                self.add_arrays(mi, tsv, value, where)
                return len(starts)
        return self.add_text(buf.decode("utf-8", errors="replace"), cols, ncols, first_line)

    def _code_bytes(self, prefix: bytes) -> int:
        hh, meter, kind = prefix.decode("utf-8", errors="replace").split(",")
        return self.code(meter, hh, kind)

    def _hour_keys(self, keys: np.ndarray) -> np.ndarray:
        """Epochs of local hours given as sorted unique YYYYMMDDHH keys."""
        known, epochs = self.hour_table
        pos = np.minimum(np.searchsorted(known, keys), max(len(known) - 1, 0))
        hit = (known[pos] == keys) if len(known) else np.zeros(len(keys), dtype=bool)
        if not hit.all():
            new = keys[~hit]
            known = np.concatenate((known, new))
            epochs = np.concatenate((epochs, [self._hour_of_key(int(k)) for k in new]))
            order = np.argsort(known)
            self.hour_table = (known[order], epochs[order].astype(np.int64))
            return self._hour_keys(keys)
        return epochs[pos]

    def _hour_of_key(self, key: int) -> int:
        y, rest = divmod(key, 1000000)
        mo, rest = divmod(rest, 10000)
        d, h = divmod(rest, 100)
        try:
            return self.hour_start(f"{y:04d}-{mo:02d}-{d:02d} {h:02d}")
        except (ProtocolError, ValueError):
            return _BAD_TS

    def _ts_bytes(self, raw: bytes) -> int:
        return self._ts(raw.decode("utf-8", errors="replace"))

    def add_text(self, text: str, cols: list[int], ncols: int, first_line: int) -> int:
        """One chunk of whole CSV lines (ending in a newline); return how many lines it had."""
        if "\r" in text:
            text = text.replace("\r", "")
        nrows = text.count("\n")
        if ('"' not in text and "\n\n" not in text and not text.startswith("\n") and ", " not in text
                and " ," not in text):
            fields = text[:-1].replace("\n", ",").split(",")
            if len(fields) == ncols * nrows:
                def where(i: int) -> str:
                    return f"line {first_line + i}: {','.join(fields[i * ncols:(i + 1) * ncols])[:120]!r}"
                c = [fields[k::ncols] for k in cols]
                self.add_columns(c[0], c[1], c[2], c[3], c[4], where)
                return nrows
        rows = text[:-1].split("\n")
        good: list[list[str]] = []
        kept: list[int] = []
        for i, parts in enumerate(csv.reader(rows)):
            if not parts or not "".join(parts).strip():
                continue  # blank line
            if len(parts) < ncols:
                self.bad.add("bad_shape", 1, f"line {first_line + i}: {rows[i][:120]!r} "
                                             f"(expected {ncols} fields, got {len(parts)})")
                continue
            good.append([parts[k].strip() for k in cols])
            kept.append(i)
        if good:
            c = [list(x) for x in zip(*good, strict=True)]
            self.add_columns(c[0], c[1], c[2], c[3], c[4],
                             lambda j: f"line {first_line + kept[j]}: {rows[kept[j]][:120]!r}")
        return nrows

    def table(self) -> ReadingTable:
        """All chunks, validated and sorted."""
        if self.parts:
            meter, ts, value = (np.concatenate([p[k] for p in self.parts]) for k in range(3))
        else:
            meter, ts, value = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        self.parts = []
        return ReadingTable.from_arrays(self.meters, self.households, self.kinds, meter, ts, value, self.bad)


_CODES = {"bad_shape": -1, "unknown_kind": -2, "kind_mismatch": -3}
_WHY = {"bad_shape": "empty household or meter", "unknown_kind": "kind must be water or electricity",
        "kind_mismatch": "this meter was seen before with another household or kind",
        "bad_timestamp": "not RFC 3339, 'YYYY-MM-DD HH:MM:SS' or epoch seconds",
        "invalid_field": "value is not a number", "negative_value": "registers count up from 0"}


def _to_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a file for reading bytes, gunzipping when it ends in .gz."""
    p = Path(path)
    return gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")


def load_readings(source: str | Path | Iterable[ReplayRow], tz: str | tzinfo = DEFAULT_TZ,
                  chunk_bytes: int = 1 << 24) -> ReadingTable:
    """Read a replay CSV (optionally .gz) or rows into a validated table; bad rows are counted, not fatal."""
    loader = _Loader(zone_of(tz))
    if not isinstance(source, (str, Path)):
        rows = list(source)
        loader.add_columns([r.household for r in rows], [r.meter for r in rows], [r.kind for r in rows],
                           [r.ts for r in rows], [r.value for r in rows], lambda i: f"row {i + 1}: {rows[i]}")
    else:
        with open_binary(source) as f:
            first = f.readline().decode("utf-8-sig", errors="replace")
            header = [h.strip().lower() for h in next(csv.reader([first]), [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ValueError(f"{source}: the header must name the columns {','.join(COLUMNS)} "
                                 f"(missing: {', '.join(missing)})")
            cols, line, carry = [header.index(c) for c in COLUMNS], 2, b""
            while True:
                data = f.read(chunk_bytes)
                buf = carry + data
                cut = buf.rfind(b"\n") if data else len(buf) - 1
                if cut < 0 and data:
                    carry = buf
                    continue
                chunk, carry = buf[:cut + 1], buf[cut + 1:]
                if chunk.strip():
                    line += loader.add_bytes(chunk if chunk.endswith(b"\n") else chunk + b"\n", cols, len(header),
                                             line)
                if not data:
                    break
    table = loader.table()
    if table.bad.total:
        log.warning("skipped %d bad row(s): %s", table.bad.total,
                    ", ".join(f"{r} {n}" for r, n in table.bad.counts.most_common()))
    return table


def load_away(path: str | Path, tz: str | tzinfo = DEFAULT_TZ, bad: BadRows | None = None) -> list[AwayPeriod]:
    """Away periods from a CSV with header ``household,start,end`` (empty end: until activity resumes)."""
    zone, bad = zone_of(tz), bad if bad is not None else BadRows()
    out = []
    with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                household = (row.get("household") or "").strip()
                if not household:
                    raise ValueError("no household")
                start = parse_ts((row.get("start") or "").strip(), zone)
                end_text = (row.get("end") or "").strip()
                end = parse_ts(end_text, zone) if end_text else None
                if end is not None and end <= start:
                    raise ValueError("end is not after start")
            except (ProtocolError, ValueError) as exc:
                bad.add("bad_away_row", 1, f"line {n}: {exc}")
                continue
            out.append(AwayPeriod(household, start, end, source="replay"))
    if bad.total:
        log.warning("skipped %d bad away row(s)", bad.total)
    return out


def registry_for(table: ReadingTable, tz: str = DEFAULT_TZ, community: str = "replay") -> Registry:
    """A registry with one synthetic gateway per household, so device logic works on recorded data."""
    households = list(dict.fromkeys(table.households))
    return Registry(
        communities=(Community(community, "replay", tz),),
        gateways=tuple(Gateway(f"GW-{h}", community) for h in households),
        households=tuple(Household(h, community) for h in households),
        meters=tuple(Meter(m, h, k, f"GW-{h}")
                     for m, h, k in zip(table.meters, table.households, table.kinds, strict=True)))

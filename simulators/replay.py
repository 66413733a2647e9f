"""Replay recorded meter readings through the detectors in event time and list the alerts they raise."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from alerts.pipeline import AwaySilence, Candidate, Inhibit, Silence
from detectors.base import Detector
from shouwang.away import AwayPeriod, index_by_household
from shouwang.domain import Alert, AlertStatus, Finding, Reading, Registry
from shouwang.state import NEVER, ActivityModel, HouseholdState
from simulators.replay_load import (
    DEFAULT_TZ,
    BadRows,
    ReadingTable,
    ReplayRow,
    load_away,
    load_readings,
    registry_for,
    zone_of,
)

__all__ = ["BadRows", "ReadingTable", "ReplayAlert", "ReplayRow", "Replayer", "available_detector_names",
           "build_detectors", "default_detector_names", "load_away", "load_readings", "registry_for", "replay",
           "write_jsonl"]

log = logging.getLogger(__name__)

KNOWN_DETECTORS = ("routine", "no-change-48h", "shanghai", "taicang", "haishu", "kizuki", "jingan",
                   "longgang-leak", "water_running", "unusual_usage", "device")
FALLBACK_DEFAULT = ("no-change-48h", "device")


@dataclass(frozen=True, slots=True)
class ReplayAlert:
    """An alert the detectors raised during a replay; times are event time (epoch seconds)."""

    id: int
    household: str | None
    category: str
    detector: str
    severity: str
    opened_at: int
    closed_at: int | None
    reason: str
    since: int
    gateway: str | None = None
    meter: str | None = None

    def to_dict(self, zone: tzinfo) -> dict[str, Any]:
        """The JSONL record, with times as RFC 3339 in ``zone``."""
        return {"household": self.household, "category": self.category, "detector": self.detector,
                "severity": self.severity, "opened_at": rfc3339(self.opened_at, zone),
                "closed_at": None if self.closed_at is None else rfc3339(self.closed_at, zone),
                "reason": self.reason, "since": rfc3339(self.since, zone), "gateway": self.gateway,
                "meter": self.meter}


def rfc3339(ts: int, zone: tzinfo) -> str:
    """Epoch seconds as RFC 3339 local time with its offset."""
    return datetime.fromtimestamp(ts, zone).isoformat()


# ---------------------------------------------------------------------------------------------- detectors
def _detectors_module() -> Any:
    import detectors

    return detectors


def default_detector_names() -> list[str]:
    """The detectors the service runs by default."""
    return list(getattr(_detectors_module(), "DEFAULT_DETECTORS", FALLBACK_DEFAULT))


def build_detectors(names: Sequence[str] | None = None) -> list[Detector]:
    """Detectors by name (``detectors.build_detectors`` when it exists); raise KeyError for unknown names."""
    names = default_detector_names() if names is None else list(names)
    builder = getattr(_detectors_module(), "build_detectors", None)
    if builder is not None:
        return list(builder(names))
    from detectors import DeviceDetector, NoChangeDetector

    out: list[Detector] = []
    for name in names:
        hours = name[len("no-change-"):-1] if name.startswith("no-change-") and name.endswith("h") else ""
        if name == "device":
            out.append(DeviceDetector())
        elif hours.replace(".", "", 1).isdigit():
            out.append(NoChangeDetector(window_s=int(float(hours) * 3600), name=name))
        else:
            raise KeyError(f"unknown detector {name!r}; available: {', '.join(available_detector_names())}")
    return out


def available_detector_names() -> list[str]:
    """Every detector name that builds here."""
    mod = _detectors_module()
    for attr in ("DETECTOR_NAMES", "AVAILABLE_DETECTORS", "ALL_DETECTORS"):
        names = getattr(mod, attr, None)
        if names:
            return list(names)
    out = []
    for name in KNOWN_DETECTORS:
        try:
            build_detectors([name])
        except (KeyError, ValueError, TypeError):
            continue
        out.append(name)
    return out


# ---------------------------------------------------------------------------------------------- the walk
def _reading_by_reading(state: HouseholdState) -> Any:
    """``apply_arrays`` for a state that only has ``apply``."""
    ids = state.meter_ids

    def apply(mi: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        state.apply([Reading(ids[i], t, v) for i, t, v in zip(mi.tolist(), ts.tolist(), value.tolist(), strict=True)])
    return apply


def _inner(d: Any) -> Any:
    return getattr(d, "inner", d)  # a benchmark's timing wrapper


def _data_driven(d: Any) -> bool:
    """True for a detector whose findings change with ``now`` only by data going stale."""
    d = _inner(d)
    if not getattr(d, "data_driven", False):
        return False
    fb = getattr(d, "fallback", None)
    return fb is None or _data_driven(fb)


@dataclass(slots=True)
class _Open:
    alert: Alert
    out: int  # position in the output list
    households: frozenset[int]  # state indices of the households it is about


class Replayer:
    """Walks event time in steps over a reading table, running detectors and an in-memory alert lifecycle.

    At each step (every ``step_s`` of event time, aligned to the epoch) the readings up to that instant are
    folded into a fresh HouseholdState, every detector is evaluated, welfare findings are held behind a down
    gateway (the pipeline's Inhibit stage) or during a registered absence (its Silence stage with the away
    rule), and a finding whose key has no open alert opens one; an open alert closes when its detector's
    ``cleared()`` says so. Keys are the service's (household + category, or gateway / meter); with
    ``per_detector`` each detector keeps its own, so one pass scores several detectors independently.
    """

    def __init__(self, table: ReadingTable, detectors: Sequence[Detector], away: Sequence[AwayPeriod] = (),
                 tz: str = DEFAULT_TZ, step_s: int = 900, registry: Registry | None = None,
                 model: ActivityModel | None = None, per_detector: bool = False, recheck_s: int = 3600,
                 reuse: bool = True) -> None:
        if step_s <= 0:
            raise ValueError("step_s must be positive")
        self.table, self.detectors, self.step_s = table, list(detectors), int(step_s)
        self.recheck_s = max(int(recheck_s), self.step_s)
        self.by_name = {d.name: d for d in self.detectors}
        self.registry = registry or registry_for(table, tz)
        self.model, self.per_detector, self.reuse = model, per_detector, reuse
        self.away = index_by_household(away)
        self.alerts: list[ReplayAlert] = []
        self.steps = 0

    def run(self) -> list[ReplayAlert]:
        """Replay everything; return the alerts in the order they opened."""
        t = self.table
        self.alerts = []
        if not len(t):
            return []
        state = HouseholdState(self.registry, self.model, started_at=int(t.ts.min()))
        to_state = np.array([state.meter_index.get(m, -1) for m in t.meters], dtype=np.int64)
        mi = to_state[t.meter]
        known = mi >= 0
        if not known.all():
            log.warning("%d reading(s) of meters not in the registry are ignored", int((~known).sum()))
            mi, ts, value = mi[known], t.ts[known], t.value[known]
        else:
            ts, value = t.ts, t.value
        self._setup(state, mi, ts)
        apply = getattr(state, "apply_arrays", None) or _reading_by_reading(state)
        self._open: dict[Any, _Open] = {}
        self._found: dict[int, list[Finding]] = {}  # per detector, its findings at the last evaluation
        step = self.step_s
        start = -(-int(ts.min()) // step) * step
        bucket = np.maximum(0, -(-(ts - start) // step))  # step k applies readings in (start+(k-1)step, start+k*step]
        n_steps = int(bucket.max()) + 1
        order = np.argsort(bucket.astype(np.uint16) if n_steps < 2**16 else bucket, kind="stable")
        cut = np.concatenate(([0], np.cumsum(np.bincount(bucket, minlength=n_steps))))
        self._next_recheck = start
        self._live: set[int] = set()  # households with new readings since the last full recheck
        for k in range(n_steps):
            sel = order[cut[k]:cut[k + 1]]
            dirty: set[int] = set()
            if len(sel):
                m = mi[sel]
                apply(m, ts[sel], value[sel])
                if self._open:
                    dirty = set(np.unique(state.meter_household[m]).tolist())
                    self._live |= dirty
            self._step(state, start + k * step, dirty, len(sel) > 0)
        self.steps = n_steps
        return self.alerts

    def _setup(self, state: HouseholdState, mi: np.ndarray, ts: np.ndarray) -> None:
        first = np.full(len(state.meter_ids), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, mi, ts)
        self._meter_first = first
        gw_first = np.full(len(state.gateway_ids), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(gw_first, state.meter_gateway, first)
        self._gw_first = dict(zip(state.gateway_ids, gw_first.tolist(), strict=True))
        self._m_first = dict(zip(state.meter_ids, first.tolist(), strict=True))
        behind: dict[str, list[str]] = {}
        for m in self.registry.meters:
            hs = behind.setdefault(m.gateway, [])
            if m.household not in hs:
                hs.append(m.household)
        self._behind = behind
        self._last_act: tuple[int, np.ndarray] | None = None
        self._state = state
        offline = lambda: [g for g, up in zip(state.gateway_ids, state.gateway_online, strict=True) if not up]
        self._inhibit = Inhibit(lambda g: behind.get(g, ()), offline)
        self._silence = Silence((self._away_rule(),)) if self.away else None

    def _household_last_activity(self, household: str) -> int | None:
        state, now = self._state, self._now
        if self._last_act is None or self._last_act[0] != now:
            self._last_act = (now, state.household_last_activity())
        h = state.household_index.get(household)
        if h is None:
            return None
        v = int(self._last_act[1][h])
        return None if v == NEVER else v

    def _away_rule(self) -> AwaySilence:
        """The service's away rule: welfare findings held while a registered absence lasts."""
        periods = [p for ps in self.away.values() for p in ps]
        return AwaySilence(lambda now: [p for p in periods if p.start <= now and (p.end is None or now < p.end)],
                           self._household_last_activity)

    def _started(self, f: Finding, now: int) -> bool:
        """False for device findings about meters whose recorded data has not begun yet."""
        if f.meter:
            return self._m_first.get(f.meter, 0) <= now
        if f.gateway and not f.household:
            return self._gw_first.get(f.gateway, 0) <= now
        return True

    def _evaluate(self, state: HouseholdState, now: int, fresh: bool) -> list[Finding]:
        """Every detector's findings; on a step without readings, a welfare detector whose result depends on
        ``now`` only through staleness (``data_driven``) gives its last findings again, as long as no meter is
        stale, which it would compute anyway (the state has not changed)."""
        out: list[Finding] = []
        newest_stale = None
        for i, d in enumerate(self.detectors):
            if self.reuse and not fresh and i in self._found and _data_driven(d):
                if newest_stale is None:
                    seen = state.last_ts[state.last_ts != NEVER]
                    newest_stale = now - int(seen.min()) if seen.size else 0
                if newest_stale <= _inner(d).max_staleness_s:
                    out += self._found[i]
                    continue
            found = d.evaluate(state, now)
            self._found[i] = found
            out += found
        return out

    def _step(self, state: HouseholdState, now: int, dirty: set[int], fresh: bool = True) -> None:
        self._now = now
        findings = self._evaluate(state, now, fresh)
        seen = {(f.detector, f.key) for f in findings} if self._open else set()
        if findings:  # already open: nothing to do, except gateway findings, which hold welfare findings
            per, opened = self.per_detector, self._open
            items = [Candidate(f) for f in findings
                     if ((f.gateway and not f.household) or ((f.detector, f.key) if per else f.key) not in opened)
                     and self._started(f, now)]
            items = self._inhibit(items, now) if items else items
            if items and self._silence is not None:
                items = self._silence(items, now)
            for c in items:
                self._open_alert(c.finding, now)
        if self._open:
            if now >= self._next_recheck:
                self._next_recheck = now + self.recheck_s
                dirty, self._live = dirty | self._live, set()
            self._clear(state, now, dirty, seen)

    def _open_alert(self, f: Finding, now: int) -> None:
        key = (f.detector, f.key) if self.per_detector else f.key
        if key in self._open:
            return
        aid = len(self.alerts) + 1
        household = f.household
        if household is None and f.gateway:
            behind = self._behind.get(f.gateway, ())
            household = behind[0] if len(behind) == 1 else None
        alert = Alert(aid, f.key, f.category, f.detector, f.severity, AlertStatus.OPEN, f.reason, f.since, now,
                      household=f.household, gateway=f.gateway, meter=f.meter)
        st = self._state
        if f.household:
            about = [f.household]
        elif f.meter:
            about = [st.household_ids[int(st.meter_household[st.meter_index[f.meter]])]]
        else:
            about = list(self._behind.get(f.gateway or "", ()))
        self._open[key] = _Open(alert, len(self.alerts), frozenset(st.household_index[h] for h in about))
        self.alerts.append(ReplayAlert(aid, household, str(f.category), f.detector, str(f.severity), now, None,
                                       f.reason, f.since, f.gateway, f.meter))

    def _clear(self, state: HouseholdState, now: int, dirty: set[int], seen: set[tuple[str, str]]) -> None:
        """Close open alerts whose detector says their condition is gone.

        A detector is asked about an alert only when its finding was not raised again this step and the
        household has new readings: at once when they arrive, and every ``recheck_s`` for conditions that
        can end by time alone. Nothing can clear while the detector still raises the finding, or while no
        readings arrive at all.
        """
        if not dirty:
            return
        gone = []
        for key, o in self._open.items():
            a = o.alert
            if a.opened_at >= now or dirty.isdisjoint(o.households) or (a.detector, a.key) in seen:
                continue
            det = self.by_name.get(a.detector)
            if det is not None and det.cleared(a, state, now):
                gone.append(key)
                r = self.alerts[o.out]
                self.alerts[o.out] = ReplayAlert(r.id, r.household, r.category, r.detector, r.severity, r.opened_at,
                                                 now, r.reason, r.since, r.gateway, r.meter)
        for key in gone:
            del self._open[key]


def replay(readings: str | Path | Iterable[ReplayRow] | ReadingTable, detectors: Sequence[Detector | str] | None = None,
           away: Sequence[AwayPeriod] = (), tz: str = DEFAULT_TZ, step_s: int = 900, *,
           registry: Registry | None = None, model: ActivityModel | None = None,
           per_detector: bool = False, recheck_s: int = 3600) -> list[ReplayAlert]:
    """Run detectors over recorded readings in event time; return the alerts (open ones have closed_at None).

    ``detectors`` are Detector objects or names (None: the service's defaults). With ``per_detector`` each
    detector keeps its own open alerts, so one pass scores several detectors independently.
    """
    table = readings if isinstance(readings, ReadingTable) else load_readings(readings, tz)
    if detectors is None or any(isinstance(d, str) for d in detectors):
        names = None if detectors is None else [d for d in detectors if isinstance(d, str)]
        objs = [d for d in detectors or () if not isinstance(d, str)]
        dets = build_detectors(names) + objs
    else:
        dets = list(detectors)  # type: ignore[arg-type]
    return Replayer(table, dets, away, tz, step_s, registry, model, per_detector, recheck_s).run()


def write_jsonl(alerts: Iterable[ReplayAlert], out: str | Path | IO[bytes], tz: str | tzinfo = DEFAULT_TZ) -> int:
    """Write one JSON object per alert; return how many."""
    zone = zone_of(tz)
    data = b"".join(orjson.dumps(a.to_dict(zone)) + b"\n" for a in alerts)
    if isinstance(out, (str, Path)):
        Path(out).write_bytes(data)
    else:
        out.write(data)
    return data.count(b"\n")

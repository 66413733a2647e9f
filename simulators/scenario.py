"""Scenario files: scripted incidents (stall, away, gateway_offline, garbage) for the simulator."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shouwang.domain import Registry

log = logging.getLogger(__name__)

DEMO_SCENARIO = Path(__file__).with_name("scenarios") / "demo.yaml"
DEFAULT_SCENARIO = DEMO_SCENARIO

# garbage kind -> rejection reasons (docs/protocol.md) the service should record for it
GARBAGE_KINDS: dict[str, tuple[str, ...]] = {
    "bad_json": ("bad_json",),
    "string_value": ("invalid_field",),
    "negative_value": ("negative_value",),
    "unknown_meter": ("unknown_meter",),
    "future_timestamp": ("future_timestamp",),
    "register_backwards": ("register_backwards",),
    "mixed_batch": ("invalid_field", "negative_value", "unknown_meter", "kind_mismatch", "invalid_field",
                    "wrong_gateway"),
}

_AT = re.compile(r"^\s*day\s+(\d+)(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class ScenarioError(ValueError):
    """The scenario is invalid; the message lists each problem and what to fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"scenario {source} is invalid:\n  " + "\n  ".join(problems))


def parse_at(text: str) -> tuple[int, float]:
    """'day 2 08:00' -> (2, 28800.0): day number (1 = first day) and seconds after local midnight."""
    m = _AT.match(str(text))
    if not m:
        raise ValueError(f"at: {text!r} is not like 'day 2 08:00' (day 1 is the first simulated day)")
    day, hh, mm, ss = int(m[1]), int(m[2] or 0), int(m[3] or 0), int(m[4] or 0)
    if day < 1:
        raise ValueError(f"at: {text!r}: days count from 1 (day 1 is the first simulated day)")
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(f"at: {text!r}: the time of day must be 00:00..23:59")
    return day, hh * 3600.0 + mm * 60.0 + ss


def parse_duration(text: str | float) -> float:
    """'2d', '36h', '1d 12h', '90m' -> seconds."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"duration: {text!r} needs a unit; write e.g. '2d', '36h', '1d 12h' or '90m'")  # noqa: TRY004
    s = text.strip()
    parts = _DURATION.findall(s)
    if not parts or _DURATION.sub("", s).strip():
        raise ValueError(f"duration: {text!r} is not like '2d', '36h', '1d 12h' or '90m'")
    seconds = sum(float(n) * _UNIT_S[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"duration: {text!r} must be longer than zero")
    return seconds


class _IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str
    duration: str | None = None
    note: str = ""

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        parse_at(v)
        return v

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if v is not None:
            parse_duration(v)
        return v


class StallIn(_IncidentIn):
    kind: Literal["stall"]
    household: str
    keep_base_load: bool = False


class AwayIn(_IncidentIn):
    kind: Literal["away"]
    household: str
    days: float | None = Field(None, gt=0)


class GatewayOfflineIn(_IncidentIn):
    kind: Literal["gateway_offline"]
    gateway: str
    backfill: bool = False


class GarbageIn(_IncidentIn):
    kind: Literal["garbage"]
    gateway: str | None = None
    kinds: list[Literal[tuple(GARBAGE_KINDS)]] = Field(default_factory=lambda: list(GARBAGE_KINDS))  # type: ignore[valid-type]


IncidentIn = Annotated[StallIn | AwayIn | GatewayOfflineIn | GarbageIn, Field(discriminator="kind")]
_MODELS = {"stall": StallIn, "away": AwayIn, "gateway_offline": GatewayOfflineIn, "garbage": GarbageIn}


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    incidents: list[IncidentIn] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Incident:
    """One scripted incident, as written in the scenario (times relative to the start)."""

    number: int  # 1-based position in the file, used in messages
    kind: str  # stall | away | gateway_offline | garbage
    day: int  # 1 = the local date the simulation starts on
    time_s: float  # seconds after local midnight
    duration_s: float | None = None  # None: until the simulation stops (garbage: instantaneous)
    household: str | None = None
    gateway: str | None = None
    keep_base_load: bool = False
    backfill: bool = False
    garbage: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named list of incidents."""

    name: str = ""
    incidents: tuple[Incident, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class IncidentWindow:
    """Ground truth: what happened to whom, in absolute event time (epoch seconds)."""

    subject: str  # household id, or gateway id for gateway_offline and garbage
    kind: str
    start_ts: float
    end_ts: float | None  # None: until the simulation stops; garbage: equal to start_ts
    households: tuple[str, ...] = ()  # households whose readings it affects
    number: int = 0  # incident number in the scenario
    timezone: str = "Asia/Shanghai"  # zone of the community, for describe()

    def describe(self) -> str:
        """One line for people, e.g. 'stall H007 from 2026-11-23 08:00 (until the end)'."""
        tz = ZoneInfo(self.timezone)
        t0 = f"{datetime.fromtimestamp(self.start_ts, tz):%Y-%m-%d %H:%M}"
        if self.kind == "garbage":
            return f"garbage on {self.subject} at {t0}"
        what = {"stall": "stalls (no activity)", "away": "is away",
                "gateway_offline": "goes offline"}.get(self.kind, self.kind)
        until = "until the end" if self.end_ts is None else f"for {(self.end_ts - self.start_ts) / 3600:g} h"
        return f"{self.subject} {what} at {t0}, {until}"


def _format_error(err: dict, data: Any) -> str:
    loc = list(err["loc"])
    where = ""
    kind = None
    if loc and loc[0] == "incidents" and len(loc) > 1 and isinstance(loc[1], int):
        n = loc[1]
        try:
            kind = data["incidents"][n].get("kind")
        except (AttributeError, IndexError, KeyError, TypeError):
            kind = None
        where = f"incident {n + 1}" + (f" ({kind})" if kind in _MODELS else "")
        loc = loc[2:]
        if loc and loc[0] == kind:
            loc = loc[1:]
    field = ".".join(str(p) for p in loc)
    prefix = f"{where}: " if where else ""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "union_tag_invalid":
        return f"{prefix}kind {kind!r} is not one of {', '.join(_MODELS)}"
    if err["type"] == "union_tag_not_found":
        return f"{prefix}says no kind; add 'kind:' with one of {', '.join(_MODELS)}"
    if err["type"] == "extra_forbidden":
        if not where:
            return f"top-level key {field!r} is not known (allowed: name, description, incidents)"
        allowed = sorted(f for f in _MODELS[kind].model_fields if f != "kind") if kind in _MODELS else []
        hint = f" for kind {kind!r} (allowed: {', '.join(allowed)})" if allowed else ""
        return f"{prefix}option {field!r} is not known{hint}"
    if err["type"] == "model_type" and not loc and not where:
        return "the file must be a mapping with an 'incidents:' list"
    if err["type"] == "literal_error" and loc and loc[0] == "kinds":
        return f"{prefix}{err['input']!r} is not a garbage kind; use some of {', '.join(GARBAGE_KINDS)}"
    if err["type"] == "missing":
        return f"{prefix}{field} is required"
    if field and not msg.startswith(f"{field}:"):
        return f"{prefix}{field}: {msg}"
    return f"{prefix}{msg}"


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate scenario data (a dict, or YAML text) and return a Scenario; raise ScenarioError."""
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise ScenarioError(source, [f"not valid YAML: {exc}"]) from exc
    if data is None:
        data = {}
    try:
        model = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, [_format_error(e, data) for e in exc.errors()]) from exc
    out = []
    for n, inc in enumerate(model.incidents, start=1):
        day, tod = parse_at(inc.at)
        duration = parse_duration(inc.duration) if inc.duration is not None else None
        if isinstance(inc, AwayIn):
            if inc.days is not None and duration is not None:
                raise ScenarioError(source, [f"incident {n} (away): give 'days' or 'duration', not both"])
            duration = inc.days * 86400.0 if inc.days is not None else duration
            if duration is None:
                raise ScenarioError(source, [f"incident {n} (away): say how long, e.g. 'duration: 3d'"])
        if isinstance(inc, GarbageIn) and duration is not None:
            raise ScenarioError(source, [f"incident {n} (garbage): is instantaneous; remove 'duration'"])
        out.append(Incident(
            number=n, kind=inc.kind, day=day, time_s=tod, duration_s=duration,
            household=getattr(inc, "household", None), gateway=getattr(inc, "gateway", None),
            keep_base_load=getattr(inc, "keep_base_load", False), backfill=getattr(inc, "backfill", False),
            garbage=tuple(getattr(inc, "kinds", ())), note=inc.note))
    return Scenario(name=model.name, incidents=tuple(out), description=model.description)


def load_scenario(path: str | Path, registry: Registry | None = None) -> Scenario:
    """Read a scenario YAML file; if a registry is given, also check it names only known ids."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    scenario = parse_scenario(text, str(path))
    if registry is not None:
        check_scenario(scenario, registry, str(path))
    return scenario


def _id_range(ids: list[str]) -> str:
    return f"{ids[0]}..{ids[-1]}" if len(ids) > 3 else ", ".join(ids) or "none"


def check_scenario(scenario: Scenario, registry: Registry, source: str = "<scenario>") -> None:
    """Raise ScenarioError if an incident names a household or gateway the registry does not have."""
    households = [h.id for h in registry.households]
    gateways = [g.id for g in registry.gateways]
    where = ", ".join(c.id for c in registry.communities) or "(empty registry)"
    problems = []
    for inc in scenario.incidents:
        if inc.household is not None and inc.household not in households:
            problems.append(f"incident {inc.number}: household {inc.household!r} is not in the simulated "
                            f"community {where} (it has {_id_range(households)}); simulate more households "
                            "or fix the id")
        if inc.gateway is not None and inc.gateway not in gateways:
            problems.append(f"incident {inc.number}: gateway {inc.gateway!r} is not in the simulated "
                            f"community {where} (it has {_id_range(gateways)}); simulate more households "
                            "or fix the id")
    if problems:
        raise ScenarioError(source, problems)


def incident_start(inc: Incident, start: float, timezone: str) -> float:
    """Absolute event time of an incident: local midnight of (start date + day - 1) + time of day."""
    tz = ZoneInfo(timezone)
    first = datetime.fromtimestamp(start, tz).date().toordinal()
    midnight = datetime.combine(date.fromordinal(first + inc.day - 1), time(0), tzinfo=tz).timestamp()
    return midnight + inc.time_s


def resolve_incidents(scenario: Scenario, registry: Registry, start: float) -> tuple[IncidentWindow, ...]:
    """Ground-truth windows of a scenario starting at ``start``; garbage gets a gateway if it named none."""
    check_scenario(scenario, registry)
    zone = {c.id: c.timezone for c in registry.communities}
    hh_comm = {h.id: h.community for h in registry.households}
    gw_comm = {g.id: g.community for g in registry.gateways}
    gw_households: dict[str, list[str]] = {}
    for m in registry.meters:
        hs = gw_households.setdefault(m.gateway, [])
        if m.household not in hs:
            hs.append(m.household)
    default_zone = registry.communities[0].timezone if registry.communities else "Asia/Shanghai"

    windows: list[IncidentWindow] = []
    for inc in scenario.incidents:
        comm = hh_comm.get(inc.household or "") or gw_comm.get(inc.gateway or "")
        tzname = zone.get(comm, default_zone) if comm else default_zone
        t0 = incident_start(inc, start, tzname)
        if t0 < start:
            log.warning("incident %d (%s) starts before the simulation start; it takes effect at the start",
                        inc.number, inc.kind)
        t1 = None if inc.duration_s is None else t0 + inc.duration_s
        if inc.kind == "garbage":
            windows.append(IncidentWindow(inc.gateway or "", "garbage", t0, t0, (), inc.number, tzname))
        elif inc.gateway is not None:
            affected = tuple(gw_households.get(inc.gateway, ()))
            windows.append(IncidentWindow(inc.gateway, inc.kind, t0, t1, affected, inc.number, tzname))
        else:
            windows.append(IncidentWindow(inc.household or "", inc.kind, t0, t1, (inc.household or "",),
                                          inc.number, tzname))
    # garbage without a gateway goes to the first gateway that is online at that time
    offline = [w for w in windows if w.kind == "gateway_offline"]
    out = []
    for w in windows:
        if w.kind == "garbage" and not w.subject:
            down = {o.subject for o in offline
                    if o.start_ts <= w.start_ts and (o.end_ts is None or w.start_ts < o.end_ts)}
            up = [g.id for g in registry.gateways if g.id not in down and g.id in gw_households]
            if not up:
                log.warning("incident %d (garbage): no gateway is online then; it is skipped", w.number)
                continue
            w = IncidentWindow(up[0], "garbage", w.start_ts, w.end_ts, (), w.number, w.timezone)
        out.append(w)
    return tuple(out)

"""Pydantic models of what the API accepts (create/update) and returns (public)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from shouwang.domain import AlertCategory, AlertStatus, MeterKind, Outcome, Role, Severity

_EARLIEST, _LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC, microsecond=0)


def _from_epoch(value: Any) -> Any:
    """Read stored epoch seconds as an aware UTC datetime (one no calendar holds, stored before the API refused
    such times, as the first or last second one holds); leave anything else to pydantic."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return _EARLIEST if value < 0 else _LATEST
    return value


_LOST_PLUS = re.compile(r"^(.+[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$")


def _restore_plus(value: Any) -> Any:
    """Undo a '+' of a UTC offset that an unencoded query string turned into a space."""
    if isinstance(value, str):
        return _LOST_PLUS.sub(r"\1+\2", value.strip())
    return value


UtcTime = Annotated[datetime, BeforeValidator(_from_epoch)]
"""A time in the API: stored as epoch seconds, shown as RFC 3339 in UTC."""

QueryTime = Annotated[AwareDatetime, BeforeValidator(_restore_plus)]
"""A time given in a query: RFC 3339 with an offset (e.g. 2026-11-22T08:00:00+08:00 or ...Z)."""


FIRST_YEAR, LAST_YEAR = 1970, 2200  # the years a time given to keep (an absence, an expected return) may lie in


def _in_years(value: datetime) -> datetime:
    try:
        year = value.astimezone(UTC).year
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in the year 10000 in UTC
        year = None
    if year is None or not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


BodyTime = Annotated[AwareDatetime, AfterValidator(_in_years)]
"""A time given to be stored: RFC 3339 with an offset, within years every page and time zone can show."""


def epoch(t: datetime | None) -> int | None:
    """An aware datetime as whole epoch seconds."""
    return None if t is None else int(t.timestamp())


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class HouseholdStatus(StrEnum):
    """What a household needs: nothing, a welfare check, a device check, or data to begin with."""

    OK = "ok"
    ALERT = "alert"  # a welfare case needs someone now: critical, still seen, not yet acknowledged
    ATTENTION = "attention"  # every open welfare case is being handled, has cleared, or is only a warning
    DEVICE = "device"
    AWAY = "away"
    UNKNOWN = "unknown"


class MeterPublic(_Public):
    """A meter and its live state."""

    id: str
    household: str
    kind: MeterKind
    unit: str = Field(description="Unit of the cumulative register (m³ or kWh).")
    gateway: str
    last_ts: UtcTime | None = Field(None, description="Time of the latest reading.")
    last_value: float | None = Field(None, description="Register value of the latest reading.")
    last_activity: UtcTime | None = Field(None, description="Latest time this meter showed use.")
    base_load_kw: float | None = Field(None, description="Estimated standby load (electricity meters).")
    activity_line_kw: float | None = Field(
        None, description="Electricity meters: average power over an hour above which the hour counts as activity "
                          "(learned from the household's own quiet hours).")


class HouseholdPublic(_Public):
    """A watched household, its live state and its meters."""

    id: str
    community: str
    name: str
    address: str
    grid: str
    status: HouseholdStatus
    last_activity: UtcTime | None = Field(None, description="Latest water or electricity use seen.")
    covered_until: UtcTime | None = Field(None, description="Time up to which every meter has reported.")
    offline_gateways: list[str] = Field(default_factory=list)
    open_alerts: int = Field(0, description="Unresolved alerts recorded against this household.")
    away: bool = Field(False, description="A registered absence holds welfare alerts now.")
    away_until: UtcTime | None = Field(None, description="Expected return of the current absence, if given.")
    meters: list[MeterPublic] = Field(default_factory=list)


class ReadingPublic(_Public):
    """One cumulative register value of one meter."""

    meter: str
    ts: UtcTime
    value: float


class AlertEventPublic(_Public):
    """One entry of an alert's timeline."""

    at: UtcTime
    kind: str
    actor: str
    detail: str


class AlertPublic(_Public):
    """An alert and where it is in its lifecycle."""

    id: int
    key: str
    category: AlertCategory
    detector: str
    severity: Severity
    status: AlertStatus
    reason: str
    since: UtcTime = Field(description="When the condition began.")
    opened_at: UtcTime
    household: str | None = None
    gateway: str | None = None
    meter: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: UtcTime | None = None
    resolved_at: UtcTime | None = None
    resolved_by: str | None = None
    outcome: Outcome | None = None
    note: str = ""
    cleared_at: UtcTime | None = Field(None, description="When the detector stopped seeing the condition.")


class AlertDetail(AlertPublic):
    """An alert with its timeline."""

    timeline: list[AlertEventPublic] = Field(default_factory=list)


Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]

ResolutionOutcome = StrEnum(  # type: ignore[misc]
    "ResolutionOutcome", {o.name: o.value for o in Outcome if o is not Outcome.DEVICE_RECOVERED})
ResolutionOutcome.__doc__ = "How a person closed a case (device_recovered is set only by the service)."


class AlertAcknowledge(BaseModel):
    """Someone has seen the alert and is looking into it."""

    model_config = ConfigDict(extra="forbid")

    by: Actor | None = Field(None, description="Who acknowledges: defaults to the logged-in user; only a manager or administrator may name someone else (e.g. an integration acting for a worker).")
    note: Note = ""


class AlertResolve(BaseModel):
    """Someone closes the case with an outcome."""

    model_config = ConfigDict(extra="forbid")

    outcome: ResolutionOutcome  # type: ignore[valid-type]
    by: Actor | None = Field(None, description="Who resolves: defaults to the logged-in user; only a manager or administrator may name someone else (e.g. an integration acting for a worker).")
    note: Note = ""
    expected_return: BodyTime | None = Field(
        None, description="With outcome `away`: when the resident is expected back (else: until activity).")


class AlertReopen(BaseModel):
    """Someone reopens a closed case."""

    model_config = ConfigDict(extra="forbid")

    by: Actor | None = Field(None, description="Who reopens: defaults to the logged-in user; only a manager or administrator may name someone else (e.g. an integration acting for a worker).")
    note: Note = ""


class AlertTier(BaseModel):
    """Mark a case ordinary (closed within 24 h by default) or hard (3 working days by default)."""

    model_config = ConfigDict(extra="forbid")

    tier: Literal["ordinary", "hard"]
    by: Actor | None = Field(None, description="Who decides: defaults to the logged-in user; only a manager or administrator may name someone else (e.g. an integration acting for a worker).")
    note: Note = ""


class DeliveryPublic(BaseModel):
    """One queued message about an alert and how its delivery went."""

    id: int | None
    person: str | None = Field(None, description="Recipient person id; null for watcher channels.")
    kind: str
    channel: int = Field(description="Which of the person's channels (1 = first choice).")
    state: str = Field(description="pending, sending, sent, failed, or cancelled (the case was closed before it "
                                   "was sent)")
    attempts: int
    title: str


class AwaySource(StrEnum):
    """Who registered an absence."""

    HOUSEHOLD = "household"
    FAMILY = "family"
    WORKER = "worker"


class AwayCreate(BaseModel):
    """Register an absence: welfare alerts are held from `start` until `end` or until the meters move."""

    model_config = ConfigDict(extra="forbid")

    household: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    start: BodyTime | None = Field(None, description="Default: now.")
    end: BodyTime | None = Field(None, description="Expected return; leave out for 'until activity'.")
    source: AwaySource = AwaySource.FAMILY
    note: Note = ""


class AwayPublic(_Public):
    """A registered absence."""

    id: int | None
    household: str
    start: UtcTime
    end: UtcTime | None = None
    source: str
    note: str
    cancelled_at: UtcTime | None = None  # set when the absence was ended early by hand


class RejectionPublic(_Public):
    """A refused message or reading, kept for inspection."""

    id: int | None
    received_at: UtcTime
    topic: str
    reason: str
    detail: str
    payload: str
    meter: str | None = None


class RejectionList(BaseModel):
    """A page of rejections, with how many there are of each reason overall."""

    items: list[RejectionPublic]
    counts: dict[str, int] = Field(description="Rejections stored per reason (all of them, not this page).")
    total: int = Field(description="Rejections matching the filter.")


class Problem(BaseModel):
    """An error the client can act on (404 unknown id, 409 wrong lifecycle step)."""

    detail: str


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such record."}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The alert is not in a status this step applies to."}}


class Health(BaseModel):
    """Whether the service can do its job, check by check."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, bool]


class PersonUpdate(BaseModel):
    """Create or replace a person of the care network."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    role: Role
    language: Literal["zh", "en"] = "zh"
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""
    channels: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=2000)]] = Field(
        default_factory=list, max_length=10, description="Notification URLs in fallback order (write-only).")


class PersonPublic(_Public):
    """A person of the care network; channel addresses are secrets and are shown only as their schemes."""

    id: str
    name: str
    role: Role
    language: str
    phone: str
    channels: list[str] = Field(description="Channel schemes in fallback order, e.g. wecombot, mailto.")


class CareUpdate(BaseModel):
    """Who looks after a household: family, the volunteer (the "1" of 1+3+N) and the rest of the micro-team."""

    model_config = ConfigDict(extra="forbid")

    family: list[str] = Field(default_factory=list, max_length=20)
    volunteer: str | None = None
    team: list[str] = Field(default_factory=list, max_length=20)


class CarePublic(CareUpdate):
    """A household's care team and the community's committee and street office."""

    household: str
    committee: list[str] = Field(default_factory=list)
    street: list[str] = Field(default_factory=list)

"""Escalation policies as validated data: ordered steps, reminders and SLA tiers, per community."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shouwang.domain import Target

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|wd)\s*$")
_UNIT_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Duration:
    """A wait: seconds of clock time, or whole working days (Monday–Friday in the community's zone)."""

    seconds: float = 0.0
    working_days: int = 0

    def after(self, start: int, zone: str) -> int:
        """The instant this long after ``start``."""
        if not self.working_days:
            return int(start + self.seconds)
        t = datetime.fromtimestamp(start, ZoneInfo(zone))
        left = self.working_days
        while left:
            t += timedelta(days=1)
            if t.weekday() < 5:
                left -= 1
        return int(t.timestamp())


def parse_duration(value: Any) -> Duration:
    """'10m', '2h', '1.5d', '3wd' (working days) or a number of seconds."""
    if isinstance(value, Duration):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return Duration(float(value))
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration; write e.g. '10m', '2h', '1d' or '3wd' (working days)")
    number, unit = float(m.group(1)), m.group(2)
    if unit == "wd":
        if number != int(number) or number < 1:
            raise ValueError("working days must be a whole number ≥ 1, e.g. '3wd'")
        return Duration(working_days=int(number))
    return Duration(number * _UNIT_S[unit])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Step(_Strict):
    """Notify these targets, then wait this long for an acknowledgement before the next step."""

    notify: list[Target] = Field(min_length=1)
    wait: Duration | None = None

    @field_validator("wait", mode="before")
    @classmethod
    def _wait(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)


class Sla(_Strict):
    """How long a case may stay unresolved, per tier, before it escalates a level."""

    ordinary: Duration = Duration(24 * 3600)
    hard: Duration = Duration(working_days=3)

    @field_validator("ordinary", "hard", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return parse_duration(v)


class Policy(_Strict):
    """An escalation policy: steps in order, reminders to whoever acknowledged, SLA tiers."""

    steps: list[Step] = Field(min_length=1)
    reminder_every: Duration | None = Duration(3600)
    sla: Sla = Sla()
    sla_escalates_to: list[Target] = Field(default_factory=lambda: [Target.COMMITTEE, Target.STREET])

    @field_validator("reminder_every", mode="before")
    @classmethod
    def _reminder(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _waits(self) -> Policy:
        for i, step in enumerate(self.steps[:-1], start=1):
            if step.wait is None:
                raise ValueError(f"step {i} needs a 'wait' (how long before step {i + 1}); only the last may omit it")
        return self


DEFAULT_POLICY = Policy(steps=[
    Step(notify=[Target.FAMILY, Target.VOLUNTEER], wait=Duration(600)),
    Step(notify=[Target.TEAM], wait=Duration(1800)),
    Step(notify=[Target.COMMITTEE], wait=Duration(7200)),
    Step(notify=[Target.STREET]),
])


class PolicyError(ValueError):
    """An escalation policy is invalid; the message says where and what to fix."""


def load_policy(data: Any, where: str) -> Policy:
    """Validate policy data (``"default"`` or a mapping); raise PolicyError naming ``where``."""
    if data is None or data == "default":
        return DEFAULT_POLICY
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"escalation policy of {where} is invalid: {problems}") from None

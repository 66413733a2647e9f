"""The alert pipeline, written out as a list of small stages: route → inhibit → silence → dedupe → escalate → record.

Escalate is "notify with retry": it writes the first step's messages to the durable outbox, whose worker
delivers them with retries, backoff and failover, recording each attempt on the alert's timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shouwang.away import AwayPeriod, active_away, index_by_household
from shouwang.domain import WELFARE_CATEGORIES, Alert, Finding
from storage.base import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Candidate:
    """A finding on its way through the pipeline; stages fill in what they decide."""

    finding: Finding
    community: str | None = None
    alert: Alert | None = None


class Stage(Protocol):
    """One step: takes the candidates still alive, returns those that go on."""

    def __call__(self, items: list[Candidate], now: int) -> list[Candidate]: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Find the community (and so the care network and escalation policy) each finding belongs to."""

    community_of: Callable[[Finding], str | None]

    def __call__(self, items: list[Candidate], now: int) -> list[Candidate]:
        routed = []
        for c in items:
            c.community = self.community_of(c.finding)
            if c.community is None:
                log.error("no community for finding %s; dropped", c.finding.key, extra={"household": c.finding.household})
                continue
            routed.append(c)
        return routed


@dataclass(frozen=True, slots=True)
class Inhibit:
    """Hold welfare findings for households behind a gateway that is offline or has a device finding."""

    households_behind: Callable[[str], Sequence[str]]  # gateway id → household ids
    offline_gateways: Callable[[], Sequence[str]]

    def __call__(self, items: list[Candidate], now: int) -> list[Candidate]:
        down = set(self.offline_gateways())
        down |= {c.finding.gateway for c in items if c.finding.gateway and c.finding.household is None}
        held = {h for g in down for h in self.households_behind(g)}
        kept = [c for c in items if not (c.finding.category in WELFARE_CATEGORIES and c.finding.household in held)]
        if len(kept) < len(items):
            log.info("inhibited %d welfare finding(s) behind gateway(s) %s", len(items) - len(kept), sorted(down))
        return kept


class SilenceRule(Protocol):
    """Something that holds findings for a while (an away period, a maintenance window)."""

    def held(self, findings: Sequence[Finding], now: int) -> set[str]:
        """Keys of the findings this rule holds at ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class AwaySilence:
    """Welfare findings of a household inside a registered away period are held until it returns."""

    periods_at: Callable[[int], Sequence[AwayPeriod]]  # away periods covering an instant
    last_activity: Callable[[str], int | None]

    def held(self, findings: Sequence[Finding], now: int) -> set[str]:
        welfare = [f for f in findings if f.category in WELFARE_CATEGORIES and f.household]
        if not welfare:
            return set()
        periods = index_by_household(self.periods_at(now))
        return {f.key for f in welfare
                if f.household in periods
                and active_away(periods[f.household], f.household, now, self.last_activity(f.household)) is not None}


@dataclass(frozen=True, slots=True)
class Silence:
    """Drop findings that a silence rule holds."""

    rules: tuple[SilenceRule, ...] = ()

    def __call__(self, items: list[Candidate], now: int) -> list[Candidate]:
        findings = [c.finding for c in items]
        held = set().union(*(r.held(findings, now) for r in self.rules)) if self.rules else set()
        return [c for c in items if c.finding.key not in held]


@dataclass(frozen=True, slots=True)
class Dedupe:
    """Persist a new alert per key; a finding whose key already has an unresolved alert stops here."""

    store: Store

    def __call__(self, items: list[Candidate], now: int) -> list[Candidate]:
        out = []
        for c, alert in zip(items, self.store.open_alerts([c.finding for c in items], now), strict=True):
            if alert is not None:
                c.alert = alert
                out.append(c)
        return out


@dataclass(frozen=True, slots=True)
class Escalate:
    """Start each new alert's escalation: step 1's messages go into the durable outbox with its state."""

    start: Callable[[Sequence[Alert], int], None]

    def __call__(self, items: list[Candidate], now: int) -> list[Candidate]:
        self.start([c.alert for c in items if c.alert is not None], now)
        return items


@dataclass(frozen=True, slots=True)
class Record:
    """Log each alert that opened, with its context keys."""

    def __call__(self, items: list[Candidate], now: int) -> list[Candidate]:
        for c in items:
            a = c.alert
            assert a is not None
            log.info("alert %s opened: %s %s", a.id, a.category, a.reason,
                     extra={"alert": a.id, "household": a.household, "meter": a.meter})
        return items


class AlertPipeline:
    """Runs findings through the stages in order."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def run(self, findings: Sequence[Finding], now: int) -> list[Alert]:
        """Return the alerts that opened."""
        items = [Candidate(f) for f in findings]
        for stage in self.stages:
            if not items:
                break
            items = stage(items, now)
        return [c.alert for c in items if c.alert is not None]


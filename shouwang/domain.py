"""Domain types that cross module boundaries: frozen, slotted dataclasses and enums."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MeterKind(StrEnum):
    """What a meter measures; registers are cumulative in the unit of ``UNITS``."""

    WATER = "water"
    ELECTRICITY = "electricity"


UNITS = {MeterKind.WATER: "m³", MeterKind.ELECTRICITY: "kWh"}


class AlertCategory(StrEnum):
    """What kind of trouble an alert is about."""

    INACTIVITY = "inactivity"
    WATER_RUNNING = "water_running"
    UNUSUAL_USAGE = "unusual_usage"
    DEVICE = "device"


WELFARE_CATEGORIES = frozenset(
    {AlertCategory.INACTIVITY, AlertCategory.WATER_RUNNING, AlertCategory.UNUSUAL_USAGE}
)


class Severity(StrEnum):
    """How urgently a person should look."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    """Lifecycle of an alert: open → notified → acknowledged → resolved (and reopened → open)."""

    OPEN = "open"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    """How a case was closed."""

    SAFE = "safe"
    AWAY = "away"
    NEEDED_HELP = "needed_help"
    HOSPITALISED = "hospitalised"
    LEAK_FIXED = "leak_fixed"
    DEVICE_FAULT = "device_fault"
    FALSE_ALARM = "false_alarm"
    DEVICE_RECOVERED = "device_recovered"  # set by the service when a device alert's cause goes away


@dataclass(frozen=True, slots=True)
class Reading:
    """One cumulative register value of one meter at one instant (epoch seconds, UTC)."""

    meter: str
    ts: int
    value: float


@dataclass(frozen=True, slots=True)
class Community:
    """A residential community with its own time zone."""

    id: str
    name: str = ""
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Gateway:
    """A device that relays a set of meters to the broker."""

    id: str
    community: str


@dataclass(frozen=True, slots=True)
class Household:
    """A home that is watched over."""

    id: str
    community: str
    name: str = ""
    address: str = ""
    grid: str = ""
    phone: str = ""
    notes: str = ""  # what a visitor should know, e.g. "hard of hearing"


class Role(StrEnum):
    """What a person is in the care network."""

    FAMILY = "family"
    VOLUNTEER = "volunteer"  # the party-member volunteer: the "1" of 1+3+N
    PROPERTY = "property"
    PARTNER = "partner"
    WORKER = "worker"  # grid worker
    COMMITTEE = "committee"  # community (residents') committee
    STREET = "street"  # street office
    MANAGER = "manager"  # property manager


class Target(StrEnum):
    """Whom an escalation step notifies, relative to the alert's household."""

    FAMILY = "family"
    VOLUNTEER = "volunteer"
    TEAM = "team"  # the household's micro-team (volunteer + property + partner + ...)
    COMMITTEE = "committee"
    STREET = "street"


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who can be notified; ``channels`` are notification URLs in fallback order."""

    id: str
    name: str
    role: Role
    language: str = "zh"
    phone: str = ""
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Assignment:
    """A person's place in a household's or community's care: target is family/volunteer/team/committee/street."""

    target: Target
    person: str
    household: str | None = None
    community: str | None = None


@dataclass(frozen=True, slots=True)
class Meter:
    """A utility meter in a household, relayed by a gateway."""

    id: str
    household: str
    kind: MeterKind
    gateway: str


@dataclass(frozen=True, slots=True)
class Registry:
    """Who and what is watched: communities, gateways, households and meters."""

    communities: tuple[Community, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    households: tuple[Household, ...] = ()
    meters: tuple[Meter, ...] = ()
    people: tuple[Person, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    policies: tuple[tuple[str, dict], ...] = ()  # (community, escalation policy as validated data)


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition a detector sees now; the alert pipeline turns it into an alert."""

    category: AlertCategory
    detector: str
    severity: Severity
    since: int  # event time the condition began (epoch seconds)
    reason: str
    household: str | None = None
    gateway: str | None = None
    meter: str | None = None

    @property
    def key(self) -> str:
        """Identity of the condition: at most one open alert per key."""
        if self.meter:
            subject = f"m:{self.meter}"
        elif self.gateway:
            subject = f"gw:{self.gateway}"
        else:
            subject = self.household or ""
        return f"{self.category}:{subject}"


@dataclass(frozen=True, slots=True)
class Alert:
    """A persisted alert and where it is in its lifecycle."""

    id: int
    key: str
    category: AlertCategory
    detector: str
    severity: Severity
    status: AlertStatus
    reason: str
    since: int
    opened_at: int
    household: str | None = None
    gateway: str | None = None
    meter: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: int | None = None
    resolved_at: int | None = None
    resolved_by: str | None = None
    outcome: Outcome | None = None
    note: str = ""
    cleared_at: int | None = None  # when the detector stopped seeing the condition


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One entry of an alert's timeline (opened, notified, acknowledged, cleared, resolved...)."""

    alert_id: int
    at: int
    kind: str
    actor: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One message to one person (or watcher channel) over one channel, waiting in the durable outbox."""

    alert_ids: tuple[int, ...]
    url: str  # the channel URL; holds secrets, never logged
    kind: str  # opened, escalated, reminder, sla, cleared, resolved
    title: str
    text: str
    data: dict = field(default_factory=dict)
    person: str | None = None
    channel_index: int = 0
    attempts: int = 0
    next_attempt_at: float = 0.0
    deadline_at: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where an alert is in its escalation policy; persisted so it survives a restart."""

    alert_id: int
    community: str
    step: int  # index of the last step carried out
    next_step_at: int | None
    reminder_at: int | None = None
    sla_at: int | None = None
    sla_level: int = 0
    tier: str = "ordinary"
    notified: tuple[str, ...] = ()  # people notified so far
    version: int = 0  # of the stored row this was read from (a write over a newer one is refused)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message or reading that was refused, kept for inspection."""

    received_at: int
    topic: str
    reason: str
    detail: str = ""
    payload: str = ""
    meter: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """Last known connection status of a gateway, as announced on its status topic."""

    gateway: str
    online: bool
    at: int
    extra: dict = field(default_factory=dict)

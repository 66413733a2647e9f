"""The escalation engine: who is told what and when, until someone acknowledges and the case is closed."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from alerts import messages
from alerts.policy import DEFAULT_POLICY, Duration, Policy, Step, load_policy
from shouwang.clock import Clock
from shouwang.domain import (
    Alert,
    AlertCategory,
    AlertEvent,
    AlertStatus,
    Escalation,
    Household,
    OutboxItem,
    Person,
    Target,
)
from storage.base import NotFound, StaleEscalation, Store

log = logging.getLogger(__name__)

# Device problems go to the people who fix them, once; they do not climb to the street office.
DEVICE_POLICY = Policy(steps=[Step(notify=[Target.TEAM, Target.COMMITTEE])], reminder_every=None,
                       sla_escalates_to=[])


@dataclass(frozen=True, slots=True)
class Message:
    """One thing to tell one person about one alert."""

    person: Person
    alert: Alert
    kind: str  # opened, escalated, reminder, sla


class CareDirectory:
    """Resolves escalation targets (family, volunteer, team, committee, street) to people."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def community_of(self, alert: Alert) -> str:
        if alert.household:
            return self.store.household(alert.household).community
        try:
            return self.store.gateway(alert.gateway).community if alert.gateway else ""
        except NotFound:
            return ""

    def people(self, alert: Alert, community: str, targets: Sequence[Target]) -> list[Person]:
        """The people ``targets`` name for this alert, each once, in target order."""
        wanted = set(targets)
        if Target.TEAM in wanted:
            wanted.add(Target.VOLUNTEER)  # the whole micro-team includes its volunteer
        ids: list[str] = []
        if alert.household:
            ids += [a.person for a in self.store.assignments(household=alert.household) if a.target in wanted]
        ids += [a.person for a in self.store.assignments(community=community) if a.target in wanted]
        out, seen = [], set()
        for pid in ids:
            if pid in seen:
                continue
            seen.add(pid)
            try:
                out.append(self.store.person(pid))
            except NotFound:
                log.warning("care assignment names unknown person %s", pid, extra={"alert": alert.id})
        return out


class Escalator:
    """Starts an escalation for each new alert and advances all of them on each tick, atomically with the outbox."""

    def __init__(
        self,
        store: Store,
        wall: Clock,
        *,
        public_url: str,
        secret: str,
        watchers: Sequence[str] = (),
        delivery_deadline_s: float = 300.0,
        default_zone: str = "Asia/Shanghai",
        communities: Collection[str] | None = None,
    ) -> None:
        self.store = store
        self.wall = wall
        self.communities = communities  # a shard's: tick advances only their escalations (shouwang/sharding.py)
        self.public_url = public_url
        self.secret = secret
        self.watchers = list(watchers)
        self.delivery_deadline_s = delivery_deadline_s
        self.default_zone = default_zone
        self.directory = CareDirectory(store)
        self._zones = {c.id: c.timezone for c in store.communities()}

    # ------------------------------------------------------------------ policy
    def policy(self, alert: Alert, community: str, read: dict[str, Policy] | None = None) -> Policy:
        """The policy an alert escalates by; ``read``: the communities' policies already read (and validated) in
        this tick, so that a tick with hundreds of escalations reads each community's once, not once each."""
        if alert.category == AlertCategory.DEVICE:
            return DEVICE_POLICY
        if read is not None and community in read:
            return read[community]
        data = self.store.community_policy(community) if community else None
        policy = load_policy(data, f"community {community}") if data else DEFAULT_POLICY
        if read is not None:
            read[community] = policy
        return policy

    @staticmethod
    def _after(d: Duration | None, start: int, zone: str) -> int | None:
        return None if d is None else d.after(start, zone)

    # ------------------------------------------------------------------ start
    def start(self, alerts: Sequence[Alert], now: int, stored: Mapping[int, Escalation] | None = None) -> None:
        """Carry out step 1 of each new alert's policy and tell the watchers. ``stored``: escalations already
        stored for some of them (finished ones, to start over), written over at the version read."""
        steps, msgs, events, watch = [], [], [], []
        policies: dict[str, Policy] = {}
        for alert in alerts:
            community = self.directory.community_of(alert)
            policy = self.policy(alert, community, policies)
            zone = self._zones.get(community, self.default_zone)
            people = self.directory.people(alert, community, policy.steps[0].notify)
            msgs += [Message(p, alert, "opened") for p in people]
            steps.append((Escalation(
                alert.id, community, 0, self._after(policy.steps[0].wait, now, zone),
                sla_at=self._after(policy.sla.ordinary, alert.opened_at, zone) if policy.sla_escalates_to else None,
                notified=tuple(p.id for p in people),
                version=stored[alert.id].version if stored and alert.id in stored else 0), False))
            events.append(self._step_event(alert.id, now, 1, policy.steps[0].notify, people))
            watch.append((alert, "opened"))
        self._save(steps, msgs, events, watch, now)

    # ------------------------------------------------------------------ tick
    def tick(self, now: int, unresolved_alerts: Sequence[Alert] | None = None) -> None:
        """Advance every active escalation that is due: next step, reminder, or SLA miss; start one for an open alert
        that has none. ``unresolved_alerts``: every alert of this escalator's communities still open, as the caller
        just read it (None: read here)."""
        steps, msgs, events = [], [], []
        active = self.store.active_escalations(self.communities)
        # one query for every alert still open, not one per escalation each tick (alerts are never deleted)
        unresolved = {a.id: a for a in (self.store.unresolved_alerts() if unresolved_alerts is None
                                        else unresolved_alerts)}
        try:
            self._start_missing(unresolved, active, now)
        except Exception:  # one alert that cannot be started must not hold up every other escalation
            log.exception("starting the escalations of open alerts that had none failed; the next tick tries again")
        policies: dict[str, Policy] = {}
        for esc in active:
            alert = unresolved.get(esc.alert_id)
            if alert is None:  # resolved since: the escalation is done
                steps.append((esc, True))
                continue
            policy = self.policy(alert, esc.community, policies)
            zone = self._zones.get(esc.community, self.default_zone)
            new = esc
            if alert.status == AlertStatus.ACKNOWLEDGED:
                new = self._remind(new, alert, policy, now, zone, msgs, events)
            elif esc.next_step_at is not None and esc.next_step_at <= now:
                new = self._next_step(new, alert, policy, now, zone, msgs, events)
            if new.sla_at is not None and new.sla_at <= now:
                new = self._sla_missed(new, alert, policy, now, zone, msgs, events)
            if new != esc:
                steps.append((new, False))
        if steps or msgs:
            try:
                self._save(steps, msgs, events, [], now)
            except StaleEscalation as exc:  # nothing of this tick's steps was written or sent
                log.info("%s; the next tick takes it up", exc)

    def _start_missing(self, unresolved: dict[int, Alert], active: Sequence[Escalation], now: int) -> None:
        """Start the escalation of each open alert that has none running: its start was lost (the process stopped
        between opening the alert and starting it), or a tick that had read it resolved finished it as it was
        reopened. Without this nobody would ever be told of it."""
        running = {e.alert_id for e in active}
        missing = [a for a in unresolved.values() if a.id not in running
                   and (self.communities is None or self.directory.community_of(a) in self.communities)]
        if not missing:
            return
        stored = {}
        for alert in missing:
            log.warning("alert %s is open with no escalation running; starting it now", alert.id,
                        extra={"alert": alert.id, "household": alert.household})
            if (esc := self.store.escalation(alert.id)) is not None:
                stored[alert.id] = esc
        try:
            self.start(missing, now, stored)  # not in ``active``: the rest of this tick leaves them be
        except StaleEscalation as exc:  # a reopen came between: the next tick sees it running
            log.info("%s; the next tick takes it up", exc)

    def _next_step(self, esc: Escalation, alert: Alert, policy: Policy, now: int, zone: str,
                   msgs: list[Message], events: list[AlertEvent]) -> Escalation:
        i = esc.step + 1
        if i >= len(policy.steps):
            return replace(esc, next_step_at=None)
        step = policy.steps[i]
        people = self.directory.people(alert, esc.community, step.notify)
        msgs += [Message(p, alert, "escalated") for p in people]
        events.append(self._step_event(alert.id, now, i + 1, step.notify, people))
        return replace(esc, step=i, next_step_at=self._after(step.wait, now, zone),
                       notified=tuple(dict.fromkeys(esc.notified + tuple(p.id for p in people))))

    def _remind(self, esc: Escalation, alert: Alert, policy: Policy, now: int, zone: str,
                msgs: list[Message], events: list[AlertEvent]) -> Escalation:
        if policy.reminder_every is None:
            return esc
        if esc.reminder_at is None:
            return replace(esc, next_step_at=None,
                           reminder_at=policy.reminder_every.after(alert.acknowledged_at or now, zone))
        if esc.reminder_at > now:
            return esc
        try:
            people = [self.store.person(alert.acknowledged_by or "")]
        except NotFound:  # acknowledged by name, not by a known person: remind the last step's recipients
            people = [self.store.person(p) for p in esc.notified]
        msgs += [Message(p, alert, "reminder") for p in people]
        events.append(AlertEvent(alert.id, now, "reminder", "escalation", ", ".join(p.name for p in people)))
        return replace(esc, reminder_at=policy.reminder_every.after(now, zone))

    def _sla_missed(self, esc: Escalation, alert: Alert, policy: Policy, now: int, zone: str,
                    msgs: list[Message], events: list[AlertEvent]) -> Escalation:
        if esc.sla_level >= len(policy.sla_escalates_to):
            return replace(esc, sla_at=None)
        target = policy.sla_escalates_to[esc.sla_level]
        people = self.directory.people(alert, esc.community, [target])
        msgs += [Message(p, alert, "sla") for p in people]
        events.append(AlertEvent(alert.id, now, "sla_missed", "escalation",
                                 f"{esc.tier} case not closed in time; told {target}: "
                                 + ", ".join(p.name for p in people)))
        tier = policy.sla.hard if esc.tier == "hard" else policy.sla.ordinary
        return replace(esc, sla_level=esc.sla_level + 1, sla_at=tier.after(now, zone))

    # ------------------------------------------------------------------ notices outside the policy
    def announce(self, alert: Alert, kind: str, now: int) -> None:
        """Tell watchers, and everyone notified so far, that an alert cleared or was resolved."""
        esc = self.store.escalation(alert.id)
        people = []
        for pid in esc.notified if esc else ():
            try:
                people.append(self.store.person(pid))
            except NotFound:
                continue
        self._save([], [Message(p, alert, kind) for p in people], [], [(alert, kind)], now)

    # ------------------------------------------------------------------ messages
    @staticmethod
    def _step_event(alert_id: int, now: int, number: int, targets: Sequence[Target],
                    people: Sequence[Person]) -> AlertEvent:
        names = ", ".join(p.name for p in people) or "nobody assigned"
        return AlertEvent(alert_id, now, "escalation_step", "escalation",
                          f"step {number} ({', '.join(str(t) for t in targets)}): {names}")

    def _household(self, alert: Alert) -> Household | None:
        try:
            return self.store.household(alert.household) if alert.household else None
        except NotFound:
            return None

    def _save(self, steps: list[tuple[Escalation, bool]], msgs: Sequence[Message], events: list[AlertEvent],
              watch: Sequence[tuple[Alert, str]], now: int) -> None:
        """One message per person per burst (grouping alerts), then everything in one transaction."""
        t0 = self.wall.now()
        items: list[OutboxItem] = []
        by_person: dict[str, list[Message]] = defaultdict(list)
        for m in msgs:
            by_person[m.person.id].append(m)
        names = {m.alert.id: [] for m in msgs}
        for m in msgs:
            names[m.alert.id].append(m.person.name)
        for group in by_person.values():
            person = group[0].person
            if not person.channels:
                events += [AlertEvent(m.alert.id, now, "undeliverable", "escalation", f"{person.name} has no channel")
                           for m in group]
                continue
            first = group[0]
            pairs = [(m.alert, self._household(m.alert)) for m in group]
            community = self.directory.community_of(first.alert)
            title, text = messages.compose(
                pairs, first.kind, person.language, self._zones.get(community, self.default_zone),
                messages.ack_link(self.public_url, self.secret, first.alert.id, person.id),
                [n for n in names[first.alert.id] if n != person.name])
            items.append(OutboxItem(tuple(m.alert.id for m in group), person.channels[0], first.kind, title, text,
                                    messages.alert_data(first.alert, pairs[0][1]), person.id, 0, 0, t0,
                                    t0 + self.delivery_deadline_s))
        for alert, kind in watch:
            hh = self._household(alert)
            zone = self._zones.get(hh.community if hh else "", self.default_zone)
            title, text = messages.compose([(alert, hh)], kind, "en", zone,
                                           messages.ack_link(self.public_url, self.secret, alert.id, None))
            items += [OutboxItem((alert.id,), url, kind, title, text, messages.alert_data(alert, hh), None, 0, 0,
                                 t0, t0 + self.delivery_deadline_s) for url in self.watchers]
        self.store.save_escalation_steps(steps, items, events)

"""The closed loop: escalation walks the policy, reminds, fails over, survives restarts; real HTTP receiver."""

from __future__ import annotations

from collections import Counter

import pytest
from accounts_support import api_client
from conftest import just_before_update
from receivers import WebhookReceiver

from alerts.channels import ConsoleChannel, WebhookChannel
from shouwang.clock import ManualClock
from shouwang.domain import (
    AlertCategory,
    Assignment,
    Community,
    Finding,
    Gateway,
    Household,
    Meter,
    MeterKind,
    Person,
    Registry,
    Role,
    Severity,
    Target,
)
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

T0 = 1_795_300_000
M = 60
PEOPLE = [("p-son", Role.FAMILY, "en"), ("p-vol", Role.VOLUNTEER, "zh"), ("p-prop", Role.PROPERTY, "zh"),
          ("p-partner", Role.PARTNER, "zh"), ("p-com", Role.COMMITTEE, "zh"), ("p-st", Role.STREET, "zh")]


RECEIVER_PATH = ""  # the receiver fixture (conftest) at its bare address: each person's channel is <url>/<person>


def care_registry(url: str, n_households: int = 2, dead_first: set[str] = frozenset()) -> Registry:
    """Households H1..Hn behind G1 with one micro-team; each person's channel is the receiver at /<person>."""
    people = tuple(Person(pid, pid.upper(), role, lang, "",
                          (("http://127.0.0.1:9/dead",) if pid in dead_first else ()) + (f"{url}/{pid}",))
                   for pid, role, lang in PEOPLE)
    hh = tuple(Household(f"H{i}", "c1", f"Resident {i}", f"1-{100 + i}", "g1", "+86 1", "hard of hearing")
               for i in range(1, n_households + 1))
    meters = tuple(Meter(f"{h.id}-W", h.id, MeterKind.WATER, "G1") for h in hh)
    care = [Assignment(Target.COMMITTEE, "p-com", community="c1"), Assignment(Target.STREET, "p-st", community="c1")]
    for h in hh:
        care += [Assignment(Target.FAMILY, "p-son", household=h.id), Assignment(Target.VOLUNTEER, "p-vol", household=h.id),
                 Assignment(Target.TEAM, "p-prop", household=h.id), Assignment(Target.TEAM, "p-partner", household=h.id)]
    return Registry((Community("c1", "C1"),), (Gateway("G1", "c1"),), hh, meters, people, tuple(care))


@pytest.fixture
def world(tmp_path, receiver):
    """A service on a manual event clock and a manual wall clock, its outbox drained by hand."""
    clock, wall = ManualClock(T0), ManualClock(1000.0)
    db = f"sqlite:///{tmp_path}/loop.db"

    def make(registry: Registry) -> Service:
        store = open_store(db)
        return Service(Settings(notify_deadline_s=60), store, registry, clock, watchers=[], wall=wall,
                       make_channel=lambda url: ConsoleChannel() if url.startswith("console") else
                       WebhookChannel(url, timeout_s=2))
    return make, clock, wall


def inactivity(household: str = "H1", since: int = T0 - 49 * 3600) -> Finding:
    return Finding(AlertCategory.INACTIVITY, "no-change-48h", Severity.CRITICAL, since, "no use for 49 h",
                   household=household)


def deliver_all(svc: Service) -> None:
    while svc.outbox.drain_once():
        pass


def per_person(receiver: WebhookReceiver) -> Counter:
    return Counter(p.rsplit("/", 1)[1] for p in receiver.paths)


def test_nobody_acknowledges_the_whole_policy_is_walked_once_per_step(world, receiver):
    make, clock, _wall = world
    svc = make(care_registry(receiver.url))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}
    for minutes, expect in [(9, {"p-son": 1, "p-vol": 1}),
                            (10, {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}),
                            (39, {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}),
                            (40, {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1, "p-com": 1}),
                            (160, {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1, "p-com": 1, "p-st": 1}),
                            (600, {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1, "p-com": 1, "p-st": 1})]:
        clock.set(T0 + minutes * M)
        svc.escalator.tick(T0 + minutes * M)
        deliver_all(svc)
        assert per_person(receiver) == expect, minutes
    # the ordinary-case SLA (24 h) is missed: the committee, then the street office, are told once each
    for hours, committee, street in [(24, 2, 1), (48, 2, 2), (96, 2, 2)]:
        svc.escalator.tick(T0 + hours * 3600)
        deliver_all(svc)
        got = per_person(receiver)
        assert (got["p-com"], got["p-st"]) == (committee, street), hours
    kinds = [e.kind for e in svc.store.alert_events(alert.id)]
    assert kinds.count("escalation_step") == 4 and kinds.count("sla_missed") == 2
    assert svc.store.alert(alert.id).status == "notified"
    first = receiver.received[0]
    assert "/ack/" in first["text"] and "hard of hearing" in first["text"]


def test_acknowledged_alert_reminds_the_acknowledger_until_resolved(world, receiver):
    make, _clock, _wall = world
    svc = make(care_registry(receiver.url))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    svc.store.acknowledge_alert(alert.id, "p-vol", T0 + 5 * M, "on my way")
    for minutes in (10, 40, 64, 65, 125, 126):
        svc.escalator.tick(T0 + minutes * M)
        deliver_all(svc)
    got = per_person(receiver)
    assert got == {"p-son": 1, "p-vol": 3}  # opened + reminders at +65 and +125; no escalation after the ack
    svc.store.resolve_alert(alert.id, "safe", "p-vol", T0 + 130 * M, "she was asleep")
    for minutes in (190, 250, 24 * 60 + 1):
        svc.escalator.tick(T0 + minutes * M)
        deliver_all(svc)
    assert per_person(receiver) == got
    assert svc.store.escalation(alert.id) is not None and svc.store.active_escalations() == []


def test_a_dead_channel_is_retried_then_fails_over_and_the_log_says_so(world, receiver):
    make, _clock, wall = world
    svc = make(care_registry(receiver.url, dead_first={"p-son"}))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    attempts = 0
    while "p-son" not in per_person(receiver) and attempts < 50:
        attempts += 1
        svc.outbox.drain_once()
        wall.advance(5)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}
    events = [(e.kind, e.detail) for e in svc.store.alert_events(alert.id)]
    failed = [d for k, d in events if k == "notify_failed"]
    assert len(failed) == 1 and "p-son" in failed[0] and "failing over to channel 2" in failed[0]
    assert "attempt(s)" in failed[0] and int(failed[0].split(" after ")[1].split(" ")[0]) > 1
    assert sum(1 for k, d in events if k == "notified" and "p-son" in d) == 1
    assert "dead" not in " ".join(d for _, d in events)  # the channel URL never reaches the timeline


def test_restart_mid_escalation_continues_without_sending_twice(world, receiver):
    make, _clock, wall = world
    registry = care_registry(receiver.url)
    svc = make(registry)
    svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    svc.escalator.tick(T0 + 10 * M)  # step 2 queued, but the process dies before delivering it
    claimed = svc.store.claim_due(wall.now(), limit=1)  # and one message was mid-send when it died
    assert len(claimed) == 1
    svc.store.close()

    again = make(registry)
    again.outbox.start()  # requeues the interrupted message
    again.outbox.stop()
    deliver_all(again)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}
    again.escalator.tick(T0 + 12 * M)  # nothing new is due
    deliver_all(again)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}
    again.escalator.tick(T0 + 40 * M)
    deliver_all(again)
    assert per_person(receiver)["p-com"] == 1
    assert again.pipeline.run([inactivity()], T0 + 41 * M) == []  # no duplicate alert after the restart


def test_one_message_per_person_per_burst(world, receiver):
    make, _clock, _wall = world
    svc = make(care_registry(receiver.url, n_households=5))
    opened = svc.pipeline.run([inactivity(f"H{i}") for i in range(1, 6)], T0)
    assert len(opened) == 5
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}
    body = next(b for b, p in zip(receiver.received, receiver.paths, strict=True) if p.endswith("p-son"))
    assert "and 4 more" in body["title"]


def test_gateway_outage_behind_40_households_is_one_alert_and_no_welfare_message(world, receiver):
    from shouwang.domain import GatewayStatus

    make, _clock, _wall = world
    svc = make(care_registry(receiver.url, n_households=40))
    svc.state.set_gateway_status(GatewayStatus("G1", False, T0 - 60))
    findings = [inactivity(f"H{i}") for i in range(1, 41)]
    device = next(d for d in svc.detectors if d.name == "device")
    findings += device.evaluate(svc.state, T0)  # the device detector sees the last will
    opened = svc.pipeline.run(findings, T0)
    assert [(a.category, a.gateway) for a in opened] == [(AlertCategory.DEVICE, "G1")]
    deliver_all(svc)
    assert {b["alert"]["category"] for b in receiver.received} == {"device"}
    assert per_person(receiver) == {"p-com": 1}  # device problems go to the community, not to families


def test_one_tap_link_acknowledges_as_its_recipient_and_reopen_escalates_again(world, receiver):
    import re

    from api.app import create_app

    make, clock, _wall = world
    svc = make(care_registry(receiver.url))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    body = next(b for b, p in zip(receiver.received, receiver.paths, strict=True) if p.endswith("p-vol"))
    link = re.search(r"http://\S+/ack/\S+", body["text"]).group(0)
    path = link.split("8000", 1)[1]
    api = api_client(create_app(svc.store, svc.state, clock, secret=svc.settings.secret_key.get_secret_value()))
    page = api.get(path)
    assert page.status_code == 200 and "确认前往" in page.text and svc.store.alert(alert.id).status == "notified"
    assert api.get(path[:-3] + "xyz").status_code == 404
    assert api.post(path.replace("/p-vol/", "/p-son/")).status_code == 404  # a link is for its recipient only
    done = api.post(path, data={"note": "5 分钟到"})
    assert done.status_code == 200 and "p-vol" in done.text
    acked = svc.store.alert(alert.id)
    assert (acked.status, acked.acknowledged_by) == ("acknowledged", "p-vol")

    api.post(f"/api/alerts/{alert.id}/resolve", json={"outcome": "false_alarm", "by": "p-vol"})
    svc.escalator.tick(T0 + 20 * M)
    assert svc.store.active_escalations() == []
    r = api.post(f"/api/alerts/{alert.id}/reopen", json={"by": "p-com", "note": "she was not there after all"})
    assert r.status_code == 200 and r.json()["status"] == "open"
    before = per_person(receiver)
    svc.escalator.tick(T0 + 21 * M)
    deliver_all(svc)
    assert per_person(receiver) - before == Counter({"p-son": 1, "p-vol": 1})
    deliveries = api.get(f"/api/alerts/{alert.id}/deliveries").json()
    assert {d["state"] for d in deliveries} == {"sent"} and all("url" not in d for d in deliveries)


def test_care_network_is_editable_through_the_api_and_secrets_stay_hidden(world, receiver):

    from api.app import create_app

    make, clock, _wall = world
    svc = make(care_registry(receiver.url))
    api = api_client(create_app(svc.store, svc.state, clock))
    r = api.put("/api/people/p-new", json={"name": "New volunteer", "role": "volunteer", "language": "en",
                                           "channels": [f"{receiver.url}/p-new", "mailto://u:s3cr3t@mail.example.org?to=a@example.org"]})
    assert r.status_code == 200 and r.json()["channels"] == ["http", "mailto"]
    assert "s3cr3t" not in api.get("/api/people").text
    bad = api.put("/api/people/p-bad", json={"name": "X", "role": "volunteer", "channels": ["nonsense://x"]})
    assert bad.status_code == 422 and "channel 1" in bad.text
    assert api.put("/api/households/H1/care", json={"volunteer": "p-ghost"}).status_code == 422
    r = api.put("/api/households/H1/care", json={"family": ["p-son"], "volunteer": "p-new", "team": []})
    assert r.status_code == 200 and r.json()["committee"] == ["p-com"]
    svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-new": 1}  # the new volunteer is told, the old one is not


def test_hard_case_gets_three_working_days_before_the_sla_escalates(world, receiver):

    from api.app import create_app

    make, clock, _wall = world
    svc = make(care_registry(receiver.url))
    (alert,) = svc.pipeline.run([inactivity()], T0)  # T0 is a Sunday (2026-11-22 06:26 in Shanghai)
    api = api_client(create_app(svc.store, svc.state, clock))
    svc.store.acknowledge_alert(alert.id, "p-vol", T0 + 60, "on my way")
    r = api.post(f"/api/alerts/{alert.id}/tier", json={"tier": "hard", "by": "p-com", "note": "needs a locksmith"})
    assert r.status_code == 200 and r.json()["timeline"][-1]["kind"] == "tier"
    for hours in (25, 48, 71):  # an ordinary case would have escalated at 24 h
        svc.escalator.tick(T0 + hours * 3600)
    assert [e.kind for e in svc.store.alert_events(alert.id)].count("sla_missed") == 0
    svc.escalator.tick(T0 + 3 * 86400 + 60)  # Wednesday 06:27: three working days (Mon, Tue, Wed) are up
    assert [e.kind for e in svc.store.alert_events(alert.id)].count("sla_missed") == 1
    api.post(f"/api/alerts/{alert.id}/resolve", json={"outcome": "needed_help", "by": "p-vol"})
    assert api.post(f"/api/alerts/{alert.id}/tier", json={"tier": "hard", "by": "x"}).status_code == 409


def test_a_sweep_reads_the_open_alerts_once_and_escalates_them_as_clearing_left_them(world, receiver, monkeypatch):
    """One read of the unresolved alerts a sweep serves clearing and escalating; an alert the sweep resolved (its
    gateway is back) reaches the escalator as resolved, so its escalation ends instead of stepping on."""
    from shouwang.domain import GatewayStatus, Reading

    make, clock, _wall = world
    svc = make(care_registry(receiver.url, n_households=2))
    svc.state.apply([Reading(f"H{i}-W", T0 - 600, 1.0) for i in (1, 2)])
    svc.state.set_gateway_status(GatewayStatus("G1", False, T0 - 60))
    (device,) = svc.tick(T0)
    assert device.category == AlertCategory.DEVICE and svc.store.escalation(device.id) is not None
    reads, seen = [], []
    read = svc.store.unresolved_alerts
    monkeypatch.setattr(svc.store, "unresolved_alerts", lambda: reads.append(1) or read())
    tick = svc.escalator.tick
    monkeypatch.setattr(svc.escalator, "tick", lambda now, alerts=None: seen.append(alerts) or tick(now, alerts))
    svc.tick(T0 + 60)
    assert len(reads) == 1 and [a.id for a in seen[-1]] == [device.id]  # still open: the gateway is still down
    svc.state.set_gateway_status(GatewayStatus("G1", True, T0 + 100))
    svc.state.apply([Reading(f"H{i}-W", T0 + 100, 1.0) for i in (1, 2)])
    clock.set(T0 + 3 * 3600)  # long past the next step's wait
    svc.tick(T0 + 3 * 3600)
    assert len(reads) == 2 and seen[-1] == []
    assert svc.store.alert(device.id).outcome is not None
    assert svc.store.active_escalations() == []
    kinds = [e.kind for e in svc.store.alert_events(device.id)]
    assert "escalated" not in kinds[kinds.index("resolved"):], kinds


def test_a_tick_reads_each_communitys_policy_once_however_many_alerts_escalate(world, receiver, monkeypatch):
    """Hundreds of escalations in a community cost one read (and validation) of its policy a tick, not one each;
    the next tick reads it again, so an edited policy applies from then on."""
    make, clock, _wall = world
    svc = make(care_registry(receiver.url, n_households=3))
    reads: list[str] = []
    read = svc.store.community_policy
    monkeypatch.setattr(svc.store, "community_policy", lambda c: reads.append(c) or read(c))
    alerts = svc.pipeline.run([inactivity(f"H{i}") for i in (1, 2, 3)], T0)
    assert len(alerts) == 3 and reads == ["c1"]
    for minutes, expect in ((10, ["c1", "c1"]), (40, ["c1", "c1", "c1"])):
        clock.set(T0 + minutes * M)
        svc.escalator.tick(T0 + minutes * M)
        assert reads == expect, minutes
    for a in alerts:  # each walked its policy: step 1 at the start, steps 2 and 3 at 10 and 40 minutes
        assert [e.kind for e in svc.store.alert_events(a.id)].count("escalation_step") == 3


def test_an_alert_whose_start_no_calendar_holds_is_still_told_and_blocks_no_other(world, receiver):
    """A finding's start out of any calendar's range (a detector's sentinel let through) must not fail the sweep's
    escalations: the messages go out, its start shown as "?"."""
    make, _clock, _wall = world
    svc = make(care_registry(receiver.url, n_households=2))
    alerts = svc.pipeline.run([inactivity("H1", since=-(2**62)), inactivity("H2")], T0)
    assert len(alerts) == 2 and all(svc.store.escalation(a.id) is not None for a in alerts)
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}  # one message each, about both alerts
    texts = [m["text"] for m in receiver.received]
    assert [t.count("?") for t in texts] == [1, 1], texts  # the start; nothing else in a message has one


class Stopped(BaseException):
    """The process stopping at a given point (BaseException: nothing in the service catches it)."""


def test_an_alert_whose_start_was_lost_is_escalated_after_the_restart(world, receiver):
    """The process stopped after the alert was stored and before its escalation was (two transactions): the next
    sweep after the restart starts it, so somebody is told; it is started once, not on every sweep."""
    make, clock, _wall = world
    svc = make(care_registry(receiver.url))

    def stop(*_args, **_kwargs):
        raise Stopped

    svc.escalator.store.save_escalation_steps = stop
    with pytest.raises(Stopped):
        svc.pipeline.run([inactivity()], T0)
    (alert,) = svc.store.unresolved_alerts()
    assert svc.store.escalation(alert.id) is None
    svc.store.close()

    svc = make(care_registry(receiver.url))
    for minutes in (1, 2, 3):
        clock.set(T0 + minutes * M)
        svc.tick()
        deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}
    assert [e.kind for e in svc.store.alert_events(alert.id)].count("escalation_step") == 1
    svc.escalator.tick(T0 + 11 * M)  # and the policy goes on from there
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}


def test_a_reopen_written_over_by_a_tick_that_had_read_the_case_resolved_escalates_again(world, receiver):
    """A tick reads the case resolved and finishes its escalation just after a reopen reset it (another process):
    the case is open with no escalation running, and the next tick starts it again."""
    make, _clock, _wall = world
    svc = make(care_registry(receiver.url))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    svc.store.resolve_alert(alert.id, "safe", "p-vol", T0 + 5 * M)
    stale = svc.store.unresolved_alerts()  # what the tick read: the case is resolved
    svc.store.reopen_alert(alert.id, "p-com", T0 + 6 * M, "she was not there after all")
    svc.escalator.tick(T0 + 6 * M, stale)  # finishes the escalation the reopen had just reset
    assert svc.store.active_escalations() == []
    svc.escalator.tick(T0 + 7 * M)
    deliver_all(svc)
    assert svc.store.escalation(alert.id).step == 0 and per_person(receiver) == {"p-son": 2, "p-vol": 2}


def test_a_call_to_act_still_queued_when_the_case_is_closed_is_not_sent(world, receiver):
    """The volunteer's first channel is down, so the message waits for a retry; meanwhile the son goes round and
    closes the case. The volunteer is not sent to a case already closed; the timeline says so. A notice that
    activity resumed still goes out."""
    make, _clock, wall = world
    svc = make(care_registry(receiver.url, dead_first={"p-vol"}))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1}
    svc.store.resolve_alert(alert.id, "safe", "p-son", T0 + 3 * M, "she was in the garden")
    wall.set(wall.now() + 120)  # past the retry deadline: the volunteer's second channel would be next
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1}
    assert sorted((i.person, state) for i, state in svc.store.outbox_items(alert_id=alert.id)) == [
        ("p-son", "sent"), ("p-vol", "cancelled")]
    assert [e.detail for e in svc.store.alert_events(alert.id) if e.kind == "not_sent"] == [
        "opened to p-vol: the case was closed first"]
    assert svc.outbox.cancelled == 1
    svc.escalator.announce(svc.store.alert(alert.id), "cleared", T0 + 4 * M)
    deliver_all(svc)  # to the son (the volunteer's first channel is still down)
    assert per_person(receiver) == {"p-son": 2} and receiver.received[-1]["event"] == "cleared"


def test_a_stop_between_noticing_activity_and_recording_it_still_tells_those_already_told(tmp_path, receiver):
    """The sweep sees the meters move again, queues the "activity resumed" notice, marks the case cleared, and the
    process stops: the notice goes out after the restart. Queued after the mark, it was lost: the case no longer
    looked in need of clearing."""
    from detectors.presets import PRESETS
    from shouwang.domain import Reading

    clock = ManualClock(T0)
    db = f"sqlite:///{tmp_path}/stop.db"

    def start() -> Service:
        return Service(Settings(notify_deadline_s=60), open_store(db), care_registry(receiver.url), clock,
                       watchers=[], detectors=[PRESETS["no-change-48h"]()], wall=ManualClock(1000.0))

    svc = start()
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}
    moved = [Reading("H1-W", T0 + 60, 1.0), Reading("H1-W", T0 + 120, 1.05)]
    svc.store.write_readings(moved)
    svc.state.apply(moved)

    clear = svc.store.clear_alert

    def clear_then_stop(*args):
        clear(*args)
        raise Stopped

    svc.store.clear_alert = clear_then_stop
    with pytest.raises(Stopped):
        svc.tick(T0 + 180)
    svc.store.close()

    svc = start()
    clock.set(T0 + 240)
    svc.tick()
    deliver_all(svc)
    assert svc.store.alert(alert.id).cleared_at == T0 + 180
    cleared = Counter(p.rsplit("/", 1)[1] for p, body in zip(receiver.paths, receiver.received, strict=True)
                      if body["event"] == "cleared")
    assert cleared == {"p-son": 1, "p-vol": 1}


def test_a_tier_set_while_a_tick_steps_the_case_on_is_kept_and_the_step_taken_once(world, receiver):
    """A manager makes the case hard as the tick writes step 2: the tick's write, made over the row it read before,
    is dropped (nothing sent); the tier stays hard; the next tick takes step 2, once."""
    from alerts import lifecycle

    make, _clock, _wall = world
    svc = make(care_registry(receiver.url))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    other = open_store(str(svc.store.engine.url))
    with just_before_update(svc.store, "escalations", lambda: lifecycle.set_tier(
            other, other.alert(alert.id), "hard", "p-com", T0 + 10 * M)) as done:
        svc.escalator.tick(T0 + 10 * M)
    deliver_all(svc)
    assert done and svc.store.escalation(alert.id).tier == "hard" and svc.store.escalation(alert.id).step == 0
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}
    svc.escalator.tick(T0 + 10 * M + 5)
    svc.escalator.tick(T0 + 10 * M + 10)
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}
    esc = svc.store.escalation(alert.id)
    assert (esc.tier, esc.step) == ("hard", 1)
    other.close()


def test_a_tier_set_while_the_tick_takes_a_step_leaves_the_step_be(world, receiver):
    """The tick takes step 2 between the tier setter's read of the escalation and its write: the tier is set
    without taking the case back to step 1 (which sent step 2's messages a second time at the next tick)."""
    from alerts import lifecycle

    make, _clock, _wall = world
    svc = make(care_registry(receiver.url))
    (alert,) = svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)
    other = open_store(str(svc.store.engine.url))
    with just_before_update(other, "escalations", lambda: svc.escalator.tick(T0 + 10 * M) or "stepped") as done:
        lifecycle.set_tier(other, other.alert(alert.id), "hard", "p-com", T0 + 10 * M + 1)
    svc.escalator.tick(T0 + 12 * M)
    deliver_all(svc)
    assert done and per_person(receiver) == {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}
    assert (svc.store.escalation(alert.id).step, svc.store.escalation(alert.id).tier) == (1, "hard")
    other.close()


def test_a_failure_starting_a_missing_escalation_holds_up_no_other(world, receiver, monkeypatch):
    make, _clock, _wall = world
    svc = make(care_registry(receiver.url))
    svc.pipeline.run([inactivity()], T0)
    deliver_all(svc)

    def broken(*_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(svc.escalator, "_start_missing", broken)
    svc.escalator.tick(T0 + 10 * M)
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1}

"""Community figures (shouwang/reports.py): definitions on hand-made cases, and gathered from a real store."""

from __future__ import annotations

from shouwang.domain import (
    AlertCategory,
    Community,
    Escalation,
    Finding,
    Gateway,
    Household,
    Outcome,
    Registry,
    Severity,
)
from shouwang.reports import Case, figures, gather_cases, month_of, summarise
from storage import open_store

H = 3600
T = 1_793_836_800  # 2026-11-05 00:00 UTC, 08:00 in Shanghai


def case(i: int, grid: str = "g1", ack: int | None = None, closed: int | None = None,
         outcome: Outcome | None = None, deadline: int | None = 24 * H, welfare: bool = True,
         month: str = "2026-11") -> Case:
    return Case(i, "c1", grid, month, welfare, T, None if ack is None else T + ack,
                None if closed is None else T + closed, outcome, None if deadline is None else T + deadline)


def test_the_definitions_on_hand_made_cases():
    cases = [
        case(1, ack=10 * 60, closed=2 * H, outcome=Outcome.SAFE),  # false alarm, within the SLA
        case(2, ack=30 * 60, closed=30 * H, outcome=Outcome.NEEDED_HELP),  # real, late
        case(3, closed=H, outcome=Outcome.FALSE_ALARM),  # closed without an acknowledgement
        case(4, ack=5 * 60, deadline=48 * H),  # open, deadline not yet passed at 'now'
        case(5),  # open, nobody answered, deadline passed
        case(6, closed=H, outcome=Outcome.DEVICE_RECOVERED, welfare=False),  # a device alert: counted apart
    ]
    f = summarise(cases, T + 25 * H, "c1", None, None)
    assert (f.alerts, f.device_alerts, f.closed, f.still_open) == (5, 1, 3, 2)
    assert f.median_ack_s == 20 * 60  # of 5, 10, 30 and 60 min (case 3: to its closing without an ack)
    assert f.median_close_s == 2 * H
    assert (f.sla_met, f.sla_due) == (2, 4)  # 1 and 3 on time; 2 late; 5 open past its deadline; 4 open, not due
    assert (f.false_alarms, f.false_alarm_share) == (2, 2 / 3)
    assert f.sla_share == 0.5


def test_empty_groups_have_no_shares():
    f = summarise([], T, "c1", None, None)
    assert (f.alerts, f.sla_share, f.false_alarm_share, f.median_ack_s) == (0, None, None, None)


def test_figures_by_month_and_grid():
    cases = [case(1, "g1", closed=H, outcome=Outcome.SAFE, month="2026-10"),
             case(2, "g2", closed=H, outcome=Outcome.HOSPITALISED, month="2026-11"),
             case(3, "g2", month="2026-11"), case(4, "", welfare=False, month="2026-11")]
    rows = {(r.grid, r.month): r for r in figures(cases, T)}
    assert set(rows) == {(None, None), (None, "2026-10"), (None, "2026-11"), ("g1", None), ("g1", "2026-10"),
                         ("g2", None), ("g2", "2026-11")}  # a device alert has no grid
    assert rows[(None, None)].alerts == 3 and rows[(None, None)].device_alerts == 1
    assert rows[(None, "2026-11")].alerts == 2 and rows[("g2", None)].false_alarms == 0
    assert rows[("g1", None)].false_alarm_share == 1.0


def test_month_is_the_communitys():
    assert month_of(1_793_491_200 - 1, "Asia/Shanghai") == "2026-11"  # 2026-10-31 23:59:59 UTC
    assert month_of(1_793_491_200 - 1, "UTC") == "2026-10"


def test_gathered_from_a_store_with_tiers_and_policies(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    registry = Registry(
        communities=(Community("c1", "One"), Community("c2", "Two", "UTC")),
        gateways=(Gateway("G1", "c1"), Gateway("G2", "c2")),
        households=(Household("H1", "c1", grid="north"), Household("H2", "c2", grid="south")),
        policies=(("c1", {"steps": [{"notify": ["family"]}], "sla": {"ordinary": "2h", "hard": "1d"}}),))
    store.upsert_registry(registry)

    def opened(household: str | None, at: int, category=AlertCategory.INACTIVITY, gateway: str | None = None):
        a = store.open_alert(Finding(category, "t", Severity.CRITICAL, at, "r", household=household,
                                     gateway=gateway), at)
        assert a is not None
        return a.id

    quick = opened("H1", T)
    store.resolve_alert(quick, Outcome.SAFE, "w", T + H)  # within c1's 2 h
    hard = opened("H1", T + 10 * H, AlertCategory.WATER_RUNNING)
    store.save_escalation_steps([(Escalation(hard, "c1", 0, None, tier="hard"), True)], [], [])
    store.resolve_alert(hard, Outcome.LEAK_FIXED, "w", T + 20 * H)  # late for ordinary, on time for hard (1 d)
    late = opened("H2", T)
    store.resolve_alert(late, Outcome.NEEDED_HELP, "w", T + 30 * H)  # c2: the default 24 h
    opened(None, T, AlertCategory.DEVICE, gateway="G2")
    old = opened("H2", T - 400 * 86400)

    cases = {c.alert_id: c for c in gather_cases(store, None)}
    assert cases[quick].sla_deadline == T + 2 * H and cases[hard].sla_deadline == T + 10 * H + 86400
    assert cases[late].sla_deadline == T + 24 * H and cases[late].grid == "south"
    rows = {(r.community, r.grid, r.month): r for r in figures(cases.values(), T + 40 * H)}
    c1 = rows[("c1", None, None)]
    assert (c1.alerts, c1.sla_met, c1.sla_due, c1.false_alarms) == (2, 2, 2, 1)
    c2 = rows[("c2", None, None)]
    assert (c2.alerts, c2.device_alerts, c2.sla_met, c2.sla_due) == (2, 1, 0, 2)  # 'old' is open past due
    assert {c.alert_id for c in gather_cases(store, frozenset({"c1"}))} == {quick, hard}
    assert old not in {c.alert_id for c in gather_cases(store, None, since=T - 86400)}
    store.close()

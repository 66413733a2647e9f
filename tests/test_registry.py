"""The registry file: communities, gateways, households, meters, people, care teams and policies."""

from __future__ import annotations

import pytest

from shouwang.domain import Role, Target
from shouwang.registry import RegistryError, dump_registry, load_registry

GOOD = """
people:
  - {id: p-son, name: 李强, role: family, language: zh, channels: ["json://127.0.0.1:9/x"]}
  - {id: p-vol, name: 王建国, role: volunteer}
  - {id: p-prop, name: Property desk, role: property, language: en}
  - {id: p-com, name: 居委会, role: committee}
  - {id: p-st, name: 街道办, role: street}
streets:
  - {id: st-1, name: 香港中路街道, office: [p-st]}
communities:
  - id: c1
    street: st-1
    committee: [p-com]
    escalation:
      steps:
        - {notify: [family, volunteer], wait: 10m}
        - {notify: [team], wait: 30m}
        - {notify: [committee]}
      reminder_every: 1h
    gateways: [G1]
    households:
      - id: H1
        name: 李秀英
        address: 1-101
        phone: "+86 532 0000"
        notes: hard of hearing
        family: [p-son]
        volunteer: p-vol
        team: [p-prop]
        meters: [{id: H1-W, kind: water, gateway: G1}]
"""


def write(tmp_path, text):
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_people_teams_and_policy_load_and_round_trip(tmp_path):
    reg = load_registry(write(tmp_path, GOOD))
    assert {p.id: p.role for p in reg.people}["p-vol"] == Role.VOLUNTEER
    care = {(a.target, a.person) for a in reg.assignments}
    assert {(Target.FAMILY, "p-son"), (Target.VOLUNTEER, "p-vol"), (Target.TEAM, "p-prop"),
            (Target.COMMITTEE, "p-com"), (Target.STREET, "p-st")} == care
    assert reg.households[0].notes == "hard of hearing"
    again = load_registry(write(tmp_path, dump_registry(reg)))
    assert again == reg


@pytest.mark.parametrize("change,message", [
    (("family: [p-son]", "family: [p-daughter]"), "household H1 family names person 'p-daughter'"),
    (("street: st-1", "street: st-9"), "street 'st-9' is not in 'streets'"),
    (("notify: [committee]", "notify: [mayor]"), "steps.2.notify.0"),
    (("{notify: [family, volunteer], wait: 10m}", "{notify: [family, volunteer]}"), "step 1 needs a 'wait'"),
    (("wait: 30m", "wait: soon"), "'soon' is not a duration"),
    (("role: volunteer", "role: boss"), "people.1.role"),
    (("gateway: G1}", "gateway: G2}"), "names gateway 'G2'"),
])
def test_invalid_registry_says_what_to_fix(tmp_path, change, message):
    with pytest.raises(RegistryError) as exc:
        load_registry(write(tmp_path, GOOD.replace(*change)))
    assert message in str(exc.value)

"""Load the registry (communities, gateways, households, meters) from a YAML or JSON file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shouwang.domain import (
    Assignment,
    Community,
    Gateway,
    Household,
    Meter,
    MeterKind,
    Person,
    Registry,
    Role,
    Target,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterIn(_Strict):
    id: str = Field(min_length=1, max_length=64)
    kind: MeterKind
    gateway: str = Field(min_length=1, max_length=64)


class PersonIn(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    language: str = Field("zh", pattern=r"^(zh|en)$")
    phone: str = ""
    channels: list[str] = Field(default_factory=list, description="notification URLs, in fallback order")

    @field_validator("channels")
    @classmethod
    def _references_well_formed(cls, urls: list[str]) -> list[str]:
        from alerts.channels.secrets import references

        for url in urls:
            references(url)  # a ValueError naming the malformed ${...}; whether it is defined is ingest's check
        return urls


class StreetIn(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = ""
    office: list[str] = Field(default_factory=list, description="people of the street office")


class HouseholdIn(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = ""
    address: str = ""
    grid: str = ""
    phone: str = ""
    notes: str = ""
    family: list[str] = Field(default_factory=list)
    volunteer: str | None = None
    team: list[str] = Field(default_factory=list, description="the micro-team besides the volunteer")
    meters: list[MeterIn] = Field(default_factory=list)


class CommunityIn(_Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    timezone: str = "Asia/Shanghai"
    street: str | None = None
    committee: list[str] = Field(default_factory=list)
    escalation: dict | str | None = None
    gateways: list[str] = Field(default_factory=list)
    households: list[HouseholdIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _meters_use_known_gateways(self) -> CommunityIn:
        known = set(self.gateways)
        for h in self.households:
            for m in h.meters:
                if m.gateway not in known:
                    raise ValueError(
                        f"household {h.id}: meter {m.id} names gateway {m.gateway!r}, which is not in "
                        f"community {self.id}'s gateways {sorted(known)}; add it there")
        return self


class RegistryFile(_Strict):
    people: list[PersonIn] = Field(default_factory=list)
    streets: list[StreetIn] = Field(default_factory=list)
    communities: list[CommunityIn]

    @model_validator(mode="after")
    def _unique_ids(self) -> RegistryFile:
        for label, ids in (
            ("household", [h.id for c in self.communities for h in c.households]),
            ("meter", [m.id for c in self.communities for h in c.households for m in h.meters]),
            ("gateway", [g for c in self.communities for g in c.gateways]),
            ("person", [p.id for p in self.people]),
        ):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    raise ValueError(f"{label} id {i!r} appears more than once; ids must be unique")
                seen.add(i)
        known = {p.id for p in self.people}
        streets = {st.id for st in self.streets}
        for c in self.communities:
            if c.street is not None and c.street not in streets:
                raise ValueError(f"community {c.id}: street {c.street!r} is not in 'streets'; add it there")
            refs = [("committee", p) for p in c.committee] + [
                (f"household {h.id} {what}", p) for h in c.households
                for what, ps in (("family", h.family), ("team", h.team), ("volunteer", [h.volunteer] if h.volunteer else []))
                for p in ps]
            for what, person in refs:
                if person not in known:
                    raise ValueError(f"community {c.id}: {what} names person {person!r}, who is not in 'people'")
            from alerts.policy import load_policy

            load_policy(c.escalation, f"community {c.id}")
        for st in self.streets:
            for person in st.office:
                if person not in known:
                    raise ValueError(f"street {st.id}: office names person {person!r}, who is not in 'people'")
        return self

    def to_registry(self) -> Registry:
        """Flatten the nested file into the domain Registry."""
        offices = {st.id: st.office for st in self.streets}
        assignments: list[Assignment] = []
        for c in self.communities:
            assignments += [Assignment(Target.COMMITTEE, p, community=c.id) for p in c.committee]
            assignments += [Assignment(Target.STREET, p, community=c.id) for p in offices.get(c.street or "", [])]
            for h in c.households:
                assignments += [Assignment(Target.FAMILY, p, household=h.id) for p in h.family]
                if h.volunteer:
                    assignments.append(Assignment(Target.VOLUNTEER, h.volunteer, household=h.id))
                assignments += [Assignment(Target.TEAM, p, household=h.id) for p in h.team]
        return Registry(
            communities=tuple(Community(c.id, c.name, c.timezone) for c in self.communities),
            gateways=tuple(Gateway(g, c.id) for c in self.communities for g in c.gateways),
            households=tuple(Household(h.id, c.id, h.name, h.address, h.grid, h.phone, h.notes)
                             for c in self.communities for h in c.households),
            meters=tuple(Meter(m.id, h.id, m.kind, m.gateway)
                         for c in self.communities for h in c.households for m in h.meters),
            people=tuple(Person(p.id, p.name, p.role, p.language, p.phone, tuple(p.channels)) for p in self.people),
            assignments=tuple(assignments),
            policies=tuple((c.id, c.escalation) for c in self.communities
                           if isinstance(c.escalation, dict)),
        )


class RegistryError(ValueError):
    """The registry file is missing or invalid; the message says what to fix."""


def load_registry(path: Path) -> Registry:
    """Read and validate a registry file; raise RegistryError naming the file and the problem."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"cannot read registry file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"registry file {path} is not valid YAML/JSON: {exc}") from exc
    try:
        return RegistryFile.model_validate(data).to_registry()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise RegistryError(f"registry file {path} is invalid: {problems}") from exc


def dump_registry(registry: Registry) -> str:
    """Serialise a Registry to the YAML file format load_registry reads."""
    policies = dict(registry.policies)
    by_household: dict[tuple[str, str], list[str]] = {}
    by_community: dict[tuple[str, str], list[str]] = {}
    for a in registry.assignments:
        if a.household:
            by_household.setdefault((a.household, a.target), []).append(a.person)
        elif a.community:
            by_community.setdefault((a.community, a.target), []).append(a.person)
    out, streets = [], []
    for c in registry.communities:
        hs = []
        for h in registry.households:
            if h.community != c.id:
                continue
            entry: dict = {"id": h.id, "name": h.name, "address": h.address, "grid": h.grid}
            if h.phone:
                entry["phone"] = h.phone
            if h.notes:
                entry["notes"] = h.notes
            for target in ("family", "team"):
                if (h.id, target) in by_household:
                    entry[target] = by_household[(h.id, target)]
            if (h.id, "volunteer") in by_household:
                entry["volunteer"] = by_household[(h.id, "volunteer")][0]
            entry["meters"] = [{"id": m.id, "kind": str(m.kind), "gateway": m.gateway}
                               for m in registry.meters if m.household == h.id]
            hs.append(entry)
        community: dict = {"id": c.id, "name": c.name, "timezone": c.timezone}
        if (c.id, "street") in by_community:
            streets.append({"id": f"street-{c.id}", "office": by_community[(c.id, "street")]})
            community["street"] = f"street-{c.id}"
        if (c.id, "committee") in by_community:
            community["committee"] = by_community[(c.id, "committee")]
        if c.id in policies:
            community["escalation"] = policies[c.id]
        community["gateways"] = [g.id for g in registry.gateways if g.community == c.id]
        community["households"] = hs
        out.append(community)
    doc: dict = {}
    if registry.people:
        doc["people"] = [{"id": p.id, "name": p.name, "role": str(p.role), "language": p.language,
                          "phone": p.phone, "channels": list(p.channels)} for p in registry.people]
    if streets:
        doc["streets"] = streets
    doc["communities"] = out
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)

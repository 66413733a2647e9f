"""Load the registry (communities, gateways, households, meters) from a YAML or JSON file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Registry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterIn(_Strict):
    id: str = Field(min_length=1, max_length=64)
    kind: MeterKind
    gateway: str = Field(min_length=1, max_length=64)


class HouseholdIn(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = ""
    address: str = ""
    grid: str = ""
    meters: list[MeterIn] = Field(default_factory=list)


class CommunityIn(_Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    timezone: str = "Asia/Shanghai"
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
    communities: list[CommunityIn]

    @model_validator(mode="after")
    def _unique_ids(self) -> RegistryFile:
        for label, ids in (
            ("household", [h.id for c in self.communities for h in c.households]),
            ("meter", [m.id for c in self.communities for h in c.households for m in h.meters]),
            ("gateway", [g for c in self.communities for g in c.gateways]),
        ):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    raise ValueError(f"{label} id {i!r} appears more than once; ids must be unique")
                seen.add(i)
        return self

    def to_registry(self) -> Registry:
        """Flatten the nested file into the domain Registry."""
        return Registry(
            communities=tuple(Community(c.id, c.name, c.timezone) for c in self.communities),
            gateways=tuple(Gateway(g, c.id) for c in self.communities for g in c.gateways),
            households=tuple(Household(h.id, c.id, h.name, h.address, h.grid)
                             for c in self.communities for h in c.households),
            meters=tuple(Meter(m.id, h.id, m.kind, m.gateway)
                         for c in self.communities for h in c.households for m in h.meters),
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
    out = []
    for c in registry.communities:
        hs = []
        for h in registry.households:
            if h.community != c.id:
                continue
            hs.append({"id": h.id, "name": h.name, "address": h.address, "grid": h.grid,
                       "meters": [{"id": m.id, "kind": str(m.kind), "gateway": m.gateway}
                                  for m in registry.meters if m.household == h.id]})
        out.append({"id": c.id, "name": c.name, "timezone": c.timezone,
                    "gateways": [g.id for g in registry.gateways if g.community == c.id], "households": hs})
    return yaml.safe_dump({"communities": out}, allow_unicode=True, sort_keys=False)

"""Shards: communities split across ingest workers, each owning its households' readings, state and alerts.

A worker owns the communities whose CRC-32 (of the id, UTF-8) modulo ``count`` is its ``index``. It subscribes
only to those communities' topics (topic partitions), keeps state only for their households, and limits every
store-wide sweep (unresolved alerts, active escalations, outbox claims) to them (docs/deploy.md, scale-out).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from shouwang.domain import Alert, Registry


def community_shard(community: str, count: int) -> int:
    """The shard that owns ``community`` among ``count`` (stable across processes, machines and Python runs)."""
    return zlib.crc32(community.encode("utf-8")) % count


@dataclass(frozen=True, slots=True)
class Shard:
    """This worker's place among ``count`` ingest workers (``index`` from 0)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard index {self.index} is not in 0..{self.count - 1}")

    @property
    def whole(self) -> bool:
        """One worker owns everything (the default)."""
        return self.count == 1

    def owns(self, community: str) -> bool:
        return self.whole or community_shard(community, self.count) == self.index

    def client_id(self, base: str) -> str:
        """The MQTT client id: unchanged for one worker, else suffixed so each shard keeps its own session.

        The count is part of it: after re-sharding, a worker never inherits a session subscribed to communities
        it no longer owns (the old sessions must be removed; docs/deploy.md)."""
        return base if self.whole else f"{base}-shard{self.index}of{self.count}"

    def restrict(self, registry: Registry) -> Registry:
        """The part of the registry this shard owns (people are kept: anyone may be assigned anywhere)."""
        if self.whole:
            return registry
        mine = {c.id for c in registry.communities if self.owns(c.id)}
        households = tuple(h for h in registry.households if h.community in mine)
        hh = {h.id for h in households}
        return Registry(
            communities=tuple(c for c in registry.communities if c.id in mine),
            gateways=tuple(g for g in registry.gateways if g.community in mine),
            households=households,
            meters=tuple(m for m in registry.meters if m.household in hh),
            people=registry.people,
            assignments=tuple(a for a in registry.assignments
                              if (a.household in hh if a.household else a.community in mine)),
            policies=tuple(p for p in registry.policies if p[0] in mine),
        )


def topic_filters(prefix: str, communities: Iterable[str] | None) -> list[str]:
    """The subscriptions of a worker: every community's (``None``), or only the named ones' (topic partitions)."""
    if communities is None:
        return [f"{prefix}/+/+/readings", f"{prefix}/+/+/status"]
    return [f"{prefix}/{c}/+/{kind}" for c in sorted(communities) for kind in ("readings", "status")]


class AlertScope:
    """Which stored alerts belong to a worker: those of its households and its gateways."""

    def __init__(self, registry: Registry) -> None:
        self.households = frozenset(h.id for h in registry.households)
        self.gateways = frozenset(g.id for g in registry.gateways)
        self.communities = frozenset(c.id for c in registry.communities)

    def __contains__(self, alert: Alert) -> bool:
        if alert.household is not None:
            return alert.household in self.households
        return alert.gateway in self.gateways

"""Device health: a gateway offline or silent, a meter silent. Missing data is never a welfare alert."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from shouwang.domain import Alert, AlertCategory, Finding, Severity
from shouwang.state import NEVER, HouseholdState


@dataclass(frozen=True, slots=True)
class DeviceDetector:
    """One `device` finding per offline or silent gateway, and per silent meter behind a live gateway."""

    silence_s: int = 6 * 3600
    name: str = "device"

    def _silent(self, state: HouseholdState, now: int) -> np.ndarray:
        heard = np.where(state.last_ts == NEVER, state.started_at, state.last_ts)
        return now - heard > self.silence_s

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            silent = self._silent(state, now)
            online = state.gateway_online.copy()
            status_at = state.gateway_status_at.copy()
            last_ts = state.last_ts.copy()
        findings: list[Finding] = []
        by_gateway: dict[int, list[int]] = defaultdict(list)
        for i in np.flatnonzero(silent):
            by_gateway[int(state.meter_gateway[i])].append(int(i))
        meters_per_gateway = np.bincount(state.meter_gateway, minlength=len(state.gateway_ids))
        for g, gid in enumerate(state.gateway_ids):
            if not online[g]:
                since = int(status_at[g])
                findings.append(Finding(
                    AlertCategory.DEVICE, self.name, Severity.WARNING, since,
                    f"gateway {gid} offline (last will); welfare alerts behind it are held",
                    gateway=gid))
            elif meters_per_gateway[g] and len(by_gateway.get(g, ())) == meters_per_gateway[g]:
                idx = by_gateway[g]
                since = int(max(last_ts[i] for i in idx)) if any(last_ts[i] != NEVER for i in idx) \
                    else state.started_at
                findings.append(Finding(
                    AlertCategory.DEVICE, self.name, Severity.WARNING, since,
                    f"gateway {gid}: none of its {len(idx)} meters is reporting",
                    gateway=gid))
            else:
                for i in by_gateway.get(g, ()):
                    since = int(last_ts[i]) if last_ts[i] != NEVER else state.started_at
                    findings.append(Finding(
                        AlertCategory.DEVICE, self.name, Severity.WARNING, since,
                        f"meter {state.meter_ids[i]} is not reporting",
                        household=state.household_ids[int(state.meter_household[i])], meter=state.meter_ids[i]))
        return findings

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        with state.lock:
            silent = self._silent(state, now)
            if alert.gateway is not None:
                g = state.gateway_index.get(alert.gateway)
                if g is None:
                    return True
                return bool(state.gateway_online[g] and not silent[state.meter_gateway == g].all())
            i = state.meter_index.get(alert.meter or "")
            return i is None or not bool(silent[i])

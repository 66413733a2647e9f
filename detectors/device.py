"""Device health: a gateway offline or silent, a meter silent, a meter faulty. Missing data is never a welfare
alert; a device alert is raised instead.

Meter faults:

- the register went **backwards** by more than jitter (a reset, a swap, a fault), or **jumped** by more than a
  household connection can deliver in the interval (``ActivityModel.water_max_m3_per_h`` /
  ``elec_max_kw``); reported for ``fault_hold_s`` after the last such reading;
- the register is **frozen**: the meter keeps reporting the same value for ``frozen_water_s`` (water) or
  ``frozen_elec_s`` (electricity), although on at least ``frozen_moved_share`` of its last whole days it
  moved, and the household's other meter showed activity during that time (a stuck meter, or for
  electricity the power cut off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.common import hours
from shouwang.domain import UNITS, Alert, AlertCategory, Finding, MeterKind, Severity
from shouwang.state import _ELEC, _WATER, FAULT_BACKWARDS, NEVER, HouseholdState

ALL = slice(None)


@dataclass(frozen=True, slots=True)
class DeviceDetector:
    """One `device` finding per offline or silent gateway, and per silent or faulty meter behind a live one."""

    silence_s: int = 6 * 3600
    name: str = "device"
    fault_hold_s: int = 24 * 3600
    frozen_water_s: int = 48 * 3600
    frozen_elec_s: int = 12 * 3600
    frozen_min_days: int = 7
    frozen_moved_share: float = 0.9

    # Each check takes the meters to look at: every meter (a slice, read as views) in a sweep, one meter or one
    # gateway's when an open alert asks whether its condition has gone.
    def _silent(self, state: HouseholdState, now: int, m: slice | np.ndarray = ALL) -> np.ndarray:
        last, line = state.last_ts[m], now - self.silence_s  # silent: last heard before the line
        if state.started_at < line:  # a meter never heard counts from start-up, so it is silent too (NEVER < line)
            return last < line
        return (last < line) & (last != NEVER)

    def _faulty(self, state: HouseholdState, now: int, m: slice | np.ndarray = ALL) -> np.ndarray:
        return state.fault_at[m] >= now - self.fault_hold_s  # never faulty: NEVER is before any line

    def _frozen(self, state: HouseholdState, now: int, m: slice | np.ndarray = ALL) -> np.ndarray:
        """Meters whose register stands still while it usually moves and the household's other meter lives."""
        still = state.last_ts[m] - state.last_change[m]
        out = np.zeros(still.shape, dtype=bool)
        pos = np.flatnonzero(still >= min(self.frozen_water_s, self.frozen_elec_s))  # few: the rest is read for these
        idx = pos if isinstance(m, slice) else m[pos]
        kind, change = state.meter_kind[idx], state.last_change[idx]
        limit = np.where(kind == _WATER, self.frozen_water_s, self.frozen_elec_s)
        seen = state.days_seen[idx].astype(np.int64)
        usual = (seen >= self.frozen_min_days) & (state.days_moved[idx] >= self.frozen_moved_share * seen)
        sel = (change != NEVER) & (still[pos] >= limit) & usual
        cand = np.flatnonzero(sel)
        if cand.size:  # the latest activity of the other kind in each candidate's household, from its meters only
            households, at = np.unique(state.meter_household[idx[cand]], return_inverse=True)
            members = state.meters_of(households)
            life = np.full((households.size, 2), NEVER, dtype=np.int64)
            np.maximum.at(life, (np.searchsorted(households, state.meter_household[members]),
                                 state.meter_kind[members].astype(np.int64)), state.last_activity[members])
            other = life[at, 1 - kind[cand].astype(np.int64)]
            out[pos[cand]] = (other > change[cand]) & (now - other <= limit[cand])
        return out

    def evaluate(self, state: HouseholdState, now: int) -> list[Finding]:
        with state.lock:
            silent = self._silent(state, now)
            offline = ~state.gateway_online
            n_gw = len(state.gateway_ids)
            per_gw = state.gateway_meter_count
            silent_gw = np.bincount(state.meter_gateway[silent], minlength=n_gw)
            all_silent = (per_gw > 0) & (silent_gw == per_gw) & ~offline
            down = offline | all_silent
            behind_down = np.zeros(len(state.meter_ids), dtype=bool)  # from the down gateways' meters, not a gather
            behind_down[state.meters_behind(np.flatnonzero(down))[0]] = True
            silent_meters = np.flatnonzero(silent & ~behind_down)
            live = ~silent & ~behind_down
            faulty = self._faulty(state, now) & live
            frozen = self._frozen(state, now) & live
            bad = np.flatnonzero(faulty | frozen)
            status_at = state.gateway_status_at[offline].tolist()
            newest = np.full(n_gw, NEVER, dtype=np.int64)  # the newest reading behind each all-silent gateway
            if (quiet := np.flatnonzero(all_silent)).size:
                meters, starts = state.meters_behind(quiet)
                newest[quiet] = np.maximum.reduceat(state.last_ts[meters], starts)
            last_ts = state.last_ts[silent_meters].tolist()
            info = (state.fault_kind[bad].tolist(), state.fault_dv[bad].tolist(), state.fault_dt[bad].tolist(),
                    state.fault_at[bad].tolist(), state.last_ts[bad].tolist(), state.last_change[bad].tolist(),
                    faulty[bad].tolist(), state.meter_kind[bad].tolist(), state.meter_household[bad].tolist())
        findings: list[Finding] = []
        for g, at in zip(np.flatnonzero(offline).tolist(), status_at, strict=True):
            gid = state.gateway_ids[g]
            findings.append(Finding(
                AlertCategory.DEVICE, self.name, Severity.WARNING, int(at),
                f"gateway {gid} offline (last will); welfare alerts behind it are held", gateway=gid))
        for g in np.flatnonzero(all_silent).tolist():
            gid = state.gateway_ids[g]
            since = int(newest[g]) if newest[g] != NEVER else state.started_at
            findings.append(Finding(
                AlertCategory.DEVICE, self.name, Severity.WARNING, since,
                f"gateway {gid}: none of its {int(per_gw[g])} meters is reporting", gateway=gid))
        for i, ts in zip(silent_meters.tolist(), last_ts, strict=True):
            findings.append(Finding(
                AlertCategory.DEVICE, self.name, Severity.WARNING, ts if ts != NEVER else state.started_at,
                f"meter {state.meter_ids[i]} is not reporting",
                household=state.household_ids[int(state.meter_household[i])], meter=state.meter_ids[i]))
        for i, kind, dv, dt, at, ts, change, is_fault, mk, hh in zip(bad.tolist(), *info, strict=True):
            mid = state.meter_ids[i]
            unit = UNITS[MeterKind.WATER if mk == _WATER else MeterKind.ELECTRICITY]
            if is_fault:
                if kind == FAULT_BACKWARDS:
                    reason = f"meter {mid}: register went back by {-dv:.3f} {unit} (reset, swap or fault)"
                else:
                    reason = (f"meter {mid}: register jumped by {dv:.3f} {unit} in {hours(dt)}, more than a "
                              f"household can use (meter fault)")
                since = at
            else:
                what = "stuck meter, or the power is off" if mk == _ELEC else "stuck meter"
                reason = (f"meter {mid}: register unchanged for {hours(ts - change)} while the household's other "
                          f"meter shows activity ({what})")
                since = change
            findings.append(Finding(AlertCategory.DEVICE, self.name, Severity.WARNING, int(since), reason,
                                    household=state.household_ids[hh], meter=mid))
        return findings

    def cleared(self, alert: Alert, state: HouseholdState, now: int) -> bool:
        with state.lock:
            if alert.gateway is not None:
                g = state.gateway_index.get(alert.gateway)
                if g is None:
                    return True
                return bool(state.gateway_online[g] and not self._silent(state, now, state.gateway_meters(g)).all())
            i = state.meter_index.get(alert.meter or "")
            if i is None:
                return True
            m = np.array([i])
            return not bool(self._silent(state, now, m)[0] or self._faulty(state, now, m)[0]
                            or self._frozen(state, now, m)[0])

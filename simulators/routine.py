"""Deterministic daily-routine model of one elderly person's water and electricity use."""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np

L = 0.001  # one litre in m³
MIN = 60.0
HOUR = 3600.0

# chronotype: (wake hour range, bed hour range, weight); bed hours past 24 mean after midnight
CHRONOTYPES: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "early_riser": ((5.0, 6.0), (20.5, 21.5), 0.35),
    "regular": ((6.3, 7.3), (21.5, 22.5), 0.35),
    "late_riser": ((7.8, 8.8), (22.5, 23.5), 0.2),
    "night_owl": ((9.0, 10.0), (24.3, 25.5), 0.1),
}


@dataclass(frozen=True, slots=True)
class Profile:
    """Habits of one household; day-to-day variation is drawn from ``seed``."""

    household: str
    seed: int
    chronotype: str
    wake_h: float  # mean local wake time, hours after midnight
    bed_h: float  # mean local bed time, hours after midnight (> 24 = after midnight)
    jitter_h: float  # day-to-day standard deviation of wake and bed time
    base_kw: float  # fridge + standby, always on while powered
    cook_kw: float  # cooking power (small if the hob is gas: range hood only)
    tv_kw: float
    light_kw: float
    shower_p: float  # chance of a shower on a given day
    shower_evening: bool
    heater_kw: float  # electric water heater power, 0 if gas
    flushes_per_day: float
    night_flushes: float  # mean toilet visits per night
    hand_washes_per_day: float
    laundry_p: float


def household_seed(seed: int, household: str) -> int:
    """Stable per-household seed: same household and seed give the same habits in any community."""
    return (int(seed) * 1_000_003 + zlib.crc32(household.encode("utf-8"))) % (2**63)


def make_profile(household: str, seed: int = 0) -> Profile:
    """Draw a plausible profile for a household, deterministic in (household, seed)."""
    hseed = household_seed(seed, household)
    rng = np.random.default_rng([hseed, 7])
    names = list(CHRONOTYPES)
    weights = np.array([CHRONOTYPES[n][2] for n in names])
    chrono = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    (w0, w1), (b0, b1), _ = CHRONOTYPES[chrono]
    gas = rng.random() < 0.3
    return Profile(
        household=household, seed=hseed, chronotype=chrono,
        wake_h=float(rng.uniform(w0, w1)), bed_h=float(rng.uniform(b0, b1)),
        jitter_h=float(rng.uniform(0.15, 0.5)),
        base_kw=float(rng.uniform(0.03, 0.08)),
        cook_kw=float(rng.uniform(0.12, 0.2) if gas else rng.uniform(0.8, 1.8)),
        tv_kw=float(rng.uniform(0.07, 0.15)), light_kw=float(rng.uniform(0.02, 0.06)),
        shower_p=float(rng.uniform(0.6, 0.95)), shower_evening=bool(rng.random() < 0.7),
        heater_kw=0.0 if rng.random() < 0.4 else float(rng.uniform(1.5, 2.5)),
        flushes_per_day=float(rng.uniform(4.0, 7.0)), night_flushes=float(rng.uniform(0.2, 1.5)),
        hand_washes_per_day=float(rng.uniform(4.0, 9.0)), laundry_p=float(rng.uniform(0.15, 0.4)),
    )


def make_profiles(households: Sequence[str], seed: int = 0) -> list[Profile]:
    """Profiles for many households."""
    return [make_profile(h, seed) for h in households]


def _poisson(lam: float, u: float) -> int:
    """Poisson draw by inverting the CDF at ``u`` (cheap for small ``lam``)."""
    k, p = 0, math.exp(-lam)
    cdf = p
    while u > cdf and k < 50:
        k += 1
        p *= lam / k
        cdf += p
    return k


def day_events(profile: Profile, day: int) -> list[tuple[float, float, float, float]]:
    """Activity of one local day (date ordinal): (start s after local midnight, duration s, water m³, kWh)."""
    return _draw_day(profile, day)[0]


def _draw_day(profile: Profile, day: int) -> tuple[list[tuple[float, float, float, float]], list[float]]:
    """Events of one local day and the 24 hourly base-load multipliers."""
    rng = np.random.default_rng([profile.seed, day])
    u = rng.random(72).tolist()
    z = rng.standard_normal(2).tolist()
    ev: list[tuple[float, float, float, float]] = []

    def add(start: float, dur: float, water_l: float = 0.0, kw: float = 0.0) -> None:
        ev.append((start, dur, water_l * L, kw * dur / HOUR))

    def flush(start: float, uu: float) -> None:
        add(start, 60.0, 3.0 if uu < 0.25 else 6.0)  # dual-flush cistern refill

    j = profile.jitter_h * HOUR
    wake = profile.wake_h * HOUR + max(-2.5, min(2.5, z[0])) * j
    bed = profile.bed_h * HOUR + max(-2.5, min(2.5, z[1])) * j
    bed = max(bed, wake + 12 * HOUR)
    # morning: toilet, wash, kettle, breakfast, washing up
    flush(wake + (1 + 7 * u[0]) * MIN, u[1])
    add(wake + (5 + 10 * u[2]) * MIN, (3 + 3 * u[3]) * MIN, 3 + 2 * u[4])
    add(wake + (10 + 15 * u[5]) * MIN, (3 + u[6]) * MIN, kw=1.8)
    if wake < 6.5 * HOUR:
        add(wake, 6.5 * HOUR - wake, kw=profile.light_kw)
    breakfast = wake + (30 + 30 * u[7]) * MIN
    add(breakfast, (10 + 10 * u[8]) * MIN, kw=0.7 * profile.cook_kw)
    add(breakfast + 25 * MIN, 3 * MIN, 2 + 3 * u[9])
    # lunch and dinner, anchored to the clock but shifted for late sleepers
    lunch = max(11.3 * HOUR, wake + 3 * HOUR) + (u[10] - 0.5) * 40 * MIN
    lunch_len = (20 + 20 * u[11]) * MIN
    add(lunch - 15 * MIN, 4 * MIN, 4 + 4 * u[36])  # washing rice and vegetables
    add(lunch, lunch_len, kw=profile.cook_kw)
    add(lunch + lunch_len + 20 * MIN, 5 * MIN, 4 + 4 * u[12])
    dinner = max(16.8 * HOUR, bed - (3.5 + u[13]) * HOUR)
    dinner_len = (25 + 20 * u[14]) * MIN
    add(dinner - 15 * MIN, 4 * MIN, 4 + 4 * u[37])
    add(dinner, dinner_len, kw=profile.cook_kw)
    add(dinner + dinner_len + 20 * MIN, 6 * MIN, 5 + 5 * u[15])
    # afternoon and evening TV, evening lights
    if u[16] < 0.5:
        add(14.5 * HOUR + 30 * MIN * u[17], (1 + u[18]) * HOUR, kw=profile.tv_kw)
    tv_on = dinner + dinner_len + (10 + 20 * u[19]) * MIN
    tv_off = bed - (5 + 15 * u[20]) * MIN
    if tv_off > tv_on:
        add(tv_on, tv_off - tv_on, kw=profile.tv_kw)
    lights_on = max(18.0 * HOUR, dinner)
    if bed > lights_on:
        add(lights_on, bed - lights_on, kw=profile.light_kw)
    # shower (with electric water heater reheating) on most days
    if u[21] < profile.shower_p:
        shower = bed - (45 + 75 * u[22]) * MIN if profile.shower_evening else wake + (20 + 40 * u[22]) * MIN
        add(shower, (8 + 4 * u[23]) * MIN, 40 + 20 * u[24])
        if profile.heater_kw:
            add(shower, (25 + 20 * u[25]) * MIN, kw=profile.heater_kw)
    # laundry now and then
    if u[26] < profile.laundry_p:
        laundry = wake + (1 + 2 * u[27]) * HOUR
        add(laundry, 45 * MIN, 40 + 20 * u[28])
        add(laundry, 60 * MIN, kw=0.35)
    # evening wash and the last flush before bed
    add(bed - (10 + 10 * u[29]) * MIN, 4 * MIN, 2 + 2 * u[30])
    flush(bed - (2 + 8 * u[31]) * MIN, u[32])
    # flushes and hand washes through the day, toilet visits at night
    n_day = max(2, _poisson(profile.flushes_per_day, u[33]))
    n_wash = _poisson(profile.hand_washes_per_day, u[34])
    n_night = _poisson(profile.night_flushes, u[35])
    more = rng.random(2 * (n_day + n_wash + n_night)).tolist()
    awake0, awake1 = wake + HOUR, bed - 30 * MIN
    for i in range(n_day):
        flush(awake0 + (awake1 - awake0) * more[2 * i], more[2 * i + 1])
    for i in range(n_day, n_day + n_wash):
        add(awake0 + (awake1 - awake0) * more[2 * i], 40.0, 1 + more[2 * i + 1])
    night0, night1 = bed + 30 * MIN, profile.wake_h * HOUR + 24 * HOUR - 20 * MIN
    for i in range(n_day + n_wash, n_day + n_wash + n_night):
        if night1 > night0:
            flush(night0 + (night1 - night0) * more[2 * i], more[2 * i + 1])
    return ev, [0.88 + 0.24 * x for x in u[48:72]]


@dataclass(frozen=True, slots=True)
class _DayPlan:
    """All households' activity of one local day, as flat arrays grouped by household."""

    start: np.ndarray  # epoch s
    end: np.ndarray
    water_rate: np.ndarray  # m³/s
    elec_rate: np.ndarray  # kWh/s
    hh: np.ndarray  # household index of each event
    offsets: np.ndarray  # events of household i are offsets[i]:offsets[i+1]
    edges: np.ndarray  # 25 epoch edges of the day's base-load segments
    base_rate: np.ndarray  # (n, 24) kWh/s


@dataclass(frozen=True, slots=True)
class Usage:
    """Consumption of each household over an interval."""

    water_m3: np.ndarray
    elec_activity_kwh: np.ndarray  # appliances people switch on
    elec_base_kwh: np.ndarray  # fridge + standby

    @property
    def elec_kwh(self) -> np.ndarray:
        """All electricity."""
        return self.elec_activity_kwh + self.elec_base_kwh


class RoutineModel:
    """Consumption of many households in one time zone over any interval, cached per local day."""

    def __init__(self, profiles: Sequence[Profile], timezone: str = "Asia/Shanghai",
                 cache_days: int = 6) -> None:
        self.profiles = tuple(profiles)
        self.tz = ZoneInfo(timezone)
        self._cache: OrderedDict[int, _DayPlan] = OrderedDict()
        self._cache_days = cache_days

    def local_day(self, t: float) -> int:
        """Local date ordinal of epoch time t."""
        return datetime.fromtimestamp(t, self.tz).date().toordinal()

    def midnight(self, day: int) -> float:
        """Epoch time of local midnight starting date ordinal ``day``."""
        return datetime.combine(date.fromordinal(day), time(0), tzinfo=self.tz).timestamp()

    def _plan(self, day: int) -> _DayPlan:
        plan = self._cache.get(day)
        if plan is not None:
            self._cache.move_to_end(day)
            return plan
        m0, m1 = self.midnight(day), self.midnight(day + 1)
        rows: list[tuple[float, float, float, float]] = []
        hh: list[int] = []
        offsets = [0]
        base = np.empty((len(self.profiles), 24))
        for i, p in enumerate(self.profiles):
            ev, wobble = _draw_day(p, day)
            rows.extend(ev)
            hh.extend([i] * len(ev))
            offsets.append(len(rows))
            base[i] = wobble
            base[i] *= p.base_kw / HOUR
        arr = np.array(rows, dtype=float).reshape(-1, 4)
        start = m0 + arr[:, 0]
        dur = np.maximum(arr[:, 1], 1.0)
        plan = _DayPlan(start=start, end=start + dur, water_rate=arr[:, 2] / dur, elec_rate=arr[:, 3] / dur,
                        hh=np.array(hh, dtype=np.int64), offsets=np.array(offsets),
                        edges=np.linspace(m0, m1, 25), base_rate=base)
        self._cache[day] = plan
        if len(self._cache) > self._cache_days:
            self._cache.popitem(last=False)
        return plan

    def usage(self, t0: float, t1: float) -> Usage:
        """Consumption of every household in [t0, t1)."""
        n = len(self.profiles)
        water, act, base = np.zeros(n), np.zeros(n), np.zeros(n)
        if t1 <= t0 or n == 0:
            return Usage(water, act, base)
        d0, d1 = self.local_day(t0), self.local_day(t1 - 1e-6)
        for day in range(d0 - 1, d1 + 1):  # events of the day before can run past midnight
            plan = self._plan(day)
            dur = np.minimum(plan.end, t1) - np.maximum(plan.start, t0)
            np.clip(dur, 0.0, None, out=dur)
            water += np.bincount(plan.hh, weights=dur * plan.water_rate, minlength=n)
            act += np.bincount(plan.hh, weights=dur * plan.elec_rate, minlength=n)
            if day >= d0:
                seg = np.clip(np.minimum(plan.edges[1:], t1) - np.maximum(plan.edges[:-1], t0), 0.0, None)
                base += plan.base_rate @ seg
        return Usage(water, act, base)

    def household_usage(self, i: int, t0: float, t1: float) -> tuple[float, float, float]:
        """(water m³, activity kWh, base kWh) of household index i in [t0, t1)."""
        if t1 <= t0:
            return 0.0, 0.0, 0.0
        water = act = base = 0.0
        d0, d1 = self.local_day(t0), self.local_day(t1 - 1e-6)
        for day in range(d0 - 1, d1 + 1):
            plan = self._plan(day)
            a, b = plan.offsets[i], plan.offsets[i + 1]
            dur = np.clip(np.minimum(plan.end[a:b], t1) - np.maximum(plan.start[a:b], t0), 0.0, None)
            water += float(dur @ plan.water_rate[a:b])
            act += float(dur @ plan.elec_rate[a:b])
            if day >= d0:
                seg = np.clip(np.minimum(plan.edges[1:], t1) - np.maximum(plan.edges[:-1], t0), 0.0, None)
                base += float(plan.base_rate[i] @ seg)
        return water, act, base


def consumption(profile: Profile, t0: float, t1: float,
                timezone: str = "Asia/Shanghai") -> tuple[float, float]:
    """Water (m³) and electricity (kWh) one household uses in [t0, t1) of epoch time."""
    w, a, b = RoutineModel([profile], timezone).household_usage(0, t0, t1)
    return w, a + b

"""Detectors: pure functions of household state and event time that return findings.

``build_detectors(names, ...)`` makes detectors by name; ``DEFAULT_DETECTORS`` are the names the service runs
unless told otherwise. Names: ``routine``, ``water_running``, ``unusual_usage``, ``device``, the presets of
``detectors.presets.PRESETS`` (``no-change-48h``, ``shanghai``, ``taicang``, ``haishu``, ``kizuki``,
``jingan``, ``longgang-leak``), ``no-change`` (the owner's rule with the configured window) and
``no-change-<N>h`` for any N.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from detectors.base import Detector
from detectors.device import DeviceDetector
from detectors.no_change import NoChangeDetector
from detectors.presets import PRESETS, JinganRule, KizukiRule, LonggangLeakRule, WaterWindowRule
from detectors.routine import LearningStatus, RoutineDetector, learning_status
from detectors.unusual_usage import UnusualUsageDetector
from detectors.water_running import WaterRunningDetector

__all__ = [
    "DEFAULT_DETECTORS", "DETECTOR_NAMES", "PRESETS", "Detector", "DeviceDetector", "JinganRule", "KizukiRule",
    "LearningStatus", "LonggangLeakRule", "NoChangeDetector", "RoutineDetector", "UnusualUsageDetector",
    "WaterRunningDetector", "WaterWindowRule", "build_detectors", "learning_status",
]

DEFAULT_DETECTORS: list[str] = ["routine", "water_running", "unusual_usage", "device"]
DETECTOR_NAMES: tuple[str, ...] = ("routine", "water_running", "unusual_usage", "device", "no-change",
                                   *PRESETS)

_NO_CHANGE = re.compile(r"^no-change-(\d+(?:\.\d+)?)h$")


def build_detectors(
    names: Sequence[str] | None = None,
    *,
    window_s: int = 48 * 3600,
    silence_s: int = 6 * 3600,
    routine_fallback: str | None = "no-change",
    communities: Mapping[str, Sequence[str]] | None = None,
) -> list[Detector]:
    """Detectors by name, in order, each name once.

    - ``window_s``: the owner's no-change window (``no-change`` and the routine's fallback use it);
    - ``silence_s``: a meter not heard from this long is a device problem, and welfare detectors do not judge
      its household meanwhile;
    - ``routine_fallback``: the preset that judges a household while its routine is being learned
      (None: nobody judges it meanwhile);
    - ``communities``: extra detector names per community id, run for those communities only (a preset a
      programme asked for); a name in both ``names`` and here runs everywhere.

    Raises ValueError for an unknown name.
    """
    names = list(DEFAULT_DETECTORS if names is None else names)
    scoped: dict[str, set[str]] = {}
    for community, extra in (communities or {}).items():
        for n in extra:
            if n not in names:
                scoped.setdefault(n, set()).add(community)
    out: list[Detector] = []
    for n in [*dict.fromkeys(names), *scoped]:
        where = frozenset(scoped[n]) if n in scoped else None
        out.append(_one(n, window_s, silence_s, routine_fallback, where))
    return out


def _one(name: str, window_s: int, silence_s: int, fallback: str | None,
         communities: frozenset[str] | None) -> Detector:
    if name == "device":
        if communities is not None:
            raise ValueError("device runs for every community; it cannot be scoped to some")
        return DeviceDetector(silence_s=silence_s)
    if name == "routine":
        fb = None if fallback is None else _one(fallback, window_s, silence_s, None, communities)
        return RoutineDetector(max_staleness_s=silence_s, fallback=fb, communities=communities)
    if name == "water_running":
        return WaterRunningDetector(max_staleness_s=silence_s, communities=communities)
    if name == "unusual_usage":
        return UnusualUsageDetector(max_staleness_s=silence_s, communities=communities)
    if name == "no-change":
        return NoChangeDetector(window_s, silence_s, f"no-change-{window_s / 3600:g}h", communities)
    if name in PRESETS:
        return PRESETS[name](max_staleness_s=silence_s, communities=communities)
    m = _NO_CHANGE.match(name)
    if m:
        return NoChangeDetector(int(float(m.group(1)) * 3600), silence_s, name, communities)
    raise ValueError(f"unknown detector {name!r}; known: {', '.join(DETECTOR_NAMES)}, no-change-<N>h")

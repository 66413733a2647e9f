"""Clocks: logic never reads the time itself, it is handed a clock or a `now`."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Source of the current event time, in epoch seconds (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time, for production."""

    def now(self) -> float:
        return time.time()


class ScaledClock:
    """Event time that runs ``speed`` times faster than the wall clock from ``start``."""

    def __init__(self, start: float, speed: float, wall: Clock | None = None) -> None:
        self._wall = wall or SystemClock()
        self._wall0 = self._wall.now()
        self.start = start
        self.speed = speed

    def now(self) -> float:
        return self.start + (self._wall.now() - self._wall0) * self.speed


class ManualClock:
    """A clock that moves only when told to, for tests and replays."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def set(self, t: float) -> None:
        with self._lock:
            self._now = t

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

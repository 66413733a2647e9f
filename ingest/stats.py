"""Ingest counters: messages, readings accepted, duplicates, rejections by reason."""

from __future__ import annotations

import threading
from collections import Counter


class IngestStats:
    """Thread-safe counters, read by the API and the benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def get(self, name: str) -> int:
        with self._lock:
            return self._c[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)

"""Shared helpers for benchmark modules."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One benchmark result; ``ratio`` = value / baseline_value, oriented so
    that a bigger ratio is better for ours (the module decides)."""

    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time in seconds over ``repeat`` calls (least noisy estimate)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def median_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

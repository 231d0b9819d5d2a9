"""Shared helpers for benchmark modules."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.contracts import NS_PER_S, SampleBatch

if TYPE_CHECKING:
    from firmware_sim.simulator import SimulatedRecording


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


def _timings(fn: Callable[[], object], repeat: int, clock: Callable[[], float]) -> list[float]:
    """Seconds of ``clock`` spent by each of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return times


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time in seconds over ``repeat`` calls (least noisy estimate)."""
    return min(_timings(fn, repeat, time.perf_counter))


def best_cpu_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best CPU time of this process in seconds over ``repeat`` calls.

    For single-core compute benchmarks: on a shared machine the wall time
    includes waiting for a core (measured here at load averages of 10-35 on
    2 cores), the process's CPU time does not. BLAS helper threads are kept
    at one by ``python -m bench`` so that this is one core's time.
    """
    return min(_timings(fn, repeat, time.process_time))


def median_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time in seconds over ``repeat`` calls."""
    return statistics.median(_timings(fn, repeat, time.perf_counter))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linear interpolation; nan if empty."""
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def machine_info() -> dict[str, Any]:
    """What a recorded run needs to say about the machine it ran on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import scipy

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu,
        "cores": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    with contextlib.suppress(OSError):
        info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    return info


@functools.lru_cache(maxsize=4)
def simulated_day(
    hours: float, seed: int = 1, profile: str = "desk_worker", device: str = "witmotion"
) -> SimulatedRecording:
    """A simulated recording (accelerometer + gyroscope at the device's default rate).

    Cached: several benchmarks share the same day, and simulating 8 h costs
    seconds that are not what they measure.
    """
    from firmware_sim.simulator import simulate

    return simulate(profile, hours * 3600.0, seed=seed, device=device)


def sample_batches(
    rec: SimulatedRecording,
    start_ns: int,
    chunk_s: float,
    *,
    sensor: str = "s1",
    wearer: str = "w1",
    first_s: float = 0.0,
    last_s: float | None = None,
) -> list[SampleBatch]:
    """``rec`` from ``first_s`` to ``last_s`` as consecutive ``chunk_s`` batches.

    Sample ``k`` of the recording is stamped ``start_ns + k / rate``, so
    batches cut from the same recording with different ``start_ns`` are
    distinct wearers' streams in time.
    """
    rate = rec.rate_hz
    k0 = round(first_s * rate)
    k1 = len(rec.time_s) if last_s is None else min(len(rec.time_s), round(last_s * rate))
    step = max(1, round(chunk_s * rate))
    # stamps only for the part asked for: batches are views into these arrays
    t_ns = start_ns + np.round(rec.time_s[k0:k1] * NS_PER_S).astype(np.int64)
    out = []
    for i, k in enumerate(range(k0, k1, step)):
        sl = slice(k, min(k + step, k1))
        out.append(
            SampleBatch(
                sensor,
                wearer,
                rate,
                t_ns[sl.start - k0 : sl.stop - k0],
                rec.accel_g[sl],
                rec.gyro_dps[sl],
                seq=i,
            )
        )
    return out


def run_module(mod: str, quick: bool) -> list[Entry]:
    """``bench.<mod>.run(quick)`` (a top-level function: runs in a worker process)."""
    import importlib

    result: list[Entry] = importlib.import_module(f"bench.{mod}").run(quick=quick)
    return result

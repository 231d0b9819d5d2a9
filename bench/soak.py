"""Accelerated soak: many wearers' edge pipelines over a day, RSS sampled as it goes.

Run as its own process so the resident set it reports is the pipeline's,
not the benchmark runner's::

    python -m bench.soak --wearers 50 --hours 24 --chunk-s 60 --budget-s 0

In the loop, per wearer: the edge pipeline (``bench.bench_pipeline.
edge_wearer_factory``: streaming analysis, nudge policies, the day's summary
accumulators and the daily summary at local midnight) and the line-protocol encoding of its
epochs, events and daily summaries (what the bus would carry). Not in the
loop: BLE, decoding, MQTT, InfluxDB (they are measured elsewhere).

Samples come from one simulated hour replayed with each wearer's own start
phase and continuous timestamps (so the stream looks live), created per
batch as views: the input costs no memory that grows with the run. All
wearers advance together, ``chunk_s`` of sensor time per round. With
``--budget-s`` > 0 the run stops after that much CPU time and reports how
far it got. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from analysis.contracts import NS_PER_S, SampleBatch
from bench.bench_pipeline import DAY_START_NS, edge_wearer_factory
from bench.common import simulated_day


def rss_bytes() -> int:
    """Resident set size of this process (bytes), from /proc."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def _encode(wearer: str, out: Any) -> int:
    from postmon.store import lineproto as lp

    n = 0
    epochs = getattr(out, "epochs", None)
    if epochs is not None and len(epochs):
        n += len(lp.encode_epochs("clinic-a", wearer, f"s-{wearer}", epochs).body)
    events = getattr(out, "events", ())
    if events:
        n += len(lp.encode_events("clinic-a", wearer, events).body)
    daily = getattr(out, "daily", ())
    if daily:
        n += len(lp.encode_daily("clinic-a", wearer, daily, tz="UTC").body)
    return n


def replayed_rounds(
    names: list[str], hours: float, chunk_s: float, start_ns: int
) -> Iterator[tuple[int, list[SampleBatch], bool]]:
    """One simulated hour replayed per wearer, as rounds of ``chunk_s`` batches.

    Each wearer starts at its own phase of the hour; stamps run on from
    ``start_ns`` without repeating, and batches are views (or a wrapped
    gather) into the one hour, so the input itself does not grow.

    Yields
    ------
    (round index, one batch per name, whether a sensor hour ended with this round)
    """
    rec = simulated_day(1.0, seed=3)
    rate = rec.rate_hz
    n_rec = len(rec.time_s)
    step = round(chunk_s * rate)
    acc = np.ascontiguousarray(rec.accel_g)
    gyr = np.ascontiguousarray(rec.gyro_dps)
    phase = [(i * 997 * round(rate)) % n_rec for i in range(len(names))]
    total = round(hours * 3600 * rate)
    per_hour = max(1, round(3600 * rate / step))
    for r in range(-(-total // step)):
        k = r * step
        n = min(step, total - k)
        t_ns = start_ns + (np.arange(k, k + n, dtype=np.int64) * NS_PER_S) // round(rate)
        batches = []
        for i, name in enumerate(names):
            j = (phase[i] + k) % n_rec
            idx = (np.arange(j, j + n) % n_rec) if j + n > n_rec else slice(j, j + n)
            batches.append(SampleBatch(f"s-{name}", name, rate, t_ns, acc[idx], gyr[idx], seq=r))
        yield r, batches, (r + 1) % per_hour == 0


def soak(wearers: int, hours: float, chunk_s: float, budget_s: float) -> dict[str, Any]:
    which, make = edge_wearer_factory()
    names = [f"w{i:03d}" for i in range(wearers)]
    pipes = [make(name) for name in names]
    rate = simulated_day(1.0, seed=3).rate_hz
    step = round(chunk_s * rate)
    total = round(hours * 3600 * rate)
    samples: list[tuple[float, int]] = []  # (sensor hours done, RSS bytes)
    encoded = 0
    gc.collect()
    rss0 = rss_bytes()
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    done = 0
    stopped_early = False
    for r, batches, hour_done in replayed_rounds(names, hours, chunk_s, DAY_START_NS):
        for name, p, b in zip(names, pipes, batches, strict=True):
            encoded += _encode(name, p.feed(b))
        done = min(total, (r + 1) * step)
        if hour_done or done == total:
            gc.collect()
            samples.append((done / rate / 3600, rss_bytes()))
        if budget_s > 0 and time.process_time() - cpu_start > budget_s and done < total:
            stopped_early = True
            gc.collect()
            samples.append((done / rate / 3600, rss_bytes()))
            break
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    first_h = samples[0][1] if samples else rss0
    end = samples[-1][1] if samples else rss0
    return {
        "pipeline": which,
        "wearers": wearers,
        "hours_planned": hours,
        "hours_done": done / rate / 3600,
        "stopped_early": stopped_early,
        "chunk_s": chunk_s,
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_before_bytes": rss0,
        "rss_after_first_hour_bytes": first_h,
        "rss_end_bytes": end,
        "rss_peak_bytes": max((s[1] for s in samples), default=rss0),
        "growth_vs_first_hour": (end - first_h) / first_h,
        "rss_by_hour": samples,
        "encoded_bytes": encoded,
        "sensor_s_per_cpu_s": wearers * done / rate / cpu if cpu > 0 else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    ap.add_argument("--wearers", type=int, default=50)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--chunk-s", type=float, default=60.0)
    ap.add_argument(
        "--budget-s", type=float, default=0.0, help="stop after this much CPU time (0: none)"
    )
    a = ap.parse_args()
    json.dump(soak(a.wearers, a.hours, a.chunk_s, a.budget_s), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

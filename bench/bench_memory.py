"""Memory a gateway spends per wearer, and whether it grows over a day.

1. ``memory.state_per_wearer_live``: bytes of streaming state per wearer
   (edge pipeline: analysis look-ahead and filters, the live nudge timer's
   waiting samples, nudge policies, the day's summary accumulators) after
   10 minutes of streaming, measured with ``tracemalloc`` as the growth of
   traced Python/numpy allocations over the wearers, divided by their
   number. Target <= 128 KiB: the analysis' 64 KiB plus 64 KiB for the edge
   (the live timer's 20-s block, ~32 KiB at 50 Hz; the accumulators, at most
   ~24 KiB). Side by side: what ``WearerAnalyzer.state_nbytes`` reports for
   the analysis part.
2. ``memory.state_per_wearer_2h``: the same over the second worn hour (the
   first with ``--quick``), sampled every 10 minutes and averaged (the
   20-s sample blocks are at a different fill each time); the note gives
   the trend per worn hour, which says whether per-wearer memory is
   bounded (it was ~125 KiB per hour while the day's epochs were kept for
   the daily summary).
3. ``memory.daily_accumulator_per_wearer``: what
   ``analysis.metrics.DailyAccumulator.state_nbytes`` reports at that point
   (angle histograms over the angles seen, EVA table, waiting block, one
   float per sitting bout). Target <= 24 KiB (bounded by construction).
4. ``memory.rss_growth_24h``: resident-set growth of a separate process
   running 50 wearers' pipelines over an accelerated day (``bench.soak``),
   from the end of the first hour to the end. Target <= 5 %.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import subprocess
import sys
import tracemalloc
from typing import Any

import numpy as np

from analysis.contracts import SampleBatch
from bench.bench_pipeline import DAY_START_NS, edge_wearer_factory
from bench.common import Entry, sample_batches, simulated_day

KIB = 1024


def _analysis_nbytes(w: Any) -> int:
    an = getattr(w, "analyzer", None)
    return int(an.state_nbytes()) if an is not None else 0


def _accumulator_nbytes(w: Any) -> int:
    acc = getattr(w, "_day_acc", None)
    return int(acc.state_nbytes()) if acc is not None else 0


def bench_state(quick: bool) -> list[Entry]:
    # tracemalloc slows the analysis several-fold: few wearers, a part of the day
    # (the note gives the change per worn hour: ~0 when the state is bounded)
    n_wearers = 2
    hours = 1.0 if quick else 2.0
    live_s = 600
    rec = simulated_day(hours, seed=2)
    which, make = edge_wearer_factory()
    day_s = int(len(rec.time_s) / rec.rate_hz)

    def feeds(i: int, first_s: float, last_s: float) -> list[SampleBatch]:
        # cheap 15-s batches (the commit block), then the last minute as the
        # collector's 1-s batches, so the carried state is what a live stream holds
        kw: dict[str, Any] = {"sensor": f"s{i}", "wearer": f"w{i}"}
        start = DAY_START_NS + i * 7 * 10**9
        return [
            *sample_batches(rec, start, 15.0, first_s=first_s, last_s=last_s - 60, **kw),
            *sample_batches(rec, start, 1.0, first_s=last_s - 60, last_s=last_s, **kw),
        ]

    # the state is sampled every 10 min: the two 20-s sample blocks (analysis,
    # live nudge timer) are at a different fill each time (+-15 KiB), so the
    # end value is the mean over the last hour and the trend a fit over all
    step_s = 600
    marks = list(range(live_s, day_s + 1, step_s))
    parts = [[feeds(i, a, b) for i in range(n_wearers)] for a, b in itertools.pairwise([0, *marks])]
    warm = make("warm-up")  # imports, model tables and caches: not per-wearer state
    for b in feeds(n_wearers, 0, 120):
        warm.feed(b)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        wearers = [make(f"w{i}") for i in range(n_wearers)]

        def feed_all(group: list[Any], parts: list[list[SampleBatch]]) -> tuple[float, float]:
            """Feed each wearer its part; traced and self-reported bytes per wearer."""
            for w, f in zip(group, parts, strict=True):
                for b in f:
                    w.feed(b)
            gc.collect()
            traced = (tracemalloc.get_traced_memory()[0] - base) / n_wearers
            return traced, sum(_analysis_nbytes(w) for w in group) / n_wearers

        got = [feed_all(wearers, p) for p in parts]
        acc = max(_accumulator_nbytes(w) for w in wearers)
    finally:
        tracemalloc.stop()
    del wearers
    note = f"{which}; tracemalloc over {n_wearers} wearers"
    traced = np.array([g[0] for g in got])
    t_h = np.array(marks) / 3600.0
    live, live_an = got[0]
    last_hour = t_h >= t_h[-1] - 1.0
    end, end_an = float(traced[last_hour].mean()), got[-1][1]
    slope = float(np.polyfit(t_h, traced, 1)[0]) if len(marks) > 2 else float("nan")
    return [
        Entry(
            "memory.analysis_state_per_wearer",
            max(live_an, end_an) / KIB,
            "KiB",
            target="<= 64 KiB",
            ok=max(live_an, end_an) <= 64 * KIB,
            note="WearerAnalyzer.state_nbytes: the streaming analysis' carried arrays "
            "(filters, look-ahead, live sample buffer), the larger of after "
            f"{live_s} s and after {day_s} s",
        ),
        Entry(
            "memory.state_per_wearer_live",
            live / KIB,
            "KiB",
            "WearerAnalyzer.state_nbytes (analysis arrays only)",
            live_an / KIB,
            live_an / live if live else None,
            "<= 128 KiB",
            live <= 128 * KIB,
            note + f", after {live_s} s streamed",
        ),
        Entry(
            f"memory.state_per_wearer_{hours:g}h",
            end / KIB,
            "KiB",
            "WearerAnalyzer.state_nbytes (analysis arrays only)",
            end_an / KIB,
            end_an / end if end else None,
            "<= 128 KiB",
            end <= 128 * KIB,
            note + f", mean of {int(last_hour.sum())} samples (every {step_s} s) over the "
            f"last worn hour of {day_s} s, range {traced[last_hour].min() / KIB:.0f}-"
            f"{traced[last_hour].max() / KIB:.0f} KiB (daily accumulators included); "
            f"trend over {live_s}-{day_s} s: {slope / KIB:+.1f} KiB per worn hour",
        ),
        Entry(
            "memory.daily_accumulator_per_wearer",
            acc / KIB,
            "KiB",
            target="<= 24 KiB",
            ok=acc <= 24 * KIB,
            note=f"DailyAccumulator.state_nbytes after {day_s} s worn (histograms of the "
            "angles seen at 0.1 deg, EVA table, waiting block, sitting bout lengths)",
        ),
    ]


def bench_rss(quick: bool) -> Entry:
    wearers = 5 if quick else 50
    hours = 2.0 if quick else 24.0
    budget_s = 60.0 if quick else 90.0
    cmd = [
        sys.executable,
        "-m",
        "bench.soak",
        "--wearers",
        str(wearers),
        "--hours",
        str(hours),
        "--chunk-s",
        "60",
        "--budget-s",
        str(budget_s),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=True, timeout=budget_s * 4 + 300, env=os.environ
    )
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = float(r["growth_vs_first_hour"])
    done = float(r["hours_done"])
    mib = 1024 * 1024
    note = (
        f"{r['pipeline']} + line-protocol encoding, {wearers} wearers x {done:.1f} of "
        f"{hours:g} sensor hours in {r['cpu_s']:.0f} CPU s "
        f"({r['sensor_s_per_cpu_s']:.0f} sensor-s per CPU s); RSS "
        f"{r['rss_after_first_hour_bytes'] / mib:.0f} MiB after 1 h, "
        f"peak {r['rss_peak_bytes'] / mib:.0f}, end {r['rss_end_bytes'] / mib:.0f} MiB"
    )
    if r["stopped_early"]:
        note += f"; stopped at the {budget_s:.0f}-CPU-s budget"
    return Entry(
        f"memory.rss_growth_{hours:g}h_{wearers}_wearers",
        100.0 * growth,
        "%",
        target="<= 5 % over the whole day",
        ok=growth <= 0.05 and not r["stopped_early"],
        note=note,
    )


def run(quick: bool) -> list[Entry]:
    return [*bench_state(quick), bench_rss(quick)]

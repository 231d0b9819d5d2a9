"""The analysis hot paths a gateway runs: one wearer's day offline, many wearers live.

1. ``pipeline.batch_8h_day_vs_skdh``: a simulated 8-hour day at 50 Hz (1.44 M samples,
   accelerometer + gyroscope) through the whole offline pipeline
   (``analysis.stream.analyze_batch`` + ``analysis.metrics.daily_summary``),
   target <= 1 s. Side by side on the same samples: scikit-digital-health
   (skdh) doing the comparable subset of what we compute, namely

   * day windowing (``GetDayWindowIndices``),
   * non-wear detection (``AccelThresholdWearDetection``; ours: non-wear epochs),
   * per-1-s-epoch activity levels with time in level, bouts and sedentary
     fragmentation (``ActivityLevelClassification`` restricted to
     ``TotalIntensityTime``, ``BoutIntensityTime`` and
     ``FragmentationEndpoints("sed")``; ours: 1-s activity classes, bouts,
     sitting-bout distribution),
   * sit-to-stand transitions (``Sit2Stand``; ours: transition events).

   skdh uses the accelerometer only and does not classify posture (sit /
   stand / lie), trunk angles, static periods, APDF or EVA; we do all of
   that too, so the ratio (skdh seconds / ours) understates our advantage.
   skdh's experimental endpoints (DFA, entropies, signal features) are off:
   we compute nothing comparable.

2. ``pipeline.stream_capacity_1s``: how many 50-Hz wearer-streams one core
   analyses in real time when each arrives as 1-s batches (the collector's
   cadence), through the edge pipeline per wearer (streaming analysis +
   nudge policy + the day's epochs). Target >= 2000. Side by side: the same
   wearers' seconds fed as 15-s batches (the analysis' commit block: epochs
   are only decided once per block, so buffering the collector's 1-s
   batches up to it delays no decision and divides the per-call overhead).

Times are CPU seconds of this process (``time.process_time``), one core:
the gateway's question is how much of a core the work takes, and on a
shared machine wall time also counts waiting for a core.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from analysis.contracts import SampleBatch
from analysis.metrics import daily_summary
from analysis.stream import analyze_batch
from bench.common import Entry, best_cpu_of, sample_batches, simulated_day
from firmware_sim.clock import DEFAULT_START_NS

DAY_START_NS = DEFAULT_START_NS  # Monday 08:00 UTC, inside default working hours
DATE = dt.datetime.fromtimestamp(DAY_START_NS / 1e9, tz=dt.UTC).date().isoformat()


def edge_wearer_factory() -> tuple[str, Callable[[str], Any]]:
    """What the edge runs per wearer, and its name (for the benchmark notes).

    ``postmon.pipeline.WearerPipeline`` (analysis + nudge policy + the day's
    epochs for the daily summary) where it exists; otherwise the same three
    parts assembled here.
    """
    try:
        from postmon.pipeline import WearerPipeline
    except ImportError:
        return "WearerAnalyzer + NudgePolicy + day epochs", _AssembledWearer

    def make(wearer: str) -> Any:
        return WearerPipeline("clinic-a", wearer, f"s-{wearer}", tz=dt.UTC)

    return "postmon.pipeline.WearerPipeline", make


class _AssembledWearer:
    """Streaming analysis, nudge policy and the day's epochs of one wearer."""

    def __init__(self, wearer: str) -> None:
        from analysis.nudge import NudgePolicy
        from analysis.stream import WearerAnalyzer

        self.analyzer = WearerAnalyzer()
        self.policy = NudgePolicy(wearer, tz=dt.UTC)
        self.day: list[Any] = []

    def feed(self, batch: SampleBatch) -> object:
        out = self.analyzer.feed(batch)
        if len(out.epochs):
            self.policy.feed(out.epochs)
            self.day.append(out.epochs)
        return out


def _whole(rec: Any, start_ns: int) -> SampleBatch:
    (b,) = sample_batches(rec, start_ns, chunk_s=len(rec.time_s) / rec.rate_hz + 1)
    return b


def _ours(batch: SampleBatch) -> tuple[int, int]:
    out = analyze_batch(batch)
    daily_summary(out.epochs, out.events, DATE)
    return len(out.epochs), len(out.events)


def _skdh_steps(rec: Any) -> dict[str, float]:
    """Seconds per skdh step on the same day (accelerometer only)."""
    import warnings

    import skdh
    from skdh.activity import endpoints as ept

    kw: dict[str, Any] = {
        "time": DAY_START_NS / 1e9 + rec.time_s,
        "accel": rec.accel_g,
        "fs": rec.rate_hz,
    }
    act = skdh.activity.ActivityLevelClassification(
        short_wlen=1,  # our epochs are 1 s
        cutpoints="migueles_wrist_adult",
        day_window=(0, 24),
        min_wear_time=1,  # the default (10 h) would skip an 8-h day entirely
    )
    lv = act.act_levels
    act.wake_endpoints = (
        [ept.TotalIntensityTime(x, act.wlen, act.cutpoints, state="wake") for x in lv]
        + [
            ept.BoutIntensityTime(
                x, act.blens, act.boutcrit, act.boutmetric, act.closedbout, act.cutpoints
            )
            for x in lv
        ]
        + [ept.FragmentationEndpoints("sed", cutpoints=act.cutpoints)]
    )
    act.sleep_endpoints = []
    steps: list[tuple[str, Any]] = [
        ("days", skdh.preprocessing.GetDayWindowIndices(bases=0, periods=24)),
        # the set-up rule (non-wear before a device is put on, for multi-day
        # recordings) discards a recording shorter than 3 h entirely
        ("wear", skdh.preprocessing.AccelThresholdWearDetection(apply_setup_criteria=False)),
        ("activity", act),
        ("sit2stand", skdh.sit2stand.Sit2Stand()),
    ]
    times: dict[str, float] = {}
    with warnings.catch_warnings():
        # skdh warns about missing sleep windows and divides by zero in wear
        # detection on a day without non-wear; neither changes the timing
        warnings.simplefilter("ignore")
        for name, proc in steps:
            t0 = time.process_time()
            res = proc.predict(**kw)
            times[name] = time.process_time() - t0
            if name in ("days", "wear"):
                kw.update(res)
            if name == "activity" and not np.isfinite(res["wake sed 1s epoch [min]"][0]):
                raise RuntimeError("skdh computed no activity endpoints for the day")
    return times


def bench_batch_day(quick: bool) -> Entry:
    hours = 1.0 if quick else 8.0
    rec = simulated_day(hours)
    batch = _whole(rec, DAY_START_NS)
    n_epochs, n_events = _ours(batch)  # warm-up (imports, model load), and a sanity check
    if n_epochs != round(hours * 3600):
        raise RuntimeError(f"analysis returned {n_epochs} epochs for {hours} h")
    ours = best_cpu_of(lambda: _ours(batch), 1 if quick else 2)
    try:
        steps = _skdh_steps(rec)
    except ImportError as exc:
        return Entry(
            f"pipeline.batch_{hours:g}h_day_vs_skdh",
            ours,
            "CPU s",
            target="<= 1 s per 8 h",
            ok=ours * 8.0 / hours <= 1.0,
            note=f"scikit-digital-health not installed ({exc}): pip install -e '.[bench]'",
        )
    theirs = sum(steps.values())
    detail = ", ".join(f"{k} {v:.2f} s" for k, v in steps.items())
    return Entry(
        f"pipeline.batch_{hours:g}h_day_vs_skdh",
        ours,
        "CPU s",
        "scikit-digital-health subset (wear, 1-s activity levels + bouts, sit2stand)",
        theirs,
        theirs / ours,
        "<= 1 s per 8 h; faster than skdh",
        ours * 8.0 / hours <= 1.0 and theirs > ours,
        f"{len(batch)} samples 50 Hz acc+gyro -> {n_epochs} epochs, {n_events} events, "
        f"daily summary; skdh steps: {detail}",
    )


def bench_stream_capacity(quick: bool) -> Entry:
    n_wearers = 2 if quick else 4
    warm_s, live_s = 120, 60 if quick else 600
    rec = simulated_day(1.0 if quick else 8.0)
    which, make = edge_wearer_factory()
    streams = []
    for i in range(n_wearers):
        # each wearer starts at another point of the day: different activities
        first = (i * 1789) % int(len(rec.time_s) / rec.rate_hz - warm_s - live_s)
        kw: dict[str, Any] = {"sensor": f"s{i}", "wearer": f"w{i}", "first_s": first}
        warm = sample_batches(rec, DAY_START_NS, 60.0, last_s=first + warm_s, **kw)
        kw["first_s"] = first + warm_s
        live = sample_batches(rec, DAY_START_NS, 1.0, last_s=first + warm_s + live_s, **kw)
        block = sample_batches(
            rec, DAY_START_NS, 15.0, last_s=first + warm_s + live_s, **kw
        )  # the same seconds in commit-block batches
        streams.append((f"w{i}", warm, live, block))

    def run(blocks: bool) -> float:
        wearers = []
        for name, warm, _, _ in streams:
            w = make(name)
            for b in warm:  # past the decision lag: commits happen while timed
                w.feed(b)
            wearers.append(w)
        gc.collect()
        t0 = time.process_time()
        j = 3 if blocks else 2
        for k in range(len(streams[0][j])):  # round robin, as a gateway sees them
            for w, st in zip(wearers, streams, strict=True):
                w.feed(st[j][k])
        return time.process_time() - t0

    stream_t = min(run(False) for _ in range(1 if quick else 2))
    batch_t = min(run(True) for _ in range(1 if quick else 2))
    sensor_s = n_wearers * live_s
    cap, floor = sensor_s / stream_t, sensor_s / batch_t
    return Entry(
        "pipeline.stream_capacity_1s",
        cap,
        "wearer-streams/core",
        "same seconds fed as 15-s batches (the commit block)",
        floor,
        cap / floor,
        ">= 2000 streams at 50 Hz",
        cap >= 2000,
        f"{which}; {n_wearers} wearers x {live_s} 1-s batches round robin, after {warm_s} s "
        f"of warm-up; {1e3 * stream_t / sensor_s:.2f} ms per 1-s batch",
    )


def run(quick: bool) -> list[Entry]:
    return [bench_batch_day(quick), bench_stream_capacity(quick)]

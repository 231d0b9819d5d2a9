"""Analysis benchmarks: a working day offline, live wearers per core, state size.

1. ``offline_8h``: a simulated 8-hour day at 50 Hz (1.44 M samples, accel +
   gyro, desk-worker profile, random mounting) through the whole offline
   pipeline (resampling, gravity fusion, features, transition model, HMM
   decoding, angles, events, daily summary). Side by side in the same run:
   scikit-digital-health (skdh, optional ``bench`` extra) doing the comparable
   subset on the same samples: accelerometer-threshold wear detection plus
   ``ActivityLevelClassification`` (per-epoch ENMO, activity levels, bouts).
   skdh has no posture, transitions or trunk angles, so this is the closest
   like-for-like step set. ratio = skdh time / our time.
2. ``stream_capacity``: wearer streams at 50 Hz fed 1-s batches (the live
   service's shape); how many one core keeps up with in real time.
3. ``state_bytes``: bytes of streaming state per wearer (maximum over a stream).
"""

from __future__ import annotations

import time

import numpy as np

from analysis.contracts import NS_PER_S, SampleBatch
from analysis.metrics import daily_summary
from analysis.settings import AnalysisSettings
from analysis.stream import AnalysisOutput, WearerAnalyzer, analyze_batch
from bench.common import Entry, best_of

RATE_HZ = 50.0


def _day(hours: float, seed: int = 7) -> SampleBatch:
    from firmware_sim.simulator import simulate

    rec = simulate(
        "desk_worker",
        hours * 3600.0,
        seed=seed,
        placement="lower",
        mounting="random",
        rate_hz=RATE_HZ,
        device="metamotion",
    )
    t_ns = 1_700_000_000 * NS_PER_S + np.round(rec.time_s * NS_PER_S).astype(np.int64)
    return SampleBatch("bench", "bench", RATE_HZ, t_ns, rec.accel_g, rec.gyro_dps)


def _ours(batch: SampleBatch) -> None:
    out = analyze_batch(batch, AnalysisSettings.offline())
    daily_summary(out.epochs, out.events, "2023-11-14", AnalysisSettings.offline())


def _skdh(batch: SampleBatch) -> None:
    from skdh.activity import ActivityLevelClassification
    from skdh.preprocessing import AccelThresholdWearDetection

    t = batch.t_ns / 1e9
    # apply_setup_criteria=False: skdh's set-up rule discards recordings under 3 h;
    # min_wear_time=1: the default (10 h) skips an 8-h day, so nothing would be computed
    wear = AccelThresholdWearDetection(apply_setup_criteria=False).predict(
        time=t, accel=batch.accel_g, fs=RATE_HZ
    )
    ActivityLevelClassification(cutpoints="migueles_wrist_adult", min_wear_time=1).predict(
        time=t, accel=batch.accel_g, fs=RATE_HZ, wear=wear["wear"]
    )


def _offline(quick: bool) -> list[Entry]:
    hours = 1.0 if quick else 8.0
    batch = _day(hours)
    n = len(batch)
    ours_s = best_of(lambda: _ours(batch), repeat=2 if quick else 3)
    note = f"{n} samples ({hours:g} h at 50 Hz, accel+gyro)"
    try:
        import skdh  # noqa: F401

        peer_s: float | None = best_of(lambda: _skdh(batch), repeat=2 if quick else 3)
    except ImportError:
        peer_s = None
        note += "; skdh not installed (pip install -e '.[bench]')"
    target_s = hours / 8.0
    return [
        Entry(
            name=f"analysis.offline_{hours:g}h",
            value=ours_s,
            unit="s",
            baseline_name="skdh wear+activity-level",
            baseline_value=peer_s,
            ratio=None if peer_s is None else peer_s / ours_s,
            target=f"<= {target_s:g} s",
            ok=ours_s <= target_s,
            note=note,
        )
    ]


def _streaming(quick: bool) -> list[Entry]:
    n_wearers = 50 if quick else 200
    seconds = 120 if quick else 360
    day = _day(seconds / 3600.0 + 0.02, seed=11)
    per = int(RATE_HZ)
    analyzers = [WearerAnalyzer() for _ in range(n_wearers)]
    # warm up: fill each wearer's look-ahead so commits happen while timed
    warm = min(len(day) // per - seconds // 2, 100)
    batches = [
        SampleBatch(
            "s",
            "w",
            RATE_HZ,
            day.t_ns[k * per : (k + 1) * per],
            day.accel_g[k * per : (k + 1) * per],
            None if day.gyro_dps is None else day.gyro_dps[k * per : (k + 1) * per],
        )
        for k in range(len(day) // per)
    ]
    for k in range(warm):
        for an in analyzers:
            an.feed(batches[k])
    t0 = time.perf_counter()
    fed = 0
    sizes = []
    for k in range(warm, min(len(batches), warm + seconds)):
        for an in analyzers:
            an.feed(batches[k])
            fed += 1
    elapsed = time.perf_counter() - t0
    for an in analyzers[:5]:
        sizes.append(an.state_nbytes())
    per_stream_s = elapsed / fed  # wall time per wearer-second
    capacity = 1.0 / per_stream_s
    # state size over a longer single stream (maximum)
    one = WearerAnalyzer()
    max_state = 0
    parts: list[AnalysisOutput] = []
    for b in batches:
        parts.append(one.feed(b))
        max_state = max(max_state, one.state_nbytes())
    return [
        Entry(
            name="analysis.stream_capacity",
            value=capacity,
            unit="wearers/core",
            target=">= 2000",
            ok=capacity >= 2000,
            note=f"{n_wearers} wearers x {seconds} s of 1-s batches at 50 Hz; "
            f"{per_stream_s * 1e6:.0f} us per wearer-second",
        ),
        Entry(
            name="analysis.state_bytes",
            value=float(max_state),
            unit="bytes/wearer",
            target="<= 65536",
            ok=max_state <= 65536,
            note="maximum of WearerAnalyzer.state_nbytes() over a stream (live settings)",
        ),
    ]


def run(quick: bool) -> list[Entry]:
    return _offline(quick) + _streaming(quick)

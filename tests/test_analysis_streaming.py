"""Streaming in chunks of any size equals one batch call."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.contracts import SampleBatch
from analysis.settings import AnalysisSettings
from analysis.stream import AnalysisOutput, WearerAnalyzer, analyze_batch
from tests.analysis_signals import day_signal, rot_x, rot_z

SETTINGS = AnalysisSettings(decision_lag_s=30, commit_block_s=7, nonwear_min_s=20)
BATCH, _ = day_signal(rate_hz=26.0, mount=rot_z(40) @ rot_x(110), seed=3)
WHOLE = analyze_batch(BATCH, SETTINGS)


def _chunked(cuts: list[int]) -> AnalysisOutput:
    an = WearerAnalyzer(SETTINGS)
    parts = []
    edges = [0, *sorted(set(cuts)), len(BATCH)]
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        g = BATCH.gyro_dps[a:b] if BATCH.gyro_dps is not None else None
        parts.append(
            an.feed(SampleBatch("s", "w", BATCH.rate_hz, BATCH.t_ns[a:b], BATCH.accel_g[a:b], g))
        )
    parts.append(an.finish())
    return AnalysisOutput.concat(parts)


def _assert_same(a: AnalysisOutput, b: AnalysisOutput) -> None:
    assert a.epochs.size == b.epochs.size
    np.testing.assert_array_equal(a.epochs["time_ns"], b.epochs["time_ns"])
    np.testing.assert_array_equal(a.epochs["activity"], b.epochs["activity"])
    np.testing.assert_array_equal(a.epochs["static"], b.epochs["static"])
    for f in ("inclination_deg", "flexion_deg", "lateral_deg", "intensity_g"):
        np.testing.assert_allclose(a.epochs[f], b.epochs[f], rtol=0, atol=1e-4, equal_nan=True)
    assert sorted((e.time_ns, e.kind, e.duration_s) for e in a.events) == sorted(
        (e.time_ns, e.kind, e.duration_s) for e in b.events
    )


def test_whole_recording_has_one_epoch_per_second() -> None:
    dur_s = (BATCH.t_ns[-1] - BATCH.t_ns[0]) / 1e9
    assert WHOLE.epochs.size == int(np.ceil(dur_s + 1e-9)) or WHOLE.epochs.size == int(dur_s) + 1
    assert (np.diff(WHOLE.epochs["time_ns"]) == 1_000_000_000).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=len(BATCH) - 1), max_size=25))
def test_random_chunkings_equal_batch(cuts: list[int]) -> None:
    _assert_same(_chunked(cuts), WHOLE)


def test_one_second_batches_equal_batch() -> None:
    step = int(BATCH.rate_hz)
    _assert_same(_chunked(list(range(step, len(BATCH), step))), WHOLE)


def test_state_is_bounded() -> None:
    an = WearerAnalyzer()
    big, _ = day_signal(rate_hz=50.0, seed=1)
    sizes = []
    step = 50
    for a in range(0, len(big), step):
        b = a + step
        g = big.gyro_dps[a:b] if big.gyro_dps is not None else None
        an.feed(SampleBatch("s", "w", 50.0, big.t_ns[a:b], big.accel_g[a:b], g))
        sizes.append(an.state_nbytes())
    assert max(sizes) <= 64 * 1024
    # no growth with recording length: the second half needs no more than the first
    half = len(sizes) // 2
    assert max(sizes[half:]) <= max(sizes[:half]) * 1.05

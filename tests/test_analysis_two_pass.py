"""Two passes over a whole recording: the second starts from what the first learnt.

Scored against the simulator's ground truth (``firmware_sim``): an office
day on the upper back, which begins with the wearer reclined at the desk
before any transition or forward lean has shown the analysis how this
wearer sits and which way is forward.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from analysis.contracts import NS_PER_S, Activity, SampleBatch
from analysis.settings import AnalysisSettings
from analysis.stream import AnalysisOutput, WearerAnalyzer, analyze_batch, learn_wearer

RATE = 50.0


@cache
def _office_morning() -> tuple[SampleBatch, list[tuple[int, int]], np.ndarray]:
    from firmware_sim.simulator import simulate

    rec = simulate(
        "desk_worker", 1200.0, seed=1000, placement="upper", rate_hz=RATE, device="witmotion"
    )
    t = np.round(rec.time_s * NS_PER_S).astype(np.int64)
    batch = SampleBatch("s", "w", RATE, t, rec.accel_g, rec.gyro_dps)
    cal = [(round(rec.calibration_s[0] * NS_PER_S), round(rec.calibration_s[1] * NS_PER_S))]
    return batch, cal, np.asarray(rec.truth.activity)


def _first_sitting_bout(truth: np.ndarray) -> slice:
    sit = np.flatnonzero(truth == int(Activity.SITTING))
    a = int(sit[0])
    b = a + int(np.argmax(truth[a:] != int(Activity.SITTING)))
    return slice(a, b)


def test_second_pass_judges_the_first_minutes_with_what_the_day_taught() -> None:
    batch, cal, truth = _office_morning()
    bout = _first_sitting_bout(truth)
    assert bout.stop - bout.start > 300  # reclined at the desk for minutes first
    s = AnalysisSettings.offline()
    one = analyze_batch(batch, s, calibration_ns=cal)
    two = analyze_batch(batch, s, calibration_ns=cal, learn_first=True)
    for out in (one, two):
        assert out.epochs.size >= truth.size - 1
    # one pass: before the first forward lean the sign of flexion is unknown
    # (for most of the bout), and the reclined sitter looks as upright as
    # someone standing
    assert np.isnan(one.epochs["flexion_deg"][bout]).mean() > 0.5
    assert (one.epochs["activity"][bout] == int(Activity.SITTING)).mean() < 0.5
    # two passes: the forward direction and this wearer's sitting are known
    assert np.isfinite(two.epochs["flexion_deg"][bout]).all()
    assert (two.epochs["activity"][bout] == int(Activity.SITTING)).mean() > 0.75
    n = min(truth.size, two.epochs.size)
    acc_one = (one.epochs["activity"][:n] == truth[:n]).mean()
    acc_two = (two.epochs["activity"][:n] == truth[:n]).mean()
    assert acc_two > 0.9 > acc_one


@cache
def _with_nonwear() -> SampleBatch:
    # the same simulated office day, a stretch with the sensor left on the
    # desk for minutes between two wear periods
    from firmware_sim.simulator import simulate

    rec = simulate(
        "desk_worker", 7200.0, seed=1000, placement="upper", rate_hz=RATE, device="witmotion"
    )
    k0, k1 = int(3400 * RATE), int(4300 * RATE)
    t = np.round(rec.time_s[k0:k1] * NS_PER_S).astype(np.int64)
    return SampleBatch("s", "w", RATE, t, rec.accel_g[k0:k1], rec.gyro_dps[k0:k1])


def test_knowledge_is_kept_per_wear_period_and_streaming_equals_batch() -> None:
    batch = _with_nonwear()
    s = AnalysisSettings(decision_lag_s=60, commit_block_s=11, nonwear_min_s=30)
    know = learn_wearer(batch, s)
    # one entry per non-wear block and one for the end; the last wear period's
    # reference was learnt after the sensor came back
    assert len(know) >= 2
    with pytest.raises(ValueError, match="not both"):
        analyze_batch(batch, s, learn_first=True, knowledge=know)
    assert know[-1].reference.reference() is not None
    whole = analyze_batch(batch, s, knowledge=know)
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.choice(np.arange(1, len(batch)), size=300, replace=False)).tolist()
    an = WearerAnalyzer(s, knowledge=know)
    parts = []
    for a, b in zip([0, *cuts], [*cuts, len(batch)], strict=True):
        g = batch.gyro_dps[a:b] if batch.gyro_dps is not None else None
        parts.append(an.feed(SampleBatch("s", "w", RATE, batch.t_ns[a:b], batch.accel_g[a:b], g)))
    parts.append(an.finish())
    got = AnalysisOutput.concat(parts)
    np.testing.assert_array_equal(got.epochs["time_ns"], whole.epochs["time_ns"])
    np.testing.assert_array_equal(got.epochs["activity"], whole.epochs["activity"])
    np.testing.assert_allclose(
        got.epochs["flexion_deg"], whole.epochs["flexion_deg"], atol=1e-4, equal_nan=True
    )
    assert [(e.time_ns, e.kind) for e in got.events] == [(e.time_ns, e.kind) for e in whole.events]


def test_learned_needs_keep_knowledge_and_a_finished_stream() -> None:
    batch = _office_morning()[0]
    head = SampleBatch(
        "s", "w", RATE, batch.t_ns[:3000], batch.accel_g[:3000], batch.gyro_dps[:3000]
    )
    an = WearerAnalyzer(AnalysisSettings(), keep_knowledge=True)
    an.feed(head)
    with pytest.raises(RuntimeError, match="finished"):
        an.learned()
    an.finish()
    assert len(an.learned()) == 1
    plain = WearerAnalyzer(AnalysisSettings())
    plain.feed(head)
    plain.finish()
    with pytest.raises(RuntimeError, match="keep_knowledge"):
        plain.learned()

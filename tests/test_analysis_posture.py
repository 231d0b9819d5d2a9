"""The wearer's seated direction, learned online, and what the decoder does with it."""

from __future__ import annotations

import numpy as np

from analysis.activity import SIT, STAND, angle_loglik
from analysis.contracts import NS_PER_S, Activity, SampleBatch
from analysis.model_params import MODEL
from analysis.orientation import (
    SEATED_KERNEL_DEG,
    SEATED_SAMPLES,
    SEATED_SAMPLES_MIN,
    SeatedDirection,
)
from analysis.settings import AnalysisSettings
from analysis.stream import AnalysisOutput, WearerAnalyzer, analyze_batch


def _unit_at(flexion_deg: float, lateral_deg: float = 0.0) -> np.ndarray:
    """Up direction of a trunk flexed forward / bent sideways (body frame, sensor = body)."""
    f, lat = np.radians(flexion_deg), np.radians(lateral_deg)
    v = np.array([-np.sin(f) * np.cos(lat), np.sin(lat), np.cos(f) * np.cos(lat)])
    return v / np.linalg.norm(v)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def test_seated_direction_needs_enough_stretches_and_resets() -> None:
    sd = SeatedDirection()
    assert sd.model() is None
    for k in range(SEATED_SAMPLES_MIN):
        assert sd.model() is None
        sd.add(_unit_at(-20.0 + k)[None, :])
    m = sd.model()
    assert m is not None
    assert m[0].shape == (SEATED_SAMPLES_MIN, 3)
    assert m[1] == SEATED_KERNEL_DEG
    sd.add(np.full((1, 3), np.nan))  # no sample
    assert sd.n == SEATED_SAMPLES_MIN
    sd.reset()
    assert sd.model() is None
    assert sd.n == 0


def test_seated_direction_keeps_the_most_recent_stretches() -> None:
    sd = SeatedDirection()
    sd.add(np.array([_unit_at(30.0)] * SEATED_SAMPLES))  # an old habit
    new = [_unit_at(-25.0 + k) for k in range(SEATED_SAMPLES)]
    sd.add(np.array(new))
    m = sd.model()
    assert m is not None
    assert sorted(map(tuple, m[0])) == sorted(map(tuple, np.array(new)))
    assert sd.state_bytes < 1024


def test_learned_sitting_explains_sitting_and_not_a_forward_bend() -> None:
    # a lower-back wearer: sitting tilts the pelvis 25° backwards at the desk,
    # 40° on the sofa
    up = _unit_at(0.0)
    seated = (np.array([_unit_at(-25.0), _unit_at(-40.0, 3.0)]), SEATED_KERNEL_DEG)
    g = np.array([_unit_at(-27.0, 2.0), _unit_at(50.0), _unit_at(2.0), _unit_at(-41.0)])
    incl = np.array([_angle(x, up) for x in g])
    ll = angle_loglik(MODEL, incl, g, seated)
    assert ll[0, SIT] > ll[0, STAND]  # near the wearer's desk sitting: sitting
    assert ll[3, SIT] > ll[3, STAND]  # ... and near the sofa sitting
    assert ll[1, STAND] > ll[1, SIT]  # far from both, bent forward: standing, bent
    assert ll[2, STAND] > ll[2, SIT]  # upright: standing
    # the kernel density, computed independently for the desk direction
    a = np.array([_angle(g[0], d) for d in seated[0]])
    dens = np.mean(np.exp(-0.5 * (a / SEATED_KERNEL_DEG) ** 2)) / SEATED_KERNEL_DEG
    z = (incl[0] - np.array(MODEL.incl_mean_deg)) / np.array(MODEL.incl_sd_deg)
    others = -0.5 * z**2 - np.log(MODEL.incl_sd_deg)
    others[STAND] = max(others[STAND], np.log(0.2 / 100.0))
    others[SIT] = np.log(dens)
    expect = MODEL.angle_weight * (others - others.max())
    np.testing.assert_allclose(ll[0], expect, rtol=1e-9, atol=1e-12)
    # the shipped inclination model alone reads the 50° bend as sitting
    plain = angle_loglik(MODEL, incl)
    assert plain[1, SIT] > plain[1, STAND]


def test_sensor_left_on_a_desk_does_not_relabel_the_walk_before_it() -> None:
    # A simulated office day (upper back): a walk, then the sensor is taken off
    # and left on the desk for three minutes, then worn again. Its orientation
    # on the desk says nothing about the posture; scored on it, it once pulled
    # the decoder into "sitting" backwards through the whole walk before it.
    from firmware_sim.simulator import simulate

    rec = simulate(
        "desk_worker", 7200.0, seed=1000, placement="upper", rate_hz=100.0, device="metamotion"
    )
    k0, k1 = 3400 * 100, 4300 * 100
    t_ns = np.round(rec.time_s[k0:k1] * NS_PER_S).astype(np.int64)
    batch = SampleBatch("s", "w", 100.0, t_ns, rec.accel_g[k0:k1], rec.gyro_dps[k0:k1])
    out = analyze_batch(batch, AnalysisSettings.offline())
    truth = rec.truth.activity[3400 : 3400 + out.epochs.size]
    walk = truth == int(Activity.WALKING)
    off = truth == int(Activity.NONWEAR)
    assert walk.sum() > 120
    assert off.sum() > 120
    act = out.epochs["activity"]
    assert (act[walk] == int(Activity.WALKING)).mean() > 0.9
    assert (act[off] == int(Activity.NONWEAR)).mean() > 0.9


def test_streaming_equals_batch_while_the_seated_direction_is_learned() -> None:
    from firmware_sim.simulator import simulate

    rec = simulate("delivery_driver", 5400.0, seed=13, placement="lower", rate_hz=20.0)
    t_ns = np.round(rec.time_s * NS_PER_S).astype(np.int64)
    settings = AnalysisSettings()
    whole = WearerAnalyzer(settings)
    out = [whole.feed(SampleBatch("s", "w", 20.0, t_ns, rec.accel_g, rec.gyro_dps))]
    out.append(whole.finish())
    assert whole._seated.n >= SEATED_SAMPLES_MIN  # the learned model was in use
    ref = AnalysisOutput.concat(out)
    rng = np.random.default_rng(4)
    cuts = np.sort(rng.choice(np.arange(1, t_ns.size), size=600, replace=False))
    an = WearerAnalyzer(settings)
    parts = []
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), t_ns.size], strict=True):
        parts.append(
            an.feed(SampleBatch("s", "w", 20.0, t_ns[a:b], rec.accel_g[a:b], rec.gyro_dps[a:b]))
        )
    parts.append(an.finish())
    got = AnalysisOutput.concat(parts)
    np.testing.assert_array_equal(got.epochs["activity"], ref.epochs["activity"])
    np.testing.assert_array_equal(got.epochs["time_ns"], ref.epochs["time_ns"])
    assert [(e.time_ns, e.kind) for e in got.events] == [(e.time_ns, e.kind) for e in ref.events]

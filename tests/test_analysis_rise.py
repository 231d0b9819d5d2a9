"""The vertical rise of a transition window (``analysis.activity.vertical_rise``).

Synthetic IMU signals with a known body trajectory: the sensor at rest, the
body sinking (or rising) along the vertical while the trunk pitches, at rest
again. The accelerometer has a per-axis offset and scale error, so its rest
reading differs between the two orientations, as a cheap sensor's does.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from analysis.activity import WINDOW_EPOCHS, vertical_rise
from analysis.contracts import NS_PER_S, STANDARD_GRAVITY_MS2, SampleBatch
from analysis.settings import AnalysisSettings
from analysis.stream import _nan_features, extract_features

RATE_HZ = 50.0
DURATION_S = 30.0
MOVE_AT_S = 14.0
MOVE_S = 1.5


def _minjerk(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-jerk profile 0 -> 1 on s in [0, 1]: value, d/ds, d2/ds2."""
    s = np.clip(s, 0.0, 1.0)
    return (
        10 * s**3 - 15 * s**4 + 6 * s**5,
        30 * s**2 - 60 * s**3 + 30 * s**4,
        60 * s - 180 * s**2 + 120 * s**3,
    )


def _signal(
    rise_m: float, pitch_deg: float, mounting: Rotation, offset_g: np.ndarray, scale: np.ndarray
) -> SampleBatch:
    t = np.arange(round(DURATION_S * RATE_HZ)) / RATE_HZ
    s = (t - MOVE_AT_S) / MOVE_S
    _, _, dd = _minjerk(s)
    inside = (s > 0) & (s < 1)
    acc_z = np.where(inside, rise_m * dd / MOVE_S**2, 0.0)  # m/s^2, world vertical
    th, dth, _ = _minjerk(s)
    pitch = np.radians(pitch_deg) * th
    rate = np.where(inside, np.radians(pitch_deg) * dth / MOVE_S, 0.0)  # rad/s about world y
    body = Rotation.from_rotvec(np.outer(pitch, [0.0, 1.0, 0.0]))
    world_from_sensor = body * mounting
    f_world = np.zeros((t.size, 3))
    f_world[:, 2] = 1.0 + acc_z / STANDARD_GRAVITY_MS2  # specific force, g
    acc = world_from_sensor.inv().apply(f_world) * scale + offset_g
    w_world = np.zeros((t.size, 3))
    w_world[:, 1] = rate
    gyro = np.degrees(world_from_sensor.inv().apply(w_world))
    t_ns = np.round(t * NS_PER_S).astype(np.int64)
    return SampleBatch("s", "w", RATE_HZ, t_ns, acc, gyro)


def _rise(batch: SampleBatch) -> tuple[np.ndarray, np.ndarray]:
    feat = extract_features(batch, AnalysisSettings.offline())
    w = WINDOW_EPOCHS
    fp = np.concatenate(
        (_nan_features(w, -w * NS_PER_S), feat, _nan_features(w, feat.size * NS_PER_S))
    )
    return vertical_rise(fp, w, w + feat.size)


@pytest.mark.parametrize(
    ("rise_m", "pitch_deg", "seed"),
    [(-0.40, 25.0, 0), (-0.30, -20.0, 1), (0.35, -25.0, 2), (0.45, 10.0, 3)],
)
def test_a_sit_down_or_stand_up_is_measured_despite_offsets(
    rise_m: float, pitch_deg: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mounting = Rotation.random(random_state=rng)
    offset = rng.uniform(-0.015, 0.015, 3)
    scale = 1.0 + rng.uniform(-0.01, 0.01, 3)
    rise, ends = _rise(_signal(rise_m, pitch_deg, mounting, offset, scale))
    mid = int(MOVE_AT_S + 0.5 * MOVE_S)
    # the window centred on the movement spans it with still seconds at both ends
    assert ends[mid] < 0.01
    assert rise[mid] == pytest.approx(rise_m, abs=0.06)
    # far from the movement the body does not move
    assert np.all(np.abs(rise[4:9]) < 0.03)
    assert np.all(np.abs(rise[-9:-4]) < 0.03)


def test_without_the_rest_levels_the_offset_would_pass_for_a_rise() -> None:
    """The check that the rest levels matter: the same pitch with no vertical
    movement, under an offset that differs between the two orientations,
    gives no rise; a plain double integral of it would show decimetres."""
    rng = np.random.default_rng(7)
    mounting = Rotation.random(random_state=rng)
    offset = np.array([0.012, -0.01, 0.015])
    scale = np.array([1.012, 0.99, 1.0])
    batch = _signal(0.0, 30.0, mounting, offset, scale)
    rise, _ = _rise(batch)
    mid = int(MOVE_AT_S + 0.5 * MOVE_S)
    assert abs(rise[mid]) < 0.05
    # the naive integral over the same 5 s, with the rest level taken before only
    feat = extract_features(batch, AnalysisSettings.offline())
    dv = feat["dv_ms"].astype(np.float64)
    before = dv[mid - 4 : mid - 2].mean()
    a = dv[mid - 2 : mid + 3] - before
    naive = float(np.sum(np.cumsum(a) - 0.5 * a))
    assert abs(naive) > 0.1


def test_seconds_without_data_give_no_rise() -> None:
    rng = np.random.default_rng(3)
    feat = extract_features(
        _signal(-0.4, 20.0, Rotation.random(random_state=rng), np.zeros(3), np.ones(3)),
        AnalysisSettings.offline(),
    )
    w = WINDOW_EPOCHS
    fp = np.concatenate(
        (_nan_features(w, -w * NS_PER_S), feat, _nan_features(w, feat.size * NS_PER_S))
    )
    rise, ends = vertical_rise(fp, w, w + feat.size)
    # the first and last WINDOW_EPOCHS seconds have a window reaching past the data
    assert np.isnan(rise[:w]).all()
    assert np.isnan(ends[:w]).all()
    assert np.isnan(rise[-w:]).all()
    assert np.isfinite(rise[w:-w]).all()

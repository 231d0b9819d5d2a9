"""Gravity fusion with a gyroscope: bias learning and body accelerations.

Signals are constructed with a known trunk angle; the truth is computed from
that angle, independently of the analysis.
"""

from __future__ import annotations

import numpy as np

from analysis.contracts import NS_PER_S, SampleBatch
from analysis.settings import AnalysisSettings
from analysis.stream import analyze_batch, extract_features
from tests.analysis_signals import body_to_sensor_up, rot_x, rot_y, rot_z

RATE_HZ = 50.0
MOUNT = rot_z(-50) @ rot_y(25) @ rot_x(100)  # any rotation: nothing may assume one


def _batch(
    flex_deg: np.ndarray, extra_acc_body: np.ndarray | None, bias_dps: np.ndarray, seed: int
) -> SampleBatch:
    """Accelerometer and gyroscope of a trunk flexing by ``flex_deg`` (per sample)."""
    rng = np.random.default_rng(seed)
    n = flex_deg.size
    acc = body_to_sensor_up(flex_deg, MOUNT)
    if extra_acc_body is not None:
        acc = acc + extra_acc_body @ MOUNT
    # flexion is a rotation about the body's left (y) axis
    rate = np.gradient(flex_deg) * RATE_HZ
    gyro = np.stack([np.zeros(n), rate, np.zeros(n)], axis=1) @ MOUNT + bias_dps
    acc += rng.normal(0.0, 0.003, acc.shape)
    gyro += rng.normal(0.0, 0.05, gyro.shape)
    t = 1_700_000_000 * NS_PER_S + np.round(np.arange(n) / RATE_HZ * NS_PER_S).astype(np.int64)
    return SampleBatch("s", "w", RATE_HZ, t, acc, gyro)


def _angle_error_deg(g: np.ndarray, flex_deg: np.ndarray) -> np.ndarray:
    truth = body_to_sensor_up(flex_deg, MOUNT)
    cos = np.einsum("ij,ij->i", g, truth) / np.linalg.norm(g, axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def test_a_fast_bend_is_not_learnt_as_gyroscope_bias() -> None:
    # 90 s upright, a 70° bend within one second, held for 60 s
    r = int(RATE_HZ)
    ramp = 70.0 * (1 - np.cos(np.linspace(0, np.pi, r))) / 2
    flex = np.concatenate((np.zeros(90 * r), ramp, np.full(60 * r, 70.0)))
    bias = np.array([0.8, -1.2, 0.5])  # deg/s, like a cheap MEMS gyroscope
    feats = extract_features(_batch(flex, None, bias, seed=1), AnalysisSettings())
    per_s = flex[: feats.size * r].reshape(-1, r).mean(axis=1)
    err = _angle_error_deg(feats["g"], per_s)
    # still before the bend: the bias has been learnt and removed
    assert err[60:89].max() < 0.5
    # after the bend: a tracker that took the bend for bias (70° / 30 s) would
    # tilt the estimate by ~1.5-2.3° for tens of seconds
    assert err[95:150].max() < 0.6


def test_vehicle_accelerations_neither_tilt_still_angles_nor_break_static() -> None:
    # stand tall (calibration), then sit still at 12° flexion in a moving vehicle
    r = int(RATE_HZ)
    calib_s, drive_s = 20, 300
    flex = np.concatenate((np.zeros(calib_s * r), np.full(drive_s * r, 12.0)))
    t = np.arange(flex.size) / RATE_HZ
    veh = np.zeros((flex.size, 3))
    on = t >= calib_s
    # braking/accelerating and cornering: smooth 0.05-0.08 g over seconds
    veh[on, 0] = 0.06 * np.sin(2 * np.pi * t[on] / 7.0)
    veh[on, 1] = 0.08 * np.sin(2 * np.pi * t[on] / 11.0 + 1.0)
    batch = _batch(flex, veh, np.zeros(3), seed=2)
    calib = [(int(batch.t_ns[0]), int(batch.t_ns[0]) + (calib_s - 5) * NS_PER_S)]
    out = analyze_batch(batch, AnalysisSettings.offline(), calibration_ns=calib)
    ep = out.epochs[calib_s + 10 : calib_s + drive_s - 10]
    incl = ep["inclination_deg"].astype(np.float64)
    assert np.sqrt(np.mean((incl - 12.0) ** 2)) < 1.5
    # an accelerometer-only estimate is off by up to atan(0.1) ~ 5.7° here
    assert np.abs(incl - 12.0).max() < 3.0
    assert ep["static"].mean() > 0.9

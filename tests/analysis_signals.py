"""Constructed IMU signals with known truth, for the analysis tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.contracts import NS_PER_S, SampleBatch

F64 = npt.NDArray[np.float64]


def rot_x(deg: float) -> F64:
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(deg: float) -> F64:
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(deg: float) -> F64:
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def body_to_sensor_up(flexion_deg: F64, mount: F64) -> F64:
    """Measured static acceleration (g) in the sensor frame for a trunk flexed
    forward by ``flexion_deg``; body frame x forward, y left, z up; the sensor
    frame is the body frame rotated by ``mount`` (sensor = mount.T @ body)."""
    th = np.radians(flexion_deg)
    up_body = np.stack([-np.sin(th), np.zeros_like(th), np.cos(th)], axis=1)
    return up_body @ mount  # (mount.T @ v) for each row


def day_signal(
    rate_hz: float = 50.0, mount: F64 | None = None, seed: int = 0, gyro: bool = True
) -> tuple[SampleBatch, dict[str, F64]]:
    """A few minutes: stand, walk, stand, sit (leaning back), stand, walk, bend.

    Returns the batch and per-sample truth (flexion_deg, activity label index).
    """
    rng = np.random.default_rng(seed)
    mount = np.eye(3) if mount is None else mount
    segs = [  # (label, seconds, flexion_deg)
        ("standing", 20, 0.0),
        ("walking", 40, 3.0),
        ("standing", 15, 0.0),
        ("sitting", 60, -15.0),
        ("standing", 15, 0.0),
        ("walking", 30, 3.0),
        ("standing", 10, 40.0),
        ("standing", 20, 0.0),
    ]
    n_total = int(sum(s for _, s, _ in segs) * rate_hz)
    t = np.arange(n_total) / rate_hz
    flex = np.concatenate([np.full(int(s * rate_hz), f) for _, s, f in segs])
    walking = np.concatenate([np.full(int(s * rate_hz), lab == "walking") for lab, s, _ in segs])
    # smooth posture changes over ~1 s
    k = int(rate_hz)
    flex = np.convolve(np.pad(flex, (k, k), mode="edge"), np.ones(k) / k, mode="same")[k:-k]
    acc_body_dyn = np.zeros((n_total, 3))
    step = 2 * np.pi * 1.9 * t
    acc_body_dyn[:, 2] = 0.25 * np.sin(step) * walking
    acc_body_dyn[:, 0] = 0.12 * np.sin(step + 0.8) * walking
    acc_body_dyn[:, 1] = 0.08 * np.sin(0.5 * step) * walking
    # breathing: 0.3° of trunk sway at 0.25 Hz
    flex_b = flex + 0.3 * np.sin(2 * np.pi * 0.25 * t)
    acc = body_to_sensor_up(flex_b, mount) + acc_body_dyn @ mount
    acc += rng.normal(0, 0.003, acc.shape)
    g = None
    if gyro:
        rate_dps = np.gradient(flex_b, 1 / rate_hz)
        g_body = np.zeros((n_total, 3))
        g_body[:, 1] = rate_dps  # flexion: rotation about the body's left (y) axis
        g = g_body @ mount + rng.normal(0, 0.2, (n_total, 3))
    t_ns = (t * NS_PER_S).astype(np.int64) + 1_700_000_000 * NS_PER_S
    batch = SampleBatch("sim", "w1", rate_hz, t_ns, acc, g)
    return batch, {"flexion_deg": flex, "walking": walking.astype(float)}


def analysed_simulated_day(
    profile: str,
    duration_s: float,
    *,
    seed: int,
    placement: str,
    rate_hz: float,
    device: str,
    settings: Any = None,
    learn_first: bool = True,
) -> tuple[Any, Any]:
    """A simulated day (``firmware_sim``, random mounting) analysed in one
    batch with its explicit "stand tall" calibration, in two passes
    (``learn_first``) as ``postmon analyze`` does: (recording, AnalysisOutput).

    ``placement`` is the simulator's (upper, lower); ``settings`` default to
    ``AnalysisSettings.offline()``.
    """
    from analysis.stream import analyze_batch
    from firmware_sim.simulator import simulate

    rec = simulate(
        profile,
        duration_s,
        seed=seed,
        placement=placement,
        mounting="random",
        rate_hz=rate_hz,
        device=device,
    )
    t = np.round(rec.time_s * NS_PER_S).astype(np.int64)
    c0, c1 = rec.calibration_s
    out = analyze_batch(
        SampleBatch("w", "s", rate_hz, t, rec.accel_g, rec.gyro_dps),
        settings,
        calibration_ns=[(round(c0 * NS_PER_S), round(c1 * NS_PER_S))],
        learn_first=learn_first,
    )
    return rec, out

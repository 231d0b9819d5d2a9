"""IMU synthesis: what a real accelerometer and gyroscope on the back would read.

Physics (noise-free part)
-------------------------
The sensor's orientation is the segment's (see :mod:`firmware_sim.wearer`)
times the mounting rotation: ``R_world<-sensor = R_world<-segment ·
R_segment<-sensor``. While the sensor is off the body it has its own
orientation (on a desk, or moving between body and desk in the hand).

* Accelerometer = specific force in the sensor frame, in g:
  ``R^T · (a_body + a_lever + [0, 0, 1])`` where ``a_body`` is the linear
  acceleration of the hip-joint centre (gait, rising, vehicle), ``a_lever``
  the acceleration of the sensor relative to it caused by the trunk rotating
  (the second derivative of ``R_segment · r``, ``r`` the hip-to-sensor lever
  arm) and ``+1 g`` up is gravity's reaction: at rest a real IMU reads +1 g
  on the axis that points up.
* Gyroscope = the angular velocity the orientation path implies, in the
  sensor frame, deg/s: ``rotvec(R_{k-1}^T · R_{k+1}) / (2/rate)`` (central
  difference on the rotation group, accurate to O(dt²)).

Measurement errors (per device preset, drawn once per seed): per-axis bias
and scale error, white noise from the datasheet noise density, a slow bias
drift, range saturation, and quantisation to the device's LSB (the values a
wire format can carry exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from firmware_sim import quat
from firmware_sim.wearer import (
    G_MS2,
    Behaviour,
    Kinematics,
    Placement,
    SegKind,
    Timeline,
    minjerk,
    smooth_noise,
    white_noise,
)

FloatArray = npt.NDArray[np.float64]

_BEHAVIOUR_CODE_NONWEAR = list(Behaviour).index(Behaviour.NONWEAR)
_RNG_IMU = 7
_CH_ACC_NOISE = 20
_CH_GYRO_NOISE = 21
_CH_ACC_DRIFT = 22
_CH_GYRO_DRIFT = 25


@dataclass(frozen=True)
class DevicePreset:
    """Ranges, resolution and error magnitudes of one sensor model.

    Attributes
    ----------
    accel_range_g, gyro_range_dps : full scale (readings saturate there)
    accel_lsb_g, gyro_lsb_dps : one count of the device's int16 output
    accel_noise_ug_rthz, gyro_noise_mdps_rthz : white-noise density
    accel_bias_sd_g, gyro_bias_sd_dps : spread of the per-device bias
    scale_error_sd : spread of the per-axis scale error (fraction)
    rates_hz : output rates the device offers; ``default_rate_hz`` among them
    """

    name: str
    accel_range_g: float
    accel_lsb_g: float
    gyro_range_dps: float
    gyro_lsb_dps: float
    accel_noise_ug_rthz: float
    gyro_noise_mdps_rthz: float
    accel_bias_sd_g: float
    gyro_bias_sd_dps: float
    scale_error_sd: float
    rates_hz: tuple[float, ...]
    default_rate_hz: float

    def check_rate(self, rate_hz: float) -> float:
        """``rate_hz`` if this device offers it; ValueError naming the offered rates."""
        for r in self.rates_hz:
            if abs(r - rate_hz) < 1e-9:
                return float(r)
        offered = ", ".join(f"{r:g}" for r in self.rates_hz)
        raise ValueError(f"{self.name} does not stream at {rate_hz:g} Hz; it offers {offered} Hz")


DEVICE_PRESETS: dict[str, DevicePreset] = {
    # WT901BLE: MPU-9250-class sensor; wire format acc raw/32768·16 g, gyro raw/32768·2000 deg/s.
    "witmotion": DevicePreset(
        "witmotion",
        accel_range_g=16.0,
        accel_lsb_g=16.0 / 32768.0,
        gyro_range_dps=2000.0,
        gyro_lsb_dps=2000.0 / 32768.0,
        accel_noise_ug_rthz=300.0,
        gyro_noise_mdps_rthz=10.0,
        accel_bias_sd_g=0.012,
        gyro_bias_sd_dps=0.5,
        scale_error_sd=0.01,
        rates_hz=(10.0, 20.0, 50.0, 100.0, 200.0),
        default_rate_hz=50.0,
    ),
    # Movesense: LSM6DS3 at ±8 g (0.244 mg/LSB) and ±2000 deg/s (70 mdps/LSB);
    # the wire carries float32 m/s², so the sensor's own LSB is the resolution.
    "movesense": DevicePreset(
        "movesense",
        accel_range_g=8.0,
        accel_lsb_g=0.244e-3,
        gyro_range_dps=2000.0,
        gyro_lsb_dps=0.070,
        accel_noise_ug_rthz=90.0,
        gyro_noise_mdps_rthz=7.0,
        accel_bias_sd_g=0.015,
        gyro_bias_sd_dps=1.0,
        scale_error_sd=0.01,
        rates_hz=(13.0, 26.0, 52.0, 104.0, 208.0),
        default_rate_hz=52.0,
    ),
    # MetaMotion (BMI160) as the collector configures it: ±8 g (4096 LSB/g) and
    # ±2000 deg/s (16.4 LSB/(deg/s)).
    "metamotion": DevicePreset(
        "metamotion",
        accel_range_g=8.0,
        accel_lsb_g=1.0 / 4096.0,
        gyro_range_dps=2000.0,
        gyro_lsb_dps=1.0 / 16.4,
        accel_noise_ug_rthz=180.0,
        gyro_noise_mdps_rthz=7.0,
        accel_bias_sd_g=0.015,
        gyro_bias_sd_dps=0.8,
        scale_error_sd=0.008,
        rates_hz=(12.5, 25.0, 50.0, 100.0, 200.0),
        default_rate_hz=50.0,
    ),
}


def get_device(name: str) -> DevicePreset:
    """The preset called ``name``; ValueError naming the known ones otherwise."""
    try:
        return DEVICE_PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(DEVICE_PRESETS))
        raise ValueError(f"unknown device {name!r}; known devices: {known}") from None


MOUNTINGS: tuple[str, ...] = ("identity", "typical", "random")

#: Tilt of the skin surface at the placement in upright standing (about the
#: lateral axis, + forward): the upper-thoracic surface faces up-and-back
#: (kyphosis), the lumbar surface faces down-and-back (lordosis).
_SURFACE_TILT_DEG = {Placement.UPPER: 20.0, Placement.LOWER: -12.0}


def mounting_rotation(kind: str, seed: int, placement: Placement) -> Rotation:
    """Segment <- sensor rotation for a mounting ``kind``.

    ``identity``: sensor axes = segment axes (x anterior, y left, z up).
    ``typical``: strapped flat on the skin, its y axis pointing up the spine
    and its z axis out of the back, following the surface tilt of the
    placement, with a few degrees of random error.
    ``random``: uniformly random over all rotations (deterministic per seed).
    """
    if kind == "identity":
        return Rotation.identity()
    r = np.random.default_rng([seed & 0xFFFFFFFF, _RNG_IMU, 1])
    if kind == "random":
        return Rotation.random(random_state=r)
    if kind == "typical":
        # Sensor x -> segment -y (right), sensor y -> segment z (up), sensor z -> segment -x (back).
        base = Rotation.from_matrix(np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        tilt = Rotation.from_euler("y", _SURFACE_TILT_DEG[placement], degrees=True)
        jitter = Rotation.from_rotvec(np.radians(r.normal(0.0, 4.0, 3)))
        return tilt * base * jitter
    raise ValueError(f"unknown mounting {kind!r}; expected one of {', '.join(MOUNTINGS)}")


@dataclass(frozen=True)
class ImuErrors:
    """Per-device measurement errors (drawn once per seed and device)."""

    accel_bias_g: tuple[float, float, float]
    gyro_bias_dps: tuple[float, float, float]
    accel_scale: tuple[float, float, float]
    gyro_scale: tuple[float, float, float]


def draw_errors(seed: int, device: DevicePreset) -> ImuErrors:
    r = np.random.default_rng([seed & 0xFFFFFFFF, _RNG_IMU, 2])

    def t3(x: FloatArray) -> tuple[float, float, float]:
        return (float(x[0]), float(x[1]), float(x[2]))

    return ImuErrors(
        accel_bias_g=t3(r.normal(0.0, device.accel_bias_sd_g, 3)),
        gyro_bias_dps=t3(r.normal(0.0, device.gyro_bias_sd_dps, 3)),
        accel_scale=t3(1.0 + r.normal(0.0, device.scale_error_sd, 3)),
        gyro_scale=t3(1.0 + r.normal(0.0, device.scale_error_sd, 3)),
    )


NO_ERRORS = ImuErrors((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))


@dataclass(frozen=True)
class IdealImu:
    """Noise-free sensor signals for a range of samples.

    ``accel_g`` (n, 3) specific force in g and ``gyro_dps`` (n, 3) angular
    velocity in deg/s, both in the sensor frame; ``sensor_quat`` (n, 4) the
    world <- sensor rotation per sample as (x, y, z, w) quaternions.
    """

    accel_g: FloatArray
    gyro_dps: FloatArray
    sensor_quat: FloatArray

    @property
    def sensor_rotation(self) -> Rotation:
        return Rotation.from_quat(self.sensor_quat)


def ideal_imu(
    tl: Timeline, k0: int, n: int, rate_hz: float, mounting: Rotation
) -> tuple[IdealImu, Kinematics]:
    """Noise-free accelerometer and gyroscope for samples ``[k0, k0 + n)``.

    Returns the signals and the :class:`~firmware_sim.wearer.Kinematics` of
    the same samples. Pure function of the sample indices (chunk-invariant):
    it evaluates one extra sample either side for the derivatives.
    """
    kin = tl.evaluate(k0 - 1, n + 2, rate_hz)
    q_seg = kin.segment_quat()
    q_sensor = quat.mul(q_seg, mounting.as_quat()[None, :])
    worn = kin.worn
    if not worn.all():
        # Off the body: on the desk, or in the hand between body and desk.
        sf, si = tl.segments.f, tl.segments.i
        off = np.flatnonzero(~worn)
        seg = kin.seg[off]
        desk = np.stack(
            [sf["desk_qx"][seg], sf["desk_qy"][seg], sf["desk_qz"][seg], sf["desk_qw"][seg]], 1
        )
        handling = si["kind"][seg] == SegKind.HANDLING
        if handling.any():
            h = off[handling]
            hs = seg[handling]
            u = (kin.t_s[h] - sf["t_start"][hs]) / (sf["t_end"][hs] - sf["t_start"][hs])
            doff = (si["behaviour"][hs] == _BEHAVIOUR_CODE_NONWEAR)[:, None]
            body, dsk = q_sensor[h], desk[handling]
            desk[handling] = quat.slerp(
                np.where(doff, body, dsk), np.where(doff, dsk, body), minjerk(u)
            )
        q_sensor[off] = desk

    # Lever arm: the sensor sits away from the hip-joint centre the trunk turns about.
    p = quat.rotate(q_seg, np.asarray(tl.traits.lever_arm_m)[None, :])
    a_lever = np.zeros_like(p)
    a_lever[1:-1] = (p[2:] - 2.0 * p[1:-1] + p[:-2]) * (rate_hz * rate_hz) / G_MS2
    a_lever[~worn] = 0.0
    specific = kin.accel_world_g + a_lever
    specific[:, 2] += 1.0
    inner = slice(1, n + 1)
    acc = quat.rotate(quat.conj(q_sensor[inner]), specific[inner])
    # Central difference on the rotation group, expressed in the sensor frame.
    rel = quat.mul(quat.conj(q_sensor[0:n]), q_sensor[2 : n + 2])
    gyro = np.degrees(quat.to_rotvec(rel)) * (rate_hz / 2.0)
    return IdealImu(acc, gyro, q_sensor[inner]), _slice_kin(kin, inner)


def _slice_kin(kin: Kinematics, sl: slice) -> Kinematics:
    return Kinematics(
        t_s=kin.t_s[sl],
        flexion_deg=kin.flexion_deg[sl],
        lateral_deg=kin.lateral_deg[sl],
        axial_deg=kin.axial_deg[sl],
        heading_deg=kin.heading_deg[sl],
        accel_world_g=kin.accel_world_g[sl],
        activity=kin.activity[sl],
        moving=kin.moving[sl],
        worn=kin.worn[sl],
        seg=kin.seg[sl],
        brief=kin.brief[sl],
    )


def measure(
    ideal: IdealImu,
    k0: int,
    rate_hz: float,
    device: DevicePreset,
    errors: ImuErrors,
    seed: int,
    *,
    noise: bool = True,
    quantise: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Apply the device's errors, saturation and quantisation.

    Returns ``(accel_g, gyro_dps)``, each (n, 3), as the device would report
    them (multiples of its LSB when ``quantise``).
    """
    n = ideal.accel_g.shape[0]
    acc = ideal.accel_g * np.asarray(errors.accel_scale) + np.asarray(errors.accel_bias_g)
    gyr = ideal.gyro_dps * np.asarray(errors.gyro_scale) + np.asarray(errors.gyro_bias_dps)
    if noise and n:
        bw = math.sqrt(rate_hz / 2.0)  # the output filter passes up to Nyquist
        acc = acc + white_noise(k0, n, seed, _CH_ACC_NOISE, 3) * (
            device.accel_noise_ug_rthz * 1e-6 * bw
        )
        gyr = gyr + white_noise(k0, n, seed, _CH_GYRO_NOISE, 3) * (
            device.gyro_noise_mdps_rthz * 1e-3 * bw
        )
        # Slow bias drift (warm-up, temperature): a few mg and tenths of deg/s,
        # evaluated on whole seconds and interpolated (it changes over minutes).
        t = (k0 + np.arange(n)) / rate_hz
        grid = np.arange(math.floor(t[0]), math.floor(t[-1]) + 2, dtype=np.float64)
        for ax in range(3):
            da = smooth_noise(grid, seed, _CH_ACC_DRIFT + ax, 900.0)
            dg = smooth_noise(grid, seed, _CH_GYRO_DRIFT + ax, 900.0)
            acc[:, ax] += 0.002 * np.interp(t, grid, da)
            gyr[:, ax] += 0.1 * np.interp(t, grid, dg)
    return (
        _digitise(acc, device.accel_range_g, device.accel_lsb_g, quantise),
        _digitise(gyr, device.gyro_range_dps, device.gyro_lsb_dps, quantise),
    )


def _digitise(x: FloatArray, full_scale: float, lsb: float, quantise: bool) -> FloatArray:
    top = min(round(full_scale / lsb), 32768)  # int16 output registers
    if not quantise:
        return np.clip(x, -top * lsb, (top - 1) * lsb)
    counts = np.clip(np.rint(x / lsb), -top, top - 1)
    return counts * lsb

"""Public API of the simulator: a whole recording at once, or a live stream.

``simulate(...)`` returns a :class:`SimulatedRecording` (IMU samples plus the
ground truth per second and per sample) for evaluation and the CLI.
:class:`WearerStream` produces the same samples chunk by chunk for the
simulated BLE devices (``rate_hz`` and ``read(n) -> (accel_g, gyro_dps)``,
sensor frame, physical units) and accepts nudges that change the wearer's
future. Both are deterministic per seed; reading a stream in chunks of any
size gives exactly the samples of ``simulate`` with the same arguments, as
long as no nudge changed the future.

Truth definitions (angles, activity, static) are in :mod:`firmware_sim.wearer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from analysis.contracts import Activity
from firmware_sim.imu import (
    NO_ERRORS,
    DevicePreset,
    ImuErrors,
    draw_errors,
    get_device,
    ideal_imu,
    measure,
    mounting_rotation,
)
from firmware_sim.profiles import Profile, get_profile
from firmware_sim.wearer import (
    Kinematics,
    NudgeOutcome,
    NudgeResponse,
    Placement,
    Timeline,
    TransitionTruth,
    apply_nudge,
    layout,
    plan_day,
    transitions,
)

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int, int], object]  # (samples_done, samples_total)

_STATIC_ACTIVITIES = np.array(
    [int(Activity.LYING), int(Activity.SITTING), int(Activity.STANDING)], dtype=np.int8
)
_N_ACT = len(Activity)


@dataclass(frozen=True)
class TruthSeconds:
    """Ground truth per 1-s epoch (``time_s`` is the epoch's start, s).

    ``activity`` holds :class:`~analysis.contracts.Activity` codes (int8); angles
    in degrees relative to the neutral posture, NaN while not worn.
    """

    time_s: FloatArray
    activity: npt.NDArray[np.int8]
    inclination_deg: FloatArray
    flexion_deg: FloatArray
    lateral_deg: FloatArray
    static: npt.NDArray[np.bool_]
    #: like ``static``, but brief movement events (fidgets, reaches, mirror
    #: checks) do not interrupt it and a second counts as moving only when
    #: deliberate movement fills half of it: the per-second truth of static *periods*
    static_period: npt.NDArray[np.bool_]

    @property
    def activity_labels(self) -> list[str]:
        return [Activity(int(a)).label for a in self.activity]

    def __len__(self) -> int:
        return int(self.time_s.shape[0])


@dataclass(frozen=True)
class TruthSamples:
    """Ground truth per sample (float32 angles in degrees; NaN while not worn)."""

    activity: npt.NDArray[np.int8]
    flexion_deg: npt.NDArray[np.float32]
    lateral_deg: npt.NDArray[np.float32]
    inclination_deg: npt.NDArray[np.float32]
    axial_deg: npt.NDArray[np.float32]
    moving: npt.NDArray[np.bool_]
    worn: npt.NDArray[np.bool_]
    brief: npt.NDArray[np.bool_]  # moving only through a brief movement event

    @classmethod
    def from_kinematics(cls, kin: Kinematics) -> TruthSamples:
        nan = np.where(kin.worn, 1.0, np.nan)
        return cls(
            activity=kin.activity.astype(np.int8),
            flexion_deg=(kin.flexion_deg * nan).astype(np.float32),
            lateral_deg=(kin.lateral_bend_deg * nan).astype(np.float32),
            inclination_deg=(kin.inclination_deg * nan).astype(np.float32),
            axial_deg=(kin.axial_deg * nan).astype(np.float32),
            moving=kin.moving.copy(),
            worn=kin.worn.copy(),
            brief=kin.brief.copy(),
        )

    @classmethod
    def concatenate(cls, parts: list[TruthSamples]) -> TruthSamples:
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )


def truth_per_second(samples: TruthSamples, rate_hz: float, k0: int = 0) -> TruthSeconds:
    """Aggregate per-sample truth (sample indices from ``k0``) into whole seconds.

    Activity: the most common one in the second. Angles: the mean over the
    second's worn samples (NaN when the second's activity is nonwear). Static:
    worn, lying/sitting/standing, and no moving sample (wearer docstring);
    static_period: the same, ignoring brief movement events, and a second
    counts as moving only if deliberate movement fills at least half of it.
    Only seconds fully covered by the samples are returned.
    """
    n = samples.activity.shape[0]
    k = k0 + np.arange(n)
    sec = np.floor(k / rate_hz + 1e-9).astype(np.int64)
    first = math.ceil(k0 / rate_hz - 1e-9)
    last = math.floor((k0 + n) / rate_hz + 1e-9)  # exclusive
    if last <= first:
        empty = np.zeros(0)
        nb = np.zeros(0, bool)
        return TruthSeconds(empty, np.zeros(0, np.int8), empty, empty, empty, nb, nb)
    keep = (sec >= first) & (sec < last)
    sec = sec[keep] - first
    m = last - first
    act = samples.activity[keep].astype(np.int64)
    counts = np.bincount(sec * _N_ACT + act, minlength=m * _N_ACT).reshape(m, _N_ACT)
    activity = counts.argmax(axis=1).astype(np.int8)
    worn = samples.worn[keep]
    nw = np.bincount(sec, weights=worn.astype(np.float64), minlength=m)

    def mean(x: npt.NDArray[np.float32]) -> FloatArray:
        v = np.where(worn, x[keep].astype(np.float64), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.bincount(sec, weights=v, minlength=m) / nw
        out[(activity == Activity.NONWEAR) | (nw == 0)] = np.nan
        return out

    unworn = np.bincount(sec, weights=(~worn).astype(np.float64), minlength=m) > 0
    mv = samples.moving[keep]
    moving = np.bincount(sec, weights=mv.astype(np.float64), minlength=m) > 0
    # a second belongs to a static period unless deliberate movement fills at
    # least half of it (the majority rule that labels its activity): the
    # tolerance for short movements within a period is counted in such seconds
    deliberate = (mv & ~samples.brief[keep]).astype(np.float64)
    n_sec = np.bincount(sec, minlength=m)
    moving_deliberate = 2.0 * np.bincount(sec, weights=deliberate, minlength=m) >= n_sec
    still_activity = np.isin(activity, _STATIC_ACTIVITIES) & ~unworn
    static = still_activity & ~moving
    return TruthSeconds(
        time_s=np.arange(first, last, dtype=np.float64),
        activity=activity,
        inclination_deg=mean(samples.inclination_deg),
        flexion_deg=mean(samples.flexion_deg),
        lateral_deg=mean(samples.lateral_deg),
        static=static,
        static_period=still_activity & ~moving_deliberate,
    )


@dataclass(frozen=True)
class SimulatedRecording:
    """A simulated recording with its ground truth.

    Attributes
    ----------
    time_s : (N,) sample times from the start, s (sample k at k / rate_hz)
    accel_g : (N, 3) accelerometer, g, sensor frame (as the device reports it)
    gyro_dps : (N, 3) gyroscope, deg/s, sensor frame
    truth : per-second ground truth (epochs)
    samples : per-sample ground truth
    calibration_s : (start, end) of the explicit "stand tall" calibration, s
    transitions : posture transitions (sit/stand/lie) that start in the recording
    mounting : segment <- sensor rotation (undo it with ``mounting.inv()``)
    """

    profile: str
    device: str
    placement: str
    seed: int
    rate_hz: float
    time_s: FloatArray
    accel_g: FloatArray
    gyro_dps: FloatArray
    truth: TruthSeconds
    samples: TruthSamples
    calibration_s: tuple[float, float]
    mounting: Rotation
    errors: ImuErrors
    timeline: Timeline
    transitions: tuple[TransitionTruth, ...] = ()

    @property
    def mounting_quat_xyzw(self) -> tuple[float, float, float, float]:
        q = self.mounting.as_quat()
        return (float(q[0]), float(q[1]), float(q[2]), float(q[3]))


@dataclass(frozen=True)
class _Setup:
    profile: Profile
    placement: Placement
    device: DevicePreset
    rate_hz: float
    mounting: Rotation
    errors: ImuErrors
    timeline: Timeline


def _setup(
    profile: str | Profile,
    duration_s: float,
    seed: int,
    placement: str | Placement,
    mounting: str | Rotation,
    rate_hz: float | None,
    device: str,
    ideal: bool,
) -> _Setup:
    prof = get_profile(profile) if isinstance(profile, str) else profile
    place = Placement.parse(placement)
    dev = get_device(device)
    rate = dev.default_rate_hz if rate_hz is None else dev.check_rate(float(rate_hz))
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s={duration_s} must be a positive number of seconds")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    mount = mounting if isinstance(mounting, Rotation) else mounting_rotation(mounting, seed, place)
    errors = NO_ERRORS if ideal else draw_errors(seed, dev)
    tl = layout(plan_day(prof, duration_s, seed), seed, place, duration_s)
    return _Setup(prof, place, dev, rate, mount, errors, tl)


def simulate(
    profile: str | Profile,
    duration_s: float,
    seed: int = 0,
    placement: str | Placement = "upper",
    mounting: str | Rotation = "random",
    rate_hz: float | None = None,
    device: str = "witmotion",
    *,
    ideal: bool = False,
    chunk_s: float = 600.0,
    progress: Progress | None = None,
) -> SimulatedRecording:
    """Simulate ``duration_s`` seconds of a ``profile`` day worn at ``placement``.

    Parameters
    ----------
    profile : a name from :data:`firmware_sim.profiles.PROFILES` or a Profile
    duration_s : length of the recording, s (the profile's day is scaled to it)
    seed : non-negative integer; the same arguments give the same recording
    placement : "upper" (T2-T4) or "lower" (L3-L5)
    mounting : "identity", "typical", "random" or a segment <- sensor Rotation
    rate_hz : sample rate (one the device offers); the device's default if None
    device : "witmotion", "movesense" or "metamotion" (ranges, noise, LSB)
    ideal : no noise, bias, scale error or quantisation (physics only)
    chunk_s : generation chunk (bounds memory; results do not depend on it)
    progress : called with (samples_done, samples_total) after each chunk
    """
    st = _setup(profile, duration_s, seed, placement, mounting, rate_hz, device, ideal)
    rate = st.rate_hz
    total = round(duration_s * rate)
    step = max(1, round(chunk_s * rate))
    accs, gyrs, truths = [], [], []
    for k0 in range(0, total, step):
        n = min(step, total - k0)
        acc, gyr, kin = _generate(st, seed, k0, n, ideal)
        accs.append(acc)
        gyrs.append(gyr)
        truths.append(TruthSamples.from_kinematics(kin))
        if progress is not None:
            progress(k0 + n, total)
    samples = TruthSamples.concatenate(truths) if truths else _empty_samples()
    return SimulatedRecording(
        profile=st.profile.name,
        device=st.device.name,
        placement=st.placement.value,
        seed=seed,
        rate_hz=rate,
        time_s=np.arange(total) / rate,
        accel_g=np.concatenate(accs) if accs else np.zeros((0, 3)),
        gyro_dps=np.concatenate(gyrs) if gyrs else np.zeros((0, 3)),
        truth=truth_per_second(samples, rate),
        samples=samples,
        calibration_s=st.timeline.calibration_s,
        mounting=st.mounting,
        errors=st.errors,
        timeline=st.timeline,
        transitions=tuple(transitions(st.timeline, 0.0, total / rate)),
    )


def _empty_samples() -> TruthSamples:
    z = np.zeros(0, np.float32)
    nb = np.zeros(0, bool)
    return TruthSamples(np.zeros(0, np.int8), z, z, z, z, nb, nb, nb)


def _generate(
    st: _Setup, seed: int, k0: int, n: int, ideal: bool, timeline: Timeline | None = None
) -> tuple[FloatArray, FloatArray, Kinematics]:
    tl = timeline or st.timeline
    sig, kin = ideal_imu(tl, k0, n, st.rate_hz, st.mounting)
    acc, gyr = measure(
        sig, k0, st.rate_hz, st.device, st.errors, seed, noise=not ideal, quantise=not ideal
    )
    return acc, gyr, kin


class WearerStream:
    """A simulated wearer's IMU as an endless stream (a ``SampleSource``).

    ``block_s`` (default ``BLOCK_S``) seconds of samples are generated at a
    time and served from a buffer; a nudge discards what was generated but not
    yet read. Longer blocks cost less per sample (each generation call has a
    fixed cost) and more memory; the samples are the same.

    ``read(n)`` returns the next ``n`` samples ``(accel_g (n, 3), gyro_dps
    (n, 3))`` in the sensor frame, as the device reports them. Sample ``k`` is
    at sensor time ``k / rate_hz``. After ``duration_s`` the sensor lies on a
    desk (nonwear) for ever. ``nudge(t_s)`` tells the wearer a nudge was felt
    at sensor time ``t_s``; the response model may change the future (never
    samples already read). ``truth(...)`` gives the ground truth so far.
    """

    BLOCK_S = 10.0

    def __init__(
        self,
        profile: str | Profile,
        seed: int = 0,
        *,
        duration_s: float = 8 * 3600.0,
        placement: str | Placement = "upper",
        mounting: str | Rotation = "random",
        device: str = "witmotion",
        rate_hz: float | None = None,
        response: NudgeResponse | None = None,
        ideal: bool = False,
        block_s: float = BLOCK_S,
    ) -> None:
        if not block_s > 0:
            raise ValueError(f"block_s={block_s} must be > 0")
        self._st = _setup(profile, duration_s, seed, placement, mounting, rate_hz, device, ideal)
        self._seed = seed
        self._ideal = ideal
        self._timeline = self._st.timeline
        self._k = 0
        self._response = response or NudgeResponse()
        self._nudges: list[NudgeOutcome] = []
        # Samples are made ahead in blocks: a device reads a few samples per
        # notification, and each generation call has a fixed cost of ~5 ms.
        self._block = max(1, round(block_s * self._st.rate_hz))
        self._buf_k0 = 0
        self._buf_acc = np.zeros((0, 3))
        self._buf_gyr = np.zeros((0, 3))

    @property
    def rate_hz(self) -> float:
        return self._st.rate_hz

    @property
    def samples_read(self) -> int:
        return self._k

    @property
    def time_s(self) -> float:
        """Sensor time of the next sample to be read, s."""
        return self._k / self._st.rate_hz

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    @property
    def mounting(self) -> Rotation:
        return self._st.mounting

    @property
    def device(self) -> DevicePreset:
        return self._st.device

    @property
    def calibration_s(self) -> tuple[float, float]:
        return self._timeline.calibration_s

    @property
    def nudges(self) -> tuple[NudgeOutcome, ...]:
        return tuple(self._nudges)

    def read(self, n: int) -> tuple[FloatArray, FloatArray]:
        """The next ``n`` samples: (accel_g (n, 3), gyro_dps (n, 3))."""
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        k = self._k
        end = self._buf_k0 + len(self._buf_acc)
        if k + n > end:
            m = max(k + n - end, self._block)
            acc, gyr, _ = _generate(self._st, self._seed, end, m, self._ideal, self._timeline)
            keep = k - self._buf_k0  # drop what has been read
            self._buf_acc = np.concatenate([self._buf_acc[keep:], acc])
            self._buf_gyr = np.concatenate([self._buf_gyr[keep:], gyr])
            self._buf_k0 = k
        i = k - self._buf_k0
        self._k = k + n
        return self._buf_acc[i : i + n].copy(), self._buf_gyr[i : i + n].copy()

    def nudge(self, t_s: float) -> NudgeOutcome:
        """A nudge was felt at sensor time ``t_s``; returns what the wearer does."""
        tl, outcome = apply_nudge(
            self._timeline, float(t_s), self.time_s, self._response, len(self._nudges)
        )
        if outcome.responded:
            # samples generated ahead may belong to the old future
            self._buf_acc = self._buf_acc[: self._k - self._buf_k0]
            self._buf_gyr = self._buf_gyr[: self._k - self._buf_k0]
        self._timeline = tl
        self._nudges.append(outcome)
        return outcome

    def transitions(
        self, start_s: float = 0.0, end_s: float | None = None
    ) -> list[TransitionTruth]:
        """Posture transitions starting in ``[start_s, end_s)`` (default: up to now)."""
        return transitions(self._timeline, start_s, self.time_s if end_s is None else end_s)

    def truth_samples(self, k0: int, n: int) -> TruthSamples:
        """Per-sample truth for samples ``[k0, k0 + n)`` under the current timeline."""
        return TruthSamples.from_kinematics(self._timeline.evaluate(k0, n, self._st.rate_hz))

    def truth(self, start_s: float = 0.0, end_s: float | None = None) -> TruthSeconds:
        """Per-second truth for whole seconds in ``[start_s, end_s)`` (default: up to now)."""
        rate = self._st.rate_hz
        end = self.time_s if end_s is None else end_s
        k0 = math.ceil(start_s * rate - 1e-9)
        k1 = math.floor(end * rate + 1e-9)
        return truth_per_second(self.truth_samples(k0, max(0, k1 - k0)), rate, k0)


if TYPE_CHECKING:  # mypy checks that the stream is what the simulated devices read
    from firmware_sim.devices.base import SampleSource

    _SOURCE: type[SampleSource] = WearerStream

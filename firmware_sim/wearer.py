"""The simulated wearer: a seeded working day and the trunk's motion through it.

Frames and angle definitions (the ground truth the analysis is scored on)
-------------------------------------------------------------------------
World frame: x = the wearer's initial facing direction, y = left, z = up
(right-handed). Segment frame (the instrumented trunk segment: upper back
T2-T4 or lower back L3-L5): x = anterior, y = left, z = cranial. In the
wearer's *neutral posture* (standing tall, as in the explicit calibration at
the start of the day) the segment frame equals the world frame turned by the
heading only, i.e. the segment's long axis is vertical. All truth angles are
therefore relative to that neutral posture.

The segment's orientation is generated as ``R = Rz(heading + axial) ·
Rx(roll) · Ry(flexion)`` (intrinsic z-x'-y'' rotations; scipy
``from_euler("ZXY", [heading + axial, roll, flexion], degrees=True)``). The
truth angles are defined from ``up = R^T · [0, 0, 1]``, the unit "up" vector
expressed in the segment frame (what a noise-free accelerometer aligned with
the segment reads at rest, in g)::

    flexion     = atan2(-up_x, up_z)   tilt projected on the segment's sagittal
                                       plane, + forward (deg, -180..180)
    lateral     = atan2(up_y, up_z)    tilt projected on the segment's frontal
                                       plane, + to the right (deg, -180..180)
    inclination = acos(up_z)           angle of the long axis from vertical (deg, 0..180)

(the flexion so defined equals the generating Euler angle; the lateral bend
equals the roll angle for an upright trunk and grows with flexion, e.g. a
10° roll at 60° flexion projects to ~19°). These are the formulas
``analysis.orientation.trunk_angles`` uses with the calibrated up and forward
axes. Near lying (``up_z`` ≈ 0) one of the two projections is ill-defined:
score flexion and lateral bend on upright postures, inclination everywhere.
Axial rotation (twist of the segment about its long axis, relative to the
heading of the whole body) does not change these; it is reported per sample
only. Lying supine is flexion ≈ -90°, prone +90°, on the right side lateral ≈
+90°; inclination ≈ 90° in all three. Nonwear seconds have no trunk angles
(NaN).

Activity of a sample: the behaviour's activity; during a transition the first
half carries the previous activity and the second half the next one, so a
bout boundary lies at the middle of its transition. Moving: a sample is
"moving" during transitions, gait, manual handling, floor play and brief
movement events (fidgets, reaches, mirror checks); slow postural drift, sway,
breathing and vehicle vibration are not movement. A second is **static** when
it is worn, its activity is lying, sitting or standing, and none of its
samples is moving. A static **period** (``TruthSeconds.static_period``) is not
interrupted by brief movement events: a fidget, a reach or a mirror check is
a micro-movement within sitting or standing still, not a break from it
(``reference/metrics.md``: a break is a minute of standing/walking; the
analysis tolerates movements up to ``static_tolerance_s`` within a period and
its nudge policy counts "a brief reach is not a break").

How the day is made
-------------------
:func:`plan_day` draws bouts of behaviours from a profile
(:mod:`firmware_sim.profiles`) with a deficit sampler that keeps each
behaviour's time share close to the profile's target. :func:`layout` turns the
plan into segments (steady bouts and the transitions between them) and brief
movement events; every random draw is keyed by ``(seed, bout uid)`` so that
changing one bout (a nudge response) leaves every earlier sample unchanged.
:meth:`Timeline.evaluate` computes the kinematics of any range of sample
indices as closed-form functions of time (no state), so generating a day in
chunks of any size equals generating it at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from analysis.contracts import Activity, EventKind
from firmware_sim import quat
from firmware_sim.profiles import Behaviour, Profile

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

G_MS2 = 9.80665
CALIBRATION_S = 10.0  # "stand tall for 5 s" plus settling either side
INF = math.inf

# Stream ids for keyed random draws (never reuse one for another purpose).
_RNG_BOUT = 1
_RNG_TRANSITION = 2
_RNG_TRAITS = 3
_RNG_PLAN = 4
_RNG_NUDGE = 5
_NOISE_CHANNEL_BASE = 100


class Placement(Enum):
    """Where the sensor sits on the back."""

    UPPER = "upper"  # upper thoracic, T2-T4
    LOWER = "lower"  # lower back / waist, L3-L5

    @classmethod
    def parse(cls, value: str | Placement) -> Placement:
        if isinstance(value, Placement):
            return value
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown placement {value!r}; expected upper or lower") from None


class SegKind(IntEnum):
    STEADY = 0
    TRANSITION = 1
    HANDLING = 2  # sensor being taken off / put on by hand


class Posture(IntEnum):
    """Coarse body configuration; a change needs a transition of its kind."""

    UPRIGHT = 0
    SEATED = 1
    LYING = 2
    FLOOR = 3
    OFF = 4


_BEHAVIOUR_POSTURE: dict[Behaviour, Posture] = {
    Behaviour.CALIBRATE: Posture.UPRIGHT,
    Behaviour.SIT: Posture.SEATED,
    Behaviour.SIT_RELAXED: Posture.SEATED,
    Behaviour.DRIVE: Posture.SEATED,
    Behaviour.STAND: Posture.UPRIGHT,
    Behaviour.WALK: Posture.UPRIGHT,
    Behaviour.WALK_CARRY: Posture.UPRIGHT,
    Behaviour.BEND: Posture.UPRIGHT,
    Behaviour.LIFT: Posture.UPRIGHT,
    Behaviour.FLOOR: Posture.FLOOR,
    Behaviour.LIE: Posture.LYING,
    Behaviour.NONWEAR: Posture.OFF,
}

_BEHAVIOUR_CODE: dict[Behaviour, int] = {b: i for i, b in enumerate(Behaviour)}
BEHAVIOURS: tuple[Behaviour, ...] = tuple(Behaviour)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *key])


def minjerk(u: FloatArray) -> FloatArray:
    """Minimum-jerk profile 10u³-15u⁴+6u⁵ of u clipped to [0, 1] (zero velocity
    and acceleration at both ends, so joined pieces stay smooth)."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (10.0 + u * (-15.0 + 6.0 * u))


def minjerk_dd(u: FloatArray) -> FloatArray:
    """Second derivative of :func:`minjerk` with respect to u (0 outside [0, 1])."""
    inside = (u > 0.0) & (u < 1.0)
    return np.where(inside, 60.0 * u - 180.0 * u * u + 120.0 * u * u * u, 0.0)


# ------------------------------------------------------------------ traits


@dataclass(frozen=True)
class WearerTraits:
    """Per-wearer habits, drawn once per seed and placement (angles in deg)."""

    sit_flex_deg: float  # usual seated flexion of the instrumented segment
    slouch_drift_deg_per_min: float  # drift of seated flexion within a bout
    slouch_max_deg: float  # cap on that drift
    relaxed_flex_deg: float  # sofa / break-room sitting
    drive_flex_deg: float  # driving seat
    stand_flex_deg: float  # habitual standing vs standing tall
    walk_flex_deg: float  # mean forward lean while walking
    bend_scale: float  # share of a whole-trunk bend seen by this segment
    step_hz: float  # usual step frequency
    fidget_per_min: float  # seated fidgets per minute
    gait_vert_g: float  # vertical acceleration amplitude at step frequency
    gait_ap_g: float  # antero-posterior amplitude at step frequency
    gait_ml_g: float  # medio-lateral amplitude at stride frequency
    gait_flex_deg: float  # sagittal oscillation amplitude (step frequency)
    gait_lat_deg: float  # lateral oscillation amplitude (stride frequency)
    gait_axial_deg: float  # axial oscillation amplitude (stride frequency)
    lever_arm_m: tuple[float, float, float]  # hip-joint centre -> sensor, segment frame


def draw_traits(seed: int, placement: Placement) -> WearerTraits:
    """Draw a wearer's traits for ``placement`` (deterministic per seed)."""
    r = _rng(seed, _RNG_TRAITS)
    step_hz = float(np.clip(r.normal(1.85, 0.08), 1.65, 2.05))
    fidget = float(np.clip(r.lognormal(math.log(0.8), 0.4), 0.2, 2.5))
    if placement is Placement.UPPER:
        # Thoracic slouch: seated upper trunk flexes forward and drifts further.
        return WearerTraits(
            sit_flex_deg=float(np.clip(r.normal(13.0, 5.0), 3.0, 28.0)),
            slouch_drift_deg_per_min=float(np.clip(r.normal(0.4, 0.15), 0.05, 0.9)),
            slouch_max_deg=float(np.clip(r.normal(12.0, 3.0), 5.0, 20.0)),
            relaxed_flex_deg=float(np.clip(r.normal(-8.0, 5.0), -20.0, 5.0)),
            drive_flex_deg=float(np.clip(r.normal(-12.0, 4.0), -22.0, -3.0)),
            stand_flex_deg=float(np.clip(r.normal(3.0, 2.0), -2.0, 8.0)),
            walk_flex_deg=float(np.clip(r.normal(4.0, 2.0), 0.0, 9.0)),
            bend_scale=1.0,
            step_hz=step_hz,
            fidget_per_min=fidget,
            # Upper trunk (C7-T4) walking: vertical RMS ~0.2 g, AP and ML ~0.1 g;
            # the trunk's pitching adds AP acceleration through the lever arm.
            gait_vert_g=float(np.clip(r.normal(0.25, 0.04), 0.15, 0.35)),
            gait_ap_g=float(np.clip(r.normal(0.08, 0.02), 0.04, 0.14)),
            gait_ml_g=float(np.clip(r.normal(0.12, 0.025), 0.06, 0.18)),
            gait_flex_deg=float(np.clip(r.normal(1.0, 0.25), 0.5, 1.6)),
            gait_lat_deg=float(np.clip(r.normal(2.0, 0.5), 1.0, 3.0)),
            gait_axial_deg=float(np.clip(r.normal(3.0, 0.8), 1.5, 5.0)),
            lever_arm_m=(-0.10, 0.0, float(np.clip(r.normal(0.45, 0.04), 0.36, 0.55))),
        )
    # Lower back / waist: sitting rolls the pelvis backwards (posterior tilt),
    # 23° ± 13° in waist-worn recordings; slumping adds to it.
    return WearerTraits(
        sit_flex_deg=float(np.clip(r.normal(-23.0, 10.0), -45.0, -5.0)),
        slouch_drift_deg_per_min=float(np.clip(r.normal(-0.3, 0.12), -0.7, -0.03)),
        slouch_max_deg=float(np.clip(r.normal(8.0, 3.0), 3.0, 15.0)),
        relaxed_flex_deg=float(np.clip(r.normal(-32.0, 7.0), -50.0, -15.0)),
        drive_flex_deg=float(np.clip(r.normal(-28.0, 6.0), -45.0, -12.0)),
        stand_flex_deg=float(np.clip(r.normal(0.0, 2.0), -5.0, 5.0)),
        walk_flex_deg=float(np.clip(r.normal(2.0, 2.0), -3.0, 7.0)),
        bend_scale=float(np.clip(r.normal(0.72, 0.06), 0.55, 0.85)),
        step_hz=step_hz,
        fidget_per_min=fidget,
        # Waist-worn walking (HAPT belt phones: vertical RMS 0.19-0.29 g, AP
        # 0.16-0.24 g, ML 0.09-0.15 g, 10th-90th percentile of bouts). The AP
        # amplitude is larger because the pelvic tilt oscillation (gravity
        # projection and lever arm) partly cancels it at the sensor.
        gait_vert_g=float(np.clip(r.normal(0.33, 0.05), 0.2, 0.45)),
        gait_ap_g=float(np.clip(r.normal(0.36, 0.06), 0.2, 0.52)),
        gait_ml_g=float(np.clip(r.normal(0.13, 0.03), 0.07, 0.2)),
        gait_flex_deg=float(np.clip(r.normal(2.0, 0.5), 1.0, 3.0)),
        gait_lat_deg=float(np.clip(r.normal(3.0, 0.7), 1.5, 4.5)),
        gait_axial_deg=float(np.clip(r.normal(4.0, 1.0), 2.0, 6.0)),
        lever_arm_m=(-0.10, 0.0, float(np.clip(r.normal(0.12, 0.02), 0.08, 0.16))),
    )


# -------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Bout:
    """One planned bout. ``uid`` keys every random draw for the bout.

    ``shape_s`` is the duration the bout's own drift and events were drawn
    for, and ``shape_end_s`` the absolute time its drift was shaped to end;
    both are set only when a nudge cut the bout short (what was already
    generated must not change).
    """

    uid: int
    behaviour: Behaviour
    duration_s: float
    shape_s: float = 0.0
    shape_end_s: float = 0.0

    @property
    def shape_duration_s(self) -> float:
        return self.shape_s if self.shape_s > 0 else self.duration_s


def plan_day(profile: Profile, duration_s: float, seed: int) -> list[Bout]:
    """A day's bouts: the calibration stand, then the profile's phases.

    Within each phase a deficit sampler picks the next behaviour (never the
    current one) with probability proportional to how far its time is
    behind its target share, so the day's budget tracks the profile while
    the order stays random. Bout lengths are log-normal (median, GSD).
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s={duration_s} must be > 0")
    r = _rng(seed, _RNG_PLAN)
    bouts: list[Bout] = [Bout(0, Behaviour.CALIBRATE, min(CALIBRATION_S, duration_s))]
    rest = duration_s - bouts[0].duration_s
    uid = 1
    current = Behaviour.CALIBRATE
    for phase in profile.phases:
        phase_len = phase.day_share * rest
        elapsed = 0.0
        achieved = {spec.behaviour: 0.0 for spec in phase.bouts}
        while phase_len - elapsed > 1e-9:
            specs = [s for s in phase.bouts if s.behaviour is not current] or list(phase.bouts)
            deficit = np.array(
                [s.share * (elapsed + s.median_s) - achieved[s.behaviour] for s in specs]
            )
            # Deficit in bouts, not seconds: one long sit must not outweigh many short walks.
            weights = np.clip(deficit, 0.0, None) / np.array([s.median_s for s in specs])
            if weights.sum() <= 0:
                weights = np.array([s.share for s in specs])
            spec = specs[int(r.choice(len(specs), p=weights / weights.sum()))]
            d = float(
                np.clip(
                    r.lognormal(math.log(spec.median_s), math.log(spec.gsd)), spec.min_s, spec.max_s
                )
            )
            # Never overshoot the behaviour's budget for the phase by more than
            # a minimum bout: long bouts would otherwise overshoot by half a
            # bout on average and bias the day towards them.
            budget = spec.share * phase_len - achieved[spec.behaviour]
            d = min(d, max(budget, spec.min_s))
            left = phase_len - elapsed
            if d > left or left - d < 5.0:
                d = left  # the phase ends: stretch or cut the last bout to fit
            if d < 1.0 and len(bouts) > 1:
                prev = bouts[-1]
                bouts[-1] = replace(prev, duration_s=prev.duration_s + d)
                elapsed += d
                break
            bouts.append(Bout(uid, spec.behaviour, d))
            uid += 1
            achieved[spec.behaviour] += d
            elapsed += d
            current = spec.behaviour
    return bouts


# ------------------------------------------------------------------ layout

# Segment table columns (float unless noted).
_SEG_FIELDS = (
    "t_start",
    "t_end",
    "sh_t0",
    "sh_t1",
    "flex0",
    "flex1",
    "lat0",
    "lat1",
    "axial0",
    "axial1",
    "head0",
    "head1",
    "lean_deg",  # transition: peak forward lean beyond the more flexed end (deg)
    "lean_at",  # transition: when the peak is reached (fraction of the transition)
    "dz_m",  # transition: vertical displacement of the body (m)
    "dx_m",  # transition: forward displacement of the body (m)
    "mv0",  # transition: start of the body-displacement phase (fraction)
    "mv1",  # transition: end of the body-displacement phase (fraction)
    "ramp_s",  # steady: envelope ramp of perturbations at both ends
    "step_hz",  # steady: gait step frequency (0 = no gait)
    "gait_scale",  # steady: gait amplitude scale
    "gait_phase",
    "slow_flex",  # steady: slow postural wander amplitudes (deg)
    "slow_lat",
    "slow_axial",
    "fast_flex",  # steady: sway amplitudes (deg)
    "fast_lat",
    "head_wander",  # steady: heading wander amplitude (deg), e.g. turns while walking
    "vehicle",  # steady: 1 = in a moving vehicle
    "desk_qx",  # nonwear: sensor orientation on the desk (world <- sensor quaternion)
    "desk_qy",
    "desk_qz",
    "desk_qw",
)
_SEG_INT_FIELDS = ("kind", "act_a", "act_b", "moving", "behaviour", "bout")


@dataclass(frozen=True)
class Segments:
    """Struct-of-arrays table of the day's segments, sorted by ``t_start``."""

    f: dict[str, FloatArray]
    i: dict[str, IntArray]

    def __len__(self) -> int:
        return int(self.f["t_start"].shape[0])


@dataclass(frozen=True)
class Events:
    """Brief movements (fidgets, reaches, lifts) as plateau-shaped offsets.

    Each event rises over ``rise_s`` (minimum jerk), holds ``hold_s`` and
    returns over the same ``rise_s``; offsets in degrees. Events never
    overlap and are sorted by ``t0``.
    """

    t0: FloatArray
    rise_s: FloatArray
    hold_s: FloatArray
    d_flex: FloatArray
    d_lat: FloatArray
    d_axial: FloatArray

    @property
    def t1(self) -> FloatArray:
        return self.t0 + 2.0 * self.rise_s + self.hold_s


@dataclass
class _BoutPose:
    flex0: float
    flex1: float
    lat0: float
    lat1: float
    axial0: float
    axial1: float
    turn: float  # heading change within the bout (deg)
    ramp_s: float = 1.5
    step_hz: float = 0.0
    gait_scale: float = 0.0
    gait_phase: float = 0.0
    slow: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fast: tuple[float, float, float] = (0.0, 0.0, 0.0)
    head_wander: float = 0.0
    vehicle: float = 0.0
    moving: int = 0
    desk_q: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    events: list[tuple[float, float, float, float, float, float]] = field(default_factory=list)


def _events(
    r: np.random.Generator,
    length_s: float,
    rate_per_min: float,
    make: Callable[[np.random.Generator], tuple[float, float, float, float, float]],
) -> list[tuple[float, float, float, float, float, float]]:
    """Poisson-placed, non-overlapping events over [0, length_s) (relative times)."""
    out: list[tuple[float, float, float, float, float, float]] = []
    if rate_per_min <= 0:
        return out
    t = 2.0 + float(r.exponential(60.0 / rate_per_min))
    while True:
        ev = make(r)
        rise, hold = ev[0], ev[1]
        if t + 2 * rise + hold > length_s - 2.0:
            break
        out.append((t, *ev))
        t += 2 * rise + hold + 0.5 + float(r.exponential(60.0 / rate_per_min))
    return out


def _sign(r: np.random.Generator) -> float:
    return 1.0 if r.random() < 0.5 else -1.0


def _bout_pose(seed: int, bout: Bout, traits: WearerTraits) -> _BoutPose:
    """Base posture and perturbation parameters of a bout (keyed by its uid)."""
    r = _rng(seed, _RNG_BOUT, bout.uid)
    b = bout.behaviour
    d = bout.shape_duration_s
    ramp = min(1.5, d / 3.0)
    if b is Behaviour.CALIBRATE:
        return _BoutPose(0, 0, 0, 0, 0, 0, 0, ramp, slow=(0.0, 0.0, 0.0), fast=(0.15, 0.15, 0.0))
    if b in (Behaviour.SIT, Behaviour.SIT_RELAXED, Behaviour.DRIVE):
        if b is Behaviour.SIT:
            mode = r.random()
            if mode < 0.7:
                f0 = traits.sit_flex_deg + r.normal(0.0, 3.0)
            elif mode < 0.85:  # leaning back against the backrest
                f0 = traits.relaxed_flex_deg + r.normal(0.0, 3.0)
            else:  # leaning forward towards the desk/screen
                f0 = traits.sit_flex_deg + abs(traits.sit_flex_deg) * 0.3 + 12.0 + r.normal(0, 4)
            drift_per_min = traits.slouch_drift_deg_per_min
            rate = traits.fidget_per_min
        elif b is Behaviour.SIT_RELAXED:
            f0 = traits.relaxed_flex_deg + r.normal(0.0, 4.0)
            drift_per_min = traits.slouch_drift_deg_per_min * 0.6
            rate = traits.fidget_per_min * 0.8
        else:
            f0 = traits.drive_flex_deg + r.normal(0.0, 2.0)
            drift_per_min = traits.slouch_drift_deg_per_min * 0.3
            rate = 0.0
        drift = float(
            np.clip(drift_per_min * d / 60.0, -traits.slouch_max_deg, traits.slouch_max_deg)
        )
        lat0 = float(r.normal(0.0, 3.0))
        ax0 = float(r.normal(0.0, 6.0 if b is Behaviour.SIT else 3.0))

        def fidget(rr: np.random.Generator) -> tuple[float, float, float, float, float]:
            return (
                float(rr.uniform(0.5, 1.4)),
                float(rr.uniform(0.0, 1.2)),
                float(_sign(rr) * rr.uniform(5.0, 14.0)),
                float(rr.normal(0.0, 4.0)),
                float(rr.normal(0.0, 12.0)),
            )

        def mirror(rr: np.random.Generator) -> tuple[float, float, float, float, float]:
            return (
                float(rr.uniform(0.4, 0.8)),
                float(rr.uniform(0.3, 1.0)),
                float(rr.normal(0.0, 2.0)),
                float(rr.normal(0.0, 3.0)),
                float(_sign(rr) * rr.uniform(20.0, 45.0)),
            )

        events = _events(r, d, 0.5, mirror) if b is Behaviour.DRIVE else _events(r, d, rate, fidget)
        return _BoutPose(
            f0,
            f0 + drift,
            lat0,
            lat0 + float(r.normal(0.0, 1.5)),
            ax0,
            ax0 + float(r.normal(0.0, 3.0)),
            0.0,
            ramp,
            slow=(1.2, 1.0, 3.0),
            fast=(0.15, 0.15, 0.2),
            head_wander=25.0 if b is Behaviour.DRIVE else 0.0,
            vehicle=1.0 if b is Behaviour.DRIVE else 0.0,
            events=events,
        )
    if b is Behaviour.STAND:
        f0 = traits.stand_flex_deg + float(r.normal(0.0, 1.5))

        def reach(rr: np.random.Generator) -> tuple[float, float, float, float, float]:
            return (
                float(rr.uniform(0.6, 1.2)),
                float(rr.uniform(0.0, 2.0)),
                float(rr.uniform(6.0, 25.0) * traits.bend_scale),
                float(rr.normal(0.0, 4.0)),
                float(rr.normal(0.0, 10.0)),
            )

        return _BoutPose(
            f0,
            f0 + float(r.normal(0.0, 1.0)),
            float(r.normal(0.0, 1.5)),
            float(r.normal(0.0, 1.5)),
            0.0,
            0.0,
            float(r.normal(0.0, 20.0)),
            ramp,
            slow=(0.8, 0.8, 3.0),
            fast=(0.5, 0.5, 0.5),
            events=_events(r, d, 0.6, reach),
        )
    if b in (Behaviour.WALK, Behaviour.WALK_CARRY):
        carry = b is Behaviour.WALK_CARRY
        f0 = (traits.walk_flex_deg - (5.0 if carry else 0.0)) + float(r.normal(0.0, 1.0))
        step = traits.step_hz + float(r.normal(0.0, 0.05)) - (0.08 if carry else 0.0)
        return _BoutPose(
            f0,
            f0 + float(r.normal(0.0, 1.0)),
            0.0,
            0.0,
            0.0,
            0.0,
            float(r.uniform(-180.0, 180.0)),
            ramp,
            step_hz=step,
            gait_scale=float(np.clip(r.normal(0.85 if carry else 1.0, 0.08), 0.6, 1.3)),
            gait_phase=float(r.uniform(0.0, 2 * math.pi)),
            slow=(0.8, 0.8, 2.0),
            head_wander=35.0,
            moving=1,
        )
    if b is Behaviour.BEND:
        f0 = float(r.uniform(35.0, 100.0)) * traits.bend_scale
        return _BoutPose(
            f0,
            f0 + float(r.normal(0.0, 3.0)),
            float(r.normal(0.0, 5.0)),
            float(r.normal(0.0, 5.0)),
            float(r.normal(0.0, 8.0)),
            float(r.normal(0.0, 8.0)),
            0.0,
            min(0.8, d / 3.0),
            slow=(1.5, 1.0, 2.0),
            fast=(0.5, 0.5, 0.5),
        )
    if b is Behaviour.LIFT:
        f0 = traits.stand_flex_deg - 2.0  # upright with the load close to the body

        def lift(rr: np.random.Generator) -> tuple[float, float, float, float, float]:
            return (
                float(rr.uniform(0.8, 1.4)),
                float(rr.uniform(0.5, 2.0)),
                float(rr.uniform(55.0, 95.0) * traits.bend_scale),
                float(rr.normal(0.0, 6.0)),
                float(rr.normal(0.0, 15.0)),
            )

        ev = _events(r, d, 12.0, lift)
        if not ev and d > 4.0:  # a lift bout always holds at least one lift
            rise = min(1.0, (d - 2.2) / 3.0)
            ev = [(1.0, rise, 0.2, 75.0 * traits.bend_scale, 0.0, 0.0)]
        return _BoutPose(
            f0,
            f0,
            0.0,
            0.0,
            0.0,
            0.0,
            float(r.normal(0.0, 40.0)),
            min(0.8, d / 3.0),
            slow=(1.0, 1.0, 3.0),
            fast=(0.5, 0.5, 0.5),
            moving=1,
            events=ev,
        )
    if b is Behaviour.FLOOR:
        f0 = float(r.normal(30.0, 12.0)) * traits.bend_scale
        return _BoutPose(
            f0,
            f0 + float(r.normal(0.0, 10.0)),
            float(r.normal(0.0, 5.0)),
            float(r.normal(0.0, 5.0)),
            0.0,
            0.0,
            float(r.normal(0.0, 60.0)),
            ramp,
            slow=(18.0, 10.0, 20.0),
            fast=(1.0, 1.0, 1.0),
            head_wander=30.0,
            moving=1,
        )
    if b is Behaviour.LIE:
        if r.random() < 0.7:  # supine, head on a pillow
            f0, l0 = float(r.uniform(-92.0, -75.0)), float(r.normal(0.0, 4.0))
        else:  # on one side
            f0, l0 = float(r.normal(0.0, 8.0)), _sign(r) * float(r.uniform(78.0, 92.0))

        def shift(rr: np.random.Generator) -> tuple[float, float, float, float, float]:
            return (
                float(rr.uniform(0.8, 1.5)),
                float(rr.uniform(0.0, 1.0)),
                float(rr.normal(0.0, 6.0)),
                float(rr.normal(0.0, 6.0)),
                float(rr.normal(0.0, 6.0)),
            )

        return _BoutPose(
            f0,
            f0 + float(r.normal(0.0, 2.0)),
            l0,
            l0 + float(r.normal(0.0, 2.0)),
            0.0,
            0.0,
            0.0,
            ramp,
            slow=(0.8, 0.8, 0.5),
            fast=(0.3, 0.3, 0.1),
            events=_events(r, d, 0.15, shift),
        )
    # NONWEAR: left on a desk, usually flat on its face or back, at any heading.
    if r.random() < 0.7:
        face = Rotation.from_euler("x", 180.0 * float(r.integers(0, 2)), degrees=True)
        q = (Rotation.from_euler("z", float(r.uniform(0, 360)), degrees=True) * face).as_quat()
    else:
        q = Rotation.random(random_state=r).as_quat()
    return _BoutPose(0, 0, 0, 0, 0, 0, 0, ramp, desk_q=(q[0], q[1], q[2], q[3]))


@dataclass(frozen=True)
class _TransitionSpec:
    duration_s: float
    lean_deg: float
    dz_m: float
    dx_m: float
    mv0: float
    mv1: float
    head_turn_deg: float
    lean_at: float = 0.5


def _transition(seed: int, a: Bout, b: Bout, traits: WearerTraits) -> _TransitionSpec:
    """How the wearer gets from bout ``a`` to bout ``b`` (keyed by both uids)."""
    r = _rng(seed, _RNG_TRANSITION, a.uid, b.uid)
    pa, pb = _BEHAVIOUR_POSTURE[a.behaviour], _BEHAVIOUR_POSTURE[b.behaviour]
    height = traits.lever_arm_m[2]
    if Posture.OFF in (pa, pb):
        # Taking the sensor off or putting it on: a few seconds in the hand.
        return _TransitionSpec(float(r.uniform(3.0, 5.0)), 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    if pa is Posture.SEATED and pb is Posture.UPRIGHT:
        # Sit-to-stand: the trunk pitches forward to seat-off, then the body
        # rises ~0.4 m in about a second (peak vertical acceleration 0.2-0.4 g)
        # while the trunk extends back to upright.
        dur = float(r.uniform(1.8, 3.0))
        rise = min(float(r.uniform(0.7, 1.05)), 0.65 * dur)
        return _TransitionSpec(
            dur,
            float(r.uniform(25.0, 40.0)) * traits.bend_scale,
            float(r.uniform(0.35, 0.45)),
            float(r.uniform(0.10, 0.20)),
            0.35,
            0.35 + rise / dur,
            float(r.normal(0.0, 30.0)),
            lean_at=0.4,  # seat-off: the trunk is most flexed as the body leaves the seat
        )
    if pa is Posture.UPRIGHT and pb is Posture.SEATED:
        dur = float(r.uniform(1.8, 3.5))
        descent = min(float(r.uniform(1.1, 1.6)), 0.8 * dur)
        mv0 = max(0.0, 0.55 - 0.5 * descent / dur)
        return _TransitionSpec(
            dur,
            float(r.uniform(20.0, 35.0)) * traits.bend_scale,
            -float(r.uniform(0.35, 0.45)),
            -float(r.uniform(0.05, 0.15)),
            mv0,
            mv0 + descent / dur,
            float(r.normal(0.0, 60.0)),
            lean_at=0.55,  # most flexed just before the seat takes the weight
        )
    if {pa, pb} == {Posture.SEATED, Posture.LYING}:
        sign = 1.0 if pb is Posture.SEATED else -1.0
        return _TransitionSpec(
            float(r.uniform(2.5, 4.5)), 0.0, sign * 0.6 * height, 0.0, 0.0, 1.0, 0.0
        )
    if {pa, pb} == {Posture.UPRIGHT, Posture.LYING}:
        sign = 1.0 if pb is Posture.UPRIGHT else -1.0
        return _TransitionSpec(
            float(r.uniform(4.0, 6.0)),
            float(r.uniform(15.0, 30.0)) * traits.bend_scale,
            sign * (0.4 + 0.6 * height),
            0.0,
            0.1,
            0.9,
            float(r.normal(0.0, 60.0)),
        )
    if Posture.FLOOR in (pa, pb) and pa is not pb:
        other = pb if pa is Posture.FLOOR else pa
        drop = 0.5 if other is Posture.UPRIGHT else 0.2 if other is Posture.SEATED else -0.1
        sign = 1.0 if pb is not Posture.FLOOR else -1.0
        return _TransitionSpec(
            float(r.uniform(2.0, 3.5)),
            float(r.uniform(15.0, 30.0)) * traits.bend_scale,
            sign * drop,
            0.0,
            0.1,
            0.9,
            float(r.normal(0.0, 40.0)),
        )
    if pa is Posture.SEATED and pb is Posture.SEATED:  # re-settling in the seat
        return _TransitionSpec(float(r.uniform(1.0, 2.0)), 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    # Within upright (stand/walk/bend/lift) or within lying/floor: a short blend.
    bendy = Behaviour.BEND in (a.behaviour, b.behaviour)
    dur = float(r.uniform(0.8, 1.6)) if bendy else float(r.uniform(0.6, 1.2))
    return _TransitionSpec(dur, 0.0, 0.0, 0.0, 0.0, 1.0, float(r.normal(0.0, 20.0)))


@dataclass(frozen=True)
class Timeline:
    """The laid-out day: segments, events and the wearer's traits.

    Build it with :func:`layout`. :meth:`evaluate` gives the kinematics of
    any range of sample indices; it is a pure function of the indices.
    """

    seed: int
    placement: Placement
    traits: WearerTraits
    plan: tuple[Bout, ...]
    segments: Segments
    events: Events
    duration_s: float
    calibration_s: tuple[float, float]

    def evaluate(self, k0: int, n: int, rate_hz: float) -> Kinematics:
        return _evaluate(self, k0, n, rate_hz)


def layout(
    plan: list[Bout] | tuple[Bout, ...],
    seed: int,
    placement: Placement,
    duration_s: float,
    traits: WearerTraits | None = None,
) -> Timeline:
    """Lay a plan out in time: steady segments joined by transitions.

    Bout ``i`` occupies ``[B_i, B_i + duration_i)`` with cumulative ``B_i``;
    the transition between two bouts is centred on their boundary (it starts
    at the boundary when a nudge cut the first bout there), its duration
    limited to 80 % of the shorter neighbour. A bout's drift is shaped over
    ``[B_i, B_i + shape_duration)``, and each transition runs exactly from the
    pose where one steady part ends to the pose where the next one begins.
    After the plan the sensor is taken off and stays on the desk for ever
    (so a stream never runs out).
    """
    traits = traits or draw_traits(seed, placement)
    bouts = list(plan)
    final_uid = 1 << 30
    starts = [0.0, *np.cumsum([b.duration_s for b in bouts]).tolist()]
    # The sensor comes off 3 s after the day ends (so the day itself is untouched).
    if bouts:
        bouts[-1] = replace(bouts[-1], duration_s=bouts[-1].duration_s + 3.0)
        starts[-1] += 3.0
    bouts.append(Bout(final_uid, Behaviour.NONWEAR, INF))
    poses = [_bout_pose(seed, b, traits) for b in bouts]
    trans = [_transition(seed, bouts[i], bouts[i + 1], traits) for i in range(len(bouts) - 1)]
    win: list[tuple[float, float]] = []
    for i, tr in enumerate(trans):
        boundary = starts[i + 1]
        dur = min(tr.duration_s, 0.8 * bouts[i].duration_s, 0.8 * bouts[i + 1].duration_s)
        if bouts[i].shape_s > 0:  # a nudge cut bout i: the transition starts at the cut
            win.append((boundary, boundary + dur))
        else:
            win.append((boundary - dur / 2, boundary + dur / 2))

    cols: dict[str, list[float]] = {k: [] for k in _SEG_FIELDS}
    icols: dict[str, list[int]] = {k: [] for k in _SEG_INT_FIELDS}
    ev_rows: list[tuple[float, float, float, float, float, float]] = []
    heading = 0.0
    prev_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    for i, (bout, pose) in enumerate(zip(bouts, poses, strict=True)):
        s0 = starts[i] if i == 0 else win[i - 1][1]
        s1 = win[i][0] if i < len(win) else INF
        # Drift runs over the steady part, so it starts and ends at rest and
        # joins the transitions smoothly (a cut bout keeps its original shape).
        sh0 = s0
        sh1 = bout.shape_end_s if bout.shape_end_s > 0 else s1
        if not math.isfinite(sh1) or sh1 <= sh0:
            sh1 = sh0 + 1.0
        at_start = _pose_at(pose, (s0 - sh0) / (sh1 - sh0))
        if i > 0:
            _append_transition(
                cols,
                icols,
                bouts[i - 1],
                bout,
                trans[i - 1],
                win[i - 1],
                prev_end,
                at_start,
                heading,
                poses[i - 1].desk_q,
                pose.desk_q,
            )
            heading += trans[i - 1].head_turn_deg
        # The bout's turn follows its shape interval, which starts before its
        # steady part: offset it so the heading is continuous at both ends.
        m0 = _shape_at((s0 - sh0) / (sh1 - sh0))
        m1 = _shape_at((s1 - sh0) / (sh1 - sh0)) if math.isfinite(s1) else m0
        head0 = heading - pose.turn * m0
        _append_steady(cols, icols, bout, pose, s0, s1, sh0, sh1, head0)
        heading = head0 + pose.turn * m1
        prev_end = _pose_at(pose, (s1 - sh0) / (sh1 - sh0)) if math.isfinite(s1) else at_start
        for ev in pose.events:
            t_abs = starts[i] + ev[0]
            if t_abs >= s0 + 0.2 and t_abs + 2 * ev[1] + ev[2] <= s1 - 0.2:
                ev_rows.append((t_abs, *ev[1:]))

    f = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    ii = {k: np.asarray(v, dtype=np.int64) for k, v in icols.items()}
    ev_arr = np.asarray(ev_rows, dtype=np.float64).reshape(-1, 6)
    events = Events(*(ev_arr[:, c].copy() for c in range(6)))
    cal_end = float(f["t_end"][0]) if plan and plan[0].behaviour is Behaviour.CALIBRATE else 0.0
    return Timeline(
        seed=seed,
        placement=placement,
        traits=traits,
        plan=tuple(plan),
        segments=Segments(f, ii),
        events=events,
        duration_s=duration_s,
        calibration_s=(0.0, cal_end),
    )


def _shape_at(u: float) -> float:
    return float(minjerk(np.array([u]))[0])


def _pose_at(p: _BoutPose, u: float) -> tuple[float, float, float]:
    """A bout's base (flexion, lateral, axial) at shape fraction ``u``."""
    m = _shape_at(u)
    return (
        p.flex0 + (p.flex1 - p.flex0) * m,
        p.lat0 + (p.lat1 - p.lat0) * m,
        p.axial0 + (p.axial1 - p.axial0) * m,
    )


def _append_steady(
    cols: dict[str, list[float]],
    icols: dict[str, list[int]],
    bout: Bout,
    p: _BoutPose,
    s0: float,
    s1: float,
    sh0: float,
    sh1: float,
    heading: float,
) -> None:
    act = int(bout.behaviour.activity)
    worn = bout.behaviour is not Behaviour.NONWEAR
    row = {
        "t_start": s0,
        "t_end": s1,
        "sh_t0": sh0,
        "sh_t1": sh1,
        "flex0": p.flex0,
        "flex1": p.flex1,
        "lat0": p.lat0,
        "lat1": p.lat1,
        "axial0": p.axial0,
        "axial1": p.axial1,
        "head0": heading,
        "head1": heading + p.turn,
        "lean_deg": 0.0,
        "lean_at": 0.5,
        "dz_m": 0.0,
        "dx_m": 0.0,
        "mv0": 0.0,
        "mv1": 1.0,
        "ramp_s": p.ramp_s if worn else 1.0,
        "step_hz": p.step_hz,
        "gait_scale": p.gait_scale,
        "gait_phase": p.gait_phase,
        "slow_flex": p.slow[0],
        "slow_lat": p.slow[1],
        "slow_axial": p.slow[2],
        "fast_flex": p.fast[0],
        "fast_lat": p.fast[1],
        "head_wander": p.head_wander,
        "vehicle": p.vehicle,
        "desk_qx": p.desk_q[0],
        "desk_qy": p.desk_q[1],
        "desk_qz": p.desk_q[2],
        "desk_qw": p.desk_q[3],
    }
    for k, v in row.items():
        cols[k].append(float(v))
    icols["kind"].append(int(SegKind.STEADY))
    icols["act_a"].append(act)
    icols["act_b"].append(act)
    icols["moving"].append(p.moving)
    icols["behaviour"].append(_BEHAVIOUR_CODE[bout.behaviour])
    icols["bout"].append(bout.uid)


def _append_transition(
    cols: dict[str, list[float]],
    icols: dict[str, list[int]],
    a: Bout,
    b: Bout,
    tr: _TransitionSpec,
    window: tuple[float, float],
    start_pose: tuple[float, float, float],
    end_pose: tuple[float, float, float],
    heading: float,
    desk_a: tuple[float, float, float, float],
    desk_b: tuple[float, float, float, float],
) -> None:
    off = Behaviour.NONWEAR in (a.behaviour, b.behaviour)
    t0, t1 = window
    if off:
        # Handling the sensor: the body holds the worn side's pose, and the
        # sensor orientation moves between the body and the desk (IMU model).
        worn = end_pose if a.behaviour is Behaviour.NONWEAR else start_pose
        start_pose = end_pose = worn
    desk = desk_b if b.behaviour is Behaviour.NONWEAR else desk_a
    row = {
        "t_start": t0,
        "t_end": t1,
        "sh_t0": t0,
        "sh_t1": t1,
        "flex0": start_pose[0],
        "flex1": end_pose[0],
        "lat0": start_pose[1],
        "lat1": end_pose[1],
        "axial0": start_pose[2],
        "axial1": end_pose[2],
        "head0": heading,
        "head1": heading + tr.head_turn_deg,
        "lean_deg": tr.lean_deg,
        "lean_at": tr.lean_at,
        "dz_m": tr.dz_m,
        "dx_m": tr.dx_m,
        "mv0": tr.mv0,
        "mv1": tr.mv1,
        "ramp_s": 1.0,
        "step_hz": 0.0,
        "gait_scale": 0.0,
        "gait_phase": 0.0,
        "slow_flex": 0.0,
        "slow_lat": 0.0,
        "slow_axial": 0.0,
        "fast_flex": 0.0,
        "fast_lat": 0.0,
        "head_wander": 0.0,
        "vehicle": 0.0,
        "desk_qx": desk[0],
        "desk_qy": desk[1],
        "desk_qz": desk[2],
        "desk_qw": desk[3],
    }
    for k, v in row.items():
        cols[k].append(float(v))
    nonwear = int(Activity.NONWEAR)
    icols["kind"].append(int(SegKind.HANDLING if off else SegKind.TRANSITION))
    icols["act_a"].append(nonwear if off else int(a.behaviour.activity))
    icols["act_b"].append(nonwear if off else int(b.behaviour.activity))
    icols["moving"].append(1)
    icols["behaviour"].append(_BEHAVIOUR_CODE[b.behaviour])
    icols["bout"].append(b.uid)


# ------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Kinematics:
    """Per-sample motion of the instrumented segment (and of a sensor off the body).

    Attributes
    ----------
    t_s : (n,) sample times, s
    flexion_deg, lateral_deg, axial_deg, heading_deg : (n,) generating angles of the
        segment (module docstring; ``lateral_deg`` is the roll angle, the truth
        lateral bend is :attr:`lateral_bend_deg`)
    accel_world_g : (n, 3) linear acceleration of the body at the hip-joint centre,
        world frame, g (gravity excluded; the lever arm is added by the IMU model)
    activity : (n,) int8 Activity codes
    moving : (n,) bool, a deliberate movement is happening (module docstring)
    worn : (n,) bool, False while the sensor is off the body or being handled
    seg : (n,) int64 segment index of each sample
    brief : (n,) bool, the only movement is a brief movement event (a fidget,
        reach or mirror check) during a steady bout
    """

    t_s: FloatArray
    flexion_deg: FloatArray
    lateral_deg: FloatArray
    axial_deg: FloatArray
    heading_deg: FloatArray
    accel_world_g: FloatArray
    activity: npt.NDArray[np.int8]
    moving: BoolArray
    worn: BoolArray
    seg: IntArray
    brief: BoolArray

    @property
    def lateral_bend_deg(self) -> FloatArray:
        """Truth lateral bend: the tilt projected on the frontal plane (deg)."""
        r, f = np.radians(self.lateral_deg), np.radians(self.flexion_deg)
        return np.degrees(np.arctan2(np.sin(r), np.cos(f) * np.cos(r)))

    @property
    def inclination_deg(self) -> FloatArray:
        c = np.cos(np.radians(self.flexion_deg)) * np.cos(np.radians(self.lateral_deg))
        return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))

    def segment_quat(self) -> FloatArray:
        """World <- segment rotation per sample, (n, 4) quaternions (x, y, z, w)."""
        return quat.from_euler_zxy(
            np.radians(self.heading_deg + self.axial_deg),
            np.radians(self.lateral_deg),
            np.radians(self.flexion_deg),
        )


def segment_rotation(
    flexion_deg: FloatArray, lateral_deg: FloatArray, yaw_deg: FloatArray
) -> Rotation:
    """World <- segment rotation ``Rz(yaw)·Rx(lateral)·Ry(flexion)`` (see module docstring)."""
    return Rotation.from_euler(
        "ZXY", np.stack([yaw_deg, lateral_deg, flexion_deg], axis=-1), degrees=True
    )


_NOISE_BLOCK = 4096


@functools.lru_cache(maxsize=256)
def _noise_block(seed: int, channel: int, block: int, width: int) -> FloatArray:
    """N(0, 1) block ``block`` of a noise channel: (_NOISE_BLOCK,) if ``width`` is 0,
    else (_NOISE_BLOCK, width); read-only.

    Cached because a stream generates a few seconds at a time and seeding a
    generator costs more than the few samples it is asked for; the values
    depend only on the key, so the cache changes nothing else.
    """
    shape = (_NOISE_BLOCK,) if width == 0 else (_NOISE_BLOCK, width)
    out = _rng(seed, _NOISE_CHANNEL_BASE + channel, block + (1 << 20)).standard_normal(shape)
    out.setflags(write=False)
    return out


def smooth_noise(t: FloatArray, seed: int, channel: int, knot_s: float) -> FloatArray:
    """Smooth unit-variance-ish random process of absolute time ``t`` (s).

    Catmull-Rom interpolation of N(0, 1) knots every ``knot_s`` seconds; the
    knots come from generators keyed by (seed, channel, block), so any time
    range is computed identically whatever else is computed.
    """
    if t.size == 0:
        return np.zeros(0)
    x = t / knot_s
    k = np.floor(x).astype(np.int64)
    frac = x - k
    lo = int(k.min()) - 1
    hi = int(k.max()) + 2
    b0 = lo // _NOISE_BLOCK
    b1 = hi // _NOISE_BLOCK
    knots = np.concatenate([_noise_block(seed, channel, b, 0) for b in range(b0, b1 + 1)])
    base = b0 * _NOISE_BLOCK
    p0 = knots[k - 1 - base]
    p1 = knots[k - base]
    p2 = knots[k + 1 - base]
    p3 = knots[k + 2 - base]
    f = frac
    return 0.5 * (
        2.0 * p1
        + (-p0 + p2) * f
        + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * f * f
        + (-p0 + 3.0 * p1 - 3.0 * p2 + p3) * f * f * f
    )


def white_noise(k0: int, n: int, seed: int, channel: int, width: int = 1) -> FloatArray:
    """N(0, 1) samples for sample indices [k0, k0+n) (shape (n, width)), keyed per block."""
    if n <= 0:
        return np.zeros((0, width))
    b0 = k0 // _NOISE_BLOCK
    b1 = (k0 + n - 1) // _NOISE_BLOCK
    block = np.concatenate([_noise_block(seed, channel, b, width) for b in range(b0, b1 + 1)])
    start = k0 - b0 * _NOISE_BLOCK
    return block[start : start + n]


def _evaluate(tl: Timeline, k0: int, n: int, rate_hz: float) -> Kinematics:
    k = np.arange(k0, k0 + n, dtype=np.int64)
    t = k / rate_hz
    sf, si = tl.segments.f, tl.segments.i
    seg = np.clip(np.searchsorted(sf["t_start"], t, side="right") - 1, 0, len(tl.segments) - 1)

    def g(name: str) -> FloatArray:
        return sf[name][seg]

    kind = si["kind"][seg]
    t_start, t_end = g("t_start"), g("t_end")
    sh0, sh1 = g("sh_t0"), g("sh_t1")
    u = np.clip((t - sh0) / (sh1 - sh0), 0.0, 1.0)
    s = minjerk(u)
    flex = g("flex0") + (g("flex1") - g("flex0")) * s
    lat = g("lat0") + (g("lat1") - g("lat0")) * s
    axial = g("axial0") + (g("axial1") - g("axial0")) * s
    head = g("head0") + (g("head1") - g("head0")) * s

    # Transitions with a forward lean: flex to the peak, then on to the end pose
    # (two minimum-jerk pieces, smooth at the peak).
    trans = kind != SegKind.STEADY
    lean = g("lean_deg")
    leaning = trans & (lean > 0)
    if np.any(leaning):
        f0, f1, c = g("flex0"), g("flex1"), g("lean_at")
        # Getting up into a deep bend needs no extra lean beyond the bend itself.
        hi = np.maximum(f0, f1)
        peak = np.maximum(hi, np.minimum(hi + lean, 60.0))
        first = f0 + (peak - f0) * minjerk(u / c)
        second = peak + (f1 - peak) * minjerk((u - c) / (1.0 - c))
        flex = np.where(leaning, np.where(u < c, first, second), flex)
    mv0, mv1 = g("mv0"), g("mv1")
    dur = np.maximum(t_end - t_start, 1e-9)
    v = (u - mv0) / np.maximum(mv1 - mv0, 1e-9)
    vdot2 = 1.0 / np.maximum((mv1 - mv0) * dur, 1e-9) ** 2
    lin_up = np.where(trans, g("dz_m") * minjerk_dd(v) * vdot2, 0.0) / G_MS2
    lin_fwd = np.where(trans, g("dx_m") * minjerk_dd(v) * vdot2, 0.0) / G_MS2
    lin_left = np.zeros(n)

    # Steady perturbations fade in and out at the bout edges.
    ramp = g("ramp_s")
    env = np.where(
        trans,
        0.0,
        minjerk((t - t_start) / ramp) * minjerk((t_end - t) / ramp),
    )
    seed = tl.seed

    def wander(amp_name: str, channel: int, knot_s: float) -> FloatArray:
        # Evaluated only where it contributes: a pure function of t, so
        # skipping the zeros changes nothing but the cost.
        coef = env * g(amp_name)
        out = np.zeros(n)
        on = np.flatnonzero(coef != 0.0)
        if on.size:
            out[on] = coef[on] * smooth_noise(t[on], seed, channel, knot_s)
        return out

    # Slow postural wander (knots every 5-6 s), sway (every 1.2 s), turning.
    flex += wander("slow_flex", 0, 6.0) + wander("fast_flex", 1, 1.2)
    lat += wander("slow_lat", 2, 6.0) + wander("fast_lat", 3, 1.2)
    axial += wander("slow_axial", 4, 5.0)
    head += wander("head_wander", 5, 4.0)

    # Gait: sagittal motion at the step frequency, lateral/axial at the stride frequency.
    step_hz = g("step_hz")
    gait = step_hz > 0
    if np.any(gait):
        tr = tl.traits
        ga = env * g("gait_scale")
        ph = 2.0 * math.pi * step_hz * (t - t_start) + g("gait_phase")
        flex += ga * tr.gait_flex_deg * np.sin(ph)
        lat += ga * tr.gait_lat_deg * np.sin(0.5 * ph + 0.3)
        axial += ga * tr.gait_axial_deg * np.sin(0.5 * ph + 1.9)
        lin_up += ga * tr.gait_vert_g * (np.cos(ph) + 0.3 * np.cos(2.0 * ph + 0.8))
        lin_fwd += ga * tr.gait_ap_g * (np.sin(ph + 0.6) + 0.25 * np.sin(2.0 * ph))
        lin_left += ga * tr.gait_ml_g * np.sin(0.5 * ph + 0.3)

    # In a vehicle: longitudinal/lateral accelerations and seat vibration.
    veh = g("vehicle") * env
    on = np.flatnonzero(veh > 0)
    if on.size:
        v = veh[on]
        side = smooth_noise(t[on], seed, 7, 3.0)
        lin_fwd[on] += v * 0.07 * smooth_noise(t[on], seed, 6, 3.0)
        lin_left[on] += v * 0.08 * side
        lin_up[on] += v * 0.025 * white_noise(k0, n, seed, 8)[on, 0]
        lat[on] -= v * 2.0 * side  # leaning ~2° into a 0.08 g corner

    # Brief movement events.
    ev = tl.events
    moving_ev = np.zeros(n, dtype=bool)
    if ev.t0.size:
        j = np.clip(np.searchsorted(ev.t0, t, side="right") - 1, 0, ev.t0.size - 1)
        rise, hold = ev.rise_s[j], ev.hold_s[j]
        te = t - ev.t0[j]
        inside = (te >= 0.0) & (te < 2.0 * rise + hold)
        shape = np.where(
            inside,
            np.where(
                te < rise + hold, minjerk(te / rise), minjerk((2.0 * rise + hold - te) / rise)
            ),
            0.0,
        )
        flex += shape * ev.d_flex[j]
        lat += shape * ev.d_lat[j]
        axial += shape * ev.d_axial[j]
        moving_ev = inside

    act = np.where((kind != SegKind.STEADY) & (u >= 0.5), si["act_b"][seg], si["act_a"][seg])
    moving = (si["moving"][seg] == 1) | moving_ev
    worn = (kind != SegKind.HANDLING) & (act != Activity.NONWEAR)
    hr = np.radians(head)
    c, sn = np.cos(hr), np.sin(hr)
    acc = np.stack([c * lin_fwd - sn * lin_left, sn * lin_fwd + c * lin_left, lin_up], axis=1)
    acc[~worn] = 0.0
    return Kinematics(
        t_s=t,
        flexion_deg=flex,
        lateral_deg=lat,
        axial_deg=axial,
        heading_deg=head,
        accel_world_g=acc,
        activity=act.astype(np.int8),
        moving=moving,
        worn=worn,
        seg=seg,
        brief=moving_ev & (si["moving"][seg] != 1),
    )


# ------------------------------------------------------------- transitions

_TRANSITION_KIND: dict[tuple[Posture, Posture], str] = {
    (Posture.UPRIGHT, Posture.SEATED): EventKind.STAND_TO_SIT,
    (Posture.SEATED, Posture.UPRIGHT): EventKind.SIT_TO_STAND,
    (Posture.SEATED, Posture.LYING): EventKind.SIT_TO_LIE,
    (Posture.LYING, Posture.SEATED): EventKind.LIE_TO_SIT,
    (Posture.UPRIGHT, Posture.LYING): EventKind.STAND_TO_LIE,
    (Posture.LYING, Posture.UPRIGHT): EventKind.LIE_TO_STAND,
}


@dataclass(frozen=True)
class TransitionTruth:
    """A posture transition: starts at ``t_start_s``, lasts ``duration_s``;
    ``kind`` is an :class:`analysis.contracts.EventKind` transition name."""

    t_start_s: float
    duration_s: float
    kind: str


def transitions(tl: Timeline, start_s: float = 0.0, end_s: float = INF) -> list[TransitionTruth]:
    """Posture transitions (sit/stand/lie) that start within ``[start_s, end_s)``.

    Changes between upright behaviours (standing, walking, bending, lifting)
    and to or from floor play or nonwear are not posture transitions.
    """
    sf, si = tl.segments.f, tl.segments.i
    out = []
    for j in np.flatnonzero(si["kind"] == SegKind.TRANSITION):
        t0 = float(sf["t_start"][j])
        if not start_s <= t0 < end_s or j == 0:
            continue
        a = _BEHAVIOUR_POSTURE[BEHAVIOURS[int(si["behaviour"][j - 1])]]
        b = _BEHAVIOUR_POSTURE[BEHAVIOURS[int(si["behaviour"][j])]]
        kind = _TRANSITION_KIND.get((a, b))
        if kind is not None:
            out.append(TransitionTruth(t0, float(sf["t_end"][j]) - t0, kind))
    return out


# ------------------------------------------------------------------ nudges


@dataclass(frozen=True)
class NudgeResponse:
    """How a wearer answers a nudge felt at sensor time t.

    With probability ``probability`` the wearer gets up after a log-normal
    delay (median ``delay_median_s``, geometric SD ``delay_gsd``, at least
    ``min_delay_s``) and stays upright (standing, then walking) for at least
    ``break_s`` before sitting down again to carry on.
    """

    probability: float = 0.7
    delay_median_s: float = 30.0
    delay_gsd: float = 2.0
    min_delay_s: float = 5.0
    break_s: float = 120.0
    walk_share: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability={self.probability} must be within 0..1")
        if self.delay_median_s <= 0 or self.delay_gsd < 1.0 or self.min_delay_s < 0:
            raise ValueError("delay_median_s must be > 0, delay_gsd >= 1, min_delay_s >= 0")
        if self.break_s <= 0 or not 0.0 <= self.walk_share <= 1.0:
            raise ValueError("break_s must be > 0 and walk_share within 0..1")


@dataclass(frozen=True)
class NudgeOutcome:
    """What a nudge did: ``responded`` and, if so, when the break starts/ends (s)."""

    t_nudge_s: float
    responded: bool
    react_at_s: float | None = None
    break_end_s: float | None = None
    reason: str = ""


#: Behaviours a nudge gets the wearer out of (already moving: nothing to do).
NUDGEABLE = frozenset(
    {Behaviour.SIT, Behaviour.SIT_RELAXED, Behaviour.DRIVE, Behaviour.STAND, Behaviour.LIE}
)


def apply_nudge(
    tl: Timeline,
    t_nudge_s: float,
    earliest_change_s: float,
    response: NudgeResponse,
    nudge_index: int,
) -> tuple[Timeline, NudgeOutcome]:
    """The timeline after a nudge felt at ``t_nudge_s``.

    Nothing before ``earliest_change_s`` (what has already been generated)
    changes. If the wearer responds, the bout in progress at the reaction
    time is cut there, a break (stand, then walk) of ``response.break_s`` is
    inserted, and the rest of the cut bout and the remaining plan follow,
    later by the break's length.
    """
    r = _rng(tl.seed, _RNG_NUDGE, nudge_index)
    if r.random() >= response.probability:
        return tl, NudgeOutcome(t_nudge_s, False, reason="ignored")
    delay = max(
        response.min_delay_s,
        float(r.lognormal(math.log(response.delay_median_s), math.log(response.delay_gsd))),
    )
    # The cut reshapes perturbation envelopes and events up to 5 s before it.
    react = max(t_nudge_s + delay, earliest_change_s + 5.0)
    plan = list(tl.plan)
    starts = np.concatenate([[0.0], np.cumsum([b.duration_s for b in plan])])
    i = int(np.searchsorted(starts, react, side="right") - 1)
    if i >= len(plan) or i < 0:
        return tl, NudgeOutcome(t_nudge_s, False, reason="after the end of the day")
    bout = plan[i]
    if bout.behaviour not in NUDGEABLE:
        return tl, NudgeOutcome(t_nudge_s, False, reason=f"already {bout.behaviour.value}")
    offset = react - starts[i]
    # >= 10 s keeps the transition into the cut bout as it was (<= 80 % of it).
    if offset < 10.0 or bout.duration_s - offset < 5.0:
        return tl, NudgeOutcome(t_nudge_s, False, reason="bout ending anyway")
    base = (1 << 24) + nudge_index * 8
    walk_s = response.break_s * response.walk_share
    stand_s = response.break_s - walk_s
    insert: list[Bout] = []
    # The transition into the break starts at the reaction time (see layout).
    if bout.shape_end_s > 0:
        shape_end = bout.shape_end_s
    else:
        steady = np.flatnonzero(
            (tl.segments.i["bout"] == bout.uid) & (tl.segments.i["kind"] == SegKind.STEADY)
        )
        shape_end = float(tl.segments.f["sh_t1"][steady[0]])
    first = replace(bout, duration_s=offset, shape_s=bout.shape_duration_s, shape_end_s=shape_end)
    if stand_s > 0:
        insert.append(Bout(base + 1, Behaviour.STAND, stand_s + 3.0))
    if walk_s > 0:
        insert.append(Bout(base + 2, Behaviour.WALK, walk_s + 3.0))
    rest = Bout(base + 3, bout.behaviour, bout.duration_s - offset)
    new_plan = [*plan[:i], first, *insert, rest, *plan[i + 1 :]]
    new_tl = layout(new_plan, tl.seed, tl.placement, tl.duration_s, tl.traits)
    brk = sum(b.duration_s for b in insert)
    return new_tl, NudgeOutcome(t_nudge_s, True, react, react + brk)

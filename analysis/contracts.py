"""Typed contracts between the pipeline stages (see docs/ARCHITECTURE in README).

Units are part of every name or docstring: accelerations in g (standard
gravity, 9.80665 m/s²), angular rates in deg/s, angles in degrees,
timestamps in integer nanoseconds since the Unix epoch (UTC).

``SampleBatch`` flows collector -> analysis; ``EPOCH_DTYPE`` arrays,
``Event`` and the daily summary flow analysis -> bus -> store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

NS_PER_S = 1_000_000_000
STANDARD_GRAVITY_MS2 = 9.80665


class Activity(IntEnum):
    """Activity class of a 1-s epoch. Integer codes are stable (stored)."""

    LYING = 0
    SITTING = 1
    STANDING = 2
    WALKING = 3
    OTHER = 4
    NONWEAR = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Activity:
        try:
            return cls[label.strip().upper()]
        except KeyError as exc:
            allowed = ", ".join(a.label for a in cls)
            raise ValueError(f"unknown activity {label!r}; expected one of {allowed}") from exc


ACTIVITY_LABELS: tuple[str, ...] = tuple(a.label for a in Activity)


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """A run of consecutive IMU samples from one sensor worn by one wearer.

    Attributes
    ----------
    sensor_id, wearer_id:
        Sensor address/serial and the wearer's pseudonym (never a name).
    rate_hz:
        Nominal sample rate of the stream (Hz).
    t_ns:
        (N,) int64 per-sample timestamps, ns since the Unix epoch (UTC),
        reconstructed from device counters where the device has them.
    accel_g:
        (N, 3) float64 acceleration in g, gravity included, sensor frame.
    gyro_dps:
        (N, 3) float64 angular velocity in deg/s, sensor frame, or None when
        the device streams no gyroscope.
    lost_before:
        Number of samples known to be missing immediately before the first
        sample of this batch (dropped notifications, a reconnect). 0 = none.
    seq:
        Monotonic batch counter per sensor stream (for ordering/dedup).
    """

    sensor_id: str
    wearer_id: str
    rate_hz: float
    t_ns: npt.NDArray[np.int64]
    accel_g: npt.NDArray[np.float64]
    gyro_dps: npt.NDArray[np.float64] | None = None
    lost_before: int = 0
    seq: int = 0

    def __post_init__(self) -> None:
        n = self.t_ns.shape[0]
        if self.t_ns.ndim != 1:
            raise ValueError(f"t_ns must be 1-D, got shape {self.t_ns.shape}")
        if self.accel_g.shape != (n, 3):
            raise ValueError(f"accel_g must be ({n}, 3), got {self.accel_g.shape}")
        if self.gyro_dps is not None and self.gyro_dps.shape != (n, 3):
            raise ValueError(f"gyro_dps must be ({n}, 3), got {self.gyro_dps.shape}")
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        if self.lost_before < 0:
            raise ValueError(f"lost_before must be >= 0, got {self.lost_before}")

    def __len__(self) -> int:
        return int(self.t_ns.shape[0])


#: One row per 1-s epoch; ``time_ns`` is the epoch's start.
EPOCH_DTYPE = np.dtype(
    [
        ("time_ns", np.int64),
        ("activity", np.int8),  # Activity code
        ("inclination_deg", np.float32),  # angle from calibrated upright, >= 0
        ("flexion_deg", np.float32),  # sagittal component, + forward
        ("lateral_deg", np.float32),  # lateral component, + to the right
        ("static", np.bool_),  # no meaningful trunk movement in this second
        ("intensity_g", np.float32),  # movement intensity: mean |body accel| (g)
    ]
)


def empty_epochs(n: int = 0) -> npt.NDArray[np.void]:
    """A zero-filled epoch array of length ``n`` (structured, EPOCH_DTYPE)."""
    return np.zeros(n, dtype=EPOCH_DTYPE)


class EventKind:
    """Event kind names (stable strings; stored as an InfluxDB tag)."""

    STAND_TO_SIT = "stand_to_sit"
    SIT_TO_STAND = "sit_to_stand"
    SIT_TO_LIE = "sit_to_lie"
    LIE_TO_SIT = "lie_to_sit"
    STAND_TO_LIE = "stand_to_lie"
    LIE_TO_STAND = "lie_to_stand"
    BOUT = "bout"  # a posture bout; attrs: activity, duration_s
    STATIC_PERIOD = "static_period"  # attrs: duration_s
    STATIC_ALERT = "static_alert"  # static timer crossed its threshold
    SUSTAINED_FLEXION = "sustained_flexion"  # attrs: duration_s, mean_flexion_deg
    NUDGE = "nudge"  # attrs: see analysis.nudge


TRANSITION_KINDS: tuple[str, ...] = (
    EventKind.STAND_TO_SIT,
    EventKind.SIT_TO_STAND,
    EventKind.SIT_TO_LIE,
    EventKind.LIE_TO_SIT,
    EventKind.STAND_TO_LIE,
    EventKind.LIE_TO_STAND,
)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at a point in time (or over an interval).

    ``time_ns`` is the event's start (UTC ns). ``duration_s`` is 0 for
    instantaneous events. ``attrs`` holds kind-specific scalar values
    (numbers, strings, bools): they become InfluxDB fields / JSON keys.
    """

    time_ns: int
    kind: str
    duration_s: float = 0.0
    attrs: dict[str, Any] = field(default_factory=dict)


#: Flexion bands reported in minutes (ISO 11226 / EN 1005-4 style), degrees.
FLEXION_BANDS_DEG: tuple[tuple[float, float], ...] = (
    (-1e9, 20.0),
    (20.0, 45.0),
    (45.0, 60.0),
    (60.0, 1e9),
)
#: EVA angle classes (deg) × uninterrupted-duration classes (s), Mathiassen & Winkel 1991.
EVA_ANGLE_EDGES_DEG: tuple[float, ...] = (20.0, 45.0, 60.0)
EVA_DURATION_EDGES_S: tuple[float, ...] = (1.0, 5.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True, slots=True)
class DailySummary:
    """The therapist's numbers for one wearer and one local calendar day.

    Definitions and defaults: ``../shared/reference/metrics.md``. Durations in
    minutes (``_min``), rates per hour worn (``_per_h``) unless stated.
    ``settings`` records every threshold that produced these numbers (a
    report says which settings made it). Fields are flat scalars so that each
    becomes one InfluxDB field; ``eva_min`` is (angle class × duration class)
    minutes, row-major, 4 × 6.
    """

    date: str  # YYYY-MM-DD, the wearer's local day
    wear_min: float
    lying_min: float
    sitting_min: float
    standing_min: float
    walking_min: float
    other_min: float
    nonwear_min: float
    # sitting bouts (minimum bout length in settings)
    sitting_bouts: int
    sitting_bouts_brief: int  # <= 5 min
    sitting_bouts_moderate: int  # 5-20 min
    sitting_bouts_prolonged: int  # > 20 min
    sitting_bouts_ge30: int
    sitting_bouts_ge60: int
    longest_sitting_bout_min: float
    sitting_bout_p10_min: float
    sitting_bout_p50_min: float
    sitting_bout_p90_min: float
    breaks_per_h: float  # sitting interrupted by upright, per hour of sitting
    posture_changes_per_h: float  # per hour worn
    # static periods (any posture)
    static_min: float
    static_share: float  # 0..1 of wear time
    longest_static_bout_min: float
    static_bouts_ge30: int
    # trunk flexion (relative to calibrated neutral)
    flexion_lt20_min: float
    flexion_20_45_min: float
    flexion_45_60_min: float
    flexion_gt60_min: float
    flexion_gt30_min: float
    flexion_gt90_min: float
    sustained_flexion_events: int  # >= 20 deg held > 1 min (Miedema/Dul)
    sustained_flexion_min: float
    flexion_load_degmin_per_h: float  # integral of max(0, flexion-20) dt per hour worn
    # variability (APDF percentiles of inclination and flexion; EVA)
    incl_p10_deg: float
    incl_p50_deg: float
    incl_p90_deg: float
    flex_p10_deg: float
    flex_p50_deg: float
    flex_p90_deg: float
    angle_sd_deg: float  # SD of inclination over worn epochs
    eva_share_gt1min: float  # share of worn time in uninterrupted periods > 1 min
    eva_entropy_bits: float
    eva_min: tuple[float, ...]  # 4 angle classes × 6 duration classes, row-major
    settings: dict[str, Any] = field(default_factory=dict)
    # nudges sent that day (analysis.nudge.NudgeResponseStats.as_daily_fields)
    nudges_sent: int = 0
    nudges_answered: int = 0  # the wearer moved within the response window
    nudge_response_rate: float = math.nan  # answered / decided, 0..1
    nudge_median_response_s: float = math.nan  # nudge to movement, answered only

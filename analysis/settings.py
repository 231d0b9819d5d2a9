"""Every threshold the analysis uses, in one frozen dataclass.

Defaults follow ``reference/metrics.md`` (the therapist-facing definitions);
the numbers that only steer signal processing carry a one-line reason. A
``DailySummary`` stores ``AnalysisSettings.as_dict()`` so a report always
says which settings produced it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: sensor placements the analysis knows (``AnalysisSettings.placement``)
PLACEMENTS = ("lower_back", "upper_back")


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """Settings of the posture/activity analysis (units in the names).

    Signal processing
    -----------------
    working_rate_hz:
        Every input (20-208 Hz) is resampled to this grid. 25 Hz keeps the
        walking fundamental (1.4-2.6 Hz) and its harmonics up to 12 Hz, and
        halves the work of 50 Hz inputs.
    max_interp_gap_s:
        Samples further apart than this are a real gap: the grid is not
        interpolated across it and those grid points are marked missing.
    gravity_tau_s:
        Time constant of the complementary filter separating gravity from
        body acceleration: long enough to average out steps (2 Hz), short
        enough to follow a bend when no gyroscope is present.
    decision_lag_s, commit_block_s:
        Fixed look-ahead of the sequence decoder: an epoch is decided once
        ``decision_lag_s`` of later data has been seen; decisions are
        committed in blocks of ``commit_block_s`` (so the worst-case latency is
        their sum). Streaming and batch results are identical because both
        use this same schedule.
    """

    #: where the sensor is worn: ``lower_back`` (lumbar spine, belt or waist)
    #: or ``upper_back`` (thoracic spine, between the shoulder blades). The
    #: shipped inclination model is fitted on waist-worn recordings, where
    #: sitting tilts the sensor back with the pelvis; on the upper back an
    #: upright sitter reads like a stander (``analysis.activity.upper_back_sitting``)
    placement: str = "lower_back"
    working_rate_hz: float = 25.0
    max_interp_gap_s: float = 0.25
    gravity_tau_s: float = 1.0
    decision_lag_s: int = 75
    commit_block_s: int = 15
    #: live input is analysed in blocks of this much signal (at most 1024 samples)
    stream_buffer_s: float = 20.0

    # --- static / movement ---------------------------------------------------
    #: an epoch is static when body acceleration stays below this (g) ...
    static_intensity_g: float = 0.04
    #: ... and the trunk turned less than this within the second (deg)
    static_rotation_deg: float = 4.0
    #: ... or, instead of the body acceleration, the magnitude of acceleration
    #: varies less than this (SD within the second, g): a vehicle's smooth
    #: accelerations move the body without moving the trunk (reference/metrics.md:
    #: static is low acceleration *variability* and small angle change)
    static_variability_g: float = 0.03

    #: upright, moving, no gait, body acceleration above this (g): "other"
    other_intensity_g: float = 0.15

    # --- non-wear --------------------------------------------------------------
    #: a worn trunk sensor always shows breathing: tilt jitter in the breathing
    #: band. Below this (deg, SD of tilt within a second) there is only sensor noise.
    nonwear_tilt_sd_deg: float = 0.02
    #: ... and that must last this long before it counts as not worn
    nonwear_min_s: int = 60

    # --- calibration -----------------------------------------------------------
    #: seconds of walking needed before the automatic upright reference is trusted
    calib_walking_min_s: float = 10.0

    # --- bouts and metrics (reference/metrics.md) ------------------------------
    min_bout_s: float = 10.0
    sitting_brief_max_min: float = 5.0
    sitting_moderate_max_min: float = 20.0
    sustained_flexion_deg: float = 20.0
    sustained_flexion_min_s: float = 60.0
    flexion_load_threshold_deg: float = 20.0
    #: a break from a static period needs this much standing/walking/movement
    static_break_s: float = 60.0
    #: static periods shorter than this are not reported as events
    static_period_min_s: float = 60.0
    #: walking ends a static period at once; other movement ends it only when
    #: it lasts longer than this (s): a shift in the chair, a reach or a
    #: glance over the shoulder is a micro-movement within sitting still, not
    #: a break (reference/metrics.md: a break takes a minute of standing or
    #: walking). Such movements take 2-4 s; each second they touch reads as moving.
    static_tolerance_s: float = 5.0
    #: ... and only when it stays within this many degrees of the static
    #: posture's inclination: bending down to pick something up (30-90°) is a
    #: break, a fidget or a reach (5-15°) is not
    static_break_tilt_deg: float = 20.0

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement={self.placement!r} must be one of {', '.join(PLACEMENTS)}")
        if not 10.0 <= self.working_rate_hz <= 100.0:
            raise ValueError(f"working_rate_hz={self.working_rate_hz} must be within 10..100")
        if not 0.0 < self.max_interp_gap_s <= 5.0:
            raise ValueError(f"max_interp_gap_s={self.max_interp_gap_s} must be within (0, 5]")
        if not 0.1 <= self.gravity_tau_s <= 10.0:
            raise ValueError(f"gravity_tau_s={self.gravity_tau_s} must be within 0.1..10")
        if not 5 <= self.decision_lag_s <= 3600:
            raise ValueError(f"decision_lag_s={self.decision_lag_s} must be within 5..3600")
        if not 1 <= self.commit_block_s <= 3600:
            raise ValueError(f"commit_block_s={self.commit_block_s} must be within 1..3600")
        if not 0.0 <= self.stream_buffer_s <= 60.0:
            raise ValueError(f"stream_buffer_s={self.stream_buffer_s} must be within 0..60")
        if self.min_bout_s < 0:
            raise ValueError(f"min_bout_s={self.min_bout_s} must be >= 0")
        if not 0.0 <= self.static_tolerance_s <= 60.0:
            raise ValueError(f"static_tolerance_s={self.static_tolerance_s} must be within 0..60")
        if not 0.0 < self.static_break_tilt_deg <= 180.0:
            raise ValueError(
                f"static_break_tilt_deg={self.static_break_tilt_deg} must be within (0, 180]"
            )
        if not self.sitting_brief_max_min < self.sitting_moderate_max_min:
            raise ValueError("sitting_brief_max_min must be < sitting_moderate_max_min")
        if self.nonwear_min_s < 1 or self.nonwear_min_s > self.decision_lag_s - 5:
            raise ValueError(
                f"nonwear_min_s={self.nonwear_min_s} must be within 1..decision_lag_s - 5 "
                f"({self.decision_lag_s - 5}): a non-wear period is only recognised within the "
                "decoder's look-ahead"
            )

    @classmethod
    def offline(cls, **overrides: Any) -> AnalysisSettings:
        """Defaults for whole recordings (``postmon analyze``): no one waits for
        the answer, so the decoder looks 5 minutes ahead (the first walking of
        a session then calibrates the postures before it) and decides in
        5-minute blocks (each second is decoded once or twice, not three
        times). Live streams keep the short default look-ahead."""
        base: dict[str, Any] = {"decision_lag_s": 300, "commit_block_s": 300}
        base.update(overrides)
        return cls(**base)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (stored with results)."""
        return dataclasses.asdict(self)

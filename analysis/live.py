"""Provisional per-second movement, computed as samples arrive (the nudge timer's input).

The streaming analysis (:mod:`analysis.stream`) decides an epoch only after
``decision_lag_s`` of look-ahead: it needs it to tell sitting from standing
and to place transitions. A static period does not need posture: it is
time *without meaningful trunk movement* (``reference/metrics.md``), which
each second's own samples show. :class:`LiveMovement` turns samples into
one provisional epoch per second as soon as the second's last sample has
arrived, so the nudge policy can run its static timer on them and nudge
within a second or two of the threshold.

Per second (samples stamped ``[t, t + 1 s)``), with the analysis' own
thresholds (:class:`~analysis.settings.AnalysisSettings`):

* ``coverage`` = samples / rate; below 0.2 the second carries no evidence
  (the analysis' rule): provisional non-wear.
* gravity = the accelerometer through the same first-order low-pass as the
  analysis' gravity filter (time constant ``gravity_tau_s``), carried
  across batches and restarted after a gap.
* ``intensity_g`` = mean |acceleration - gravity| (the analysis' movement
  intensity; the analysis additionally fuses the gyroscope into gravity).
* rotation = angle between the mean accelerometer direction over the
  second's first and last 0.12 s (the analysis compares its fused gravity
  at the same places).
* tilt jitter = RMS angle of the low-passed direction around its mean
  (breathing shows here; below ``nonwear_tilt_sd_deg`` with no movement it
  is only sensor noise: the sensor lies on a desk).

A second is **static** when it is informative, not non-wear, not walking,
quiet (``intensity_g < static_intensity_g``, or the SD of |acceleration|
within the second below ``static_variability_g``: a vehicle moves the body,
not the trunk) and rotation < ``static_rotation_deg``: the definition of
the analysis' static flag, evaluated causally. It is
**walking** when it moves (intensity >= ``WALK_INTENSITY_G``) with a step
rhythm (1-4 upward crossings of the mean acceleration magnitude in the
second). Every other worn second is **moving** (``Activity.OTHER``); the
provisional epochs carry no posture. Flexion is measured against the
upright reference the caller passes (the analysis' current one).

Differences from the decided epochs, by design: a non-wear candidate second
is provisional non-wear at once (the analysis waits for 60 s of them), and
a second during which the wearer walks is never static in either. Everything
is causal and carried in a small state (the unfinished second's samples, the
filter state), so any chunking of the input gives the same epochs.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from analysis.contracts import NS_PER_S, Activity, SampleBatch, empty_epochs
from analysis.nudge import Nudge, NudgeSettings
from analysis.orientation import Reference, trunk_angles
from analysis.settings import AnalysisSettings

F64 = npt.NDArray[np.float64]

#: an epoch with less data than this carries no evidence (as in ``analysis.stream``)
MIN_COVERAGE = 0.2
#: start/end window of the rotation estimate (s): the analysis' 3 grid points at 25 Hz
ROTATION_EDGE_S = 0.12
#: body acceleration from which a rhythmic second counts as walking (g); quiet
#: walking is ~0.1-0.2 g at the trunk, a shift in a chair stays below
WALK_INTENSITY_G = 0.08
#: upward crossings of the mean |acc| per second that look like steps (75-200 steps/min
#: give ~1.3-3.3 crossings; a second holds 1-4 of them)
WALK_CROSSINGS = (1, 4)
#: gyroscope bias tracking (s) and the turn rate below which it learns (deg/s),
#: as in ``analysis.preprocess``
GYRO_BIAS_TAU_S = 30.0
GYRO_STILL_DPS = 6.0
#: samples further apart than this restart the low-pass (a real gap, not jitter)
RESTART_GAP_S = 1.0
DEG_PER_RAD = 180.0 / np.pi
_NONWEAR = int(Activity.NONWEAR)
_WALKING = int(Activity.WALKING)
_OTHER = int(Activity.OTHER)


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """What a :class:`LiveMovement` has seen (cumulative)."""

    samples: int
    seconds: int
    late_samples: int  # stamped inside a second already emitted (timestamp jitter)
    dropped_samples: int  # out of order or duplicate stamps


class LiveMovement:
    """Causal per-second movement state of one sensor stream.

    Parameters
    ----------
    settings : the analysis thresholds (static, non-wear, gravity filter)

    Notes
    -----
    State: the low-pass state (3 floats), the unfinished second's samples
    (at most one second of them) and counters: a few KB at most.
    """

    def __init__(self, settings: AnalysisSettings | None = None) -> None:
        self.settings = settings or AnalysisSettings()
        self._zi: F64 | None = None  # (1, 3) lfilter state
        self._last_t: int | None = None
        self._done_sec: int | None = None  # seconds < this were emitted (s since epoch)
        # the unfinished second: times, raw acceleration, low-passed acceleration
        self._t = np.empty(0, np.int64)
        self._acc = np.empty((0, 3))
        self._lp = np.empty((0, 6))  # accelerometer-only and fused gravity
        self._rate_hz = 0.0
        self._samples = 0
        self._seconds = 0
        self._late = 0
        self._dropped = 0

    @property
    def counts(self) -> LiveCounts:
        return LiveCounts(self._samples, self._seconds, self._late, self._dropped)

    @property
    def pending_until_ns(self) -> int | None:
        """End of the last second emitted (UTC ns), None before the first."""
        return None if self._done_sec is None else self._done_sec * NS_PER_S

    def state_nbytes(self) -> int:
        return int(self._t.nbytes + self._acc.nbytes + self._lp.nbytes + 128)

    def push(self, batch: SampleBatch, reference: Reference | None = None) -> npt.NDArray[np.void]:
        """Add samples; return the provisional epochs of the seconds they complete.

        Parameters
        ----------
        batch : samples of one sensor (time order; late or repeated stamps are dropped)
        reference : the wearer's upright reference for the angles, or None (NaN angles)

        Returns
        -------
        (k,) ``EPOCH_DTYPE`` rows, one per completed second that had samples,
        oldest first (seconds without samples are missing: a gap).
        """
        if len(batch) == 0:
            return empty_epochs(0)
        t = np.asarray(batch.t_ns, dtype=np.int64)
        # the analysis holds samples as float32 (16-bit sensors): the same values here
        acc = batch.accel_g.astype(np.float32).astype(np.float64)
        gyro = None if batch.gyro_dps is None else batch.gyro_dps.astype(np.float32)
        keep = np.ones(t.shape[0], dtype=bool)
        if t.shape[0] > 1:
            keep[1:] = t[1:] > np.maximum.accumulate(t)[:-1]
        if self._last_t is not None:
            keep &= t > self._last_t
        if not keep.all():
            self._dropped += int(t.shape[0] - np.count_nonzero(keep))
            t, acc = t[keep], acc[keep]
            gyro = None if gyro is None else gyro[keep]
            if t.shape[0] == 0:
                return empty_epochs(0)
        self._samples += int(t.shape[0])
        self._rate_hz = float(batch.rate_hz)
        lp = self._lowpass(t, acc, gyro)
        self._last_t = int(t[-1])
        # samples of seconds already emitted (stamp jitter at a boundary) count only
        # toward the filter
        if self._done_sec is not None:
            late = t < self._done_sec * NS_PER_S
            if late.any():
                self._late += int(np.count_nonzero(late))
                t, acc, lp = t[~late], acc[~late], lp[~late]
        t_all = np.concatenate((self._t, t))
        acc_all = np.concatenate((self._acc, acc))
        lp_all = np.concatenate((self._lp, lp))
        if t_all.shape[0] == 0:
            return empty_epochs(0)
        # the last second is complete once its last sample is in: the next one
        # (one sample period on, measured from the stamps) falls in the next second
        nominal_ns = NS_PER_S / self._rate_hz
        period_ns = nominal_ns
        if t_all.shape[0] >= 2:
            span = float(t_all[-1] - t_all[0]) / (t_all.shape[0] - 1)
            if 0.5 * nominal_ns < span < 2.0 * nominal_ns:  # no gap inside
                period_ns = span
        last_sec = int(t_all[-1]) // NS_PER_S
        # (a tenth of a period of slack for the estimate; a sample that still
        # falls inside then is counted as late)
        complete = t_all[-1] + 1.1 * period_ns >= (last_sec + 1) * NS_PER_S
        end_sec = last_sec + 1 if complete else last_sec
        cut = int(np.searchsorted(t_all, end_sec * NS_PER_S, side="left"))
        self._t, self._acc, self._lp = t_all[cut:].copy(), acc_all[cut:].copy(), lp_all[cut:].copy()
        if cut == 0:
            return empty_epochs(0)
        self._done_sec = end_sec
        return self._epochs(t_all[:cut], acc_all[:cut], lp_all[:cut], reference)

    def flush(self, reference: Reference | None = None) -> npt.NDArray[np.void]:
        """End of the stream: the unfinished second as it is (lower coverage)."""
        if self._t.shape[0] == 0:
            return empty_epochs(0)
        t, acc, lp = self._t, self._acc, self._lp
        self._t, self._acc, self._lp = t[:0], acc[:0], lp[:0]
        self._done_sec = int(t[-1]) // NS_PER_S + 1
        return self._epochs(t, acc, lp, reference)

    # ------------------------------------------------------------ internals
    def _lowpass(
        self, t: npt.NDArray[np.int64], acc: F64, gyro: npt.NDArray[np.float32] | None
    ) -> F64:
        """Gravity at the input rate, restarted after gaps: (n, 6) accelerometer-only
        low-pass and gyro-fused estimate.

        The analysis' filter (``analysis.preprocess.GravityFilter``):
        ``g = LP(a - tau * omega x g)`` with the gyroscope's slow bias removed
        (learnt only while the sensor turns slower than ``GYRO_STILL_DPS``);
        here one fixed-point pass instead of two (the second changes the
        direction by hundredths of a degree), without a gyroscope the plain
        low-pass, as there.
        """
        dt = 1.0 / self._rate_hz
        tau = self.settings.gravity_tau_s
        a = dt / (tau + dt)
        ba = dt / (GYRO_BIAS_TAU_S + dt)
        out = np.empty((t.shape[0], 6))
        starts = [0]
        if t.shape[0] > 1:
            starts += (np.flatnonzero(np.diff(t) > RESTART_GAP_S * NS_PER_S) + 1).tolist()
        if self._last_t is not None and int(t[0]) - self._last_t > RESTART_GAP_S * NS_PER_S:
            self._zi = None
        den = [1.0, -(1.0 - a)]
        for s, e in itertools.pairwise([*starts, t.shape[0]]):
            if s > 0 or self._zi is None:
                # steady state on the first sample; the gyro bias estimate starts at 0
                z0 = (1.0 - a) * acc[s]
                self._zi = np.zeros((1, 10))
                self._zi[0, 0:3] = z0
                self._zi[0, 3:6] = z0
            zi = self._zi
            g_acc, z_acc = lfilter([a], den, acc[s:e], axis=0, zi=zi[:, 0:3])
            out[s:e, 0:3] = g_acc
            if gyro is None:
                out[s:e, 3:6] = g_acc
                self._zi = np.concatenate((z_acc, z_acc, zi[:, 6:10]), axis=1)
                continue
            w = gyro[s:e] / DEG_PER_RAD
            still = np.einsum("ij,ij->i", w, w) < (GYRO_STILL_DPS / DEG_PER_RAD) ** 2
            num_den = np.empty((e - s, 4))
            num_den[:, 0:3] = w * still[:, None]
            num_den[:, 3] = still
            nd, z_b = lfilter([ba], [1.0, -(1.0 - ba)], num_den, axis=0, zi=zi[:, 6:10])
            with np.errstate(invalid="ignore", divide="ignore"):
                bias = np.where(nd[:, 3:4] > 1e-6, nd[:, 0:3] / nd[:, 3:4], 0.0)
            u = g_acc / np.sqrt(np.einsum("ij,ij->i", g_acc, g_acc))[:, None]
            g_f, z_f = lfilter(
                [a], den, acc[s:e] - tau * np.cross(w - bias, u), axis=0, zi=zi[:, 3:6]
            )
            out[s:e, 3:6] = g_f
            self._zi = np.concatenate((z_acc, z_f, z_b), axis=1)
        return out

    def _epochs(
        self, t: npt.NDArray[np.int64], acc: F64, lp: F64, reference: Reference | None
    ) -> npt.NDArray[np.void]:
        """Per-second reductions over sorted samples (vectorised over seconds).

        Few numpy calls on purpose: a live stream brings one second at a time,
        so the per-call overhead, not the arithmetic, is the cost.
        """
        s = self.settings
        sec = t // NS_PER_S
        new = np.empty(t.shape[0], dtype=bool)
        new[0] = True
        np.not_equal(sec[1:], sec[:-1], out=new[1:])
        first = np.flatnonzero(new)
        seg = np.cumsum(new) - 1  # (n,) second index of each sample
        n = np.diff(np.append(first, t.shape[0]))
        ne = first.shape[0]
        g_a, g_f = lp[:, 0:3], lp[:, 3:6]
        d = acc - g_f
        cols = np.empty((t.shape[0], 9))
        cols[:, 0] = np.sqrt(np.einsum("ij,ij->i", d, d))  # |body acceleration|
        cols[:, 1:4] = g_a / np.sqrt(np.einsum("ij,ij->i", g_a, g_a))[:, None]  # for jitter
        cols[:, 4] = np.sqrt(np.einsum("ij,ij->i", acc, acc))  # |acc|
        cols[:, 5:8] = g_f / np.sqrt(np.einsum("ij,ij->i", g_f, g_f))[:, None]  # unit gravity
        cols[:, 8] = cols[:, 4] * cols[:, 4]
        sums = np.add.reduceat(cols, first, axis=0)
        intensity = sums[:, 0] / n
        um = sums[:, 1:4] / np.sqrt(np.einsum("ij,ij->i", sums[:, 1:4], sums[:, 1:4]))[:, None]
        gm = sums[:, 5:8] / np.sqrt(np.einsum("ij,ij->i", sums[:, 5:8], sums[:, 5:8]))[:, None]
        # second pass: tilt jitter around the mean direction, step-rhythm crossings
        cols2 = np.empty((t.shape[0], 2))
        # |u - um|^2 = 2 - 2 u.um for unit vectors (the chord ~ the angle, as in the analysis)
        cols2[:, 0] = np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", cols[:, 1:4], um[seg]), 0.0)
        mag_c = cols[:, 4] - (sums[:, 4] / n)[seg]
        cols2[0, 1] = 0.0
        cols2[1:, 1] = (mag_c[1:] > 0) & (mag_c[:-1] <= 0) & ~new[1:]
        sums2 = np.add.reduceat(cols2, first, axis=0)
        tilt_sd = np.sqrt(sums2[:, 0] / n) * DEG_PER_RAD
        crossings = sums2[:, 1]
        # rotation: mean gravity direction over the first vs the last ROTATION_EDGE_S
        k = np.minimum(max(1, round(ROTATION_EDGE_S * self._rate_hz)), n)
        cs = np.empty((t.shape[0] + 1, 3))
        cs[0] = 0.0
        np.cumsum(cols[:, 5:8], axis=0, out=cs[1:])
        end = first + n
        a0 = cs[first + k] - cs[first]
        a1 = cs[end] - cs[end - k]
        cosang = np.einsum("ij,ij->i", a0, a1) / np.sqrt(
            np.einsum("ij,ij->i", a0, a0) * np.einsum("ij,ij->i", a1, a1)
        )
        rot = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))
        coverage = np.minimum(n / self._rate_hz, 1.0)
        informative = coverage >= MIN_COVERAGE
        mean_mag = sums[:, 4] / n
        sd_mag = np.sqrt(np.maximum(sums[:, 8] / n - mean_mag * mean_mag, 0.0))
        quiet = intensity < s.static_intensity_g
        nonwear = ~informative | ((tilt_sd < s.nonwear_tilt_sd_deg) & quiet)
        walking = (
            ~nonwear
            & (intensity >= WALK_INTENSITY_G)
            & (crossings >= WALK_CROSSINGS[0])
            & (crossings <= WALK_CROSSINGS[1])
        )
        ep = empty_epochs(ne)
        ep["time_ns"] = sec[first] * NS_PER_S
        ep["activity"] = np.where(nonwear, _NONWEAR, np.where(walking, _WALKING, _OTHER))
        # low body acceleration, or a smooth |acceleration| (a vehicle moves the
        # body, not the trunk), and little turning: the analysis' static flag
        smooth = sd_mag < s.static_variability_g
        ep["static"] = ~nonwear & ~walking & (quiet | smooth) & (rot < s.static_rotation_deg)
        ep["intensity_g"] = np.where(informative, intensity, np.nan)
        if reference is not None:
            incl, flex, lat = trunk_angles(gm, reference)
            ep["inclination_deg"] = incl
            ep["flexion_deg"] = flex
            ep["lateral_deg"] = lat
        else:
            ep["inclination_deg"] = ep["flexion_deg"] = ep["lateral_deg"] = np.nan
        self._seconds += ne
        return ep


# ------------------------------------------------------------ nudges on it


def live_nudge_settings(settings: NudgeSettings) -> NudgeSettings:
    """The plan as the live timer applies it to provisional epochs.

    Provisional epochs carry no posture, so a break is ``break_min_s``
    consecutive *moving* seconds (walking or not): the default movement
    rule, whatever ``break_activities`` says. Every other rule is the plan's.
    """
    return dataclasses.replace(
        settings, break_activities=("walking", "other"), break_requires_movement=True
    )


CheckKind = Literal["confirmed", "live_only", "smoothed_only"]


@dataclass(frozen=True, slots=True)
class NudgeCheck:
    """How a nudge sent from the provisional epochs compares with the decided ones.

    Attributes
    ----------
    kind:
        ``"confirmed"``: the policy on the decided (smoothed) epochs sent a
        nudge of the same reason within the tolerance; ``"live_only"``: it
        did not (the smoothed analysis disagrees); ``"smoothed_only"``: the
        smoothed policy nudged where the live one did not.
    nudge_id, time_ns, reason, level:
        The live nudge's (for ``smoothed_only``: the smoothed one's).
    offset_s:
        Smoothed minus live decision time, s (``confirmed`` only).
    """

    kind: CheckKind
    nudge_id: str
    time_ns: int
    reason: str
    level: int
    offset_s: float | None = None


class NudgeCrossCheck:
    """Matches live nudges with those of the policy on the decided epochs.

    Both policies see the same stream; the decided epochs arrive
    ``decision_lag_s`` to ``decision_lag_s + commit_block_s`` later. Each
    side's nudges are matched one to one in time order (same reason, decision
    times at most ``tolerance_s`` apart); a nudge is reported once the other
    side's epochs have passed its time plus the tolerance without a match.
    Bounded: only nudges waiting for the other side are held.
    """

    def __init__(self, tolerance_s: float = 120.0) -> None:
        if not tolerance_s > 0:
            raise ValueError(f"tolerance_s={tolerance_s} must be > 0")
        self.tol_ns = round(tolerance_s * NS_PER_S)
        self._live: list[Nudge] = []
        self._smoothed: list[Nudge] = []
        self._live_horizon = -(2**62)
        self._smoothed_horizon = -(2**62)

    def update(
        self,
        live: Sequence[Nudge] = (),
        smoothed: Sequence[Nudge] = (),
        *,
        live_horizon_ns: int | None = None,
        smoothed_horizon_ns: int | None = None,
        final: bool = False,
    ) -> list[NudgeCheck]:
        """Add nudges and how far each side's epochs reach (end, UTC ns);
        return the checks that are now decided (``final``: all of them)."""
        self._live.extend(live)
        self._smoothed.extend(smoothed)
        if live_horizon_ns is not None:
            self._live_horizon = max(self._live_horizon, live_horizon_ns)
        if smoothed_horizon_ns is not None:
            self._smoothed_horizon = max(self._smoothed_horizon, smoothed_horizon_ns)
        out: list[NudgeCheck] = []
        for ln in list(self._live):
            match = next(
                (
                    sn
                    for sn in self._smoothed
                    if sn.reason == ln.reason and abs(sn.time_ns - ln.time_ns) <= self.tol_ns
                ),
                None,
            )
            if match is not None:
                self._live.remove(ln)
                self._smoothed.remove(match)
                offset = (match.time_ns - ln.time_ns) / NS_PER_S
                out.append(
                    NudgeCheck("confirmed", ln.nudge_id, ln.time_ns, ln.reason, ln.level, offset)
                )
            elif final or self._smoothed_horizon > ln.time_ns + self.tol_ns:
                self._live.remove(ln)
                out.append(NudgeCheck("live_only", ln.nudge_id, ln.time_ns, ln.reason, ln.level))
        for sn in list(self._smoothed):
            if final or self._live_horizon > sn.time_ns + self.tol_ns:
                self._smoothed.remove(sn)
                out.append(
                    NudgeCheck("smoothed_only", sn.nudge_id, sn.time_ns, sn.reason, sn.level)
                )
        out.sort(key=lambda c: c.time_ns)
        return out

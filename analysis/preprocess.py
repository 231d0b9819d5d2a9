"""Sample-level front end: resampling, gravity separation, per-second features.

Everything here is causal and keeps its memory in a small ``FrontEnd``
object, so that feeding a stream in chunks of any size gives bit-identical
features to feeding it in one piece (scipy's ``lfilter`` with carried state is
exact across chunk boundaries; interpolation only ever looks at the two
samples around a grid point).

Steps, per chunk of samples
---------------------------
1. **Anti-alias + resample** to ``working_rate_hz`` on a grid anchored at
   absolute time (multiples of the grid period since the Unix epoch), so epoch
   boundaries are whole UTC seconds whatever the chunking. Faster inputs are
   first smoothed by a boxcar as long as one grid period; grid points are
   linearly interpolated, but never across a real gap (two samples further
   apart than ``max_interp_gap_s``): such grid points are marked missing.
2. **Gravity / body acceleration** by a vector complementary filter. A
   first-order complementary filter with time constant tau is
   ``g = LP(a) + HP(g_gyro)`` with ``dg_gyro/dt = -omega x g``; since
   ``HP(integral x) = tau * LP(x)`` for first-order filters this equals
   ``g = LP(a - tau * omega x g)``, a linear filter once ``g`` on the right is
   replaced by the previous estimate. Two fixed-point passes (the first with
   the accelerometer-only estimate) remove almost all of the lag of a plain
   low-pass during fast bending, with no per-sample Python loop. Without a
   gyroscope the filter is the plain low-pass. Filters restart after a gap.
   The gyroscope's bias is tracked by a slow low-pass of the samples that
   barely turn (``GYRO_STILL_RAD_S``). A second, slower fusion
   (``ANGLE_TAU_S``) gives the direction used for the trunk angles of still
   seconds, where seconds-long body accelerations (vehicles) would otherwise
   tilt the estimate.
3. **Per-second features** (``FEATURE_DTYPE``): mean gravity direction,
   movement intensity, tilt jitter (for static and non-wear), gait
   periodicity (autocorrelation of vertical acceleration at step lags),
   vertical velocity/displacement (for sit-to-stand vs stand-to-sit; also
   the velocity change and displacement contributed by the raw vertical
   acceleration, for integrating a transition window with zero velocity at
   both ends: ``analysis.activity.vertical_rise``) and the step-lag
   covariance of horizontal acceleration (for the forward direction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from analysis.contracts import NS_PER_S, STANDARD_GRAVITY_MS2
from analysis.settings import AnalysisSettings

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
#: float32 or float64 arrays (the gravity filters run in float32)
FA = npt.NDArray[np.floating[Any]]

#: Seconds of vertical acceleration looked at for gait periodicity (ends at the epoch end).
GAIT_WINDOW_S = 3
#: Step periods searched (s): cadence 75-200 steps/min.
STEP_PERIOD_MIN_S = 0.30
STEP_PERIOD_MAX_S = 0.80
#: Leak of the vertical-velocity integrator (s): long enough to hold the 1-2 s
#: rise of a sit-to-stand, short enough to forget accelerometer bias.
VELOCITY_TAU_S = 1.5
#: High-pass applied to vertical acceleration before integrating (s).
VERTICAL_HP_TAU_S = 4.0
#: Gyroscope bias tracking (s): far slower than any trunk movement.
GYRO_BIAS_TAU_S = 30.0
#: The bias is learnt only from samples turning slower than this (rad/s, 6 deg/s):
#: above cheap gyroscopes' bias (1-3 deg/s), below any deliberate movement.
GYRO_STILL_RAD_S = 6.0 / (180.0 / np.pi)
#: Time constant of the slow fusion used for trunk angles when a gyroscope is
#: present (s): the gyroscope carries every real turn, and the accelerometer
#: only corrects its drift, so body accelerations lasting seconds (a vehicle's
#: 0.05-0.1 g tilt the accelerometer by 3-6°) average out. Used for still
#: seconds only (``analysis.stream``): the two fixed-point passes lag behind
#: fast movements at this time constant.
ANGLE_TAU_S = 5.0
DEG_PER_RAD = 180.0 / np.pi

FEATURE_DTYPE = np.dtype(
    [
        ("time_ns", np.int64),  # epoch start (UTC ns)
        ("coverage", np.float32),  # fraction of the second with data, 0..1
        ("g", np.float64, (3,)),  # unit gravity ("up") direction, sensor frame, fused
        ("g_angle", np.float32, (3,)),  # the same from the slow fusion, for trunk angles
        ("intensity_g", np.float32),  # mean |body acceleration| (g)
        ("sd_mag_g", np.float32),  # SD of |acceleration| (g)
        ("tilt_sd_deg", np.float32),  # RMS angular jitter of accel-only gravity (deg)
        ("rot_deg", np.float32),  # angle turned within the second (deg)
        ("gyro_dps", np.float32),  # mean |angular rate| (deg/s); NaN without gyro
        ("gait_ac", np.float32),  # best autocorrelation of vertical acc at a step lag
        ("step_s", np.float32),  # that step period (s)
        ("vert_sd_g", np.float32),  # SD of vertical acceleration over the gait window (g)
        ("vmin_ms", np.float32),  # min vertical velocity (m/s), up positive
        ("vmax_ms", np.float32),  # max vertical velocity (m/s)
        ("disp_m", np.float32),  # vertical displacement over the second (m)
        # vertical acceleration (a . up - 1 g, up positive, neither high-passed
        # nor leaky) integrated over the second: velocity gained (m/s), and
        # the distance that gain moves the body by the end of the second (m);
        # exact sums, so windows of seconds integrate without the samples
        ("dv_ms", np.float32),
        ("dx_m", np.float32),
        ("hcovk", np.float64, (6,)),  # step-lag covariance of body acc (xx yy zz xy xz yz)
    ]
)


def _grid_period_ns(rate_hz: float) -> int:
    period = NS_PER_S / rate_hz
    if abs(period - round(period)) > 1e-6 or NS_PER_S % round(rate_hz) != 0:
        raise ValueError(f"working_rate_hz={rate_hz} must divide one second into whole ns")
    return round(period)


@dataclass(frozen=True, slots=True)
class GridChunk:
    """Resampled data on the working grid (M points), component-major.

    Component-major (3, M) arrays keep each axis contiguous, so the filters
    and per-second reductions below run along the fast memory axis.
    """

    t_ns: I64  # (M,) grid times
    valid: npt.NDArray[np.bool_]  # (M,) False inside gaps
    acc: F64  # (3, M) g
    gyro: F64  # (3, M) deg/s (zeros when absent)
    has_gyro: npt.NDArray[np.bool_]  # (M,)


class Resampler:
    """Gap-aware resampling of an irregular stream onto an absolute-time grid.

    State: the last ``box_n`` raw samples (the boxcar history, which also
    gives the interpolation across the chunk boundary), the last sample time
    and the next grid index. A few hundred bytes.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        self.period_ns = _grid_period_ns(settings.working_rate_hz)
        self.max_gap_ns = round(settings.max_interp_gap_s * NS_PER_S)
        self.next_k: int | None = None
        self.last_t: int | None = None
        self.box_n = 0
        #: (7, box_n) raw [acc, gyro, has_gyro] of the last samples, oldest first
        self.box_hist: npt.NDArray[np.float32] | None = None
        self.dropped_samples = 0  # out-of-order / duplicate samples ignored

    def push(
        self,
        t_ns: I64,
        acc: npt.NDArray[np.floating],
        gyro: npt.NDArray[np.floating] | None,
        rate_hz: float,
    ) -> GridChunk:
        """Resample (N,) times and (N, 3) samples (gyro may be None) onto the grid.

        Inputs faster than the grid are smoothed by a boxcar one grid period
        long; grid points are linearly interpolated between the two boxcar
        outputs around them. Only the boxcar outputs next to grid points are
        computed (gathered, not filtered over every input sample), and each is
        a sum in a fixed order of its own samples: bit-identical for any
        chunking. Samples are held as float32 (sensors deliver at most 16 bits).
        """
        t = np.asarray(t_ns, dtype=np.int64)
        if self.last_t is not None and t.size and t[0] <= self.last_t:
            keep = t > self.last_t
            self.dropped_samples += int(t.size - np.count_nonzero(keep))
            t, acc = t[keep], acc[keep]
            gyro = None if gyro is None else gyro[keep]
        if t.size > 1:
            inc = np.diff(t) > 0
            if not inc.all():  # keep the first of duplicates / drop reversals
                keep = np.concatenate(([True], inc))
                self.dropped_samples += int(t.size - np.count_nonzero(keep))
                t, acc = t[keep], acc[keep]
                gyro = None if gyro is None else gyro[keep]
        n = t.size
        if n == 0:
            return _empty_grid()
        box = max(1, int(rate_hz / (NS_PER_S / self.period_ns) + 1e-9))
        if self.last_t is None or box != self.box_n or self.box_hist is None:
            first = np.empty((7, 1), dtype=np.float32)
            first[0:3, 0] = acc[0]
            first[3:6, 0] = 0.0 if gyro is None else gyro[0]
            first[6, 0] = 0.0 if gyro is None else 1.0
            # start in steady state on the first sample (no ramp from zero)
            hist = np.repeat(first, box, axis=1)
        else:
            hist = self.box_hist
        # xx: box_n history samples, the new ones, one spare column for the gather
        xx = np.empty((7, box + n + 1), dtype=np.float32)
        xx[:, :box] = hist
        xx[0:3, box : box + n] = acc.T
        if gyro is None:
            xx[3:7, box : box + n] = 0.0
        else:
            xx[3:6, box : box + n] = gyro.T
            xx[6, box : box + n] = 1.0
        xx[:, -1] = xx[:, -2]
        self.box_n = box
        self.box_hist = xx[:, n : n + box].copy()
        if self.last_t is None:
            # the first sample has no predecessor: index 0 of t_all is itself
            t_all = np.concatenate((t[:1], t))
            self.next_k = -(-int(t[0]) // self.period_ns)
        else:
            t_all = np.concatenate(([self.last_t], t))
        self.last_t = int(t[-1])
        assert self.next_k is not None
        k_end = int(t_all[-1]) // self.period_ns
        if k_end < self.next_k:
            return _empty_grid()
        k = np.arange(self.next_k, k_end + 1, dtype=np.int64)
        self.next_k = k_end + 1
        tg = k * self.period_ns
        # t_all[q] is the sample whose boxcar output is xx[:, q : q + box].mean
        j = np.searchsorted(t_all, tg, side="right") - 1
        np.clip(j, 0, t_all.size - 1, out=j)
        j1 = np.minimum(j + 1, t_all.size - 1)
        t0 = t_all[j]
        span = t_all[j1] - t0
        valid = (tg == t0) | ((span > 0) & (span <= self.max_gap_ns) & (tg >= t0))
        # weight of the right neighbour; 0 on an exact hit or past the last sample
        w = (tg - t0) / np.where(span > 0, span, np.iinfo(np.int64).max)
        # sums of a few float32 values are exact in float64, so the right
        # neighbour's boxcar is the left one plus its newest minus its oldest
        vals = xx[:, j].astype(np.float64)
        for i in range(1, box):
            vals += xx[:, j + i]
        if w.any():  # not every grid point falls exactly on a sample
            vals += w * (xx[:, j + box].astype(np.float64) - xx[:, j])
        if box > 1:
            vals *= 1.0 / box
        return GridChunk(tg, valid, vals[0:3], vals[3:6], vals[6] > 0.5)


def _empty_grid() -> GridChunk:
    return GridChunk(
        np.empty(0, np.int64),
        np.empty(0, bool),
        np.empty((3, 0)),
        np.empty((3, 0)),
        np.empty(0, bool),
    )


@dataclass(frozen=True, slots=True)
class Fused:
    """Gravity separation of a grid chunk (M points); NaN inside gaps."""

    g: FA  # (3, M) fused gravity estimate (g, about unit length)
    up: FA  # (3, M) unit fused gravity ("up") direction
    up_acc: FA  # (3, M) unit accelerometer-only (low-pass) direction
    up_angle: FA  # (3, M) unit direction for trunk angles (slow fusion with a gyroscope)
    vert: FA  # (M,) high-passed body acceleration along up (g)
    vel: FA  # (M,) leaky-integrated vertical velocity (m/s)
    vert_raw: FA  # (M,) vertical acceleration before the high-pass (g): keeps sensor offsets


def _unit(v: FA) -> FA:
    """(3, M) vectors scaled to unit length (component-major, no axis shuffles)."""
    out: FA = v * (1.0 / np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]))
    return out


def _complementary_pass(
    acc: FA, w: FA, g_prev: FA, tau_s: float, alpha: float, zi: FA
) -> tuple[FA, FA]:
    """One fixed-point pass ``g = LP_tau(a - tau * omega x u)`` (module docstring).

    acc (3, m) g, w (3, m) bias-free angular rate (rad/s), g_prev (3, m) the
    previous estimate (its direction u is used), zi (>= 3,) filter state.
    Returns the new estimate and the new filter state (3,).
    """
    u = _unit(g_prev)
    drive = np.empty_like(acc)
    drive[0] = acc[0] - tau_s * (w[1] * u[2] - w[2] * u[1])
    drive[1] = acc[1] - tau_s * (w[2] * u[0] - w[0] * u[2])
    drive[2] = acc[2] - tau_s * (w[0] * u[1] - w[1] * u[0])
    b, a = _lp_coeffs(alpha)
    g, zf = lfilter(b, a, drive, axis=1, zi=zi[:3, None].astype(_DT))
    return np.asarray(g), zf[:, 0]


#: working precision of the gravity filters
_DT = np.float32


def _lp_coeffs(alpha: float) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """First-order low-pass ``y += alpha (x - y)`` as lfilter (b, a), float32."""
    return np.array([alpha], _DT), np.array([1.0, -(1.0 - alpha)], _DT)


class GravityFilter:
    """Vector complementary filter (see module docstring), restartable at gaps.

    State: five 3-vectors (low-pass, two fixed-point passes, vertical
    high-pass/velocity, gyroscope bias).
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        dt = 1.0 / settings.working_rate_hz
        self.tau_s = settings.gravity_tau_s
        self.alpha = dt / (self.tau_s + dt)
        self.vert_alpha = dt / (VERTICAL_HP_TAU_S + dt)
        self.vel_decay = 1.0 - dt / VELOCITY_TAU_S
        self.dt = dt
        self.bias_alpha = dt / (GYRO_BIAS_TAU_S + dt)
        self.angle_tau_s = max(self.tau_s, ANGLE_TAU_S)
        self.angle_alpha = dt / (self.angle_tau_s + dt)
        # (7, 4): LP accel, pass 1, pass 2, vertical HP/vel (first 3 columns),
        # gyro bias numerator (3) and denominator (1), the two slow passes
        self.z: F64 | None = None

    def _run(self, acc: FA, gyro_rad: FA, has_gyro: bool) -> tuple[FA, FA, FA, FA, FA, FA, FA]:
        """One continuous valid run of (3, m) arrays.

        Returns (g_acc, g, up, up_angle, vert, vel, vert_raw): the
        accelerometer-only low-pass, the fused estimate and its direction, the
        direction for trunk angles (slow fusion, see ``ANGLE_TAU_S``), vertical
        acceleration (high-passed), velocity, and vertical acceleration as
        measured.
        """
        a = self.alpha
        b_lp, a_lp = _lp_coeffs(a)
        if self.z is None:
            # start in steady state on the first sample
            z0 = np.append((1.0 - a) * acc[:, 0], 0.0)
            za = np.append((1.0 - self.angle_alpha) * acc[:, 0], 0.0)
            # the bias estimate starts at 0: the first sample may be a movement
            self.z = np.array([z0, z0, z0, np.zeros(4), np.zeros(4), za, za])
        z = self.z
        g_acc, z0n = lfilter(b_lp, a_lp, acc, axis=1, zi=z[0][:3, None].astype(_DT))
        g = np.asarray(g_acc)
        zs = [z0n[:, 0]]
        zb = z[4]
        if has_gyro:
            # gyroscope bias (1-3 deg/s on cheap sensors) would tilt the fused
            # estimate by tau * bias (1-3°) when still: remove the slow part,
            # learnt only while the sensor barely turns, so that a real turn
            # (a 70° bend in one second) is not taken for bias afterwards
            ba = self.bias_alpha
            still = (
                gyro_rad[0] * gyro_rad[0] + gyro_rad[1] * gyro_rad[1] + gyro_rad[2] * gyro_rad[2]
            ) < GYRO_STILL_RAD_S**2
            num_den = np.empty((4, acc.shape[1]), dtype=_DT)
            num_den[0:3] = gyro_rad * still
            num_den[3] = still
            bb, ab = _lp_coeffs(ba)
            nd, zbn = lfilter(bb, ab, num_den, axis=1, zi=z[4][:, None].astype(_DT))
            with np.errstate(invalid="ignore", divide="ignore"):
                bias = np.where(nd[3] > 1e-6, nd[0:3] / nd[3], 0.0)
            w = gyro_rad - bias
            zb = zbn[:, 0]
            for p in (1, 2):
                g, zp = _complementary_pass(acc, w, g, self.tau_s, self.alpha, z[p])
                zs.append(zp)
            # slow fusion for the angles: start from the fast estimate, refine once
            g_ang = g
            for p in (5, 6):
                g_ang, zp = _complementary_pass(
                    acc, w, g_ang, self.angle_tau_s, self.angle_alpha, z[p]
                )
                zs.append(zp)
        else:
            zs += [z[1][:3], z[2][:3], z[5][:3], z[6][:3]]
            g_ang = g
        up = _unit(g)
        # body acceleration along up (g). a.u - 1 rather than (a - g).u: the
        # filtered g shrinks while it turns (an average of directions), and a
        # direction error e only costs 1 - cos(e) here
        vert = acc[0] * up[0] + acc[1] * up[1] + acc[2] * up[2] - 1.0
        # high-pass (remove bias), then leaky integration to velocity (m/s)
        va = self.vert_alpha
        vz = z[3]
        bv, av = _lp_coeffs(va)
        hp_lp, hz = lfilter(bv, av, vert, zi=vz[0:1].astype(_DT))
        vert_hp = vert - hp_lp
        vel, velz = lfilter(
            np.array([self.dt * STANDARD_GRAVITY_MS2], _DT),
            np.array([1.0, -self.vel_decay], _DT),
            vert_hp,
            zi=vz[1:2].astype(_DT),
        )
        self.z = np.array(
            [
                np.append(zs[0], 0.0),
                np.append(zs[1], 0.0),
                np.append(zs[2], 0.0),
                [hz[0], velz[0], 0.0, 0.0],
                zb,
                np.append(zs[3], 0.0),
                np.append(zs[4], 0.0),
            ]
        )
        up_angle = up if g_ang is g else _unit(g_ang)
        return np.asarray(g_acc), g, up, up_angle, vert_hp, np.asarray(vel), vert

    def push(self, grid: GridChunk) -> Fused:
        """Filter a grid chunk; invalid points give NaN and restart the filters."""
        m = grid.t_ns.size
        valid = grid.valid
        # float32 through the filters: sensors deliver at most 16 bits, the
        # filters are stable first-order ones (rounding stays ~1e-6), and it
        # halves the memory traffic of this memory-bound stage
        acc = grid.acc.astype(_DT)
        gyro_rad = (grid.gyro * (1.0 / DEG_PER_RAD)).astype(_DT)
        if m and valid.all():
            hg = bool(grid.has_gyro.all())
            g_acc, g, up, up_ang, vert, vel, vraw = self._run(acc, gyro_rad, hg)
            return Fused(g, up, _unit(g_acc), up_ang, vert, vel, vraw)
        g_acc = np.full((3, m), np.nan)
        g = np.full((3, m), np.nan)
        up = np.full((3, m), np.nan)
        up_ang = np.full((3, m), np.nan)
        vert = np.full(m, np.nan)
        vel = np.full(m, np.nan)
        vraw = np.full(m, np.nan)
        if m == 0:
            return Fused(g, up, g_acc, up_ang, vert, vel, vraw)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], valid.view(np.int8), [0]))))
        runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
        if not valid[0]:
            self.z = None
        for s, e in runs:
            if s > 0:
                self.z = None  # restart after a gap
            hg = bool(grid.has_gyro[s:e].all())
            ga, gf, u, ua, vh, v, vr = self._run(acc[:, s:e], gyro_rad[:, s:e], hg)
            g_acc[:, s:e], g[:, s:e], up[:, s:e], up_ang[:, s:e] = ga, gf, u, ua
            vert[s:e], vel[s:e], vraw[s:e] = vh, v, vr
        if not valid[-1]:
            self.z = None
        return Fused(g, up, _unit(g_acc), up_ang, vert, vel, vraw)


# rows of the per-point matrix the feature extractor groups into epochs
_ACC, _GYRO, _HASG, _G, _UP, _UPA, _VERT, _VEL, _UPANG, _VRAW = (
    slice(0, 3),
    slice(3, 6),
    6,
    slice(7, 10),
    slice(10, 13),
    slice(13, 16),
    16,
    17,
    slice(18, 21),
    21,
)
_NROWS = 22
#: what an invalid grid point holds: benign finite values (it carries zero
#: weight; finite values keep the reductions free of NaN bookkeeping)
_BENIGN = np.array(
    [0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], dtype=np.float64
)


class FeatureExtractor:
    """Groups filtered grid points into 1-s epochs and computes ``FEATURE_DTYPE``.

    Keeps the unfinished epoch plus ``GAIT_WINDOW_S - 1`` finished seconds of
    vertical and body acceleration (for the gait window): about 3 KB at 25 Hz.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        self.rate = round(settings.working_rate_hz)
        self.period_ns = _grid_period_ns(settings.working_rate_hz)
        self.lags = np.arange(
            round(STEP_PERIOD_MIN_S * self.rate), round(STEP_PERIOD_MAX_S * self.rate) + 1
        )
        # carry: grid points of the unfinished epoch (first grid index, validity, values)
        self.pend_k = -1
        self.pend_valid: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.pend: F64 = np.zeros((_NROWS, 0))
        # history for the gait window: vertical + body acceleration, validity
        hl = (GAIT_WINDOW_S - 1) * self.rate
        self.hist: F64 = np.zeros((4, hl))
        self.hist_valid: npt.NDArray[np.bool_] = np.zeros(hl, dtype=bool)
        # time from each grid point of a second to the second's end (s)
        self._time_left: F64 = 1.0 - np.arange(self.rate) / self.rate

    @property
    def state_nbytes(self) -> int:
        return int(
            self.pend.nbytes + self.pend_valid.nbytes + self.hist.nbytes + self.hist_valid.nbytes
        )

    def push(self, grid: GridChunk, fused: Fused) -> npt.NDArray[np.void]:
        """Features of the epochs this chunk completes (consecutive grid points)."""
        m = grid.t_ns.size
        if m == 0:
            return np.empty(0, FEATURE_DTYPE)
        valid = grid.valid
        k_first = int(grid.t_ns[0]) // self.period_ns
        # points carried from the last call, or (stream start) padding up to
        # the epoch boundary, go in front: one matrix, filled in place
        if self.pend.shape[1]:
            head, head_valid = self.pend, self.pend_valid
            k_first = self.pend_k
        elif self.pend_k < 0 and k_first % self.rate:
            pad = k_first % self.rate
            head = np.repeat(_BENIGN[:, None], pad, axis=1)
            head_valid = np.zeros(pad, dtype=bool)
            k_first -= pad
        else:
            head, head_valid = self.pend, self.pend_valid
        h = head.shape[1]
        x = np.empty((_NROWS, h + m))
        x[:, :h] = head
        xn = x[:, h:]
        xn[_ACC] = grid.acc
        xn[_GYRO] = grid.gyro
        xn[_HASG] = grid.has_gyro
        xn[_G] = fused.g
        xn[_UP] = fused.up
        xn[_UPA] = fused.up_acc
        xn[_VERT] = fused.vert
        xn[_VEL] = fused.vel
        xn[_VRAW] = fused.vert_raw
        xn[_UPANG] = fused.up_angle
        if not valid.all():
            xn[:, ~valid] = _BENIGN[:, None]
        if h:
            valid = np.concatenate((head_valid, valid))
        # the resampler yields consecutive grid points and the carried ones
        # start at an epoch boundary, so complete epochs are whole blocks
        n = x.shape[1]
        ne = n // self.rate
        cut = ne * self.rate
        self.pend = x[:, cut:].copy()
        self.pend_valid = valid[cut:].copy()
        self.pend_k = k_first + cut
        if ne == 0:
            return np.empty(0, FEATURE_DTYPE)
        return self._features(x[:, :cut], valid[:cut], ne, k_first * self.period_ns)

    def flush(self) -> npt.NDArray[np.void]:
        """Features of the unfinished last epoch (end of a recording)."""
        npend = self.pend.shape[1]
        if npend == 0:
            return np.empty(0, FEATURE_DTYPE)
        back = self.rate - npend
        x = np.concatenate((self.pend, np.repeat(_BENIGN[:, None], back, axis=1)), axis=1)
        valid = np.concatenate((self.pend_valid, np.zeros(back, dtype=bool)))
        start_ns = self.pend_k * self.period_ns
        self.pend = np.zeros((_NROWS, 0))
        self.pend_valid = np.zeros(0, dtype=bool)
        return self._features(x, valid, 1, start_ns)

    def _features(
        self, x: F64, valid: npt.NDArray[np.bool_], ne: int, start_ns: int
    ) -> npt.NDArray[np.void]:
        """Per-second features of ``ne`` whole epochs, x (_NROWS, ne * rate).

        Invalid points hold benign values and weight 0; with every point valid
        the weighted means reduce to plain ones bit for bit (x * 1.0 == x), so
        an epoch's features depend only on its own points whatever the chunking.
        """
        r = self.rate
        out = np.zeros(ne, FEATURE_DTYPE)
        out["time_ns"] = start_ns + np.arange(ne, dtype=np.int64) * NS_PER_S
        xe = x.reshape(_NROWS, ne, r)
        vmask = valid.reshape(ne, r)
        all_valid = bool(valid.all())
        if all_valid:
            wt: F64 | None = None
            nv = np.full(ne, float(r))
        else:
            wt = vmask.astype(np.float64)
            nv = wt.sum(axis=1)

        def mean(v: F64) -> F64:
            s = v.sum(axis=-1) if wt is None else (v * wt).sum(axis=-1)
            res: F64 = s / nv
            return res

        out["coverage"] = nv / r
        has = nv > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            up = xe[_UP]
            gm = mean(up)
            out["g"] = _unit(gm).T
            out["g_angle"] = _unit(mean(xe[_UPANG])).T
            upa = xe[_UPA]
            am = _unit(mean(upa))
            d0, d1, d2 = upa[0] - am[0][:, None], upa[1] - am[1][:, None], upa[2] - am[2][:, None]
            out["tilt_sd_deg"] = np.sqrt(mean(d0 * d0 + d1 * d1 + d2 * d2)) * DEG_PER_RAD
            acc = xe[_ACC]
            body = acc - xe[_G]
            out["intensity_g"] = mean(np.sqrt(body[0] ** 2 + body[1] ** 2 + body[2] ** 2))
            mag2 = acc[0] ** 2 + acc[1] ** 2 + acc[2] ** 2
            mm = mean(np.sqrt(mag2))
            out["sd_mag_g"] = np.sqrt(np.maximum(mean(mag2) - mm * mm, 0.0))
            # angle turned within the second: first vs last fused direction
            if wt is None:
                first = up[:, :, :3].sum(axis=-1)
                last = up[:, :, -3:].sum(axis=-1)
            else:
                first = (up[:, :, :3] * wt[:, :3]).sum(axis=-1)
                last = (up[:, :, -3:] * wt[:, -3:]).sum(axis=-1)
                first[:, wt[:, :3].sum(axis=1) == 0] = np.nan
                last[:, wt[:, -3:].sum(axis=1) == 0] = np.nan
            cosang = (first * last).sum(axis=0) / np.sqrt(
                (first * first).sum(axis=0) * (last * last).sum(axis=0)
            )
            out["rot_deg"] = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))
            gy = xe[_GYRO]
            gmag = np.sqrt(gy[0] ** 2 + gy[1] ** 2 + gy[2] ** 2)
            hasg = xe[_HASG]
            if wt is None and bool(hasg.all()):
                out["gyro_dps"] = mean(gmag)
            else:
                wg = hasg if wt is None else hasg * wt
                out["gyro_dps"] = (gmag * wg).sum(axis=-1) / wg.sum(axis=-1)
            vel = xe[_VEL]
            if wt is None:
                out["vmin_ms"] = vel.min(axis=1)
                out["vmax_ms"] = vel.max(axis=1)
            else:
                out["vmin_ms"] = np.where(has, np.where(vmask, vel, np.inf).min(axis=1), np.nan)
                out["vmax_ms"] = np.where(has, np.where(vmask, vel, -np.inf).max(axis=1), np.nan)
            out["disp_m"] = np.where(has, vel.sum(axis=1) / r, np.nan)
            # vertical acceleration (m/s^2) times dt, and times the time left
            # to the end of the second: velocity gained, and its distance
            av = xe[_VRAW] * (STANDARD_GRAVITY_MS2 / r)
            if wt is not None:
                av = av * wt
            out["dv_ms"] = np.where(has, av.sum(axis=1), np.nan)
            out["dx_m"] = np.where(has, av @ self._time_left, np.nan)
        # gait window: this second plus the previous GAIT_WINDOW_S-1 seconds
        cur = np.empty((4, ne * r))
        cur[0] = x[_VERT]
        cur[1:4] = x[_ACC] - x[_G]
        seq = np.concatenate((self.hist, cur), axis=1)
        seq_valid = np.concatenate((self.hist_valid, valid))
        hlen = self.hist_valid.size
        self.hist = seq[:, -hlen:].copy()
        self.hist_valid = seq_valid[-hlen:].copy()
        full: npt.NDArray[np.bool_] = np.asarray(seq_valid.reshape(-1, r).all(axis=1))
        k = GAIT_WINDOW_S
        ok = full[:ne].copy()
        for i in range(1, k):
            ok &= full[i : ne + i]
        w = k * r
        win = np.lib.stride_tricks.sliding_window_view(seq, w, axis=1)[:, ::r][:, :ne]
        self._gait(out, win, ok)
        return out

    def _gait(self, out: npt.NDArray[np.void], win: F64, ok: npt.NDArray[np.bool_]) -> None:
        """Autocorrelation of vertical acceleration at step lags (orientation-free).

        ``win`` (4, ne, w): read-only windows of vertical and (x, y, z) body
        acceleration; ``ok`` (ne,) windows without missing points.
        """
        v = np.where(ok[:, None], win[0], 0.0)
        v -= v.mean(axis=1, keepdims=True)
        energy = np.einsum("ij,ij->i", v, v)
        w = v.shape[1]
        acs = np.empty((v.shape[0], self.lags.size))
        for li, k in enumerate(self.lags.tolist()):
            acs[:, li] = np.einsum("ij,ij->i", v[:, : w - k], v[:, k:])
        # unbiased normalisation per lag so long lags are not penalised
        acs *= (w / (w - self.lags))[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            acn = acs / energy[:, None]
        best = np.argmax(np.nan_to_num(acn, nan=-1.0), axis=1)
        ac = acn[np.arange(acn.shape[0]), best]
        out["gait_ac"] = np.where(ok & (energy > 0), ac, 0.0)
        out["step_s"] = self.lags[best] / self.rate
        out["vert_sd_g"] = np.where(ok, np.sqrt(energy / w), np.nan)
        # step-lag covariance of body acceleration at each window's best lag
        # (forward-axis estimation), windows grouped by that lag
        hc = np.zeros((v.shape[0], 6))
        iu = ([0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2])
        for li, k in enumerate(self.lags.tolist()):
            sel = np.flatnonzero((best == li) & ok)
            if sel.size == 0:
                continue
            b = win[1:4, sel]  # (3, n_sel, w) copy of those windows only
            b -= b.mean(axis=2, keepdims=True)
            m = np.einsum("int,jnt->nij", b[:, :, : w - k], b[:, :, k:]) / (w - k)
            hc[sel] = 0.5 * (m[:, iu[0], iu[1]] + m[:, iu[1], iu[0]])
        out["hcovk"] = hc

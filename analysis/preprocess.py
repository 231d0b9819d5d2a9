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
3. **Per-second features** (``FEATURE_DTYPE``): mean gravity direction,
   movement intensity, tilt jitter (for static and non-wear), gait
   periodicity (autocorrelation of vertical acceleration at step lags),
   vertical velocity/displacement (for sit-to-stand vs stand-to-sit) and the
   step-lag covariance of horizontal acceleration (for the forward direction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from analysis.contracts import NS_PER_S, STANDARD_GRAVITY_MS2
from analysis.settings import AnalysisSettings

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

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
DEG_PER_RAD = 180.0 / np.pi

FEATURE_DTYPE = np.dtype(
    [
        ("time_ns", np.int64),  # epoch start (UTC ns)
        ("coverage", np.float32),  # fraction of the second with data, 0..1
        ("g", np.float64, (3,)),  # unit gravity ("up") direction, sensor frame, fused
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
    """Resampled data on the working grid (M points)."""

    t_ns: I64  # (M,) grid times
    valid: npt.NDArray[np.bool_]  # (M,) False inside gaps
    acc: F64  # (M, 3) g
    gyro: F64  # (M, 3) deg/s (zeros when absent)
    has_gyro: npt.NDArray[np.bool_]  # (M,)


class Resampler:
    """Gap-aware resampling of an irregular stream onto an absolute-time grid.

    State: the last raw sample (for interpolation across the chunk boundary),
    the boxcar filter state and the next grid index. A few hundred bytes.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        self.period_ns = _grid_period_ns(settings.working_rate_hz)
        self.max_gap_ns = round(settings.max_interp_gap_s * NS_PER_S)
        self.next_k: int | None = None
        self.last_t: int | None = None
        self.last_row: F64 | None = None  # filtered [acc, gyro, has_gyro]
        self.box_n = 0
        self.box_zi: F64 | None = None
        self.dropped_samples = 0  # out-of-order / duplicate samples ignored

    def _boxcar(self, rows: F64, rate_hz: float) -> F64:
        n = max(1, int(rate_hz / (NS_PER_S / self.period_ns) + 1e-9))
        if n == 1:
            self.box_n = 1
            return rows
        if n != self.box_n or self.box_zi is None:
            self.box_n = n
            # start in steady state on the first sample (no ramp from zero)
            self.box_zi = np.repeat(rows[:1], n - 1, axis=0) * (
                np.arange(n - 1, 0, -1)[:, None] / n
            )
        b = np.full(n, 1.0 / n)
        out, self.box_zi = lfilter(b, [1.0], rows, axis=0, zi=self.box_zi)
        return np.asarray(out)

    def push(
        self,
        t_ns: I64,
        acc: F64,
        gyro: F64 | None,
        rate_hz: float,
    ) -> GridChunk:
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
        rows = np.empty((n, 7))
        rows[:, 0:3] = acc
        if gyro is None:
            rows[:, 3:6] = 0.0
            rows[:, 6] = 0.0
        else:
            rows[:, 3:6] = gyro
            rows[:, 6] = 1.0
        rows = self._boxcar(rows, rate_hz)
        if self.last_t is None:
            t_all, r_all = t, rows
            self.next_k = -(-int(t[0]) // self.period_ns)
        else:
            assert self.last_row is not None
            t_all = np.concatenate(([self.last_t], t))
            r_all = np.concatenate((self.last_row[None, :], rows))
        self.last_t = int(t[-1])
        self.last_row = rows[-1].copy()
        assert self.next_k is not None
        k_end = int(t_all[-1]) // self.period_ns
        if k_end < self.next_k:
            return _empty_grid()
        k = np.arange(self.next_k, k_end + 1, dtype=np.int64)
        self.next_k = k_end + 1
        tg = k * self.period_ns
        j = np.searchsorted(t_all, tg, side="right") - 1
        j = np.clip(j, 0, t_all.size - 1)
        j1 = np.minimum(j + 1, t_all.size - 1)
        t0 = t_all[j]
        exact = tg == t0
        span = t_all[j1] - t0
        valid = exact | ((span > 0) & (span <= self.max_gap_ns) & (tg >= t0))
        w = np.where(span > 0, (tg - t0) / np.where(span > 0, span, 1), 0.0)
        w = np.where(exact, 0.0, w)
        vals = r_all[j] + w[:, None] * (r_all[j1] - r_all[j])
        return GridChunk(tg, valid, vals[:, 0:3], vals[:, 3:6], vals[:, 6] > 0.5)


def _empty_grid() -> GridChunk:
    return GridChunk(
        np.empty(0, np.int64),
        np.empty(0, bool),
        np.empty((0, 3)),
        np.empty((0, 3)),
        np.empty(0, bool),
    )


class GravityFilter:
    """Vector complementary filter (see module docstring), restartable at gaps.

    State: three first-order filter states (3 floats each) and whether the
    previous grid point was valid.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        dt = 1.0 / settings.working_rate_hz
        self.tau_s = settings.gravity_tau_s
        self.alpha = dt / (self.tau_s + dt)
        self.vert_alpha = dt / (VERTICAL_HP_TAU_S + dt)
        self.vel_decay = 1.0 - dt / VELOCITY_TAU_S
        self.dt = dt
        self.bias_alpha = dt / (GYRO_BIAS_TAU_S + dt)
        self.z: F64 | None = None  # (5, 3): LP accel, pass 1, pass 2, vertical HP/vel, gyro bias

    def _run(self, acc: F64, gyro_rad: F64, has_gyro: bool) -> tuple[F64, F64, F64, F64]:
        """One continuous valid run; returns (g_acc, g_fused, a_vert_hp, v_vert)."""
        a = self.alpha
        b_lp, a_lp = [a], [1.0, -(1.0 - a)]
        if self.z is None:
            # start in steady state on the first sample
            z0 = (1.0 - a) * acc[0]
            # the bias estimate starts at 0: the first sample may be a movement
            self.z = np.array([z0, z0, z0, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        z = self.z
        g_acc, z0n = lfilter(b_lp, a_lp, acc, axis=0, zi=z[0:1])
        g = np.asarray(g_acc)
        zs = [z0n[0]]
        zb = z[4]
        if has_gyro:
            # gyroscope bias (1-3 deg/s on cheap sensors) would tilt the fused
            # estimate by tau * bias (1-3°) when still: remove the slow part
            ba = self.bias_alpha
            bias, zbn = lfilter([ba], [1.0, -(1.0 - ba)], gyro_rad, axis=0, zi=z[4:5])
            gyro_rad = gyro_rad - bias
            zb = zbn[0]
            for p in (1, 2):
                u = g / np.linalg.norm(g, axis=1, keepdims=True)
                drive = acc - self.tau_s * np.cross(gyro_rad, u)
                g_p, zp = lfilter(b_lp, a_lp, drive, axis=0, zi=z[p : p + 1])
                g = np.asarray(g_p)
                zs.append(zp[0])
        else:
            zs += [z[1], z[2]]
        unit = g / np.linalg.norm(g, axis=1, keepdims=True)
        # body acceleration along up (g). a.u - 1 rather than (a - g).u: the
        # filtered g shrinks while it turns (an average of directions), and a
        # direction error e only costs 1 - cos(e) here
        vert = np.einsum("ij,ij->i", acc, unit) - 1.0
        # high-pass (remove bias), then leaky integration to velocity (m/s)
        va = self.vert_alpha
        vz = z[3]
        hp_lp, hz = lfilter([va], [1.0, -(1.0 - va)], vert, zi=vz[0:1])
        vert_hp = vert - hp_lp
        vel, velz = lfilter(
            [self.dt * STANDARD_GRAVITY_MS2], [1.0, -self.vel_decay], vert_hp, zi=vz[1:2]
        )
        self.z = np.array([zs[0], zs[1], zs[2], [hz[0], velz[0], 0.0], zb])
        return np.asarray(g_acc), g, vert_hp, np.asarray(vel)

    def push(self, grid: GridChunk) -> tuple[F64, F64, F64, F64]:
        """Filter a grid chunk; invalid points give NaN and restart the filters."""
        m = grid.t_ns.size
        g_acc = np.full((m, 3), np.nan)
        g_f = np.full((m, 3), np.nan)
        vert = np.full(m, np.nan)
        vel = np.full(m, np.nan)
        if m == 0:
            return g_acc, g_f, vert, vel
        valid = grid.valid
        if valid.all():
            runs = [(0, m)]
        else:
            edges = np.flatnonzero(np.diff(np.concatenate(([0], valid.view(np.int8), [0]))))
            runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
            if not valid[0]:
                self.z = None
        gyro_rad = grid.gyro / DEG_PER_RAD
        for s, e in runs:
            if s > 0:
                self.z = None  # restart after a gap
            hg = bool(grid.has_gyro[s:e].all())
            ga, gf, vh, v = self._run(grid.acc[s:e], gyro_rad[s:e], hg)
            g_acc[s:e], g_f[s:e], vert[s:e], vel[s:e] = ga, gf, vh, v
        if not valid[-1]:
            self.z = None
        return g_acc, g_f, vert, vel


class FeatureExtractor:
    """Groups filtered grid points into 1-s epochs and computes ``FEATURE_DTYPE``.

    Keeps the unfinished epoch plus ``GAIT_WINDOW_S - 1`` finished seconds of
    vertical acceleration (for the gait window): about 10 KB at 25 Hz.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        self.rate = round(settings.working_rate_hz)
        self.period_ns = _grid_period_ns(settings.working_rate_hz)
        self.lags = np.arange(
            round(STEP_PERIOD_MIN_S * self.rate), round(STEP_PERIOD_MAX_S * self.rate) + 1
        )
        # carry: grid points of the unfinished epoch, and the history for the gait window
        self.pend: dict[str, F64] | None = None
        self.hist_vert: F64 = np.full((GAIT_WINDOW_S - 1) * self.rate, np.nan)
        self.hist_body: F64 = np.full(((GAIT_WINDOW_S - 1) * self.rate, 3), np.nan)

    def push(
        self, grid: GridChunk, g_acc: F64, g_f: F64, vert: F64, vel: F64
    ) -> npt.NDArray[np.void]:
        cols = {
            "t": grid.t_ns.astype(np.float64),  # only for epoch grouping below
            "valid": grid.valid.astype(np.float64),
            "acc": grid.acc,
            "gyro": np.where(grid.has_gyro[:, None], grid.gyro, np.nan),
            "g_acc": g_acc,
            "g_f": g_f,
            "vert": vert,
            "vel": vel,
        }
        if self.pend is not None:
            cols = {k: np.concatenate((self.pend[k], v)) for k, v in cols.items()}
        t_first = int(grid.t_ns[0]) if grid.t_ns.size else None
        if self.pend is not None and self.pend["t"].size:
            t_first = int(self.pend["t"][0])
        if t_first is None:
            return np.empty(0, FEATURE_DTYPE)
        n = cols["t"].size
        # grid index of each point relative to the first epoch start
        k0 = t_first // self.period_ns
        e0 = (k0 // self.rate) * self.rate  # grid index of the first epoch start
        kk = np.round(cols["t"] / self.period_ns).astype(np.int64) - e0
        n_complete_pts = n
        last_k = int(kk[-1])
        if (last_k + 1) % self.rate != 0:
            # the last epoch is unfinished: keep its points
            cut_k = (last_k // self.rate) * self.rate
            n_complete_pts = int(np.searchsorted(kk, cut_k, side="left"))
        self.pend = {k: v[n_complete_pts:] for k, v in cols.items()}
        if n_complete_pts == 0:
            return np.empty(0, FEATURE_DTYPE)
        done = {k: v[:n_complete_pts] for k, v in cols.items()}
        # A resampler without gaps yields consecutive grid points, so complete
        # epochs are full blocks of `rate` points starting at an epoch boundary;
        # epochs before the first point of a stream are padded as missing.
        pad = int(kk[0] % self.rate)
        if pad:
            done = {k: _pad_front(v, pad) for k, v in done.items()}
        ne = (n_complete_pts + pad) // self.rate
        start_ns = (e0 + (int(kk[0]) - pad)) * self.period_ns
        return self._features(done, ne, start_ns)

    def flush(self) -> npt.NDArray[np.void]:
        """Features of the unfinished last epoch (end of a recording)."""
        if self.pend is None or self.pend["t"].size == 0:
            return np.empty(0, FEATURE_DTYPE)
        cols = self.pend
        self.pend = None
        k = np.round(cols["t"] / self.period_ns).astype(np.int64)
        e_start = (int(k[0]) // self.rate) * self.rate
        pad_front = int(k[0]) - e_start
        pad_back = self.rate - pad_front - k.size
        done = {kname: _pad_back(_pad_front(v, pad_front), pad_back) for kname, v in cols.items()}
        return self._features(done, 1, e_start * self.period_ns)

    def _features(self, c: dict[str, F64], ne: int, start_ns: int) -> npt.NDArray[np.void]:
        r = self.rate
        out = np.zeros(ne, FEATURE_DTYPE)
        out["time_ns"] = start_ns + np.arange(ne, dtype=np.int64) * NS_PER_S
        valid = c["valid"].reshape(ne, r) > 0.5
        nv = valid.sum(axis=1)
        out["coverage"] = nv / r
        has = nv > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = c["acc"].reshape(ne, r, 3)
            g_f = c["g_f"].reshape(ne, r, 3)
            g_a = c["g_acc"].reshape(ne, r, 3)
            uf = g_f / np.linalg.norm(g_f, axis=2, keepdims=True)
            ua = g_a / np.linalg.norm(g_a, axis=2, keepdims=True)
            gm = _nanmean_rows(uf, has)
            out["g"] = gm / np.linalg.norm(gm, axis=1, keepdims=True)
            am = _nanmean_rows(ua, has)
            am /= np.linalg.norm(am, axis=1, keepdims=True)
            dev = np.linalg.norm(ua - am[:, None, :], axis=2)
            out["tilt_sd_deg"] = np.sqrt(_nanmean2(dev**2, has)) * DEG_PER_RAD
            body = acc - g_f
            out["intensity_g"] = _nanmean2(np.linalg.norm(body, axis=2), has)
            mag = np.linalg.norm(acc, axis=2)
            out["sd_mag_g"] = np.sqrt(
                np.maximum(_nanmean2(mag**2, has) - _nanmean2(mag, has) ** 2, 0.0)
            )
            # angle turned within the second: first vs last fused direction
            first = _nanmean_rows(uf[:, :3, :], has)
            last = _nanmean_rows(uf[:, -3:, :], has)
            cosang = np.einsum("ij,ij->i", first, last) / (
                np.linalg.norm(first, axis=1) * np.linalg.norm(last, axis=1)
            )
            out["rot_deg"] = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))
            gy = c["gyro"].reshape(ne, r, 3)
            out["gyro_dps"] = _nanmean2(np.linalg.norm(gy, axis=2), has)
            vel = c["vel"].reshape(ne, r)
            out["vmin_ms"] = np.where(has, np.nanmin(np.where(valid, vel, np.inf), axis=1), np.nan)
            out["vmax_ms"] = np.where(has, np.nanmax(np.where(valid, vel, -np.inf), axis=1), np.nan)
            out["disp_m"] = np.where(has, np.nansum(vel, axis=1) / r, np.nan)
        # gait window: this second plus the previous GAIT_WINDOW_S-1 seconds
        vert_all = np.concatenate((self.hist_vert, c["vert"]))
        body_all = np.concatenate((self.hist_body, (acc - g_f).reshape(ne * r, 3)))
        hlen = self.hist_vert.size
        self.hist_vert = vert_all[-hlen:].copy()
        self.hist_body = body_all[-hlen:].copy()
        w = GAIT_WINDOW_S * r
        win_v = np.lib.stride_tricks.sliding_window_view(vert_all, w)[::r][:ne]
        win_b = np.lib.stride_tricks.sliding_window_view(body_all, w, axis=0)[::r][:ne]
        self._gait(out, win_v, np.moveaxis(win_b, -1, 1))
        return out

    def _gait(self, out: npt.NDArray[np.void], win: F64, winb: F64) -> None:
        """Autocorrelation of vertical acceleration at step lags (orientation-free)."""
        ok: npt.NDArray[np.bool_] = np.asarray(np.isfinite(win).all(axis=1))
        x = np.where(ok[:, None], win, 0.0)
        x = x - x.mean(axis=1, keepdims=True)
        energy = np.einsum("ij,ij->i", x, x)
        w = x.shape[1]
        acs = np.stack([np.einsum("ij,ij->i", x[:, : w - k], x[:, k:]) for k in self.lags], axis=1)
        # unbiased normalisation per lag so long lags are not penalised
        acs = acs / (w - self.lags)[None, :] * w
        with np.errstate(invalid="ignore", divide="ignore"):
            acn = acs / energy[:, None]
        best = np.argmax(np.nan_to_num(acn, nan=-1.0), axis=1)
        ac = acn[np.arange(acn.shape[0]), best]
        out["gait_ac"] = np.where(ok & (energy > 0), ac, 0.0)
        out["step_s"] = self.lags[best] / self.rate
        out["vert_sd_g"] = np.where(ok, np.sqrt(energy / w), np.nan)
        # step-lag covariance of body acceleration (forward-axis estimation)
        okb: npt.NDArray[np.bool_] = np.asarray(np.isfinite(winb).all(axis=(1, 2)))
        b = np.where(okb[:, None, None], winb, 0.0)
        b = b - b.mean(axis=1, keepdims=True)
        ck = np.zeros((b.shape[0], 3, 3))
        for li, k in enumerate(self.lags):
            sel = best == li
            if sel.any():
                bs = b[sel]
                m = np.einsum("nti,ntj->nij", bs[:, : w - k], bs[:, k:]) / (w - k)
                ck[sel] = 0.5 * (m + np.transpose(m, (0, 2, 1)))
        iu = ([0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2])
        out["hcovk"] = ck[:, iu[0], iu[1]]


def _pad_front(v: F64, n: int) -> F64:
    if n <= 0:
        return v
    fill = np.full((n, *v.shape[1:]), np.nan)
    if v.ndim == 1 and v.dtype == np.float64:
        pass
    return np.concatenate((fill, v))


def _pad_back(v: F64, n: int) -> F64:
    if n <= 0:
        return v
    return np.concatenate((v, np.full((n, *v.shape[1:]), np.nan)))


def _nanmean_rows(x: F64, has: npt.NDArray[np.bool_]) -> F64:
    """Mean over axis 1 ignoring NaN; rows without data give NaN (no warning)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(x)
        s = np.where(ok, x, 0.0).sum(axis=1)
        n = ok.sum(axis=1)
        return s / np.where(n > 0, n, np.nan)


def _nanmean2(x: F64, has: npt.NDArray[np.bool_]) -> F64:
    return _nanmean_rows(x, has)

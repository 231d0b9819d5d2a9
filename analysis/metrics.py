"""What therapists review: bouts, static periods, flexion, APDF, EVA, daily summary.

Definitions and defaults: ``reference/metrics.md``. Everything works on
1-s epoch arrays (``EPOCH_DTYPE``); a duration of ``n`` epochs is ``n`` seconds.

Bouts follow activPAL's minimum-bout rule: a change of activity only counts
once the new activity has lasted ``min_bout_s``; shorter episodes are part of
the bout they interrupt. ``EventTracker`` applies the rules one epoch at a time
(so a live stream and a whole recording give the same events) and the
summary functions reuse it.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.contracts import (
    EVA_ANGLE_EDGES_DEG,
    EVA_DURATION_EDGES_S,
    NS_PER_S,
    Activity,
    DailySummary,
    Event,
    EventKind,
)
from analysis.settings import AnalysisSettings

F64 = npt.NDArray[np.float64]
_NONWEAR = int(Activity.NONWEAR)
_WALKING = int(Activity.WALKING)
_SITTING = int(Activity.SITTING)
_UPRIGHT = (int(Activity.STANDING), int(Activity.WALKING), int(Activity.OTHER))


@dataclass(frozen=True, slots=True)
class Bout:
    """A posture/activity bout: ``activity`` code, start (ns) and length (s)."""

    activity: int
    start_ns: int
    duration_s: float


class EventTracker:
    """Bouts, static periods and sustained-flexion events from epochs, incrementally.

    ``push(epochs)`` returns the events that ended within those epochs;
    ``finish()`` closes what is still open. State: a handful of integers.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        self.s = settings
        self.min_bout = round(settings.min_bout_s)
        # bout state
        self.cur_act = -1
        self.cur_start = 0
        self.tent_start = -1  # first epoch (ns) not of cur_act since its last epoch
        self.run_act = -1
        self.run_len = 0
        self.run_start = 0
        # static-period state
        self.st_start = -1
        self.st_last = -1  # last static epoch (ns)
        self.st_gap = 0  # non-static epochs since the last static one
        self.st_incl = math.nan  # inclination of the period's last static epoch (deg)
        # sustained flexion
        self.fx_start = -1
        self.fx_n = 0
        self.fx_sum = 0.0
        self.last_ns = 0
        self.bouts: list[Bout] = []  # closed bouts (only kept when keep_bouts)
        self.keep_bouts = False

    def push(self, epochs: npt.NDArray[np.void]) -> list[Event]:
        out: list[Event] = []
        if epochs.size == 0:
            return out
        t_all = epochs["time_ns"].tolist()
        act_all = epochs["activity"].tolist()
        st_all = epochs["static"].tolist()
        flex = epochs["flexion_deg"].astype(np.float64)
        fx_all = np.where(np.isfinite(flex), flex, -1e9).tolist()
        inc_all = epochs["inclination_deg"].astype(np.float64).tolist()
        thr = self.s.sustained_flexion_deg
        tol = round(self.s.static_tolerance_s)
        turn_max = self.s.static_break_tilt_deg
        for t, a, st, fx, inc in zip(t_all, act_all, st_all, fx_all, inc_all, strict=True):
            self._bout_step(t, a, out)
            # static periods: walking, a long movement or a large one (a bend,
            # not a shift in the chair) ends them
            if st and a != _NONWEAR:
                if self.st_start < 0:
                    self.st_start = t
                    self.st_incl = inc  # NaN before the upright is known
                elif not math.isnan(inc):
                    self.st_incl = inc
                self.st_last = t
                self.st_gap = 0
            elif self.st_start >= 0:
                self.st_gap += 1
                if (
                    a in (_WALKING, _NONWEAR)
                    or self.st_gap > tol
                    or abs(inc - self.st_incl) > turn_max  # False for NaN
                ):
                    self._close_static(out)
            # sustained flexion (holding-time rule)
            if fx >= thr and a != _NONWEAR:
                if self.fx_start < 0:
                    self.fx_start, self.fx_n, self.fx_sum = t, 0, 0.0
                self.fx_n += 1
                self.fx_sum += fx
            elif self.fx_start >= 0:
                self._close_flex(out)
            self.last_ns = t
        return out

    def _bout_step(self, t: int, a: int, out: list[Event]) -> None:
        if self.cur_act < 0:
            self.cur_act, self.cur_start = a, t
            self.run_act, self.run_start, self.run_len = a, t, 1
            return
        if a == self.run_act:
            self.run_len += 1
        else:
            self.run_act, self.run_start, self.run_len = a, t, 1
        if a == self.cur_act:
            self.tent_start = -1
            return
        if self.tent_start < 0:
            self.tent_start = t
        if self.run_len >= self.min_bout:
            # the new activity qualifies: the old bout ended where the
            # interruption began, the new one starts there
            self._emit_bout(self.cur_act, self.cur_start, self.tent_start, out)
            self.cur_act, self.cur_start = a, self.tent_start
            self.tent_start = -1

    def _emit_bout(self, act: int, start: int, end: int, out: list[Event]) -> None:
        dur = (end - start) / NS_PER_S
        if dur <= 0:
            return
        if self.keep_bouts:
            self.bouts.append(Bout(act, start, dur))
        out.append(Event(start, EventKind.BOUT, dur, {"activity": Activity(act).label}))

    def _close_static(self, out: list[Event]) -> None:
        dur = (self.st_last - self.st_start) / NS_PER_S + 1.0
        if dur >= self.s.static_period_min_s:
            out.append(Event(self.st_start, EventKind.STATIC_PERIOD, dur, {}))
        self.st_start = -1
        self.st_gap = 0

    def _close_flex(self, out: list[Event]) -> None:
        if self.fx_n > self.s.sustained_flexion_min_s:
            out.append(
                Event(
                    self.fx_start,
                    EventKind.SUSTAINED_FLEXION,
                    float(self.fx_n),
                    {"mean_flexion_deg": round(self.fx_sum / self.fx_n, 2)},
                )
            )
        self.fx_start = -1

    def finish(self) -> list[Event]:
        out: list[Event] = []
        if self.cur_act >= 0:
            end = self.last_ns + NS_PER_S
            if self.tent_start >= 0:
                # a trailing interruption too short to count belongs to the bout
                pass
            self._emit_bout(self.cur_act, self.cur_start, end, out)
            self.cur_act = -1
        if self.st_start >= 0:
            self._close_static(out)
        if self.fx_start >= 0:
            self._close_flex(out)
        return out


def bouts(
    activity: npt.ArrayLike, time_ns: npt.ArrayLike, settings: AnalysisSettings
) -> list[Bout]:
    """Bouts of a whole epoch sequence (minimum bout length from ``settings``)."""
    act = np.asarray(activity, dtype=np.int8)
    ep = np.zeros(
        act.size,
        dtype=[
            ("time_ns", np.int64),
            ("activity", np.int8),
            ("static", np.bool_),
            ("flexion_deg", np.float32),
            ("inclination_deg", np.float32),
        ],
    )
    ep["time_ns"] = np.asarray(time_ns, dtype=np.int64)
    ep["activity"] = act
    tr = EventTracker(settings)
    tr.keep_bouts = True
    tr.push(ep)
    tr.finish()
    return tr.bouts


def apdf(angle_deg: npt.ArrayLike, percentiles: Sequence[float] = (10.0, 50.0, 90.0)) -> F64:
    """Amplitude probability distribution function percentiles (deg), NaN-ignoring."""
    a = np.asarray(angle_deg, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return np.full(len(percentiles), np.nan)
    return np.percentile(a, percentiles)


def eva(
    angle_deg: npt.ArrayLike,
    angle_edges_deg: Sequence[float] = EVA_ANGLE_EDGES_DEG,
    duration_edges_s: Sequence[float] = EVA_DURATION_EDGES_S,
    epoch_s: float = 1.0,
) -> F64:
    """Exposure Variation Analysis (Mathiassen & Winkel 1991).

    Parameters
    ----------
    angle_deg : (N,) angle per epoch; NaN (no data) interrupts a period
    angle_edges_deg : inner edges of the angle classes (4 classes for 3 edges)
    duration_edges_s : inner edges of the uninterrupted-duration classes

    Returns
    -------
    (n_angle_classes, n_duration_classes) seconds spent in uninterrupted
    periods of each angle class, by the length of the period. With 1-s epochs
    the "< 1 s" class is always empty (the resolution is one second).
    """
    a = np.asarray(angle_deg, dtype=np.float64)
    na, nd = len(angle_edges_deg) + 1, len(duration_edges_s) + 1
    out = np.zeros((na, nd))
    ok = np.isfinite(a)
    if not ok.any():
        return out
    cls = np.where(ok, np.searchsorted(np.asarray(angle_edges_deg), a, side="right"), -1)
    change = np.flatnonzero(np.diff(cls) != 0) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [a.size])))
    run_cls = cls[starts]
    dur = lengths * epoch_s
    dcls = np.searchsorted(np.asarray(duration_edges_s), dur, side="right")
    keep = run_cls >= 0
    np.add.at(out, (run_cls[keep], dcls[keep]), dur[keep])
    return out


def flexion_load_degmin(flexion_deg: npt.ArrayLike, threshold_deg: float = 20.0) -> float:
    """Cumulative flexion load: sum of max(0, flexion - threshold) over 1-s epochs, deg·min."""
    f = np.asarray(flexion_deg, dtype=np.float64)
    f = f[np.isfinite(f)]
    return float(np.maximum(f - threshold_deg, 0.0).sum() / 60.0)


def _run_lengths(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    if not mask.any():
        return np.zeros(0, dtype=np.int64)
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


def daily_summary(
    epochs: npt.NDArray[np.void],
    events: Sequence[Event],
    date: str,
    settings: AnalysisSettings | None = None,
) -> DailySummary:
    """The therapist's numbers over ``epochs`` (normally one wearer-day).

    Parameters
    ----------
    epochs : EPOCH_DTYPE array, consecutive 1-s epochs
    events : events of the same period (transitions and static periods are used)
    date : the day's label (YYYY-MM-DD, wearer's local day)
    settings : thresholds (stored in ``DailySummary.settings``)

    See Also
    --------
    DailyAccumulator : the same numbers from epochs pushed in chunks, in
        bounded memory (APDF percentiles to within ``APDF_BIN_DEG / 2``)
    """
    s = settings or AnalysisSettings()
    act = epochs["activity"].astype(np.int64)
    worn = act != _NONWEAR
    incl = np.where(worn, epochs["inclination_deg"].astype(np.float64), np.nan)
    flex = np.where(worn, epochs["flexion_deg"].astype(np.float64), np.nan)
    fin = np.isfinite(flex)

    bl = bouts(act, epochs["time_ns"], s)
    sit_s = [b.duration_s for b in bl if b.activity == _SITTING]
    breaks = 0
    for b0, b1 in itertools.pairwise(bl):
        if b0.activity == _SITTING and b1.activity in _UPRIGHT:
            breaks += 1
    changes = sum(1 for b0, b1 in itertools.pairwise(bl) if b0.activity != b1.activity)

    static_durs = np.array([e.duration_s for e in events if e.kind == EventKind.STATIC_PERIOD])
    static_durs = static_durs / 60.0
    flex_runs = _run_lengths(fin & (flex >= s.sustained_flexion_deg))
    sustained = flex_runs[flex_runs > s.sustained_flexion_min_s]
    return _assemble(
        date,
        s,
        act_s=np.bincount(act, minlength=len(Activity)),
        sit_s=sit_s,
        breaks=breaks,
        changes=changes,
        static_s=int((epochs["static"] & worn).sum()),
        longest_static_min=float(static_durs.max()) if static_durs.size else 0.0,
        static_ge30=int((static_durs >= 30.0).sum()),
        band_s=_flexion_band_counts(flex, fin),
        sustained_n=int(sustained.size),
        sustained_s=int(sustained.sum()),
        load_degmin=flexion_load_degmin(flex, s.flexion_load_threshold_deg),
        ev=eva(incl),
        ip=apdf(incl),
        fp=apdf(flex),
        angle_sd_deg=float(np.nanstd(incl)) if np.isfinite(incl).any() else float("nan"),
    )


def _flexion_band_counts(flex: F64, fin: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Epochs per reported flexion band: <20, 20-45, 45-60, >=60, >30, >90 (deg)."""
    return np.array(
        [
            (fin & (flex < 20.0)).sum(),
            (fin & (flex >= 20.0) & (flex < 45.0)).sum(),
            (fin & (flex >= 45.0) & (flex < 60.0)).sum(),
            (fin & (flex >= 60.0)).sum(),
            (fin & (flex > 30.0)).sum(),
            (fin & (flex > 90.0)).sum(),
        ],
        dtype=np.int64,
    )


def _assemble(
    date: str,
    s: AnalysisSettings,
    *,
    act_s: npt.NDArray[np.int64],
    sit_s: Sequence[float],
    breaks: int,
    changes: int,
    static_s: int,
    longest_static_min: float,
    static_ge30: int,
    band_s: npt.NDArray[np.int64],
    sustained_n: int,
    sustained_s: int,
    load_degmin: float,
    ev: F64,
    ip: F64,
    fp: F64,
    angle_sd_deg: float,
) -> DailySummary:
    """The summary from its parts (shared by the batch and the incremental path).

    ``act_s``: epochs per activity code; ``sit_s``: sitting bout lengths (s);
    ``band_s``: epochs per flexion band (``_flexion_band_counts``); ``ev``:
    the EVA table (s); ``ip``/``fp``: inclination/flexion P10/P50/P90 (deg).
    """
    per_act = {a: float(act_s[int(a)]) / 60.0 for a in Activity}
    wear_s = float(act_s.sum() - act_s[_NONWEAR])
    wear_h = wear_s / 3600.0
    sit = np.array(sit_s, dtype=np.float64) / 60.0
    sit_h = per_act[Activity.SITTING] / 60.0
    bands = [float(n) / 60.0 for n in band_s]
    ev_min = ev / 60.0
    total_eva = ev.sum()
    if total_eva > 0:
        share_gt1 = float(ev[:, 4:].sum() / total_eva)
        p = ev.ravel() / total_eva
        p = p[p > 0]
        entropy = float(-(p * np.log2(p)).sum())
    else:
        share_gt1, entropy = float("nan"), float("nan")
    pct = np.percentile(sit, [10, 50, 90]) if sit.size else np.full(3, np.nan)
    nan = float("nan")
    return DailySummary(
        date=date,
        wear_min=wear_s / 60.0,
        lying_min=per_act[Activity.LYING],
        sitting_min=per_act[Activity.SITTING],
        standing_min=per_act[Activity.STANDING],
        walking_min=per_act[Activity.WALKING],
        other_min=per_act[Activity.OTHER],
        nonwear_min=per_act[Activity.NONWEAR],
        sitting_bouts=int(sit.size),
        sitting_bouts_brief=int((sit <= s.sitting_brief_max_min).sum()),
        sitting_bouts_moderate=int(
            ((sit > s.sitting_brief_max_min) & (sit <= s.sitting_moderate_max_min)).sum()
        ),
        sitting_bouts_prolonged=int((sit > s.sitting_moderate_max_min).sum()),
        sitting_bouts_ge30=int((sit >= 30.0).sum()),
        sitting_bouts_ge60=int((sit >= 60.0).sum()),
        longest_sitting_bout_min=float(sit.max()) if sit.size else 0.0,
        sitting_bout_p10_min=float(pct[0]),
        sitting_bout_p50_min=float(pct[1]),
        sitting_bout_p90_min=float(pct[2]),
        breaks_per_h=breaks / sit_h if sit_h > 0 else nan,
        posture_changes_per_h=changes / wear_h if wear_h > 0 else nan,
        static_min=static_s / 60.0,
        static_share=static_s / wear_s if wear_s > 0 else nan,
        longest_static_bout_min=longest_static_min,
        static_bouts_ge30=static_ge30,
        flexion_lt20_min=bands[0],
        flexion_20_45_min=bands[1],
        flexion_45_60_min=bands[2],
        flexion_gt60_min=bands[3],
        flexion_gt30_min=bands[4],
        flexion_gt90_min=bands[5],
        sustained_flexion_events=sustained_n,
        sustained_flexion_min=float(sustained_s) / 60.0,
        flexion_load_degmin_per_h=load_degmin / wear_h if wear_h > 0 else nan,
        incl_p10_deg=float(ip[0]),
        incl_p50_deg=float(ip[1]),
        incl_p90_deg=float(ip[2]),
        flex_p10_deg=float(fp[0]),
        flex_p50_deg=float(fp[1]),
        flex_p90_deg=float(fp[2]),
        angle_sd_deg=angle_sd_deg,
        eva_share_gt1min=share_gt1,
        eva_entropy_bits=entropy,
        eva_min=tuple(float(x) for x in ev_min.ravel()),
        settings={
            **s.as_dict(),
            "eva_angle": "inclination_deg",
            "eva_angle_edges_deg": list(EVA_ANGLE_EDGES_DEG),
            "eva_duration_edges_s": list(EVA_DURATION_EDGES_S),
        },
    )


#: APDF histogram bin width (deg): incremental percentiles are within half of it
APDF_BIN_DEG = 0.1
#: angle ranges the APDF histograms cover (deg): inclination is an angle from
#: upright, flexion a signed atan2 component (analysis.orientation)
INCLINATION_RANGE_DEG = (0.0, 180.0)
FLEXION_RANGE_DEG = (-180.0, 180.0)


class AngleHistogram:
    """Counts of angles in fixed bins: APDF percentiles without keeping the angles.

    Parameters
    ----------
    lo_deg, hi_deg : the covered range (deg); angles outside it count in the
        first/last bin
    bin_deg : bin width (deg)

    A percentile is interpolated as ``numpy.percentile`` does (linear), with
    each order statistic replaced by the centre of its bin: the result is
    within ``bin_deg / 2`` of the exact one. State: one count per bin between
    the smallest and largest angle seen (a day's trunk angles span a part of
    the range), uint16 until a bin passes 65 535 (18 h of one angle), then
    uint32: at most 4 bytes per bin of the range.
    """

    #: the counted span grows in steps of this many bins (fewer reallocations)
    GROW_BINS = 64

    def __init__(self, lo_deg: float, hi_deg: float, bin_deg: float = APDF_BIN_DEG) -> None:
        if not (hi_deg > lo_deg and bin_deg > 0):
            raise ValueError(
                f"need hi_deg > lo_deg and bin_deg > 0, got {lo_deg}, {hi_deg}, {bin_deg}"
            )
        self.lo_deg, self.bin_deg = lo_deg, bin_deg
        self.n_bins = round((hi_deg - lo_deg) / bin_deg)
        self.first_bin = 0  # bin index (over the whole range) of counts[0]
        self.counts: npt.NDArray[np.unsignedinteger[Any]] = np.zeros(0, dtype=np.uint16)

    def add(self, angle_deg: F64) -> None:
        """Count the finite angles of ``angle_deg`` ((N,) deg; NaN = no data)."""
        a = angle_deg[np.isfinite(angle_deg)]
        if not a.size:
            return
        idx = np.clip(((a - self.lo_deg) / self.bin_deg).astype(np.int64), 0, self.n_bins - 1)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        first, last = self.first_bin, self.first_bin + self.counts.size
        if not self.counts.size:
            first, last = lo, lo
        if lo < first or hi > last:
            g = self.GROW_BINS
            new_first = max(0, min(first, lo) // g * g)
            new_last = min(self.n_bins, -(-max(last, hi) // g) * g)
            grown = np.zeros(new_last - new_first, dtype=self.counts.dtype)
            grown[first - new_first : first - new_first + self.counts.size] = self.counts
            self.counts, self.first_bin = grown, new_first
        inc = np.bincount(idx - self.first_bin, minlength=self.counts.size)
        if self.counts.dtype == np.uint16 and int(self.counts.max()) + int(inc.max()) > 0xFFFF:
            self.counts = self.counts.astype(np.uint32)
        self.counts += inc.astype(self.counts.dtype)

    def percentiles(self, q: Sequence[float] = (10.0, 50.0, 90.0)) -> F64:
        """(len(q),) percentiles (deg) of the counted angles; NaN if none."""
        cum = np.cumsum(self.counts, dtype=np.int64)
        n = int(cum[-1]) if cum.size else 0
        if n == 0:
            return np.full(len(q), np.nan)
        pos = np.asarray(q, dtype=np.float64) / 100.0 * (n - 1)
        k0 = np.floor(pos)
        # order statistic k (0-based) is in the first bin holding more than k angles
        b0 = self.first_bin + np.searchsorted(cum, k0.astype(np.int64), side="right")
        b1 = self.first_bin + np.searchsorted(cum, np.ceil(pos).astype(np.int64), side="right")
        v0 = self.lo_deg + (b0 + 0.5) * self.bin_deg
        v1 = self.lo_deg + (b1 + 0.5) * self.bin_deg
        return np.asarray(v0 + (pos - k0) * (v1 - v0), dtype=np.float64)


class _RunCarry:
    """Run lengths of an integer code sequence pushed in chunks.

    ``push`` returns the runs that closed; the last run stays open (it may
    continue in the next chunk): ``open_code``/``open_len``.
    """

    def __init__(self) -> None:
        self.open_code = 0
        self.open_len = 0

    def push(
        self, codes: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(closed run codes, closed run lengths), oldest first."""
        if codes.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts = np.concatenate(([0], np.flatnonzero(np.diff(codes) != 0) + 1))
        lengths = np.diff(np.concatenate((starts, [codes.size])))
        run_codes = codes[starts]
        if self.open_len:
            if run_codes[0] == self.open_code:
                lengths[0] += self.open_len
            else:
                run_codes = np.concatenate(([self.open_code], run_codes))
                lengths = np.concatenate(([self.open_len], lengths))
        self.open_code, self.open_len = int(run_codes[-1]), int(lengths[-1])
        return run_codes[:-1], lengths[:-1]

    def with_open(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The open run as (codes, lengths) of 0 or 1 run, as if the sequence ended now."""
        n = 1 if self.open_len else 0
        return np.full(n, self.open_code, np.int64), np.full(n, self.open_len, np.int64)


#: epochs the accumulator takes in at a time: fixed blocks from the first epoch
#: make its float sums independent of how the epochs were chunked (and one
#: numpy pass per 2 minutes is cheap); ~3 KiB of epochs wait at most
ACCUMULATOR_BLOCK_EPOCHS = 120


class DailyAccumulator:
    """The daily summary's numbers from epochs pushed in chunks, in bounded memory.

    Feeding a day's epochs in any chunking and ``summary`` gives what
    :func:`daily_summary` gives for the whole day at once: counts, bouts,
    EVA, sustained flexion and static periods exactly; the flexion load and
    the angle SD to float rounding (summed per block of
    ``ACCUMULATOR_BLOCK_EPOCHS``, so the same for every chunking); the
    inclination/flexion APDF percentiles to within ``APDF_BIN_DEG / 2``
    (histograms instead of every angle). State: a few counters, the bout
    tracker, two angle histograms (a few KiB at 0.1°, at most 21 KiB), the EVA table, up to one
    block of waiting epochs and one float per sitting bout (at most one per
    ``min_bout_s``): it does not grow with hours worn.

    Parameters
    ----------
    settings : thresholds (the same as the batch function's)
    own_static_periods : count the static periods found in the pushed epochs
        themselves (``EventTracker`` rules; a period open at the first or
        last epoch is cut there) instead of those given to ``add_events``.
        A live day summary wants this: a period that runs past midnight is
        not over when the day is summarised, and each day gets its part.
    """

    def __init__(
        self, settings: AnalysisSettings | None = None, *, own_static_periods: bool = False
    ) -> None:
        self.s = settings or AnalysisSettings()
        self.own_static_periods = own_static_periods
        self.first_ns: int | None = None
        self.end_ns: int | None = None  # end of the last epoch pushed
        self._waiting: list[npt.NDArray[np.void]] = []
        self._n_waiting = 0
        self.act_s = np.zeros(len(Activity), dtype=np.int64)
        self.static_s = 0
        self.band_s = np.zeros(6, dtype=np.int64)
        self.load_deg_s = 0.0
        # inclination mean / sum of squared deviations (Chan et al.) for the SD
        self._n_incl = 0
        self._mean_incl = 0.0
        self._m2_incl = 0.0
        self.incl_hist = AngleHistogram(*INCLINATION_RANGE_DEG)
        self.flex_hist = AngleHistogram(*FLEXION_RANGE_DEG)
        self._eva_runs = _RunCarry()
        self.eva_s = np.zeros((len(EVA_ANGLE_EDGES_DEG) + 1, len(EVA_DURATION_EDGES_S) + 1))
        self._flex_runs = _RunCarry()
        self.sustained_n = 0
        self.sustained_s = 0
        # bouts: the same tracker as the batch path; closed bouts taken per block
        self._tracker = EventTracker(self.s)
        self._tracker.keep_bouts = True
        self._last_bout_act = -1
        self.breaks = 0
        self.changes = 0
        self.sit_bouts_s: list[float] = []
        self.longest_static_min = 0.0
        self.static_ge30 = 0

    def push(self, epochs: npt.NDArray[np.void]) -> None:
        """Add consecutive EPOCH_DTYPE epochs (those of the day so far come first)."""
        if epochs.size == 0:
            return
        if self.first_ns is None:
            self.first_ns = int(epochs["time_ns"][0])
        self.end_ns = int(epochs["time_ns"][-1]) + NS_PER_S
        self._waiting.append(epochs)
        self._n_waiting += epochs.size
        if self._n_waiting >= ACCUMULATOR_BLOCK_EPOCHS:
            self._take_blocks(final=False)

    def _take_blocks(self, *, final: bool) -> None:
        """Ingest the waiting epochs in whole blocks (and the rest if ``final``)."""
        ep = np.concatenate(self._waiting) if len(self._waiting) > 1 else self._waiting[0]
        b = ACCUMULATOR_BLOCK_EPOCHS
        n_full = ep.size // b * b
        for k in range(0, n_full, b):
            self._ingest(ep[k : k + b])
        rest = ep[n_full:]
        if final and rest.size:
            self._ingest(rest)
            rest = rest[:0]
        # a copy: the block's rows only, not the caller's whole array
        self._waiting = [rest.copy()] if rest.size else []
        self._n_waiting = int(rest.size)

    def _ingest(self, epochs: npt.NDArray[np.void]) -> None:
        s = self.s
        act = epochs["activity"].astype(np.int64)
        worn = act != _NONWEAR
        self.act_s += np.bincount(act, minlength=len(Activity))[: len(Activity)]
        self.static_s += int((epochs["static"] & worn).sum())
        incl = np.where(worn, epochs["inclination_deg"].astype(np.float64), np.nan)
        flex = np.where(worn, epochs["flexion_deg"].astype(np.float64), np.nan)
        fin = np.isfinite(flex)
        self.band_s += _flexion_band_counts(flex, fin)
        f = flex[fin]
        self.load_deg_s += float(np.maximum(f - s.flexion_load_threshold_deg, 0.0).sum())
        self._add_incl_moments(incl[np.isfinite(incl)])
        self.incl_hist.add(incl)
        self.flex_hist.add(flex)
        codes, lengths = self._eva_runs.push(self._eva_class(incl))
        self._add_eva(codes, lengths)
        held = (fin & (flex >= s.sustained_flexion_deg)).astype(np.int64)
        self._add_sustained(*self._flex_runs.push(held))
        found = self._tracker.push(epochs)
        self._take_bouts()
        if self.own_static_periods:
            self._add_static(found)

    def add_events(self, events: Sequence[Event]) -> None:
        """Count the day's static periods (other kinds are ignored).

        Not with ``own_static_periods`` (they would count twice).
        """
        if self.own_static_periods:
            raise ValueError("this accumulator counts the static periods of its own epochs")
        self._add_static(events)

    def _add_static(self, events: Sequence[Event]) -> None:
        for e in events:
            if e.kind == EventKind.STATIC_PERIOD:
                m = e.duration_s / 60.0
                self.longest_static_min = max(self.longest_static_min, m)
                self.static_ge30 += int(m >= 30.0)

    @staticmethod
    def _eva_class(incl: F64) -> npt.NDArray[np.int64]:
        ok = np.isfinite(incl)
        cls = np.searchsorted(np.asarray(EVA_ANGLE_EDGES_DEG), incl, side="right")
        return np.where(ok, cls, -1).astype(np.int64)

    def _add_eva(self, codes: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> None:
        dur = lengths * 1.0  # 1-s epochs
        dcls = np.searchsorted(np.asarray(EVA_DURATION_EDGES_S), dur, side="right")
        keep = codes >= 0
        np.add.at(self.eva_s, (codes[keep], dcls[keep]), dur[keep])

    def _add_sustained(self, codes: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> None:
        held = lengths[(codes == 1) & (lengths > self.s.sustained_flexion_min_s)]
        self.sustained_n += int(held.size)
        self.sustained_s += int(held.sum())

    def _add_incl_moments(self, x: F64) -> None:
        if not x.size:
            return
        n_b, mean_b = x.size, float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n = self._n_incl + n_b
        d = mean_b - self._mean_incl
        self._mean_incl += d * n_b / n
        self._m2_incl += m2_b + d * d * self._n_incl * n_b / n
        self._n_incl = n

    def _take_bouts(self) -> None:
        for b in self._tracker.bouts:
            if self._last_bout_act >= 0 and b.activity != self._last_bout_act:
                self.changes += 1
                if self._last_bout_act == _SITTING and b.activity in _UPRIGHT:
                    self.breaks += 1
            if b.activity == _SITTING:
                self.sit_bouts_s.append(b.duration_s)
            self._last_bout_act = b.activity
        self._tracker.bouts.clear()

    def state_nbytes(self) -> int:
        """Approximate bytes of carried arrays (grows only by one float per sitting bout)."""
        return int(
            self.incl_hist.counts.nbytes
            + self.flex_hist.counts.nbytes
            + self.eva_s.nbytes
            + self.act_s.nbytes
            + self.band_s.nbytes
            + sum(w.nbytes for w in self._waiting)
            + 8 * len(self.sit_bouts_s)
        )

    def summary(self, date: str) -> DailySummary:
        """The summary of what was pushed so far, as if the day ended now.

        The accumulator itself is not changed (the waiting epochs, open bout
        and open runs are closed on a copy).
        """
        end = copy.deepcopy(self)
        if end._waiting:
            end._take_blocks(final=True)
        found = end._tracker.finish()
        end._take_bouts()
        if end.own_static_periods:
            end._add_static(found)
        end._add_eva(*end._eva_runs.with_open())
        end._add_sustained(*end._flex_runs.with_open())
        sd = math.sqrt(end._m2_incl / end._n_incl) if end._n_incl else float("nan")
        return _assemble(
            date,
            end.s,
            act_s=end.act_s,
            sit_s=end.sit_bouts_s,
            breaks=end.breaks,
            changes=end.changes,
            static_s=end.static_s,
            longest_static_min=end.longest_static_min,
            static_ge30=end.static_ge30,
            band_s=end.band_s,
            sustained_n=end.sustained_n,
            sustained_s=end.sustained_s,
            load_degmin=end.load_deg_s / 60.0,
            ev=end.eva_s,
            ip=end.incl_hist.percentiles(),
            fp=end.flex_hist.percentiles(),
            angle_sd_deg=sd,
        )

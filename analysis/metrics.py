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

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

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
        thr = self.s.sustained_flexion_deg
        tol = round(self.s.static_tolerance_s)
        for t, a, st, fx in zip(t_all, act_all, st_all, fx_all, strict=True):
            self._bout_step(t, a, out)
            # static periods: walking or a long movement ends them
            if st and a != _NONWEAR:
                if self.st_start < 0:
                    self.st_start = t
                self.st_last = t
                self.st_gap = 0
            elif self.st_start >= 0:
                self.st_gap += 1
                if a in (_WALKING, _NONWEAR) or self.st_gap > tol:
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
    """
    s = settings or AnalysisSettings()
    act = epochs["activity"].astype(np.int64)
    worn = act != _NONWEAR
    wear_s = float(worn.sum())
    wear_h = wear_s / 3600.0
    per_act = {a: float((act == int(a)).sum()) / 60.0 for a in Activity}
    incl = np.where(worn, epochs["inclination_deg"].astype(np.float64), np.nan)
    flex = np.where(worn, epochs["flexion_deg"].astype(np.float64), np.nan)
    fin = np.isfinite(flex)

    bl = bouts(act, epochs["time_ns"], s)
    sit = np.array([b.duration_s for b in bl if b.activity == _SITTING]) / 60.0
    sit_h = per_act[Activity.SITTING] / 60.0
    breaks = 0
    for b0, b1 in itertools.pairwise(bl):
        if b0.activity == _SITTING and b1.activity in _UPRIGHT:
            breaks += 1
    changes = sum(1 for b0, b1 in itertools.pairwise(bl) if b0.activity != b1.activity)

    static_ev = [e for e in events if e.kind == EventKind.STATIC_PERIOD]
    static_durs = np.array([e.duration_s for e in static_ev]) / 60.0
    static_s = float((epochs["static"] & worn).sum())

    flex_runs = _run_lengths(fin & (flex >= s.sustained_flexion_deg))
    sustained = flex_runs[flex_runs > s.sustained_flexion_min_s]

    def minutes(mask: npt.NDArray[np.bool_]) -> float:
        return float(mask.sum()) / 60.0

    ev = eva(incl)
    ev_min = ev / 60.0
    total_eva = ev.sum()
    if total_eva > 0:
        share_gt1 = float(ev[:, 4:].sum() / total_eva)
        p = ev.ravel() / total_eva
        p = p[p > 0]
        entropy = float(-(p * np.log2(p)).sum())
    else:
        share_gt1, entropy = float("nan"), float("nan")
    ip = apdf(incl)
    fp = apdf(flex)
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
        longest_static_bout_min=float(static_durs.max()) if static_durs.size else 0.0,
        static_bouts_ge30=int((static_durs >= 30.0).sum()),
        flexion_lt20_min=minutes(fin & (flex < 20.0)),
        flexion_20_45_min=minutes(fin & (flex >= 20.0) & (flex < 45.0)),
        flexion_45_60_min=minutes(fin & (flex >= 45.0) & (flex < 60.0)),
        flexion_gt60_min=minutes(fin & (flex >= 60.0)),
        flexion_gt30_min=minutes(fin & (flex > 30.0)),
        flexion_gt90_min=minutes(fin & (flex > 90.0)),
        sustained_flexion_events=int(sustained.size),
        sustained_flexion_min=float(sustained.sum()) / 60.0,
        flexion_load_degmin_per_h=(
            flexion_load_degmin(flex, s.flexion_load_threshold_deg) / wear_h if wear_h > 0 else nan
        ),
        incl_p10_deg=float(ip[0]),
        incl_p50_deg=float(ip[1]),
        incl_p90_deg=float(ip[2]),
        flex_p10_deg=float(fp[0]),
        flex_p50_deg=float(fp[1]),
        flex_p90_deg=float(fp[2]),
        angle_sd_deg=float(np.nanstd(incl)) if np.isfinite(incl).any() else nan,
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

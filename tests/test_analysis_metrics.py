"""Therapist metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.contracts import Activity, EventKind, empty_epochs
from analysis.metrics import EventTracker, apdf, bouts, daily_summary, eva, flexion_load_degmin
from analysis.settings import AnalysisSettings

S, T, W = int(Activity.SITTING), int(Activity.STANDING), int(Activity.WALKING)
NS = 1_000_000_000


def test_apdf_percentiles() -> None:
    a = np.arange(101, dtype=float)  # 0..100
    np.testing.assert_allclose(apdf(a), [10.0, 50.0, 90.0])
    np.testing.assert_allclose(apdf([np.nan, 4.0, np.nan]), [4.0, 4.0, 4.0])


def test_eva_by_hand() -> None:
    # 3 s at 10°, 2 s at 50°, 70 s at 10°, 1 s NaN, 400 s at 70°
    a = np.concatenate([[10] * 3, [50] * 2, [10] * 70, [np.nan], [70] * 400]).astype(float)
    e = eva(a)
    assert e.shape == (4, 6)
    # class 0 (<20°): a 3-s period (1-5 s class) and a 70-s one (60-300 s class)
    assert e[0, 1] == 3
    assert e[0, 4] == 70
    assert e[2, 1] == 2  # 45-60°: 2 s
    assert e[3, 5] == 400  # >60°: 400 s, > 5 min class
    assert e.sum() == 475


def test_flexion_load() -> None:
    f = np.array([10.0, 20.0, 30.0, 50.0, np.nan])
    # (0 + 0 + 10 + 30) deg·s = 40/60 deg·min
    assert flexion_load_degmin(f, 20.0) == pytest.approx(40 / 60)


def test_bouts_minimum_length() -> None:
    # 30 s sitting, 4 s standing (too short), 20 s sitting, 15 s walking, 5 s sitting
    act = [S] * 30 + [T] * 4 + [S] * 20 + [W] * 15 + [S] * 5
    t = np.arange(len(act)) * NS
    b = bouts(act, t, AnalysisSettings(min_bout_s=10))
    assert [(x.activity, x.start_ns // NS, x.duration_s) for x in b] == [
        (S, 0, 54.0),
        (W, 54, 20.0),  # the trailing 5 s of sitting is too short: part of the walking bout
    ]
    b1 = bouts(act, t, AnalysisSettings(min_bout_s=1))
    assert [x.duration_s for x in b1] == [30, 4, 20, 15, 5]


def _epochs(act: list[int], flex: list[float] | None = None, static: list[bool] | None = None):
    ep = empty_epochs(len(act))
    ep["time_ns"] = np.arange(len(act)) * NS
    ep["activity"] = act
    ep["flexion_deg"] = flex if flex is not None else 0.0
    ep["inclination_deg"] = np.abs(ep["flexion_deg"])
    ep["static"] = static if static is not None else False
    return ep


def test_static_periods_and_sustained_flexion_events() -> None:
    n = 200
    static = [True] * 100 + [False] * 2 + [True] * 50 + [False] * 48
    flex = [0.0] * 20 + [25.0] * 61 + [0.0] * 119
    ep = _epochs([S] * n, flex, static)
    tr = EventTracker(AnalysisSettings(static_period_min_s=60, static_tolerance_s=3))
    ev = tr.push(ep[:77]) + tr.push(ep[77:]) + tr.finish()
    stat = [e for e in ev if e.kind == EventKind.STATIC_PERIOD]
    # the 2-s movement is tolerated: one period from 0 to 151 inclusive
    assert [(e.time_ns // NS, e.duration_s) for e in stat] == [(0, 152.0)]
    sf = [e for e in ev if e.kind == EventKind.SUSTAINED_FLEXION]
    assert [(e.time_ns // NS, e.duration_s, e.attrs["mean_flexion_deg"]) for e in sf] == [
        (20, 61.0, 25.0)
    ]


def test_daily_summary_numbers() -> None:
    # 25 min sitting, 2 min walking, 40 min sitting, 1 min standing, 10 min nonwear
    act = [S] * 1500 + [W] * 120 + [S] * 2400 + [T] * 60 + [int(Activity.NONWEAR)] * 600
    flex = [10.0] * 1500 + [5.0] * 120 + [30.0] * 2400 + [0.0] * 60 + [0.0] * 600
    ep = _epochs(act, flex)
    s = daily_summary(ep, [], "2024-03-01", AnalysisSettings())
    assert s.wear_min == pytest.approx(68.0)
    assert s.nonwear_min == pytest.approx(10.0)
    assert s.sitting_min == pytest.approx(65.0)
    assert s.sitting_bouts == 2
    assert s.sitting_bouts_prolonged == 2
    assert s.sitting_bouts_ge30 == 1
    assert s.longest_sitting_bout_min == pytest.approx(40.0)
    assert s.breaks_per_h == pytest.approx(2 / (65 / 60))
    assert s.flexion_20_45_min == pytest.approx(40.0)
    assert s.flexion_gt30_min == pytest.approx(0.0)  # exactly 30 is not > 30
    # load: 2400 s × 10° = 24000 deg·s = 400 deg·min over 68/60 h
    assert s.flexion_load_degmin_per_h == pytest.approx(400 / (68 / 60))
    assert s.sustained_flexion_events == 1
    assert s.sustained_flexion_min == pytest.approx(40.0)
    assert s.settings["min_bout_s"] == 10.0
    assert len(s.eva_min) == 24


def _incl_epochs(incl: list[float], static: list[bool]) -> np.ndarray:
    ep = _epochs([S] * len(incl), None, static)
    ep["inclination_deg"] = incl
    return ep


@pytest.mark.parametrize(
    ("move_s", "move_incl", "one_period"),
    [
        (4, 22.0, True),  # a shift in the chair: 4 s, a few degrees
        (6, 12.0, False),  # longer than static_tolerance_s (5 s)
        (3, 55.0, False),  # short but a bend: 40° away from the static posture
        (3, float("nan"), True),  # angle unknown (no reference yet): length decides
    ],
)
def test_static_period_tolerates_small_short_movements_only(
    move_s: int, move_incl: float, one_period: bool
) -> None:
    incl = [15.0] * 100 + [move_incl] * move_s + [15.0] * 100
    static = [True] * 100 + [False] * move_s + [True] * 100
    tr = EventTracker(AnalysisSettings(static_period_min_s=60))
    ev = tr.push(_incl_epochs(incl, static)) + tr.finish()
    got = [(e.time_ns // NS, e.duration_s) for e in ev if e.kind == EventKind.STATIC_PERIOD]
    if one_period:
        assert got == [(0, 200.0 + move_s)]
    else:
        assert got == [(0, 100.0), (100 + move_s, 100.0)]


def test_static_break_tilt_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="static_break_tilt_deg"):
        AnalysisSettings(static_break_tilt_deg=0.0)


def test_static_period_begun_without_an_angle_is_not_compared_with_an_older_one() -> None:
    # a period at 10°, walking, then a period whose angles are unknown at first
    # (no upright reference yet): a short movement at 40° only counts by length
    incl = [10.0] * 100 + [10.0] * 10 + [float("nan")] * 100 + [40.0] * 3 + [40.0] * 100
    static = [True] * 100 + [False] * 10 + [True] * 100 + [False] * 3 + [True] * 100
    ep = _incl_epochs(incl, static)
    ep["activity"][100:110] = W
    tr = EventTracker(AnalysisSettings(static_period_min_s=60))
    ev = tr.push(ep) + tr.finish()
    got = [(e.time_ns // NS, e.duration_s) for e in ev if e.kind == EventKind.STATIC_PERIOD]
    assert got == [(0, 100.0), (110, 203.0)]

"""The forward sign from a transition's lean, and a trunk held behind the
calibrated upright (a backrest) read as not standing."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.activity import (
    RECLINED_FROM_DEG,
    SIT,
    STAND,
    WINDOW_EPOCHS,
    bend_and_return,
    reclined_standing,
    window_features,
)
from analysis.model_params import MODEL
from analysis.orientation import ReferenceEstimator, trunk_angles
from analysis.stream import _nan_features


def _up_seen(flex_deg: np.ndarray) -> np.ndarray:
    """Unit "up" in a sensor aligned with the trunk (x forward, z up) flexed by flex_deg."""
    a = np.radians(flex_deg)
    return np.stack([-np.sin(a), np.zeros_like(a), np.cos(a)], axis=1)


def _one_movement(
    before: float, peak: float, after: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``window_features`` of the second of a movement from flexion ``before``
    through ``peak`` (that second) to ``after``, held either side."""
    w = WINDOW_EPOCHS
    n = 2 * w + 1
    flex = np.full(n, before)
    flex[w] = peak
    flex[w + 1 :] = after
    feat = _nan_features(n, 0)
    feat["g"] = _up_seen(flex)
    return window_features(feat, w, w + 1)


@pytest.mark.parametrize(
    ("before", "peak", "after"),
    [
        (0.0, 25.0, -30.0),  # lower back sitting down: lean, then the pelvis tilts back
        (-30.0, 25.0, 0.0),  # ... getting up
        (3.0, 35.0, 15.0),  # upper back onto a desk chair
        (15.0, 45.0, 3.0),
    ],
)
def test_lean_direction_is_forward_whichever_end_is_further(
    before: float, peak: float, after: float
) -> None:
    *_, tilt, _, _ = _one_movement(before, peak, after)
    # during a forward lean the measured up moves towards -forward (-x here)
    assert tilt[0, 0] < 0
    assert abs(tilt[0, 1]) < 1e-9


def test_standing_behind_calibrated_upright_is_unlikely() -> None:
    flex = np.array([10.0, 0.0, -RECLINED_FROM_DEG + 0.5, -8.0, -30.0, np.nan])
    ll = np.zeros((flex.size, 4))
    ll[:, STAND] = 1.0  # other evidence favours standing everywhere
    out = reclined_standing(MODEL, ll, flex)
    # in front of upright, near it, or unknown: unchanged
    np.testing.assert_array_equal(out[[0, 1, 2, 5]], ll[[0, 1, 2, 5]])
    # behind: standing no more likely than sitting, and less so further back
    assert (out[3:5, STAND] < out[3:5, SIT]).all()
    assert out[4, STAND] < out[3, STAND]
    np.testing.assert_array_equal(out[:, SIT], ll[:, SIT])


def test_flexion_unknown_until_a_lean_gives_the_forward_sign() -> None:
    est = ReferenceEstimator(walking_min_s=5)
    up, fwd = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    # walking: the antero-posterior axis (here sensor y) stands out, its sign does not
    cov = 0.02 * np.outer(fwd, fwd) - 0.01 * np.outer([1.0, 0, 0], [1.0, 0, 0])
    cov6 = cov[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]
    est.add_walking(np.tile(up, (20, 1)), np.tile(cov6, (20, 1)))
    leaning = _up_seen(np.array([30.0]))[:, [1, 0, 2]]  # 30° forward, sensor y forward
    ref = est.reference()
    assert ref is not None
    assert ref.fwd is None
    incl, flex, lat = trunk_angles(leaning, ref)
    assert incl[0] == pytest.approx(30.0)
    assert np.isnan(flex[0])
    assert np.isnan(lat[0])
    # one sit/stand transition's forward lean: the up direction moved towards -forward
    est.add_forward_tilt(leaning[0] - up)
    ref = est.reference()
    assert ref is not None
    assert ref.fwd is not None
    assert ref.fwd @ fwd == pytest.approx(1.0)
    _, flex, _ = trunk_angles(leaning, ref)
    assert flex[0] == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("before", "peak", "after", "is_bend"),
    [
        (3.0, 75.0, 4.0, True),  # picking something up and straightening again
        (0.0, 60.0, 0.0, True),
        (0.0, 25.0, -30.0, False),  # sitting down (lower back)
        (3.0, 35.0, 15.0, False),  # sitting down at a desk (upper back)
        (0.0, 60.0, 40.0, False),  # into a held bend: the posture changed
    ],
)
def test_deep_bend_that_returns_is_not_a_transition(
    before: float, peak: float, after: float, is_bend: bool
) -> None:
    _, trans_x, *_ = _one_movement(before, peak, after)
    assert bool(bend_and_return(trans_x)[0]) is is_bend

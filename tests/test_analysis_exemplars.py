"""The wearer's own sitting/standing exemplars (``analysis.activity.PostureExemplars``).

Pure logic on unit vectors: the evidence is compared with the Gaussian of the
angle to the nearest exemplar, computed here independently.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.activity import (
    EXEMPLAR_MAX_LOGLIK,
    EXEMPLAR_SD_DEG,
    EXEMPLARS_KEPT,
    LIE,
    SIT,
    STAND,
    WALK,
    PostureExemplars,
    personal_sit_stand,
)
from analysis.model_params import MODEL


def _ll(angle_deg: np.ndarray | float) -> np.ndarray:
    """Robust von Mises-Fisher log-likelihood of the angle to the nearest exemplar."""
    kappa = 1.0 / np.radians(EXEMPLAR_SD_DEG) ** 2
    return np.maximum(-kappa * (1.0 - np.cos(np.radians(angle_deg))), -EXEMPLAR_MAX_LOGLIK)


def _dir(incl_deg: float, azimuth_deg: float = 0.0) -> np.ndarray:
    """Unit vector ``incl_deg`` away from +z, towards ``azimuth_deg`` in the x-y plane."""
    i, a = np.radians(incl_deg), np.radians(azimuth_deg)
    return np.array([np.sin(i) * np.cos(a), np.sin(i) * np.sin(a), np.cos(i)])


def test_no_evidence_until_both_postures_have_an_exemplar() -> None:
    ex = PostureExemplars()
    g = np.array([_dir(10.0)])
    assert ex.sit_minus_stand(g) is None
    ex.add(np.array([_dir(40.0)]), np.empty((0, 3)))
    assert ex.sit_minus_stand(g) is None
    ex.add(np.empty((0, 3)), np.array([[np.nan, np.nan, np.nan]]))
    assert ex.sit_minus_stand(g) is None


def test_evidence_is_the_gaussian_of_the_nearest_exemplar_angles() -> None:
    ex = PostureExemplars()
    # this wearer stands at 17 or 3 degrees, sits at 45
    ex.add(np.array([_dir(45.0)]), np.array([_dir(17.0), _dir(3.0)]))
    g = np.array([_dir(17.0), _dir(5.0), _dir(45.0), _dir(31.0, 0.0), _dir(33.0, 12.0)])
    d_sit = np.array([28.0, 40.0, 0.0, 14.0])
    d_stand = np.array([0.0, 2.0, 28.0, 14.0])
    got = ex.sit_minus_stand(g)
    assert got is not None
    np.testing.assert_allclose(got[:4], _ll(d_sit) - _ll(d_stand), atol=1e-9)
    assert got[0] == pytest.approx(-EXEMPLAR_MAX_LOGLIK)  # 28 deg from sitting: floored
    assert got[3] == pytest.approx(0.0, abs=1e-9)  # half-way: a tie
    # the last one is off-plane: angles between 3-D directions, not inclinations
    a_sit = np.degrees(np.arccos(g[4] @ _dir(45.0)))
    a_stand = min(np.degrees(np.arccos(g[4] @ _dir(s))) for s in (17.0, 3.0))
    assert a_sit > 5.0  # the azimuth counts
    d = _ll(a_sit) - _ll(a_stand)
    assert 0.0 < d < EXEMPLAR_MAX_LOGLIK
    np.testing.assert_allclose(got[4], d)


def test_oldest_exemplars_are_forgotten_and_reset_forgets_all() -> None:
    ex = PostureExemplars()
    ex.add(np.array([_dir(80.0)]), np.array([_dir(0.0)]))
    g = np.array([_dir(74.0)])
    np.testing.assert_allclose(ex.sit_minus_stand(g), _ll(6.0) - _ll(74.0))
    # EXEMPLARS_KEPT newer sitting exemplars at 30 deg push out the one at 80
    ex.add(np.repeat(_dir(30.0)[None, :], EXEMPLARS_KEPT, axis=0), np.empty((0, 3)))
    np.testing.assert_allclose(ex.sit_minus_stand(g), _ll(44.0) - _ll(74.0))
    ex.reset()
    assert ex.sit_minus_stand(g) is None


def test_personal_evidence_only_moves_sitting_against_standing() -> None:
    base = np.array([[-3.0, -0.5, 0.0, -0.2], [-3.0, 0.0, -0.4, -0.2], [-1.0, -0.1, -0.1, 0.0]])
    pers = np.array([-2.0, 3.0, np.nan])  # second 0 looks standing, 1 sitting, 2 unknown
    out = personal_sit_stand(MODEL, base, pers)
    w = MODEL.angle_weight
    np.testing.assert_allclose(out[:, [LIE, WALK]], base[:, [LIE, WALK]])
    np.testing.assert_allclose(out[0, [SIT, STAND]], [-0.5 - 2.0 * w, 0.0])
    np.testing.assert_allclose(out[1, [SIT, STAND]], [0.0, -0.4 - 3.0 * w])
    np.testing.assert_allclose(out[2], base[2])

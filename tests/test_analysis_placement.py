"""Where the sensor is worn (``AnalysisSettings.placement``).

The shipped inclination model learnt sitting from waist-worn recordings, where
the pelvis rolls the sensor back. On the upper back a wearer sitting up
straight reads within a few degrees of standing, and that model then calls a
whole seated morning standing. With ``placement = "upper_back"`` the angle no
longer separates the two near upright, and the movements decide.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.activity import (
    LIE,
    SIT,
    STAND,
    UPPER_BACK_SITTING_MAX_DEG,
    angle_loglik,
    upper_back_sitting,
)
from analysis.contracts import NS_PER_S, Activity, SampleBatch
from analysis.settings import PLACEMENTS, AnalysisSettings
from postmon.config import SensorPairing, sensor_placements
from tests.analysis_signals import analysed_simulated_day


def test_near_upright_sitting_is_as_likely_as_standing() -> None:
    incl = np.array([2.0, 8.0, 20.0, UPPER_BACK_SITTING_MAX_DEG + 5.0, np.nan])
    ll = np.zeros((5, 4))
    ll[:, STAND] = [-0.1, -0.2, -5.0, -9.0, 0.0]
    ll[:, SIT] = [-2.0, -1.5, -1.0, -0.5, 0.0]
    out = upper_back_sitting(ll, incl)
    # near upright, standing's advantage is gone ...
    assert out[0, SIT] == out[0, STAND] == pytest.approx(-0.1)
    assert out[1, SIT] == out[1, STAND] == pytest.approx(-0.2)
    # ... and so is sitting's in a slouch: within the range the angle says
    # nothing about sitting vs standing, at the better of the two
    assert out[2, SIT] == pytest.approx(-1.0)
    assert out[2, STAND] == pytest.approx(-1.0)
    # beyond the upper back's sitting range, and where no angle is known, nothing changes
    np.testing.assert_array_equal(out[3:], ll[3:])
    # lying and walking are untouched
    np.testing.assert_array_equal(out[:, [0, 3]], ll[:, [0, 3]])


def test_a_deep_forward_bend_may_be_standing_on_the_upper_back() -> None:
    from analysis.model_params import MODEL

    incl = np.array([3.0, 74.0])
    waist = angle_loglik(MODEL, incl)
    upper = angle_loglik(MODEL, incl, bent_standing=True)
    # the waist model has no standing 74° forward: a held bend reads as lying
    assert waist[1, LIE] - waist[1, STAND] > 10.0
    # on the upper back a bend is seen whole, and standing explains it
    assert upper[1, LIE] - upper[1, STAND] < 0.5
    assert upper[1, STAND] > upper[1, SIT]
    # near upright nothing changes
    np.testing.assert_allclose(upper[0], waist[0])


def test_unknown_placement_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="lower_back, upper_back"):
        AnalysisSettings(placement="shoulder")
    with pytest.raises(ValueError, match="placement='chest'"):
        SensorPairing("C4:4F:33:12:34:56", "p017", placement="chest")
    assert set(PLACEMENTS) == {"lower_back", "upper_back"}


def test_pairing_rows_name_their_placement() -> None:
    rows = [
        SensorPairing("C4:4F:33:00:00:01", "p001", placement="upper_back"),
        SensorPairing("C4:4F:33:00:00:02", "p002"),
    ]
    assert sensor_placements(rows) == {"C4:4F:33:00:00:01": "upper_back"}


#: a desk worker (upper back, 50 Hz WitMotion) who sits close to upright
PROFILE, SEED, DEVICE, RATE_HZ, DAY_S = "desk_worker", 1001, "witmotion", 50.0, 1800.0


def _sitting_minutes(placement: str) -> tuple[float, float]:
    rec, out = analysed_simulated_day(
        PROFILE,
        DAY_S,
        seed=SEED,
        placement="upper",
        rate_hz=RATE_HZ,
        device=DEVICE,
        settings=AnalysisSettings.offline(placement=placement),
    )
    truth = np.array(rec.truth.activity_labels)
    ours = out.epochs["activity"]
    n = min(truth.size, ours.size)
    return (
        float(np.count_nonzero(truth[:n] == "sitting")) / 60.0,
        float(np.count_nonzero(ours[:n] == int(Activity.SITTING))) / 60.0,
    )


def test_upright_sitting_on_the_upper_back_is_read_as_sitting() -> None:
    truth_min, as_waist = _sitting_minutes("lower_back")
    assert truth_min > 20.0, "the simulated half hour has too little sitting to score"
    # the failure the setting is for: read with the waist model, most of the
    # sitting is standing
    assert as_waist < 0.5 * truth_min
    _, as_upper = _sitting_minutes("upper_back")
    assert abs(as_upper - truth_min) < 0.05 * truth_min, (
        f"sitting {as_upper:.1f} min, truth {truth_min:.1f} min"
    )


def test_each_sensor_is_analysed_where_it_is_worn() -> None:
    from postmon.config import Config
    from postmon.service import EdgeService

    upper, lower = "C4:4F:33:00:00:01", "C4:4F:33:00:00:02"
    cfg = Config(
        sensors=(
            SensorPairing(upper, "p001", placement="upper_back"),
            SensorPairing(lower, "p002"),  # the [analysis] placement
        ),
        analysis={"placement": "lower_back"},
        nudges={"timezone": "UTC"},
    )
    service = EdgeService(cfg, bus=None)  # type: ignore[arg-type]  # no batch is emitted
    t = np.arange(50, dtype=np.int64) * (NS_PER_S // 50)
    acc = np.tile([0.0, 0.0, 1.0], (50, 1))
    for sensor, wearer, want in ((upper, "p001", "upper_back"), (lower, "p002", "lower_back")):
        pipe = service._pipeline(SampleBatch(sensor, wearer, 50.0, t, acc, None))
        assert pipe.settings.placement == want


def test_bending_over_a_cot_is_standing_on_the_upper_back() -> None:
    """A new parent (upper back, 100 Hz MetaMotion) holding deep forward bends:
    read as lying with the waist model, and the straightening up that ends
    them as getting up into sitting."""
    rec, out = analysed_simulated_day(
        "new_parent",
        DAY_S,
        seed=1002,
        placement="upper",
        rate_hz=100.0,
        device="metamotion",
        settings=AnalysisSettings.offline(placement="upper_back"),
    )
    truth = np.array(rec.truth.activity_labels)
    incl = np.asarray(rec.truth.inclination_deg, dtype=float)
    ours = out.epochs["activity"]
    n = min(truth.size, ours.size)
    truth, incl, ours = truth[:n], incl[:n], ours[:n]
    bent = (truth == "standing") & (incl > 50.0)
    assert bent.sum() > 60, "the simulated half hour holds too few deep bends to score"
    assert not np.any(ours[bent] == int(Activity.LYING))
    assert np.mean(ours[bent] == int(Activity.STANDING)) > 0.6
    stood = truth == "standing"
    assert np.count_nonzero(stood & (ours == int(Activity.SITTING))) < 30
    sit_truth = np.count_nonzero(truth == "sitting")
    sit_ours = np.count_nonzero(ours == int(Activity.SITTING))
    assert abs(sit_ours - sit_truth) < 0.15 * sit_truth

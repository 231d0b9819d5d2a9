"""The onset of a stream (``WearerAnalyzer._onset``): the sensor being put on.

Pure logic on per-second features: which seconds come before the sensor has
settled on the body (their movement is handling, not a postural transition),
and that a long non-wear stretch starts a new onset, whatever the chunking.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.contracts import Activity
from analysis.preprocess import FEATURE_DTYPE
from analysis.settings import AnalysisSettings
from analysis.stream import WearerAnalyzer

SETTLE_S = 6  # the posture-held time of the transition report rule


def _seconds(kinds: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, P(walking) and non-wear candidates of seconds given as letters:
    ``m`` handling movement, ``s`` still on the body, ``w`` walking, ``n``
    sensor noise only (off the body), ``c`` as quiet as ``n`` but inside an
    explicit calibration (the analyzer clears the candidate flag there)."""
    n = len(kinds)
    f = np.zeros(n, FEATURE_DTYPE)
    f["coverage"] = 1.0
    k = np.array(list(kinds))
    f["intensity_g"] = np.where(np.isin(k, ["m", "w"]), 0.3, 0.005)
    f["rot_deg"] = np.where(k == "m", 40.0, np.where(k == "w", 10.0, 0.5))
    pw = np.where(k == "w", 0.95, 0.02)
    return f, pw, k == "n"


def _onset(kinds: str, cuts: tuple[int, ...] = ()) -> np.ndarray:
    an = WearerAnalyzer(AnalysisSettings())
    f, pw, cand = _seconds(kinds)
    calib = np.array(list(kinds)) == "c"
    edges = [0, *cuts, len(kinds)]
    return np.concatenate(
        [an._onset(f[a:b], pw[a:b], cand[a:b], calib[a:b]) for a, b in itertools.pairwise(edges)]
    )


def _expected(kinds: str, nonwear_min_s: int) -> np.ndarray:
    """Independent truth: a second is in the onset until it completes
    ``SETTLE_S`` consecutive still-or-walking seconds since the stream start or
    since the last second of a noise-only run of ``nonwear_min_s``."""
    out = np.zeros(len(kinds), dtype=bool)
    # a restart follows the last second of each full noise-only run
    restarts = [0] + [
        i + 1
        for i in range(len(kinds))
        if i + 1 >= nonwear_min_s and kinds[i + 1 - nonwear_min_s : i + 1] == "n" * nonwear_min_s
    ]
    for i in range(len(kinds)):
        r = max(x for x in restarts if x <= i + 1)  # the latest restart up to here
        seg = kinds[r : i + 1]
        out[i] = "s" * SETTLE_S not in seg.replace("w", "s") or i < r
    return out


def test_handling_at_the_start_is_onset_until_a_posture_is_held() -> None:
    kinds = "mmmmsssmmssssssmmmsss"
    got = _onset(kinds)
    # the first six still seconds in a row end at index 14
    assert got.tolist() == [True] * 14 + [False] * (len(kinds) - 14)
    assert np.array_equal(got, _expected(kinds, AnalysisSettings().nonwear_min_s))


def test_walking_settles_the_sensor_too() -> None:
    kinds = "mmwwwwwwmmmm"
    assert _onset(kinds).tolist() == [True] * 7 + [False] * 5


def test_noise_alone_does_not_settle_it() -> None:
    # a sensor lying on a desk shows only its noise: still, but not worn
    assert _onset("nnnnnnnnnnmm").all()


@pytest.mark.parametrize("cuts", [(), (5,), (70, 71), tuple(range(3, 150, 7))])
def test_long_nonwear_starts_a_new_onset_whatever_the_chunking(cuts: tuple[int, ...]) -> None:
    nw = AnalysisSettings().nonwear_min_s
    kinds = "mm" + "s" * 10 + "n" * (nw + 5) + "mmm" + "s" * 8 + "n" * (nw - 1) + "mm" + "s" * 5
    got = _onset(kinds, cuts)
    assert np.array_equal(got, _expected(kinds, nw))
    # after the first non-wear run the handling is onset again, after the
    # short one (less than nonwear_min_s) it is not
    first_back = 12 + nw + 5
    assert got[first_back]
    assert not got[-1]


@pytest.mark.parametrize(("off_s", "static_through"), [(3, True), (15, False)])
def test_sensor_put_down_for_seconds_is_not_a_body_holding_still(
    off_s: int, static_through: bool
) -> None:
    # a wearer sitting still (breathing moves the trunk a little), the sensor
    # lying on a desk for off_s seconds (its own noise only), then back on
    kinds = "s" * 200 + "n" * off_s + "s" * 200
    f, _, _ = _seconds(kinds)
    f["time_ns"] = np.arange(len(kinds), dtype=np.int64) * 1_000_000_000
    f["g"] = (0.0, 0.0, 1.0)
    f["g_angle"] = (0.0, 0.0, 1.0)
    f["tilt_sd_deg"] = np.where(np.array(list(kinds)) == "n", 0.002, 0.2)
    an = WearerAnalyzer(AnalysisSettings())
    out = an.feed_features(f)
    ep = np.concatenate((out.epochs, an.finish().epochs))
    off = slice(200, 200 + off_s)
    assert ep["static"][20:200].all()
    assert ep["static"][200 + off_s :].all()
    assert bool(ep["static"][off].all()) is static_through
    assert (ep["activity"][off] != int(Activity.NONWEAR)).all()  # too short for non-wear


@pytest.mark.parametrize("cuts", [(), (1,), (4, 5), (2, 3, 7)])
def test_an_explicit_calibration_settles_it_however_quiet(cuts: tuple[int, ...]) -> None:
    # standing tall for the calibration: worn, even when as quiet as a desk,
    # so sitting down right after it is a transition, not handling
    got = _onset("nnnccccmmmsss", cuts)
    assert got.tolist() == [True] * 3 + [False] * 10
    # without the calibration the same seconds would still be settling
    assert _onset("nnnnnnnmmmsss", cuts)[:10].all()


def test_calibration_seconds_are_not_off_body_candidates() -> None:
    # 20 s as quiet as a sensor on a desk; the first 10 are a calibration
    n = 20
    f = np.zeros(n, FEATURE_DTYPE)
    f["time_ns"] = np.arange(n, dtype=np.int64) * 10**9
    f["coverage"] = 1.0
    f["g"] = [0.0, 0.0, 1.0]
    f["g_angle"] = [0.0, 0.0, 1.0]
    f["intensity_g"] = 0.001
    f["tilt_sd_deg"] = 0.01
    an = WearerAnalyzer(AnalysisSettings(), calibration_ns=[(0, 10 * 10**9)])
    an.feed_features(f)
    entered = an._cand.size
    assert entered >= 12
    assert not an._cand[:10].any()
    assert an._cand[10:entered].all()

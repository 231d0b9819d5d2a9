"""The incremental daily summary equals the batch one, whatever the chunking."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.contracts import Activity, Event, EventKind, empty_epochs
from analysis.metrics import (
    APDF_BIN_DEG,
    AngleHistogram,
    DailyAccumulator,
    EventTracker,
    daily_summary,
)
from analysis.settings import AnalysisSettings

NS = 1_000_000_000
#: summary fields computed from histograms: equal to within half a bin
APDF_FIELDS = {"incl_p10_deg", "incl_p50_deg", "incl_p90_deg"} | {
    "flex_p10_deg",
    "flex_p50_deg",
    "flex_p90_deg",
}
#: float sums accumulated per chunk: equal to rounding
ROUNDED_FIELDS = {"flexion_load_degmin_per_h", "angle_sd_deg"}


def _day(seed: int, n: int) -> np.ndarray:
    """``n`` epochs of runs of activities, angles (with gaps) and static flags."""
    rng = np.random.default_rng(seed)
    ep = empty_epochs(n)
    ep["time_ns"] = 1_700_000_000 * NS + np.arange(n, dtype=np.int64) * NS
    # runs of 1-400 s: long enough for bouts, sitting periods and sustained flexion
    lengths = rng.integers(1, 400, size=n // 2 + 1)
    acts = rng.choice(len(Activity), size=lengths.size, p=[0.05, 0.45, 0.2, 0.15, 0.05, 0.1])
    ep["activity"] = np.repeat(acts, lengths)[:n]
    level = np.repeat(rng.uniform(-30.0, 100.0, size=lengths.size), lengths)[:n]
    flex = level + rng.normal(0.0, 3.0, n)
    ep["flexion_deg"] = flex
    ep["inclination_deg"] = np.abs(flex) + rng.uniform(0.0, 5.0, n)
    gaps = rng.random(n) < 0.01
    ep["flexion_deg"][gaps] = np.nan
    ep["inclination_deg"][gaps] = np.nan
    ep["static"] = np.repeat(rng.random(lengths.size) < 0.5, lengths)[:n]
    return ep


def _static_events(seed: int, n: int) -> list[Event]:
    rng = np.random.default_rng(seed + 1)
    starts = np.sort(rng.integers(0, max(n, 1), size=5))
    return [
        Event(1_700_000_000 * NS + int(t) * NS, EventKind.STATIC_PERIOD, float(d))
        for t, d in zip(starts, rng.uniform(60.0, 4000.0, size=5), strict=True)
    ] + [Event(1_700_000_000 * NS, EventKind.BOUT, 99999.0, {"activity": "sitting"})]


def assert_summaries_match(got: object, want: object) -> None:
    g, w = dataclasses.asdict(got), dataclasses.asdict(want)  # type: ignore[call-overload]
    assert g.keys() == w.keys()
    for k in w:
        a, b = g[k], w[k]
        if isinstance(b, float) and math.isnan(b):
            assert isinstance(a, float), k
            assert math.isnan(a), k
        elif k in APDF_FIELDS:
            assert a == pytest.approx(b, abs=APDF_BIN_DEG / 2 + 1e-9), k
        elif k in ROUNDED_FIELDS:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), k
        else:
            assert a == b, k


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 6000),
    cuts=st.lists(st.integers(0, 6000), max_size=12),
    min_bout_s=st.sampled_from([1.0, 10.0, 30.0]),
)
def test_any_chunking_gives_the_batch_summary(
    seed: int, n: int, cuts: list[int], min_bout_s: float
) -> None:
    s = AnalysisSettings(min_bout_s=min_bout_s)
    ep = _day(seed, n)
    events = _static_events(seed, n)
    acc = DailyAccumulator(s)
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    for a, b in itertools.pairwise(bounds):
        acc.push(ep[a:b])
    acc.add_events(events)
    got = acc.summary("2024-03-01")
    assert_summaries_match(got, daily_summary(ep, events, "2024-03-01", s))
    # and bit for bit what the whole day in one chunk gives
    whole = DailyAccumulator(s)
    whole.push(ep)
    whole.add_events(events)
    assert repr(got) == repr(whole.summary("2024-03-01"))  # repr: NaN equals NaN


def test_own_static_periods_are_those_of_the_pushed_epochs() -> None:
    ep = _day(11, 5000)
    acc = DailyAccumulator(own_static_periods=True)
    for k in range(0, ep.size, 333):
        acc.push(ep[k : k + 333])
    tr = EventTracker(AnalysisSettings())
    static = [e for e in tr.push(ep) + tr.finish() if e.kind == EventKind.STATIC_PERIOD]
    assert static  # the test data has static periods
    assert_summaries_match(acc.summary("d"), daily_summary(ep, static, "d"))
    with pytest.raises(ValueError, match="own epochs"):
        acc.add_events(static)


def test_summary_does_not_change_the_accumulator() -> None:
    ep = _day(7, 4000)
    acc = DailyAccumulator()
    acc.push(ep[:2500])
    first = acc.summary("d")
    assert_summaries_match(first, daily_summary(ep[:2500], [], "d"))
    assert acc.summary("d") == first
    acc.push(ep[2500:])
    assert_summaries_match(acc.summary("d"), daily_summary(ep, [], "d"))


def test_histogram_percentiles_within_half_a_bin_of_numpy() -> None:
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(0.0, 180.0, 5000), [0.0, 180.0, 179.99, 0.05]])
    h = AngleHistogram(0.0, 180.0)
    h.add(a[:3000])
    h.add(a[3000:])
    q = [0.0, 1.0, 10.0, 50.0, 90.0, 99.9, 100.0]
    np.testing.assert_allclose(h.percentiles(q), np.percentile(a, q), atol=APDF_BIN_DEG / 2 + 1e-9)
    assert np.isnan(AngleHistogram(0.0, 1.0).percentiles()).all()


def test_histogram_grows_its_span_and_counts_past_uint16() -> None:
    # one angle for 20 h (past the uint16 range), then angles at both ends
    h = AngleHistogram(-180.0, 180.0)
    held = np.full(72_000, 12.34)
    for k in range(0, held.size, 5000):
        h.add(held[k : k + 5000])
    ends = np.array([-179.96, 179.99, np.nan, 500.0])
    h.add(ends)
    a = np.concatenate([held, ends[:2], [179.99]])  # 500° counts in the last bin
    q = [0.0, 0.001, 50.0, 99.999, 100.0]
    np.testing.assert_allclose(h.percentiles(q), np.percentile(a, q), atol=APDF_BIN_DEG / 2 + 1e-9)
    assert int(h.counts.sum()) == a.size


def test_state_does_not_grow_with_hours_worn() -> None:
    # one sitting bout all day long: the state after 1 h and after 12 h is the same size
    acc = DailyAccumulator()
    day = empty_epochs(12 * 3600)
    day["time_ns"] = np.arange(day.size, dtype=np.int64) * NS
    day["activity"] = int(Activity.SITTING)
    # the angles of every hour span the same range (the histograms cover it after 1 h)
    day["inclination_deg"] = 45.0 + 45.0 * np.sin(np.arange(day.size) * 2 * np.pi / 600.0)
    day["flexion_deg"] = day["inclination_deg"] - 10.0
    acc.push(day[:3600])
    one_h = acc.state_nbytes()
    for k in range(1, 12):
        acc.push(day[k * 3600 : (k + 1) * 3600])
    assert acc.state_nbytes() == one_h
    assert acc.summary("d").sitting_min == pytest.approx(720.0)

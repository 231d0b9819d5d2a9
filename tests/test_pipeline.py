"""The per-wearer edge pipeline: analysis + nudges + daily summaries."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from analysis.contracts import NS_PER_S, SampleBatch
from firmware_sim.simulator import simulate
from postmon.pipeline import WearerPipeline

TZ = dt.timezone(dt.timedelta(hours=1))


@pytest.fixture(scope="module")
def recording():  # type: ignore[no-untyped-def]
    return simulate("desk_worker", 1800, seed=11, placement="upper", device="metamotion")


def _run(rec, start_ns: int, chunk: int) -> list:  # type: ignore[no-untyped-def]
    p = WearerPipeline("clinic-a", "p001", "AA:BB", tz=TZ)
    t_ns = start_ns + np.round(rec.time_s * NS_PER_S).astype(np.int64)
    outs = []
    for i in range(0, len(t_ns), chunk):
        sl = slice(i, i + chunk)
        outs.append(
            p.feed(
                SampleBatch(
                    "AA:BB", "p001", rec.rate_hz, t_ns[sl], rec.accel_g[sl], rec.gyro_dps[sl]
                )
            )
        )
    outs.append(p.finish())
    return outs


def test_epochs_cover_the_recording_and_days_split_at_local_midnight(recording) -> None:  # type: ignore[no-untyped-def]
    # start 10 minutes before local midnight (UTC+1): 23:50 local
    start = dt.datetime(2026, 3, 2, 23, 50, tzinfo=TZ)
    start_ns = int(start.timestamp()) * NS_PER_S
    outs = _run(recording, start_ns, chunk=500)
    epochs = np.concatenate([o.epochs for o in outs])
    assert len(epochs) == 1800
    assert np.all(np.diff(epochs["time_ns"]) == NS_PER_S)
    assert epochs["time_ns"][0] == start_ns
    daily = [d for o in outs for d in o.daily]
    assert [d.date for d in daily] == ["2026-03-02", "2026-03-03"]
    # the first day has exactly the 600 epochs before local midnight
    day1 = daily[0]
    assert day1.wear_min + day1.nonwear_min == pytest.approx(10.0)
    assert daily[1].wear_min + daily[1].nonwear_min == pytest.approx(20.0)


def test_chunking_does_not_change_results(recording) -> None:  # type: ignore[no-untyped-def]
    start_ns = 1_772_000_000 * NS_PER_S
    a = _run(recording, start_ns, chunk=50)
    b = _run(recording, start_ns, chunk=4321)
    ea = np.concatenate([o.epochs for o in a])
    eb = np.concatenate([o.epochs for o in b])
    for name in ea.dtype.names:
        np.testing.assert_array_equal(ea[name], eb[name], err_msg=name)
    assert [e for o in a for e in o.events] == [e for o in b for e in o.events]
    assert [d for o in a for d in o.daily] == [d for o in b for d in o.daily]


def test_daily_summaries_equal_the_batch_summary_of_each_days_epochs(recording) -> None:  # type: ignore[no-untyped-def]
    from analysis.contracts import EventKind
    from analysis.metrics import EventTracker, daily_summary
    from analysis.settings import AnalysisSettings
    from tests.test_analysis_daily_accumulator import assert_summaries_match

    # 23:50 local: two days; the pipeline keeps no epochs, the batch path gets them all
    start_ns = int(dt.datetime(2026, 3, 2, 23, 50, tzinfo=TZ).timestamp()) * NS_PER_S
    outs = _run(recording, start_ns, chunk=777)
    epochs = np.concatenate([o.epochs for o in outs])
    daily = [d for o in outs for d in o.daily]
    midnight = start_ns + 600 * NS_PER_S
    days = [epochs[epochs["time_ns"] < midnight], epochs[epochs["time_ns"] >= midnight]]
    assert [len(d) for d in days] == [600, 1200]
    for got, ep in zip(daily, days, strict=True):
        # each day's static periods from its own epochs (one open at midnight ends there)
        tr = EventTracker(AnalysisSettings())
        static = [e for e in tr.push(ep) + tr.finish() if e.kind == EventKind.STATIC_PERIOD]
        want = daily_summary(ep, static, got.date)
        nudge_fields = ("nudges_sent", "nudges_answered", "nudge_response_rate")
        want = dataclasses.replace(want, **{k: getattr(got, k) for k in nudge_fields})
        want = dataclasses.replace(want, nudge_median_response_s=got.nudge_median_response_s)
        assert_summaries_match(got, want)

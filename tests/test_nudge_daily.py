"""The daily summary carries the day's nudges and how they were answered."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from analysis.contracts import NS_PER_S, SampleBatch
from firmware_sim.simulator import simulate
from postmon.pipeline import WearerPipeline
from tests.nudge_scenario import still_sitter

RATE_HZ = 25.0
START_NS = int(dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC).timestamp()) * NS_PER_S


def _run(sit_s: float) -> tuple[WearerPipeline, list, list]:
    walk_in, after = 240.0, 600.0
    rec = simulate(
        still_sitter(walk_in, sit_s, after),
        walk_in + sit_s + after,
        seed=2,
        device="metamotion",
        rate_hz=RATE_HZ,
        mounting="typical",
    )
    p = WearerPipeline("clinic-a", "w01", "AA:BB", tz=dt.UTC)
    t_ns = START_NS + np.rint(rec.time_s * NS_PER_S).astype(np.int64)
    outs = []
    step = int(60 * RATE_HZ)
    for k in range(0, t_ns.shape[0], step):
        sl = slice(k, k + step)
        outs.append(
            p.feed(
                SampleBatch("AA:BB", "w01", RATE_HZ, t_ns[sl], rec.accel_g[sl], rec.gyro_dps[sl])
            )
        )
    outs.append(p.finish())
    nudges = [n for o in outs for n in o.nudges]
    daily = [d for o in outs for d in o.daily]
    return p, nudges, daily


def test_answered_nudge_counts_in_the_daily_summary() -> None:
    # 32 min of sitting: 30 static minutes are reached first, then the wearer walks off
    _, nudges, daily = _run(32 * 60.0)
    (n,) = nudges
    (day,) = daily
    assert day.date == "2026-01-05"
    assert (day.nudges_sent, day.nudges_answered, day.nudge_response_rate) == (1, 1, 1.0)
    walk_starts_ns = START_NS + int((240.0 + 32 * 60.0) * NS_PER_S)  # the simulator's plan
    truth_delay_s = (walk_starts_ns - n.time_ns) / NS_PER_S
    assert 0 < truth_delay_s < 300
    assert abs(day.nudge_median_response_s - truth_delay_s) <= 10.0


def test_ignored_nudge_counts_as_sent_not_answered() -> None:
    # 45 min of sitting: the nudge at 30 static minutes is not answered in 5 min
    _, nudges, daily = _run(45 * 60.0)
    assert [n.level for n in nudges] == [1]
    (day,) = daily
    assert (day.nudges_sent, day.nudges_answered, day.nudge_response_rate) == (1, 0, 0.0)
    assert math.isnan(day.nudge_median_response_s)

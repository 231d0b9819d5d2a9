"""The nudge policy: one test per rule, with hand-computed truth, plus
property tests (any chunking gives the same decisions; the vectorised policy
agrees with a plain per-epoch reading of the rules)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.contracts import EPOCH_DTYPE, NS_PER_S, Activity
from analysis.nudge import (
    Nudge,
    NudgeOutcome,
    NudgePolicy,
    NudgeResponseStats,
    NudgeSettings,
    daily_response_stats,
)
from tests.nudge_reference import reference_policy

S = NS_PER_S
MIN = 60 * S
# Monday 2026-01-05 09:00:00 UTC: inside the default working hours.
T0 = int(dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC).timestamp()) * S

SIT, STAND, WALK, LIE, NONWEAR = (
    Activity.SITTING,
    Activity.STANDING,
    Activity.WALKING,
    Activity.LYING,
    Activity.NONWEAR,
)


def epochs(
    *segments: tuple[float, Activity, bool] | tuple[float, Activity, bool, float],
    t0: int = T0,
) -> npt.NDArray[np.void]:
    """Consecutive 1-s epochs: (duration_s, activity, static[, flexion_deg])."""
    parts = []
    t = t0
    for seg in segments:
        n = int(seg[0])
        e = np.zeros(n, dtype=EPOCH_DTYPE)
        e["time_ns"] = t + np.arange(n, dtype=np.int64) * S
        e["activity"] = int(seg[1])
        e["static"] = seg[2]
        e["flexion_deg"] = seg[3] if len(seg) > 3 else 5.0
        parts.append(e)
        t += n * S
    return np.concatenate(parts)


def run(
    ep: npt.NDArray[np.void], s: NudgeSettings | None = None, **kw: object
) -> tuple[list[Nudge], list[NudgeOutcome]]:
    policy = NudgePolicy("w", s or NudgeSettings(), **kw)  # type: ignore[arg-type]
    out = policy.feed(ep)
    return list(out.nudges), list(out.outcomes)


def still(minutes: float) -> tuple[float, Activity, bool]:
    return (minutes * 60, SIT, True)


# ------------------------------------------------------------- static timer


def test_exactly_one_nudge_for_a_45_min_still_sit() -> None:
    nudges, outcomes = run(epochs(still(45)))
    assert len(nudges) == 1
    n = nudges[0]
    # the 1800th static second ends at T0 + 1800 s: that is the 30-minute mark
    assert n.time_ns == T0 + 30 * MIN
    assert (n.reason, n.level, n.static_min) == ("static", 1, 30.0)
    assert n.nudge_id == f"w:static:{T0 + 30 * MIN}"
    # never answered: decided at the first epoch starting at the window's end
    assert outcomes == [
        NudgeOutcome(n.nudge_id, "w", n.time_ns, "static", 1, False, None, T0 + 35 * MIN + S)
    ]


def test_answered_nudge_records_the_delay_to_the_break_start() -> None:
    # sit 32 min, then walk 2 min: the break starts 120 s after the nudge
    nudges, outcomes = run(epochs(still(32), (120, WALK, False)))
    assert [x.time_ns for x in nudges] == [T0 + 30 * MIN]
    (o,) = outcomes
    assert o.answered is True
    assert o.response_delay_s == 120.0
    # known when the break completes: its 60th second ends at 32 min + 60 s
    assert o.decided_ns == T0 + 33 * MIN


def test_movement_after_the_window_is_unanswered() -> None:
    nudges, outcomes = run(epochs(still(36), (120, WALK, False)))
    assert len(nudges) == 1
    assert [(o.answered, o.response_delay_s) for o in outcomes] == [(False, None)]


def test_a_break_resets_the_timer_and_a_short_one_does_not() -> None:
    # 20 still + 60 s standing and moving (a break) + 20 still: never 30 min in one period
    nudges, _ = run(epochs(still(20), (60, STAND, False), still(20)))
    assert nudges == []
    # 59 s is not a break; moving seconds add no static time: 20 + 10 min
    nudges, _ = run(epochs(still(20), (59, STAND, False), still(10)))
    assert [x.time_ns for x in nudges] == [T0 + 30 * MIN + 59 * S]
    # standing *still* is static time, not a break (the default)
    nudges, _ = run(epochs(still(20), (300, STAND, True), still(10)))
    assert [x.time_ns for x in nudges] == [T0 + 30 * MIN]
    # a nudge waits while a break is under way (the wearer is already moving)
    nudges, _ = run(epochs(still(29.5), (50, STAND, False), still(5)))
    assert [x.time_ns for x in nudges] == [T0 + 30 * MIN + 50 * S]


def test_break_definition_is_configurable() -> None:
    s = NudgeSettings(break_activities=("walking",), break_min_s=120)
    # 90 s walking is not a 120-s break; standing does not count at all
    seq = epochs(still(20), (90, WALK, False), (300, STAND, True), still(10))
    nudges, _ = run(seq, s)
    assert len(nudges) == 1
    # by default standing still breaks nothing; a posture-only rule lets it
    nudges, _ = run(epochs(still(20), (120, STAND, True), still(10)))
    assert len(nudges) == 1
    s2 = NudgeSettings(break_requires_movement=False)
    nudges, _ = run(epochs(still(20), (120, STAND, True), still(10)), s2)
    assert nudges == []


def test_static_timer_is_configurable_and_counts_only_static_seconds() -> None:
    s = NudgeSettings(static_timer_min=10)
    # alternate 1 s static / 1 s moving: 10 static minutes take 20 minutes
    pattern = np.zeros(1800, dtype=bool)
    pattern[::2] = True
    e = epochs((1800, SIT, False))
    e["static"] = pattern
    nudges, _ = run(e, s)
    # the 600th static second is epoch index 1198
    assert [x.time_ns for x in nudges] == [T0 + 1199 * S]


# ---------------------------------------------------------- never walking


def test_no_nudge_while_walking_deferred_until_walking_stops() -> None:
    # the timer passes 30 min during a quiet hour; when it ends the wearer is
    # walking (40 s, too short for a break), then sits down: nudge right then
    s = NudgeSettings(quiet_hours_local=("09:00-09:35",))
    seq = epochs(still(34.5), (40, WALK, False), still(5))
    nudges, _ = run(seq, s)
    assert [x.time_ns for x in nudges] == [T0 + 34.5 * MIN + 41 * S]


def test_no_nudge_in_walking_epochs_even_if_flagged_static() -> None:
    s = NudgeSettings(break_activities=("standing",))
    e = epochs(still(29), (300, WALK, True), still(1))
    nudges, _ = run(e, s)
    assert [x.time_ns for x in nudges] == [T0 + 34 * MIN + S]


# ------------------------------------------------- working and quiet hours


def test_no_nudge_in_quiet_hours_then_deferred() -> None:
    s = NudgeSettings(quiet_hours_local=("09:15-09:45",))
    nudges, _ = run(epochs(still(60)), s)
    assert [(x.time_ns, x.static_min) for x in nudges] == [(T0 + 45 * MIN, 45.0)]


def test_no_nudge_outside_working_hours() -> None:
    evening = T0 + 9 * 3600 * S  # 18:00 UTC
    nudges, _ = run(epochs(still(60), t0=evening))
    assert nudges == []
    early = T0 - 2 * 3600 * S  # 07:00 UTC: due at 07:30, sent when work starts at 08:00
    nudges, _ = run(epochs(still(70), t0=early))
    assert [x.time_ns for x in nudges] == [T0 - 3600 * S]


def test_working_days_and_local_time_zone() -> None:
    oslo = ZoneInfo("Europe/Oslo")  # UTC+1 in January
    # 07:15 UTC is 08:15 in Oslo: inside 08:00-18:00 local, but 07:45 UTC
    # would be outside in UTC; the nudge at 07:45 UTC (08:45 local) is sent
    start = T0 - 105 * MIN  # 07:15 UTC
    nudges, _ = run(epochs(still(40), t0=start), tz=oslo)
    assert [x.time_ns for x in nudges] == [start + 30 * MIN]
    nudges, _ = run(epochs(still(50), t0=start))
    assert [(x.time_ns, x.static_min) for x in nudges] == [(T0 - 60 * MIN, 45.0)]  # 08:00 UTC
    # Monday excluded
    s = NudgeSettings(work_days_iso=(2, 3, 4, 5))
    nudges, _ = run(epochs(still(40)), s)
    assert nudges == []


def test_shift_crossing_midnight_belongs_to_its_start_day() -> None:
    s = NudgeSettings(work_hours_local=("22:00", "06:00"), work_days_iso=(1,))
    monday_2330 = T0 + (14 * 60 + 30) * MIN
    nudges, _ = run(epochs(still(100), t0=monday_2330), s)  # until Tuesday 01:10
    assert [x.time_ns for x in nudges] == [monday_2330 + 30 * MIN, monday_2330 + 50 * MIN]
    tuesday_2330 = monday_2330 + 24 * 3600 * S
    nudges, _ = run(epochs(still(100), t0=tuesday_2330), s)
    assert nudges == []


def test_daylight_saving_change_moves_working_hours() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    # 2026-03-29: clocks go from 02:00 to 03:00 local (01:00 UTC). Working hours
    # 03:00-04:00 local: 01:00-02:00 UTC that day.
    s = NudgeSettings(work_hours_local=("03:00", "04:00"))
    start = int(dt.datetime(2026, 3, 29, 0, 0, tzinfo=dt.UTC).timestamp()) * S
    nudges, _ = run(epochs(still(80), t0=start), s, tz=oslo)
    assert [(x.time_ns, x.level) for x in nudges] == [(start + 60 * MIN, 1), (start + 80 * MIN, 2)]


# --------------------------------------------------- cap, snooze, escalation


def test_hourly_cap() -> None:
    s = NudgeSettings(static_timer_min=10, max_nudges_per_h=1)
    # nudge at 10 min, a 2-min walk (answered), then sitting: due again at
    # 22 min but the cap holds it until an hour after the first nudge
    nudges, _ = run(epochs(still(10), (120, WALK, False), still(60)), s)
    assert [x.time_ns for x in nudges] == [T0 + 10 * MIN, T0 + 70 * MIN]
    assert [x.static_min for x in nudges] == [10.0, 58.0]
    assert [x.level for x in nudges] == [1, 1]


def test_snooze_defers_the_nudge_to_its_end() -> None:
    p = NudgePolicy("w")
    e = epochs(still(60))
    first = p.feed(e[: 20 * 60])
    p.snooze(T0 + 20 * MIN, 15 * 60)
    rest = p.feed(e[20 * 60 :])
    nudges = list(first.nudges + rest.nudges)
    # due at 30 min, snoozed until 35 min; then escalation 20 min later
    assert [(x.time_ns, x.level) for x in nudges] == [(T0 + 35 * MIN, 1), (T0 + 55 * MIN, 2)]


def test_snooze_after_a_nudge_cancels_escalation() -> None:
    p = NudgePolicy("w")
    e = epochs(still(90))
    a = p.feed(e[: 31 * 60])
    p.snooze(T0 + 31 * MIN, 30 * 60)
    b = p.feed(e[31 * 60 :])
    nudges = list(a.nudges + b.nudges)
    # not level 2 at 50 min: the wearer asked for quiet until 61 min; the
    # ladder starts again at level 1, and level 2 follows 20 min later
    assert [(x.time_ns, x.level) for x in nudges] == [
        (T0 + 30 * MIN, 1),
        (T0 + 61 * MIN, 1),
        (T0 + 81 * MIN, 2),
    ]
    first_outcome = (a.outcomes + b.outcomes)[0]
    assert (first_outcome.answered, first_outcome.snoozed) == (False, True)


def test_escalation_after_an_ignored_nudge_is_stronger_and_bounded() -> None:
    nudges, outcomes = run(epochs(still(120)))
    assert [(x.time_ns, x.level) for x in nudges] == [(T0 + 30 * MIN, 1), (T0 + 50 * MIN, 2)]
    assert [o.answered for o in outcomes] == [False, False]
    s = NudgeSettings(max_level=3, escalation_interval_min=10)
    nudges, _ = run(epochs(still(120)), s)
    assert [(x.time_ns, x.level) for x in nudges] == [
        (T0 + 30 * MIN, 1),
        (T0 + 40 * MIN, 2),
        (T0 + 50 * MIN, 3),
    ]
    s = NudgeSettings(max_level=1)
    nudges, _ = run(epochs(still(120)), s)
    assert len(nudges) == 1


def test_no_escalation_when_answered_and_a_new_period_starts_at_level_1() -> None:
    nudges, outcomes = run(epochs(still(31), (90, STAND, False), still(31)))
    second_sit = T0 + 31 * MIN + 90 * S
    assert [(x.time_ns, x.level) for x in nudges] == [
        (T0 + 30 * MIN, 1),
        (second_sit + 30 * MIN, 1),
    ]
    assert outcomes[0].answered is True
    assert outcomes[0].response_delay_s == 60.0


# ----------------------------------------------------------------- flexion


def test_flexion_nudge_is_off_by_default() -> None:
    e = epochs((600, SIT, False, 35.0))
    nudges, _ = run(e)
    assert nudges == []


def test_flexion_nudge_when_enabled() -> None:
    s = NudgeSettings(flexion_nudge=True, flexion_hold_s=30)
    e = epochs((45, SIT, False, 35.0), (60, SIT, False, 5.0), (500, SIT, False, 25.0))
    nudges, outcomes = run(e, s)
    assert [(x.time_ns, x.reason, x.level) for x in nudges] == [
        (T0 + 30 * S, "flexion", 1),
        (T0 + 135 * S, "flexion", 1),  # a new episode from 105 s, held 30 s
    ]
    # first: the wearer straightened 15 s after the nudge; second: held past the window
    assert [(o.answered, o.response_delay_s) for o in outcomes] == [(True, 15.0), (False, None)]


def test_flexion_below_threshold_or_short_holds_do_not_nudge() -> None:
    s = NudgeSettings(flexion_nudge=True, flexion_hold_s=60, flexion_threshold_deg=30)
    e = epochs((300, SIT, False, 29.0), (59, SIT, False, 40.0), (10, SIT, False, 0.0))
    nudges, _ = run(e, s)
    assert nudges == []
    e["flexion_deg"][:] = np.nan  # unknown angle is never "flexed"
    assert run(e, s)[0] == []


# ------------------------------------------------------ absence and input


def test_long_non_wear_ends_the_static_period() -> None:
    nudges, _ = run(epochs(still(25), (10 * 60, NONWEAR, True), still(25)))
    assert nudges == []
    # 9 min off the body is not enough: the period continues (25 + 5 = 30)
    nudges, _ = run(epochs(still(25), (9 * 60, NONWEAR, True), still(10)))
    assert [x.time_ns for x in nudges] == [T0 + 39 * MIN]


def test_missing_data_counts_as_absence() -> None:
    a = epochs(still(25))
    b = epochs(still(25), t0=T0 + 25 * MIN + 10 * MIN)  # a 10-min hole
    nudges, _ = run(np.concatenate([a, b]))
    assert nudges == []
    c = epochs(still(20), t0=T0 + 25 * MIN + 2 * MIN)  # a 2-min hole
    nudges, _ = run(np.concatenate([a, c]))
    assert [x.time_ns for x in nudges] == [T0 + 32 * MIN]


def test_bad_input_is_rejected_and_state_kept() -> None:
    p = NudgePolicy("w")
    e = epochs(still(40))
    p.feed(e[:100])
    with pytest.raises(ValueError, match="not after the last one"):
        p.feed(e[50:200])
    shuffled = e[100:200].copy()
    shuffled[[0, 1]] = shuffled[[1, 0]]
    with pytest.raises(ValueError, match="strictly increasing"):
        p.feed(shuffled)
    bad = e[100:200].copy()
    bad["activity"][3] = 9
    with pytest.raises(ValueError, match="activity codes"):
        p.feed(bad)
    with pytest.raises(ValueError, match="lack field"):
        p.feed(np.zeros(3, dtype=[("time_ns", "i8")]))
    out = p.feed(e[100:])  # nothing was lost: same as an uninterrupted feed
    assert [x.time_ns for x in out.nudges] == [T0 + 30 * MIN]
    assert p.feed(e[:0]) == type(out)()


def test_settings_validate_ranges_and_names() -> None:
    with pytest.raises(ValueError, match=r"static_timer_min=5.*10–90"):
        NudgeSettings(static_timer_min=5)
    with pytest.raises(ValueError, match=r"flexion_hold_s=200"):
        NudgeSettings(flexion_hold_s=200)
    with pytest.raises(ValueError, match="unknown activity"):
        NudgeSettings(break_activities=("dancing",))
    with pytest.raises(ValueError, match="nonwear"):
        NudgeSettings(break_activities=("nonwear",))
    with pytest.raises(ValueError, match="time of day"):
        NudgeSettings(work_hours_local=("8am", "18:00"))
    with pytest.raises(ValueError, match="quiet_hours_local"):
        NudgeSettings(quiet_hours_local=("12:00",))
    with pytest.raises(ValueError, match="escalation_interval_min"):
        NudgeSettings(response_window_min=10, escalation_interval_min=5)
    with pytest.raises(ValueError, match="work_days_iso"):
        NudgeSettings(work_days_iso=(0,))
    NudgeSettings(work_hours_local=("00:00", "24:00"))  # all day is fine


def test_nudge_as_event() -> None:
    n = run(epochs(still(31)))[0][0]
    ev = n.to_event()
    assert (ev.time_ns, ev.kind, ev.attrs["level"], ev.attrs["reason"]) == (
        n.time_ns,
        "nudge",
        1,
        "static",
    )


# ------------------------------------------------------------ response rate


def test_daily_response_stats() -> None:
    mk = Nudge
    day1 = T0
    day2 = T0 + 24 * 3600 * S
    ns = [mk("a", "w", day1, "static", 1, 30), mk("b", "w", day1 + MIN, "static", 2, 50)]
    ns += [mk("c", "w", day2, "static", 1, 30), mk("d", "w", day2 + MIN, "flexion", 1, 0)]
    outs = [
        NudgeOutcome("a", "w", day1, "static", 1, False, None, day1 + 5 * MIN),
        NudgeOutcome("b", "w", day1 + MIN, "static", 2, True, 40.0, day1 + 3 * MIN),
        NudgeOutcome("c", "w", day2, "static", 1, True, 100.0, day2 + 3 * MIN),
    ]
    stats = daily_response_stats(ns, outs)
    assert list(stats) == ["2026-01-05", "2026-01-06"]
    assert stats["2026-01-05"] == NudgeResponseStats(2, 1, 1, 0, 0.5, 40.0)
    assert stats["2026-01-06"] == NudgeResponseStats(2, 1, 0, 1, 1.0, 100.0)
    # local days: 23:30 UTC on day 1 is day 2 in Oslo
    late = mk("e", "w", T0 + (14 * 60 + 30) * MIN, "static", 1, 30)
    assert list(daily_response_stats([late], [], ZoneInfo("Europe/Oslo"))) == ["2026-01-06"]
    empty = NudgeResponseStats.of([], [])
    assert empty.sent == 0
    assert math.isnan(empty.response_rate)


# ------------------------------------------------------- property tests


_ACTS = [SIT, SIT, SIT, STAND, WALK, LIE, NONWEAR, Activity.OTHER]


@st.composite
def day_streams(draw: st.DrawFn) -> npt.NDArray[np.void]:
    """A few hours of plausible epochs: runs of postures, holes, flexion."""
    n_segments = draw(st.integers(1, 25))
    parts = []
    t = T0 - draw(st.integers(0, 90)) * MIN  # sometimes before working hours
    for _ in range(n_segments):
        dur = draw(st.sampled_from([5, 30, 59, 60, 61, 120, 300, 900, 1500, 2400]))
        act = draw(st.sampled_from(_ACTS))
        e = np.zeros(dur, dtype=EPOCH_DTYPE)
        e["time_ns"] = t + np.arange(dur, dtype=np.int64) * S
        e["activity"] = int(act)
        p_static = draw(st.sampled_from([0.0, 0.5, 0.95, 1.0]))
        rng = np.random.default_rng(draw(st.integers(0, 2**31)))
        e["static"] = rng.random(dur) < p_static
        e["flexion_deg"] = draw(st.sampled_from([0.0, 15.0, 25.0, 50.0, float("nan")]))
        parts.append(e)
        t += dur * S + draw(st.sampled_from([0, 0, 0, 3, 200, 700])) * S
    return np.concatenate(parts)


settings_strategy = st.builds(
    NudgeSettings,
    static_timer_min=st.sampled_from([10.0, 30.0]),
    break_min_s=st.sampled_from([30.0, 60.0]),
    break_requires_movement=st.booleans(),
    escalation_interval_min=st.sampled_from([5.0, 20.0]),
    max_level=st.integers(1, 3),
    max_nudges_per_h=st.integers(1, 4),
    quiet_hours_local=st.sampled_from([(), ("09:20-09:50",), ("23:00-01:00", "10:00-10:30")]),
    flexion_nudge=st.booleans(),
    flexion_hold_s=st.sampled_from([5.0, 60.0]),
    absence_reset_min=st.sampled_from([5.0, 10.0]),
)


def _split_points(draw: st.DrawFn, n: int) -> list[int]:
    cuts = draw(st.lists(st.integers(0, n), max_size=12))
    return sorted({0, n, *cuts})


def _feed_in_pieces(
    ep: npt.NDArray[np.void],
    s: NudgeSettings,
    cuts: list[int],
    snooze: tuple[int, int, float] | None,
) -> tuple[list[Nudge], list[NudgeOutcome]]:
    p = NudgePolicy("w", s)
    nudges: list[Nudge] = []
    outcomes: list[NudgeOutcome] = []
    if snooze is not None:
        cuts = sorted({*cuts, snooze[0]})
    for a, b in itertools.pairwise(cuts):
        if snooze is not None and a == snooze[0]:
            p.snooze(snooze[1], snooze[2])
        out = p.feed(ep[a:b])
        nudges += out.nudges
        outcomes += out.outcomes
    return nudges, outcomes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ep=day_streams(), s=settings_strategy)
def test_same_decisions_whatever_the_chunking_and_as_the_reference(
    data: st.DataObject, ep: npt.NDArray[np.void], s: NudgeSettings
) -> None:
    n = ep.shape[0]
    snooze = None
    if data.draw(st.booleans()):
        at = data.draw(st.integers(1, n - 1)) if n > 1 else 0
        snooze = (at, int(ep["time_ns"][at]), data.draw(st.sampled_from([300.0, 1800.0])))
    whole = _feed_in_pieces(ep, s, [0, n], snooze)
    pieces = _feed_in_pieces(ep, s, _split_points(data.draw, n), snooze)
    assert pieces == whole
    ref = reference_policy(ep, s, snoozes=() if snooze is None else (snooze,))
    assert whole == ref
    # every outcome answers a nudge, at most once
    ids = [o.nudge_id for o in whole[1]]
    assert len(ids) == len(set(ids))
    assert set(ids) <= {x.nudge_id for x in whole[0]}


@settings(max_examples=8, deadline=None)
@given(data=st.data(), ep=day_streams())
def test_epoch_by_epoch_matches_one_batch(data: st.DataObject, ep: npt.NDArray[np.void]) -> None:
    # real time: the collector feeds one epoch (or a few) per call
    ep = ep[:2400]
    s = data.draw(settings_strategy)
    cuts = [0]
    while cuts[-1] < ep.shape[0]:
        cuts.append(min(ep.shape[0], cuts[-1] + data.draw(st.integers(1, 3))))
    one = _feed_in_pieces(ep, s, cuts, None)
    assert one == _feed_in_pieces(ep, s, [0, ep.shape[0]], None)


def test_memory_is_bounded() -> None:
    p = NudgePolicy("w", NudgeSettings(static_timer_min=10, flexion_nudge=True))
    day = epochs(*(still(12), (90, WALK, False, 30.0)) * 40)
    for k in range(5):
        p.feed(_shift(day, k * 24 * 3600 * S))
        assert len(p.pending) <= 2
        assert len(p._snoozes) == 0
        assert len(p._recent) <= p.settings.max_nudges_per_h


def _shift(e: npt.NDArray[np.void], by_ns: int) -> npt.NDArray[np.void]:
    out = e.copy()
    out["time_ns"] += by_ns
    return out


def test_response_stats_fill_the_daily_summary() -> None:
    from tests.test_lineproto import make_summary

    ns = [Nudge("a", "w", T0, "static", 1, 30), Nudge("b", "w", T0 + MIN, "static", 2, 50)]
    outs = [NudgeOutcome("a", "w", T0, "static", 1, True, 70.0, T0 + 2 * MIN)]
    stats = daily_response_stats(ns, outs)["2026-01-05"]
    summary = dataclasses.replace(make_summary("2026-01-05"), **stats.as_daily_fields())
    assert (summary.nudges_sent, summary.nudges_answered) == (2, 1)
    assert summary.nudge_response_rate == 1.0  # one decided, answered; one pending
    assert summary.nudge_median_response_s == 70.0

"""The low-latency nudge path: provisional per-second movement, the live
timer on it, and the cross-check against the decided (smoothed) epochs."""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import numpy.typing as npt
import pytest

from analysis.contracts import EPOCH_DTYPE, NS_PER_S, Activity, SampleBatch
from analysis.live import LiveMovement, NudgeCrossCheck, live_nudge_settings
from analysis.nudge import Nudge, NudgePolicy, NudgeSettings
from analysis.settings import AnalysisSettings
from analysis.stream import analyze_batch
from firmware_sim.simulator import SimulatedRecording, simulate
from postmon.pipeline import WearerPipeline
from tests.nudge_scenario import still_sitter

S = NS_PER_S
T0 = int(dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC).timestamp()) * S
RATE_HZ = 25.0
WALK_IN_S, SIT_S, AFTER_S = 120.0, 13 * 60.0, 180.0
TIMER_MIN = 10  # the shortest plan: the same rules in a shorter recording


@functools.lru_cache(maxsize=2)
def _sitter(seed: int = 4) -> SimulatedRecording:
    return simulate(
        still_sitter(WALK_IN_S, SIT_S, AFTER_S),
        WALK_IN_S + SIT_S + AFTER_S,
        seed=seed,
        device="metamotion",
        rate_hz=RATE_HZ,
        mounting="typical",
    )


def _batches(rec: SimulatedRecording, chunk_s: float) -> list[SampleBatch]:
    t = T0 + np.rint(rec.time_s * S).astype(np.int64)
    step = max(1, round(chunk_s * rec.rate_hz))
    return [
        SampleBatch(
            "AA:BB",
            "w01",
            rec.rate_hz,
            t[k : k + step],
            rec.accel_g[k : k + step],
            rec.gyro_dps[k : k + step],
        )
        for k in range(0, t.shape[0], step)
    ]


def _live(batches: list[SampleBatch]) -> npt.NDArray[np.void]:
    lm = LiveMovement()
    return np.concatenate([lm.push(b) for b in batches] + [lm.flush()])


def _same(a: npt.NDArray[np.void], b: npt.NDArray[np.void]) -> bool:
    if a.shape != b.shape:
        return False
    for name in a.dtype.names or ():
        x, y = a[name], b[name]
        if np.issubdtype(x.dtype, np.floating):
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


# ----------------------------------------------------------- provisional epochs


def test_live_epochs_do_not_depend_on_chunking() -> None:
    rec = _sitter()
    whole = _live(_batches(rec, 1e9))
    assert whole.shape[0] == round(WALK_IN_S + SIT_S + AFTER_S)
    assert _same(_live(_batches(rec, 1.0)), whole)
    assert _same(_live(_batches(rec, 7.3)), whole)


def test_a_second_is_emitted_as_soon_as_its_last_sample_arrives() -> None:
    rec = _sitter()
    lm = LiveMovement()
    t = T0 + np.rint(rec.time_s[:100] * S).astype(np.int64)  # 4 s at 25 Hz
    for k in range(t.shape[0]):
        out = lm.push(SampleBatch("a", "w", RATE_HZ, t[k : k + 1], rec.accel_g[k : k + 1]))
        # the last sample of a second (the next one falls in the next second)
        last_of_second = (t[k] + S // 25) // S != t[k] // S
        assert len(out) == int(last_of_second), k
        if len(out):
            assert int(out["time_ns"][0]) == (int(t[k]) // S) * S


def test_live_static_agrees_with_the_analysis_static_flag() -> None:
    rec = _sitter()
    (batch,) = _batches(rec, 1e9)
    decided = analyze_batch(batch).epochs
    live = _live([batch])
    common, il, idx = np.intersect1d(live["time_ns"], decided["time_ns"], return_indices=True)
    assert common.shape[0] > 0.98 * live.shape[0]
    ls, ds = live["static"][il], decided["static"][idx]
    assert np.mean(ls == ds) >= 0.95
    # the live timer never runs ahead of the decided one by much
    assert np.mean(ls & ~ds) <= 0.01
    # walking is (almost) never static live: at most a boundary second
    walking = decided["activity"][idx] == int(Activity.WALKING)
    assert walking.sum() > 200
    assert np.mean(ls[walking]) <= 0.005
    # and the live view sees most of that walking as walking
    assert np.mean(live["activity"][il][walking] == int(Activity.WALKING)) >= 0.9


def _synthetic(
    seconds: int, tilt_amp_deg: float, noise_g: float, rot_dps: float = 0.0, seed: int = 0
) -> SampleBatch:
    """A trunk sensor: gravity tilting by breathing (0.25 Hz) and a steady turn."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE_HZ)
    ts = np.arange(n) / RATE_HZ
    ang = np.radians(tilt_amp_deg * np.sin(2 * np.pi * 0.25 * ts) + rot_dps * ts)
    acc = np.stack((np.sin(ang), np.zeros(n), np.cos(ang)), axis=1)
    acc += rng.normal(0.0, noise_g, (n, 3))
    gyro = np.zeros((n, 3))
    gyro[:, 1] = np.degrees(np.gradient(ang, ts))
    t = T0 + np.rint(ts * S).astype(np.int64)
    return SampleBatch("a", "w", RATE_HZ, t, acc, gyro)


def test_a_sensor_on_a_desk_is_not_a_still_wearer() -> None:
    # only sensor noise: provisional non-wear, so the static timer does not run
    desk = LiveMovement().push(_synthetic(60, 0.0, 0.0005))
    assert np.all(desk["activity"] == int(Activity.NONWEAR))
    assert not desk["static"].any()
    # breathing (half a degree of tilt) on the same noise: a still wearer
    worn = LiveMovement().push(_synthetic(60, 0.5, 0.0005))
    assert np.mean(worn["static"]) >= 0.95
    assert not np.any(worn["activity"] == int(Activity.NONWEAR))


def test_turning_the_trunk_is_not_static() -> None:
    # 8 deg/s: twice the analysis' 4-degree rotation threshold per second
    ep = LiveMovement().push(_synthetic(30, 0.5, 0.0005, rot_dps=8.0))
    assert not ep["static"][2:].any()


def test_gaps_are_missing_seconds_and_late_stamps_are_counted() -> None:
    b = _synthetic(20, 0.5, 0.0005)
    keep = (b.t_ns < T0 + 5 * S) | (b.t_ns >= T0 + 12 * S)
    lm = LiveMovement()
    ep = np.concatenate(
        (lm.push(SampleBatch("a", "w", RATE_HZ, b.t_ns[keep], b.accel_g[keep])), lm.flush())
    )
    secs = (ep["time_ns"] - T0) // S
    assert secs.tolist() == [*range(5), *range(12, 20)]
    # a repeated stamp is dropped and counted
    assert len(lm.push(SampleBatch("a", "w", RATE_HZ, b.t_ns[-2:], b.accel_g[-2:]))) == 0
    assert lm.counts.dropped_samples == 2


# ------------------------------------------------------------ live nudges


def _static_epochs(n: int, t0: int = T0) -> npt.NDArray[np.void]:
    e = np.zeros(n, EPOCH_DTYPE)
    e["time_ns"] = t0 + np.arange(n, dtype=np.int64) * S
    e["activity"] = int(Activity.OTHER)
    e["static"] = True
    e["flexion_deg"] = np.nan
    return e


def test_may_nudge_within_is_false_only_when_no_nudge_can_come() -> None:
    settings = NudgeSettings(static_timer_min=10, max_level=1)
    p = NudgePolicy("w", settings)
    p.feed(_static_epochs(500))
    assert not p.may_nudge_within(99)  # 500 + 99 < 600
    assert p.may_nudge_within(100)
    ep = _static_epochs(200, T0 + 500 * S)
    out = p.feed(ep)
    assert [n.time_ns for n in out.nudges] == [T0 + 600 * S]
    # the only level of this period was sent: nothing can come before a new period
    assert not p.may_nudge_within(599)
    assert p.may_nudge_within(600)


def test_lazy_feeding_gives_the_same_decisions() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    ep = _static_epochs(n)
    # still stretches broken by minutes of movement, some walking, some non-wear
    moving = np.zeros(n, dtype=bool)
    for start in rng.integers(0, n - 300, 4):
        moving[start : start + int(rng.integers(5, 200))] = True
    ep["static"] = ~moving
    ep["activity"][moving & (rng.random(n) < 0.5)] = int(Activity.WALKING)
    ep["activity"][rng.integers(0, n, 30)] = int(Activity.NONWEAR)
    settings = live_nudge_settings(NudgeSettings(static_timer_min=10, escalation_interval_min=10))
    eager = NudgePolicy("w", settings)
    got_eager = [x for i in range(n) for x in eager.feed(ep[i : i + 1]).nudges]
    lazy = NudgePolicy("w", settings)
    got_lazy: list[Nudge] = []
    i = 0
    while i < n:
        # a block of up to 20 s while no nudge can come, else one second
        k = 20 if not lazy.may_nudge_within(21) else 1
        got_lazy += lazy.feed(ep[i : i + k]).nudges
        i += k
    assert len(got_eager) >= 2
    assert got_lazy == got_eager


def test_live_settings_break_on_movement_only() -> None:
    s = live_nudge_settings(NudgeSettings(break_activities=("standing",), static_timer_min=45))
    assert s.break_requires_movement
    assert set(s.break_activities) == {"walking", "other"}
    assert s.static_timer_min == 45


def _nudge(t_s: float, level: int = 1, reason: str = "static") -> Nudge:
    t = T0 + round(t_s * S)
    return Nudge(f"w:{reason}:{t}", "w", t, reason, level, 30.0)  # type: ignore[arg-type]


def test_cross_check_confirms_or_reports_disagreement() -> None:
    cc = NudgeCrossCheck(tolerance_s=120.0)
    # live nudges come first; the smoothed view catches up ~90 s later
    assert cc.update([_nudge(1800)], live_horizon_ns=T0 + 1801 * S) == []
    (c,) = cc.update([], [_nudge(1770)], smoothed_horizon_ns=T0 + 1790 * S)
    assert (c.kind, c.nudge_id, c.offset_s) == ("confirmed", _nudge(1800).nudge_id, -30.0)
    # a live nudge the smoothed policy never sends: reported once it is past
    assert cc.update([_nudge(3000)], live_horizon_ns=T0 + 3001 * S) == []
    assert cc.update(smoothed_horizon_ns=T0 + 3100 * S) == []
    (c,) = cc.update(smoothed_horizon_ns=T0 + 3121 * S)
    assert (c.kind, c.offset_s) == ("live_only", None)
    # a smoothed nudge without a live one: once the live side is past it too
    assert cc.update([], [_nudge(4000, 2)], smoothed_horizon_ns=T0 + 4001 * S) == []
    (c,) = cc.update(live_horizon_ns=T0 + 4200 * S)
    assert (c.kind, c.level) == ("smoothed_only", 2)
    # different reasons never match; final reports what is left
    cc.update([_nudge(5000, reason="flexion")], [_nudge(5000)])
    kinds = sorted(c.kind for c in cc.update(final=True))
    assert kinds == ["live_only", "smoothed_only"]
    with pytest.raises(ValueError, match="tolerance_s"):
        NudgeCrossCheck(0.0)


# ---------------------------------------------------------------- pipeline


def _run_pipeline(chunk_s: float) -> tuple[list[tuple[int, int]], list, list]:
    """(feed call index, nudge time) per nudge, the outcomes and the checks."""
    rec = _sitter()
    p = WearerPipeline(
        "clinic-a",
        "w01",
        "AA:BB",
        analysis=AnalysisSettings(),
        nudges=NudgeSettings(static_timer_min=TIMER_MIN),
        tz=dt.UTC,
    )
    got, outcomes, checks = [], [], []
    batches = _batches(rec, chunk_s)
    for i, b in enumerate(batches):
        out = p.feed(b)
        got += [(i, n.time_ns) for n in out.nudges]
        outcomes += out.outcomes
        checks += out.checks
    out = p.finish()
    got += [(len(batches), n.time_ns) for n in out.nudges]
    return got, outcomes + list(out.outcomes), checks + list(out.checks)


def test_pipeline_nudges_on_the_batch_that_completes_the_static_time() -> None:
    fast, outcomes, checks = _run_pipeline(1.0)
    ((i, t_ns),) = fast
    batches = _batches(_sitter(), 1.0)
    # decided by the feed() of the batch holding the second's last sample
    # (stamps are whole 40-ms steps; the second is [t - 1 s, t))
    last = batches[i].t_ns
    assert last[0] < t_ns <= last[-1] + S // 25, (i, t_ns)
    # at least the timer into the sit (the simulator's plan), not much later
    into_sit_min = (t_ns - T0) / S / 60.0 - WALK_IN_S / 60.0
    assert TIMER_MIN <= into_sit_min <= TIMER_MIN + 1.0
    # the same decisions from 60-s batches, only later
    slow, _, _ = _run_pipeline(60.0)
    assert [t for _, t in slow] == [t_ns]
    # the smoothed analysis agrees (it sees the same still sit)
    assert [c.kind for c in checks] == ["confirmed"]
    # the wearer walks off at the end of the sit (the simulator's plan): answered,
    # with the delay from the nudge to the start of that walk
    (o,) = outcomes
    assert o.nudge_id == checks[0].nudge_id
    truth_s = (T0 + round((WALK_IN_S + SIT_S) * S) - t_ns) / S
    assert o.answered
    assert o.response_delay_s is not None
    assert abs(o.response_delay_s - truth_s) <= 5.0, (o, truth_s)

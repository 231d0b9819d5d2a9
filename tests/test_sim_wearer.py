"""The simulated wearer: determinism, streaming, day budgets and nudge responses."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.contracts import Activity
from firmware_sim.profiles import PROFILES
from firmware_sim.simulator import WearerStream, simulate
from firmware_sim.wearer import NudgeResponse


def test_same_seed_same_recording_other_seed_differs() -> None:
    a = simulate("nurse", 600, seed=7, device="movesense")
    b = simulate("nurse", 600, seed=7, device="movesense")
    c = simulate("nurse", 600, seed=8, device="movesense")
    assert np.array_equal(a.accel_g, b.accel_g)
    assert np.array_equal(a.gyro_dps, b.gyro_dps)
    assert np.array_equal(a.truth.activity, b.truth.activity)
    assert np.array_equal(a.truth.flexion_deg, b.truth.flexion_deg, equal_nan=True)
    assert not np.array_equal(a.accel_g, c.accel_g)


@pytest.mark.parametrize("device", ["witmotion", "metamotion", "movesense"])
def test_stream_in_chunks_equals_one_shot(device: str) -> None:
    duration = 900
    one = simulate("delivery_driver", duration, seed=3, device=device, placement="lower")
    stream = WearerStream(
        "delivery_driver", 3, duration_s=duration, device=device, placement="lower"
    )
    assert stream.rate_hz == one.rate_hz
    rng = np.random.default_rng(0)
    accs, gyrs = [], []
    total = len(one.time_s)
    while sum(len(a) for a in accs) < total:
        n = min(int(rng.integers(1, 3000)), total - sum(len(a) for a in accs))
        acc, gyr = stream.read(n)
        assert acc.shape == (n, 3)
        assert gyr.shape == (n, 3)
        accs.append(acc)
        gyrs.append(gyr)
    assert np.array_equal(np.concatenate(accs), one.accel_g)
    assert np.array_equal(np.concatenate(gyrs), one.gyro_dps)
    truth = stream.truth()
    assert np.array_equal(truth.activity, one.truth.activity)
    assert np.array_equal(truth.static, one.truth.static)
    assert np.allclose(truth.flexion_deg, one.truth.flexion_deg, equal_nan=True)
    # and the chunk size of simulate() itself does not matter
    other = simulate(
        "delivery_driver", duration, seed=3, device=device, placement="lower", chunk_s=37.3
    )
    assert np.array_equal(other.accel_g, one.accel_g)


def test_stream_continues_past_the_day_as_nonwear() -> None:
    stream = WearerStream("desk_worker", 1, duration_s=60, ideal=True)
    stream.read(int(70 * stream.rate_hz))
    acc, gyr = stream.read(int(5 * stream.rate_hz))
    assert np.allclose(np.linalg.norm(acc, axis=1), 1.0, atol=1e-9)
    assert np.abs(gyr).max() < 1e-9
    assert np.all(stream.truth(66, 75).activity == Activity.NONWEAR)


def _expected_shares(profile_name: str) -> dict[int, float]:
    """Target activity shares straight from the profile tables (own arithmetic)."""
    prof = PROFILES[profile_name]
    out = dict.fromkeys(range(len(Activity)), 0.0)
    for phase in prof.phases:
        for spec in phase.bouts:
            out[int(spec.behaviour.activity)] += phase.day_share * spec.share
    return out


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profile_gives_a_plausible_day(profile: str) -> None:
    rec = simulate(profile, 8 * 3600, seed=21, rate_hz=10, ideal=True)
    tr = rec.truth
    assert len(tr) == 8 * 3600
    exp = _expected_shares(profile)
    for code, want in exp.items():
        got = float(np.mean(tr.activity == code))
        assert abs(got - want) < 0.03, (Activity(code).label, got, want)
    # starts with the explicit calibration: standing tall, static, neutral
    c0, c1 = rec.calibration_s
    assert c0 == 0.0
    assert 5.0 <= c1 <= 10.0
    cal = slice(0, int(c1))
    assert np.all(tr.activity[cal] == Activity.STANDING)
    assert np.all(tr.static[cal])
    assert np.all(np.abs(tr.inclination_deg[cal]) < 1.0)
    # flexion is a plausible trunk angle while worn
    worn = tr.activity != Activity.NONWEAR
    assert np.all(np.abs(tr.flexion_deg[worn]) <= 120)
    assert np.all(np.isfinite(tr.flexion_deg[worn]))
    # no impossible posture switches: a sitting second is never followed by lying
    # without a transition (>= 1 s in between is implied by labels changing once)
    changes = np.count_nonzero(np.diff(tr.activity.astype(int)) != 0)
    assert changes < len(tr) / 20  # bouts, not flicker


def test_profile_specific_features() -> None:
    ware = simulate("warehouse_lifting", 2 * 3600, seed=1, rate_hz=10, ideal=True).truth
    desk = simulate("desk_worker", 2 * 3600, seed=1, rate_hz=10, ideal=True).truth
    # lifting work: minutes in deep flexion; desk work: almost none
    deep_ware = np.nansum(ware.flexion_deg > 60) / 60
    deep_desk = np.nansum(desk.flexion_deg > 60) / 60
    assert deep_ware > 5
    assert deep_desk < deep_ware / 3
    # desk work: long static sitting bouts (> 20 min)
    sit_static = (desk.activity == Activity.SITTING).astype(int)
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], sit_static, [0]]))))[::2]
    assert runs.max() > 20 * 60


def _sitting_window(stream: WearerStream, min_left_s: float) -> float:
    """A time well inside a sitting bout with at least ``min_left_s`` left."""
    rate = stream.rate_hz
    tr = stream.truth_samples(0, int(stream.timeline.duration_s * rate))
    sec = tr.activity[:: int(rate)]
    sitting = (sec == Activity.SITTING).astype(int)
    edges = np.diff(np.concatenate([[0], sitting, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for s0, s1 in zip(starts, ends, strict=True):
        if s1 - s0 > min_left_s + 120:
            return float(s0 + 60)
    raise AssertionError("no long sitting bout")


def test_nudge_makes_the_wearer_get_up_for_the_break() -> None:
    resp = NudgeResponse(probability=1.0, delay_median_s=20.0, delay_gsd=1.0, break_s=90.0)
    kw = {"duration_s": 3 * 3600, "response": resp, "device": "metamotion"}
    stream = WearerStream("desk_worker", 4, **kw)
    twin = WearerStream("desk_worker", 4, **kw)
    t_nudge = _sitting_window(stream, 600)
    rate = stream.rate_hz
    n_before = int(t_nudge * rate)
    a1, _ = stream.read(n_before)
    a2, _ = twin.read(n_before)
    assert np.array_equal(a1, a2)
    outcome = stream.nudge(t_nudge)
    assert outcome.responded
    assert outcome.react_at_s == pytest.approx(t_nudge + 20.0)
    assert outcome.break_end_s is not None
    # the future changed: upright for >= the break, starting at the reaction time
    after, _ = stream.read(int(400 * rate))
    before_twin, _ = twin.read(int(400 * rate))
    react = outcome.react_at_s
    k_react = int(react * rate) - n_before
    assert np.array_equal(after[: k_react - 5 * int(rate)], before_twin[: k_react - 5 * int(rate)])
    assert not np.array_equal(after, before_twin)
    truth = stream.truth(react, react + 200)
    upright = np.isin(truth.activity, [Activity.STANDING, Activity.WALKING])
    first_up = int(np.argmax(upright))
    assert first_up <= 3  # the transition takes 1.5-3 s
    run = int(np.argmin(upright[first_up:])) if not upright[first_up:].all() else 200
    assert run >= 90 - 3
    assert (truth.activity[first_up + run :] == Activity.SITTING).any()  # back to work
    twin_truth = twin.truth(react, react + 200)
    assert np.mean(twin_truth.activity == Activity.SITTING) > 0.9


def test_ignored_nudge_changes_nothing() -> None:
    resp = NudgeResponse(probability=0.0)
    stream = WearerStream("desk_worker", 4, duration_s=3600, response=resp, ideal=True)
    ref = simulate("desk_worker", 3600, seed=4, mounting="random", ideal=True)
    a, _ = stream.read(1000)
    assert not stream.nudge(stream.time_s).responded
    b, _ = stream.read(len(ref.time_s) - 1000)
    assert np.array_equal(np.concatenate([a, b]), ref.accel_g)


def test_nudge_response_probability_is_honoured() -> None:
    resp = NudgeResponse(probability=0.5, delay_median_s=10.0)
    answered = 0
    for seed in range(40):
        stream = WearerStream(
            "desk_worker", seed, duration_s=3600, response=resp, ideal=True, rate_hz=10
        )
        out = stream.nudge(_sitting_window(stream, 300))
        answered += out.responded
    assert 10 <= answered <= 30


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="known profiles"):
        simulate("astronaut", 60)
    with pytest.raises(ValueError, match="upper or lower"):
        simulate("nurse", 60, placement="neck")
    with pytest.raises(ValueError, match="known devices"):
        simulate("nurse", 60, device="fitbit")
    with pytest.raises(ValueError, match="positive"):
        simulate("nurse", -5)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        NudgeResponse(probability=1.5)


def test_transition_truth_matches_the_activity_timeline() -> None:
    rec = simulate("new_parent", 4 * 3600, seed=8, rate_hz=10, ideal=True)
    act = rec.truth.activity
    upright = [Activity.STANDING, Activity.WALKING, Activity.OTHER]
    kinds = {t.kind for t in rec.transitions}
    assert {"sit_to_stand", "stand_to_sit"} <= kinds
    for t in rec.transitions:
        before = act[int(t.t_start_s) - 1]
        after = act[int(t.t_start_s + t.duration_s) + 1]
        src, dst = t.kind.split("_to_")
        want = {"sit": [Activity.SITTING], "stand": upright, "lie": [Activity.LYING]}
        assert before in want[src], t
        assert after in want[dst], t
        if t.kind == "sit_to_stand":
            assert 1.5 <= t.duration_s <= 3.0
        if t.kind == "stand_to_sit":
            assert 1.5 <= t.duration_s <= 3.5
    # independent count from the per-second labels: sitting -> upright changes
    a, b = act[:-1], act[1:]
    rises = np.count_nonzero((a == Activity.SITTING) & np.isin(b, upright))
    n_sts = sum(t.kind == "sit_to_stand" for t in rec.transitions)
    assert abs(rises - n_sts) <= 2

"""The end of a stream (``WearerAnalyzer._offset``): the sensor being taken off.

A recording usually stops while the sensor is in the wearer's hand. That
handling turns the sensor like sitting or lying down; it must not be
reported as a posture transition, and the posture held before it stays.
A real transition the wearer settled after is still reported.

The truth comes from the simulator's timeline: its day ends at
``duration_s``, the sensor comes off 3 s later (3-5 s in the hand, then on a
desk), and ``transitions`` lists every real posture change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from analysis.contracts import NS_PER_S, Activity, Event, SampleBatch
from analysis.settings import AnalysisSettings
from analysis.stream import WearerAnalyzer, analyze_batch
from firmware_sim.simulator import WearerStream

RATE_HZ = 50.0
DAY_S = 600.0
#: the sensor comes off this long after the day ends (``firmware_sim.wearer.layout``)
OFF_AFTER_S = 3.0
POSTURE_KINDS = {"stand_to_sit", "sit_to_stand", "sit_to_lie", "lie_to_sit"}
POSTURE_KINDS |= {"stand_to_lie", "lie_to_stand"}


def _recording(
    profile: str, seed: int, end_s: float
) -> tuple[SampleBatch, WearerStream, list[tuple[int, int]]]:
    stream = WearerStream(
        profile,
        seed,
        duration_s=DAY_S,
        placement="upper" if seed % 2 else "lower",
        device="witmotion",
        rate_hz=RATE_HZ,
    )
    n = round(end_s * RATE_HZ)
    acc, gyro = stream.read(n)
    t = (np.arange(n) * (NS_PER_S / RATE_HZ)).astype(np.int64)
    c0, c1 = stream.calibration_s
    cal = [(round(c0 * NS_PER_S), round(c1 * NS_PER_S))]
    return SampleBatch("s", "w", RATE_HZ, t, acc, gyro), stream, cal


def _posture_events(out_events: Sequence[Event], after_s: float) -> list[tuple[float, str]]:
    return [
        (e.time_ns / NS_PER_S, e.kind)
        for e in out_events
        if e.kind in POSTURE_KINDS and e.time_ns / NS_PER_S > after_s
    ]


# Cases where the stream stops 3.5-5 s into the handling; without the rule
# each of them ended in a spurious stand_to_sit, sit_to_lie or stand_to_lie.
@pytest.mark.parametrize(
    ("profile", "seed", "in_hand_s"),
    [
        ("desk_worker", 2, 3.5),
        ("desk_worker", 4, 5.0),
        ("nurse", 1, 5.0),
        ("nurse", 3, 3.5),
        ("warehouse_lifting", 5, 5.0),
    ],
)
def test_taking_the_sensor_off_at_the_end_is_no_transition(
    profile: str, seed: int, in_hand_s: float
) -> None:
    end_s = DAY_S + OFF_AFTER_S + in_hand_s
    batch, stream, cal = _recording(profile, seed, end_s)
    # the wearer makes no posture change after the day (the simulator's truth)
    assert not [tr for tr in stream.transitions(DAY_S - 10.0) if tr.kind in POSTURE_KINDS]
    truth = stream.truth(0.0, DAY_S)
    assert truth.activity_labels[-1] in ("sitting", "standing", "lying")

    out = analyze_batch(batch, AnalysisSettings.offline(), calibration_ns=cal, learn_first=True)
    assert _posture_events(out.events, DAY_S - 10.0) == []
    # the posture read just before the handling stays to the end
    act = out.epochs["activity"]
    held = int(act[round(DAY_S) - 5])
    assert held in (Activity.SITTING, Activity.STANDING, Activity.LYING)
    assert set(act[-3:].tolist()) <= {held, int(Activity.OTHER), int(Activity.NONWEAR)}


def test_a_transition_settled_before_the_end_is_still_reported() -> None:
    batch0, stream, cal = _recording("desk_worker", 2, DAY_S)
    real = [tr for tr in stream.transitions(60.0, DAY_S - 60.0) if tr.kind in POSTURE_KINDS]
    assert real, "the simulated day holds posture transitions"
    tr = real[-1]
    # stop the recording 15 s after the transition ends: the wearer has settled
    end_s = tr.t_start_s + tr.duration_s + 15.0
    n = round(end_s * RATE_HZ)
    batch = SampleBatch("s", "w", RATE_HZ, batch0.t_ns[:n], batch0.accel_g[:n], batch0.gyro_dps[:n])
    out = analyze_batch(batch, AnalysisSettings.offline(), calibration_ns=cal, learn_first=True)
    found = _posture_events(out.events, tr.t_start_s - 3.0)
    assert [k for _, k in found] == [tr.kind]
    assert abs(found[0][0] - (tr.t_start_s + 0.5 * tr.duration_s)) <= 3.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_end_rule_does_not_depend_on_the_chunking(seed: int) -> None:
    batch, _, cal = _recording("nurse", 1, DAY_S + OFF_AFTER_S + 5.0)
    whole = analyze_batch(batch, AnalysisSettings.offline(), calibration_ns=cal)
    rng = np.random.default_rng(seed)
    n = batch.t_ns.size
    cuts = np.sort(rng.choice(np.arange(1, n), size=12, replace=False))
    an = WearerAnalyzer(AnalysisSettings.offline(), calibration_ns=cal)
    events = []
    epochs = []
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), n], strict=True):
        part = an.feed(
            SampleBatch("s", "w", RATE_HZ, batch.t_ns[a:b], batch.accel_g[a:b], batch.gyro_dps[a:b])
        )
        events += part.events
        epochs.append(part.epochs)
    fin = an.finish()
    events += fin.events
    epochs.append(fin.epochs)
    assert np.array_equal(np.concatenate(epochs)["activity"], whole.epochs["activity"])
    assert sorted((e.time_ns, e.kind) for e in events) == sorted(
        (e.time_ns, e.kind) for e in whole.events
    )

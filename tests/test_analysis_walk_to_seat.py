"""Walking straight into a seat (no still standing before sitting down).

The transition model learnt from recordings in which every sit-down starts
from still standing, so it gives such a sit-down a low probability. It must
still be possible to enter sitting there, for the angle evidence of the long
seated stretch after it to be heard: a posture changes only at a movement
peak (``analysis.activity.MIN_PEAK``).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.contracts import Activity
from tests.analysis_signals import analysed_simulated_day

RATE_HZ = 20.0
DAY_S = 1800.0
#: seated stretches shorter than this are not scored (s)
MIN_SEATED_S = 60


def _walk_into_seat_bouts(act: np.ndarray, transitions: list) -> list[tuple[int, int]]:
    """(first, end) seconds of the seated stretches entered straight from walking."""
    out = []
    for tr in transitions:
        if tr.kind != "stand_to_sit" or act[max(0, int(tr.t_start_s) - 1)] != "walking":
            continue
        a = int(tr.t_start_s + tr.duration_s) + 1
        b = a
        while b < act.size and act[b] == "sitting":
            b += 1
        if b - a >= MIN_SEATED_S:
            out.append((a, b))
    return out


@pytest.mark.parametrize(
    ("profile", "seed", "placement"),
    # (days where walking into a seat lost the whole seated stretch to
    # standing while the transition had no peak)
    [("desk_worker", 0, "upper"), ("nurse", 4, "lower")],
)
def test_sitting_entered_from_walking_is_read_as_sitting(
    profile: str, seed: int, placement: str
) -> None:
    rec, out = analysed_simulated_day(
        profile,
        DAY_S,
        seed=seed,
        placement=placement,
        rate_hz=RATE_HZ,
        device="witmotion",
        learn_first=False,
    )
    act = np.array(rec.truth.activity_labels)
    bouts = _walk_into_seat_bouts(act, list(rec.transitions))
    assert bouts, "the simulated day has no walk-into-seat to score"
    ours = out.epochs["activity"]
    for a, b in bouts:
        share = float(np.mean(ours[a:b] == int(Activity.SITTING)))
        assert share > 0.9, f"seated {a}-{b} s after walking: only {share:.0%} read as sitting"

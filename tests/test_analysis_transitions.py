"""Transition events from decoded posture sequences (the report rule of ``analysis.stream``).

The decoder's states are given directly here (pure logic): which posture
changes become events, when, and how a briefly held posture in between is
handled.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.activity import LIE, SIT, STAND, TRANSITIONS, WALK
from analysis.contracts import NS_PER_S
from analysis.settings import AnalysisSettings
from analysis.stream import WearerAnalyzer

CLASS = {name: i for i, (name, _, _) in enumerate(TRANSITIONS, start=1)}


def _runs(*runs: tuple[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, s, dtype=np.int64) for s, n in runs])


def _events(
    states: np.ndarray, p_kind: float = 0.9, cuts: tuple[int, ...] = ()
) -> list[tuple[float, str]]:
    """Feed ``states`` to the report rule in blocks split at ``cuts``.

    Every second's classifier output says "``p_kind`` for every transition
    class" so the rule's probability test passes (or fails) uniformly.
    """
    an = WearerAnalyzer(AnalysisSettings())
    n = states.size
    p = np.full((n, len(TRANSITIONS) + 1), p_kind)
    p[:, 0] = 1.0 - p_kind
    out = []
    edges = [0, *cuts, n]
    for a, b in itertools.pairwise(edges):
        an._ptrans = p[a:b]
        an._tilt = np.zeros((b - a, 3))
        t = (np.arange(a, b) * NS_PER_S).astype(np.int64)
        evs = an._transition_events(states[a:b], np.zeros(b - a, dtype=bool), t)
        out += [(e.time_ns / NS_PER_S, e.kind) for e in evs]
        an._n_committed += b - a
        an._last_state = int(states[b - 1])
    if an._pending_event is not None:
        ev = an._report(an._pending_event)
        out += [] if ev is None else [(ev.time_ns / NS_PER_S, ev.kind)]
    return out


def test_held_change_is_one_event_at_its_second() -> None:
    assert _events(_runs((STAND, 20), (SIT, 20))) == [(20.5, "stand_to_sit")]


def test_brief_posture_between_merges_into_one_transition() -> None:
    # stand, sit on the bed edge for 2 s, lie down: one stand-to-lie
    assert _events(_runs((STAND, 20), (SIT, 2), (LIE, 20))) == [(20.5, "stand_to_lie")]


def test_bounce_back_is_no_transition() -> None:
    assert _events(_runs((STAND, 20), (SIT, 3), (STAND, 20))) == []


def test_walking_counts_as_upright() -> None:
    # walking up to a chair and sitting after 2 s of standing: the upright
    # posture was held 22 s, so the sit-down is reported
    assert _events(_runs((WALK, 20), (STAND, 2), (SIT, 20))) == [(22.5, "stand_to_sit")]


def test_first_posture_of_a_stream_is_not_a_transition_source() -> None:
    assert _events(_runs((SIT, 3), (STAND, 20))) == []


def test_change_the_movement_argues_against_is_not_reported() -> None:
    # probability below the class's base rate (about 0.005): no event
    assert _events(_runs((STAND, 20), (SIT, 20)), p_kind=0.001) == []


@pytest.mark.parametrize("cuts", [(21,), (22,), (21, 22, 23), tuple(range(1, 45))])
def test_commit_blocks_do_not_change_events(cuts: tuple[int, ...]) -> None:
    states = _runs((STAND, 20), (SIT, 2), (LIE, 10), (SIT, 12))
    expected = [(20.5, "stand_to_lie"), (32.5, "lie_to_sit")]
    assert _events(states) == expected
    assert _events(states, cuts=cuts) == expected

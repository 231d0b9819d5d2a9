"""Retry policy table and backoff (pure logic)."""

from __future__ import annotations

import random

import pytest

from postmon.store.http import Action, classify, result_from_status
from postmon.store.writer import Backoff


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (None, Action.RETRY),
        (204, Action.DONE),
        (400, Action.REJECT),
        (401, Action.RETRY),
        (404, Action.RETRY),
        (413, Action.SPLIT),
        (418, Action.REJECT),  # unlisted 4xx: the request itself is wrong
        (422, Action.REJECT),
        (429, Action.RETRY),
        (500, Action.RETRY),
        (503, Action.RETRY),
        (599, Action.RETRY),  # unlisted 5xx: the server's problem
    ],
)
def test_policy_table(status: int | None, action: Action) -> None:
    assert classify(status) is action


def test_partial_write_counts_only_the_dropped_points() -> None:
    msg = '{"error":"partial write: field type conflict: ... dropped=3"}'
    res = result_from_status(400, msg, 10)
    assert (res.action, res.rejected) == (Action.DONE, 3)
    res = result_from_status(400, '{"error":"unable to parse ..."}', 10)
    assert (res.action, res.rejected) == (Action.REJECT, 10)
    res = result_from_status(400, "partial write: points beyond retention policy dropped=10", 10)
    assert (res.action, res.rejected) == (Action.DONE, 10)


def test_backoff_grows_exponentially_with_jitter_and_caps() -> None:
    b = Backoff(0.5, 8.0, random.Random(1))
    delays = [b.next() for _ in range(8)]
    caps = [min(8.0, 0.5 * 2**k) for k in range(8)]
    for d, cap in zip(delays, caps, strict=True):
        assert cap / 2 <= d <= cap
    assert len({round(d, 6) for d in delays[-3:]}) == 3  # jittered, not lock-step
    b.reset()
    assert b.next() <= 0.5

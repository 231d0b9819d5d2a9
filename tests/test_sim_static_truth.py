"""Truth of static periods: brief movement events do not interrupt them."""

from __future__ import annotations

import numpy as np

from analysis.contracts import Activity
from firmware_sim.simulator import simulate
from firmware_sim.wearer import Timeline


def _inside_events(tl: Timeline, t_s: np.ndarray) -> np.ndarray:
    """Samples inside a brief movement event, straight from the event list."""
    ev = tl.events
    inside = np.zeros(t_s.size, dtype=bool)
    for t0, t1 in zip(ev.t0.tolist(), ev.t1.tolist(), strict=True):
        inside |= (t_s >= t0) & (t_s < t1)
    return inside


def test_brief_events_do_not_interrupt_static_periods() -> None:
    rec = simulate("desk_worker", 1200, seed=5, device="witmotion")
    rate = int(rec.rate_hz)
    n = len(rec.truth)
    samples = rec.samples
    inside = _inside_events(rec.timeline, rec.time_s)[: n * rate].reshape(n, rate)
    moving = samples.moving[: n * rate].reshape(n, rate)
    worn = samples.worn[: n * rate].reshape(n, rate).all(axis=1)
    still_act = np.isin(
        rec.truth.activity, [int(Activity.LYING), int(Activity.SITTING), int(Activity.STANDING)]
    )
    # seconds whose only movement is a fidget/reach: not static, yet in a static period
    brief_only = inside.any(axis=1) & ~(moving & ~inside).any(axis=1) & worn & still_act
    assert brief_only.sum() > 20  # a desk worker fidgets
    assert not rec.truth.static[brief_only].any()
    assert rec.truth.static_period[brief_only].all()
    # deliberate movement filling most of a second (transitions, walking) interrupts
    deliberate = (moving & ~inside).mean(axis=1) > 0.5
    assert deliberate.sum() > 20
    assert not rec.truth.static_period[deliberate].any()
    # and a static second is always part of a static period
    assert rec.truth.static_period[rec.truth.static].all()

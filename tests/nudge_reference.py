"""A plain, per-epoch reading of the nudge rules, for testing ``analysis.nudge``.

It re-implements the rules documented at the top of ``analysis/nudge.py``
one epoch at a time, with ``datetime`` objects for local time, sharing no
code with the vectorised policy. The policy must agree with it exactly on
any input; it is too slow for production (a Python step per epoch).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analysis.contracts import NS_PER_S, Activity
from analysis.nudge import Nudge, NudgeOutcome, NudgeSettings


def _hhmm(text: str) -> int:
    h, m = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60


@dataclass
class _P:
    nudge: Nudge
    deadline: int
    scope: int
    snoozed: bool = False


def reference_policy(
    epochs: npt.NDArray[np.void],
    settings: NudgeSettings,
    wearer: str = "w",
    tz: dt.tzinfo = dt.UTC,
    snoozes: tuple[tuple[int, int, float], ...] = (),
) -> tuple[list[Nudge], list[NudgeOutcome]]:
    """``snoozes``: (epoch index it is pressed before, at_ns, duration_s)."""
    s = settings
    break_codes = {int(Activity.from_label(a)) for a in s.break_activities}
    K = round(s.break_min_s)
    H = round(s.flexion_hold_s)
    thr = round(s.static_timer_min * 60)
    window = round(s.response_window_min * 60 * NS_PER_S)
    esc = round(s.escalation_interval_min * 60 * NS_PER_S)
    absence_limit = round(s.absence_reset_min * 60 * NS_PER_S)
    ws, we = _hhmm(s.work_hours_local[0]), _hhmm(s.work_hours_local[1])
    quiet = [tuple(_hhmm(x) for x in w.split("-")) for w in s.quiet_hours_local]

    def time_ok(d_ns: int) -> bool:
        local = dt.datetime.fromtimestamp(d_ns // NS_PER_S, tz)
        tod = local.hour * 3600 + local.minute * 60 + local.second
        day = local.date()
        if ws < we:
            in_work = ws <= tod < we
        else:
            in_work = tod >= ws or tod < we
            if tod < we:
                day = day - dt.timedelta(days=1)
        if not in_work or day.isoweekday() not in s.work_days_iso:
            return False
        in_quiet = [(qs <= tod < qe) if qs < qe else (tod >= qs or tod < qe) for qs, qe in quiet]
        return not any(in_quiet)

    last_t: int | None = None
    acc = 0
    brk_len = brk_start = 0
    T = period = 0
    flex_len = episode = 0
    level_period, level, next_static = 0, 0, None
    flex_done = -1
    recent: list[int] = []
    snooze_windows: list[tuple[int, int]] = []
    pending: list[_P] = []
    nudges: list[Nudge] = []
    outcomes: list[NudgeOutcome] = []

    for i, e in enumerate(epochs):
        for before, at, dur in snoozes:
            if before == i:
                snooze_windows.append((at, at + round(dur * NS_PER_S)))
                level, next_static = 0, None
                for p in pending:
                    if p.nudge.time_ns <= at:
                        p.snoozed = True
        t = int(e["time_ns"])
        act = int(e["activity"])
        static = bool(e["static"])
        flex = float(e["flexion_deg"])
        d = t + NS_PER_S
        worn = act != Activity.NONWEAR
        gap = 0 if last_t is None else max(0, t - (last_t + NS_PER_S))
        last_t = t

        before_acc = acc
        acc += gap + (0 if worn else NS_PER_S)
        absence_reset = before_acc < absence_limit <= acc
        if worn:
            acc = 0
        if absence_reset:
            period += 1
            T = 0
            brk_len = 0
            flex_len = 0

        is_brk = worn and act in break_codes and not (s.break_requires_movement and static)
        if is_brk:
            if brk_len == 0:
                brk_start = t
            brk_len += 1
        else:
            brk_len = 0
        completes = brk_len == K
        if completes:
            period += 1
            T = 0
        if worn and static and brk_len < K:
            T += 1

        flexed = worn and flex >= s.flexion_threshold_deg  # NaN compares False
        if flexed:
            if flex_len == 0:
                episode += 1
            flex_len += 1
        else:
            flex_len = 0

        for p in list(pending):
            out = None
            if p.nudge.reason == "static":
                if period != p.scope:
                    ok = completes and brk_start <= p.deadline
                    out = (ok, brk_start)
                elif t >= p.deadline and not (is_brk and brk_start <= p.deadline):
                    out = (False, 0)
            elif not flexed or episode != p.scope:
                out = (t <= p.deadline, t)
            elif t > p.deadline:
                out = (False, 0)
            if out is not None:
                pending.remove(p)
                outcomes.append(
                    NudgeOutcome(
                        nudge_id=p.nudge.nudge_id,
                        wearer_id=wearer,
                        time_ns=p.nudge.time_ns,
                        reason=p.nudge.reason,
                        level=p.nudge.level,
                        answered=out[0],
                        response_delay_s=(out[1] - p.nudge.time_ns) / NS_PER_S if out[0] else None,
                        decided_ns=d,
                        snoozed=p.snoozed,
                    )
                )

        def blocked(d_ns: int) -> bool:
            if any(a <= d_ns < b for a, b in snooze_windows):
                return True
            in_hour = [x for x in recent if x > d_ns - 3600 * NS_PER_S]
            return len(in_hour) >= s.max_nudges_per_h

        ok_time = time_ok(d)
        walking = act == Activity.WALKING
        if period != level_period:
            level_period, level, next_static = period, 0, None
        fired = False
        if (
            thr <= T
            and level < s.max_level
            and (next_static is None or d >= next_static)
            and ok_time
            and worn
            and not walking
            and not is_brk
            and not blocked(d)
        ):
            level += 1
            n = Nudge(f"{wearer}:static:{d}", wearer, d, "static", level, T / 60.0)
            nudges.append(n)
            recent.append(d)
            next_static = d + esc
            pending.append(_P(n, d + window, period))
            fired = True
        if (
            not fired
            and s.flexion_nudge
            and flexed
            and flex_len >= H
            and episode != flex_done
            and ok_time
            and not walking
            and not blocked(d)
        ):
            n = Nudge(f"{wearer}:flexion:{d}", wearer, d, "flexion", 1, T / 60.0)
            nudges.append(n)
            recent.append(d)
            flex_done = episode
            pending.append(_P(n, d + window, episode))
    outcomes.sort(key=lambda o: (o.decided_ns, o.time_ns, o.reason))
    return nudges, outcomes

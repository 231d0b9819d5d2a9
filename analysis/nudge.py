"""When to nudge a wearer to move: a pure, streaming, per-wearer policy.

The clinic's stance (see ``DESIGN.md``): posture is variability, so the
default nudge says "you have been still for a while, move", not "sit up
straight". A slouch (sustained-flexion) nudge exists but is off by default.
Defaults and ranges come from the therapists' reference
(``reference/metrics.md``): a static-period nudge after 30 min (10–90 min), a
break is >= 1 min of standing or walking, quiet hours, snooze, a cap per
hour, never while walking, escalation when a nudge is ignored, and a record of
whether the wearer moved within 5 min.

:class:`NudgePolicy` consumes 1-s epochs (:data:`analysis.contracts.EPOCH_DTYPE`)
in chunks of any size and returns :class:`Nudge` decisions and, once known,
:class:`NudgeOutcome` records. Splitting a stream into different chunks gives
exactly the same decisions. Memory is bounded (a handful of scalars, at most
two pending outcomes, the last ``max_nudges_per_h`` send times, and the
wearer's snoozes that have not ended).

Rules, exactly
--------------
Each epoch covers one second starting at ``time_ns``; a decision made from
it happens at the epoch's end, ``time_ns + 1 s`` (its *decision time*).

* **Absence.** A ``nonwear`` epoch, or missing time between two epochs (a
  gap), is absence. Absence neither adds to nor breaks the static timer, but
  ``absence_reset_min`` of uninterrupted absence (e.g. the sensor was left on
  the desk over lunch) ends the static period: what happened meanwhile is
  unknown, so nudging from stale state would be wrong.
* **Break.** A *break epoch* is a worn epoch whose activity is one of
  ``break_activities`` and (with ``break_requires_movement``, the default)
  that is not static. ``break_min_s`` consecutive break epochs make a break: the static
  period ends at the epoch that completes it, and the timer stays at 0 while
  the break goes on. The break's *start* is the first epoch of that run.
* **Static timer.** Within a static period, every worn epoch flagged
  ``static`` that is not part of a completed break adds one second ("static
  time"); other epochs add nothing and do not reset it (a brief reach is not
  a break).
* **Static nudge.** Level 1 is due when the static time reaches
  ``static_timer_min``. If it is not answered, level ``k + 1`` is due
  ``escalation_interval_min`` after level ``k``, up to ``max_level``; after
  that the policy stays silent until the period ends (an ignored nudge is
  often one the wearer cannot act on: a meeting, a drive). A snooze starts
  the ladder again at level 1 once it ends.
* **Flexion nudge** (only if ``flexion_nudge``). A flexion episode is a run
  of worn epochs with ``flexion_deg >= flexion_threshold_deg``; once it has
  lasted ``flexion_hold_s`` one level-1 nudge is due, at most one per episode.
* **When a due nudge may be sent.** At the first epoch, at or after it became
  due, whose decision time falls in the working hours and working days, not
  in quiet hours, not in a snooze, with the hourly cap not reached (at most
  ``max_nudges_per_h`` nudges of any reason in any 60 min), the wearer not
  walking and not wearing nothing. A static nudge also waits while a break
  is in progress (the wearer is already doing what it would ask). A nudge
  that is not allowed is deferred, never dropped, as long as its condition
  still holds. At most one nudge per epoch; static before flexion.
* **Outcome.** A static nudge is *answered* if the wearer starts a break
  (that then completes) within ``response_window_min`` of it; the response
  delay is from the nudge to the break's start. A flexion nudge is answered
  if the flexion episode ends within the window (delay to its end). The
  outcome is emitted as soon as it is known, at the epoch that decides it.

Local time (working/quiet hours) comes from a ``datetime.tzinfo`` the caller
resolves (``zoneinfo.ZoneInfo("Europe/Oslo")`` or a fixed
``datetime.timezone``): this module never reads a clock or a file.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from analysis.contracts import NS_PER_S, Activity, Event, EventKind

NudgeReason = Literal["static", "flexion"]
NUDGE_REASONS: tuple[NudgeReason, ...] = ("static", "flexion")

_S_PER_DAY = 86_400
_NS_PER_MIN = 60 * NS_PER_S
_NS_PER_H = 3600 * NS_PER_S
_NEVER = int(np.iinfo(np.int64).min)  # "no constraint yet" for not-before times
# Plain ints: comparing arrays with IntEnum members goes through enum machinery.
_NONWEAR = int(Activity.NONWEAR)
_WALKING = int(Activity.WALKING)
_MAX_CODE = int(max(Activity))
_NO_OFFSET = -(2**40)  # cache sentinels (no real offset is that large)
_TRANSITION = 2**40
_TZ_CACHE_MAX = 4096  # quarter hours (~6 weeks) of cached UTC offsets
# Time zones change offset only at whole quarter hours in practice; the
# offset is looked up once per 15-min bucket (and per epoch only in a bucket
# whose two ends disagree), so a day costs ~100 lookups, not 86 400.
_TZ_BUCKET_S = 900
_REQUIRED_FIELDS = ("time_ns", "activity", "static", "flexion_deg")


def _parse_hhmm(text: str, where: str, *, allow_24: bool) -> int:
    """``"HH:MM"`` -> seconds after local midnight."""
    try:
        hh, mm = text.strip().split(":")
        h, m = int(hh), int(mm)
    except ValueError as exc:
        raise ValueError(f"{where}={text!r} is not a time of day like '08:30'") from exc
    if (h, m) == (24, 0) and allow_24:
        return _S_PER_DAY
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"{where}={text!r} is not a time of day between 00:00 and 23:59")
    return h * 3600 + m * 60


def _parse_window(text: str, where: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` -> (start, end) seconds after local midnight."""
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"{where}={text!r} must look like '12:00-13:00'")
    start = _parse_hhmm(parts[0], where, allow_24=False)
    end = _parse_hhmm(parts[1], where, allow_24=True)
    if start == end % _S_PER_DAY:
        raise ValueError(f"{where}={text!r} is empty (start equals end)")
    return start, end


def _check_range(name: str, value: float, lo: float, hi: float, unit: str) -> None:
    if not (lo <= value <= hi) or math.isnan(value):
        raise ValueError(f"{name}={value} is outside the allowed range {lo:g}–{hi:g} {unit}")


@dataclass(frozen=True)
class NudgeSettings:
    """One wearer's nudge plan (every value is a configurable default).

    Ranges follow ``reference/metrics.md``; a value outside its range raises
    ``ValueError`` naming the field, the value and the allowed range.

    Attributes
    ----------
    static_timer_min:
        Static time before the first nudge, minutes (10–90; clinics advise a
        micro-break every 30–45 min).
    break_activities:
        Activity labels whose epochs count toward a break.
    break_min_s:
        Consecutive break epochs that make a break, seconds (10–600).
    break_requires_movement:
        A break epoch must also be non-static: standing *still* does not
        break a static period (reference/metrics.md: "sitting still and
        standing still both count"). On by default also because sitting and
        quiet standing are hard to tell apart from one trunk sensor (a waist
        inclinometer gets ~58 % of sitting right): with the analysis' epochs
        of a simulated 45-min still sit, most seconds came out "standing",
        and a posture-only break rule sent no nudge at all. False: any
        ``break_min_s`` of standing counts, for plans built on sit-stand
        changes with a thigh-grade classifier.
    response_window_min:
        A nudge is answered if the wearer moves within this, minutes (1–30).
    escalation_interval_min:
        Time from an unanswered nudge to the next, stronger one, minutes
        (from the response window up to 90).
    max_level:
        Levels per static period (1 = never escalate; at most 3).
    max_nudges_per_h:
        Cap on nudges of any reason in any 60 min (1–6).
    snooze_min:
        How long one snooze lasts unless the wearer picks a duration (5–120).
    work_hours_local:
        ``(start, end)`` local times ``"HH:MM"`` (end may be ``"24:00"``);
        an end before the start is a shift that crosses midnight.
    work_days_iso:
        ISO weekdays (1 = Monday … 7 = Sunday) with working hours; a shift
        crossing midnight belongs to the day it starts.
    quiet_hours_local:
        Local windows ``"HH:MM-HH:MM"`` without nudges (meetings, lunch).
    flexion_nudge:
        Enable the sustained-flexion (slouch) nudge. Off by default: the
        clinic rewards movement and does not police posture.
    flexion_threshold_deg:
        Forward flexion that counts as flexed, degrees (10–60; ISO 11226's
        neutral zone ends at 20°).
    flexion_hold_s:
        How long flexion must be held before the flexion nudge, seconds
        (5–120; posture trainers use seconds, most clinics >= 60).
    absence_reset_min:
        Uninterrupted non-wear or missing data that ends the static period,
        minutes (1–240).
    """

    static_timer_min: float = 30.0
    break_activities: tuple[str, ...] = ("standing", "walking")
    break_min_s: float = 60.0
    break_requires_movement: bool = True
    response_window_min: float = 5.0
    escalation_interval_min: float = 20.0
    max_level: int = 2
    max_nudges_per_h: int = 3
    snooze_min: float = 15.0
    work_hours_local: tuple[str, str] = ("08:00", "18:00")
    work_days_iso: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    quiet_hours_local: tuple[str, ...] = ()
    flexion_nudge: bool = False
    flexion_threshold_deg: float = 20.0
    flexion_hold_s: float = 60.0
    absence_reset_min: float = 10.0

    def __post_init__(self) -> None:
        _check_range("static_timer_min", self.static_timer_min, 10, 90, "min")
        _check_range("break_min_s", self.break_min_s, 10, 600, "s")
        _check_range("response_window_min", self.response_window_min, 1, 30, "min")
        _check_range(
            "escalation_interval_min",
            self.escalation_interval_min,
            self.response_window_min,
            90,
            "min (it must not be shorter than response_window_min)",
        )
        _check_range("max_level", self.max_level, 1, 3, "")
        _check_range("max_nudges_per_h", self.max_nudges_per_h, 1, 6, "per hour")
        _check_range("snooze_min", self.snooze_min, 5, 120, "min")
        _check_range("flexion_threshold_deg", self.flexion_threshold_deg, 10, 60, "deg")
        _check_range("flexion_hold_s", self.flexion_hold_s, 5, 120, "s")
        _check_range("absence_reset_min", self.absence_reset_min, 1, 240, "min")
        if not isinstance(self.max_level, int) or not isinstance(self.max_nudges_per_h, int):
            raise ValueError("max_level and max_nudges_per_h must be integers")
        if not self.break_activities:
            raise ValueError("break_activities must name at least one activity")
        for label in self.break_activities:
            act = Activity.from_label(label)  # raises with the allowed labels
            if act is Activity.NONWEAR:
                raise ValueError("break_activities cannot include 'nonwear'")
        if len(self.work_hours_local) != 2:
            raise ValueError("work_hours_local must be [start, end], e.g. ['08:00', '18:00']")
        start = _parse_hhmm(self.work_hours_local[0], "work_hours_local[0]", allow_24=False)
        end = _parse_hhmm(self.work_hours_local[1], "work_hours_local[1]", allow_24=True)
        if start == end % _S_PER_DAY and not (start == 0 and end == _S_PER_DAY):
            raise ValueError(f"work_hours_local={self.work_hours_local!r} is empty")
        if not self.work_days_iso or any(d not in range(1, 8) for d in self.work_days_iso):
            raise ValueError(
                f"work_days_iso={self.work_days_iso!r} must list ISO weekdays 1 (Mon) … 7 (Sun)"
            )
        for i, window in enumerate(self.quiet_hours_local):
            _parse_window(window, f"quiet_hours_local[{i}]")

    # Derived values in the policy's own units (integer epochs / ns).
    @property
    def static_timer_s(self) -> int:
        return round(self.static_timer_min * 60)

    @property
    def break_epochs(self) -> int:
        return round(self.break_min_s)

    @property
    def flexion_hold_epochs(self) -> int:
        return round(self.flexion_hold_s)

    def as_attrs(self) -> dict[str, object]:
        """Flat scalar view for storage next to results ("which settings made it")."""
        return {
            "static_timer_min": self.static_timer_min,
            "break_activities": ",".join(self.break_activities),
            "break_min_s": self.break_min_s,
            "break_requires_movement": self.break_requires_movement,
            "response_window_min": self.response_window_min,
            "escalation_interval_min": self.escalation_interval_min,
            "max_level": self.max_level,
            "max_nudges_per_h": self.max_nudges_per_h,
            "snooze_min": self.snooze_min,
            "work_hours_local": "-".join(self.work_hours_local),
            "work_days_iso": ",".join(str(d) for d in self.work_days_iso),
            "quiet_hours_local": ",".join(self.quiet_hours_local),
            "flexion_nudge": self.flexion_nudge,
            "flexion_threshold_deg": self.flexion_threshold_deg,
            "flexion_hold_s": self.flexion_hold_s,
            "absence_reset_min": self.absence_reset_min,
        }


@dataclass(frozen=True, slots=True)
class Nudge:
    """A decision to nudge the wearer now.

    Attributes
    ----------
    nudge_id:
        Deterministic: ``"{wearer_id}:{reason}:{time_ns}"`` (the same stream
        and settings always give the same ids, so redelivery is idempotent).
    time_ns:
        Decision time, UTC ns: the end of the epoch that made it due/allowed.
    reason:
        ``"static"`` (still for too long) or ``"flexion"`` (sustained flexion).
    level:
        1 for the first nudge of a static period, 2… for escalations.
    static_min:
        Static time accumulated in the current period when it was sent, min.
    """

    nudge_id: str
    wearer_id: str
    time_ns: int
    reason: NudgeReason
    level: int
    static_min: float

    def to_event(self) -> Event:
        """The nudge as a pipeline :class:`~analysis.contracts.Event`."""
        return Event(
            self.time_ns,
            EventKind.NUDGE,
            attrs={
                "nudge_id": self.nudge_id,
                "reason": self.reason,
                "level": self.level,
                "static_min": self.static_min,
            },
        )


@dataclass(frozen=True, slots=True)
class NudgeOutcome:
    """Whether the wearer answered a nudge (moved within the response window).

    Attributes
    ----------
    nudge_id, wearer_id, time_ns, reason, level:
        Those of the :class:`Nudge` it answers.
    answered:
        True if the wearer broke the static period (or left the flexed
        posture) within the response window.
    response_delay_s:
        Seconds from the nudge to the movement; None when not answered.
    decided_ns:
        End of the epoch at which the outcome became known (UTC ns).
    snoozed:
        The wearer snoozed while this nudge was waiting for an answer.
    """

    nudge_id: str
    wearer_id: str
    time_ns: int
    reason: NudgeReason
    level: int
    answered: bool
    response_delay_s: float | None
    decided_ns: int
    snoozed: bool = False


@dataclass(frozen=True, slots=True)
class NudgeDecisions:
    """What one :meth:`NudgePolicy.feed` call produced, each in time order."""

    nudges: tuple[Nudge, ...] = ()
    outcomes: tuple[NudgeOutcome, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.nudges or self.outcomes)


@dataclass(slots=True)
class _Pending:
    """A sent nudge waiting for its outcome."""

    nudge: Nudge
    deadline_ns: int
    scope: int  # period id (static) or episode id (flexion) it belongs to
    snoozed: bool = False


@dataclass(slots=True)
class _Chunk:
    """Per-epoch arrays derived from one chunk (all length n)."""

    t: npt.NDArray[np.int64]  # epoch start, ns
    d: npt.NDArray[np.int64]  # decision time = epoch end, ns
    period: npt.NDArray[np.int64]  # static period id
    static_s: npt.NDArray[np.int64]  # static seconds in the period after this epoch
    completes_break: npt.NDArray[np.bool_]
    brk: npt.NDArray[np.bool_]  # break epoch (worn, break activity)
    brk_start: npt.NDArray[np.int64]  # start of the break run the epoch is in (ns)
    episode: npt.NDArray[np.int64]  # flexion episode id (valid where flexed)
    flexed: npt.NDArray[np.bool_]
    flex_run: npt.NDArray[np.int64]  # epochs into the flexion episode
    static_ok: npt.NDArray[np.bool_]  # a static nudge may be sent (time, wear, gait)
    flex_ok: npt.NDArray[np.bool_]
    above: npt.NDArray[np.intp]  # indices whose static time reached the timer


def _segmented_cumsum(
    values: npt.NDArray[np.int64], new_seg: npt.NDArray[np.bool_], carry: int
) -> npt.NDArray[np.int64]:
    """Inclusive cumulative sum that restarts at 0 where ``new_seg`` is True.

    The first segment continues from ``carry`` unless ``new_seg[0]``.
    (n,) int64 in, (n,) int64 out.
    """
    n = values.shape[0]
    cs = np.cumsum(values)
    excl = cs - values
    idx = np.arange(n)
    start = np.maximum.accumulate(np.where(new_seg, idx, 0))
    out = cs - excl[start]
    before_first_reset = ~np.logical_or.accumulate(new_seg)
    out[before_first_reset] += carry
    return out


def _runs(
    flags: npt.NDArray[np.bool_],
    cont: npt.NDArray[np.bool_],
    t: npt.NDArray[np.int64],
    carry_len: int,
    carry_start_ns: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Lengths and start times of runs of True ``flags``.

    ``cont[i]`` says epoch i continues the run of epoch i-1 (for i = 0: the
    run carried in, ``carry_len`` epochs long, started at ``carry_start_ns``).
    Returns (n,) run length in epochs including i (0 where not flagged),
    (n,) run start in ns, and (n,) True where a new run starts.
    """
    n = flags.shape[0]
    idx = np.arange(n)
    starts = flags & ~cont
    last_start = np.maximum.accumulate(np.where(starts, idx, -1))
    length = np.where(flags, idx - last_start + 1, 0).astype(np.int64)
    start_ns = np.where(last_start >= 0, t[np.maximum(last_start, 0)], carry_start_ns)
    carried = flags & (last_start < 0)
    length[carried] = idx[carried] + 1 + carry_len
    return length, start_ns.astype(np.int64), starts


class NudgePolicy:
    """Streaming nudge policy for one wearer.

    Parameters
    ----------
    wearer_id:
        The wearer's pseudonym (part of every nudge id).
    settings:
        The wearer's plan; defaults are the clinic's.
    tz:
        Local time zone for working and quiet hours, resolved by the caller
        (``zoneinfo.ZoneInfo(name)`` or ``datetime.timezone(offset)``).

    Examples
    --------
    >>> policy = NudgePolicy("p017", NudgeSettings(static_timer_min=30))
    >>> out = policy.feed(epochs)          # any chunk size, in time order
    >>> for nudge in out.nudges: ...       # deliver now
    >>> for outcome in out.outcomes: ...   # store (answered, delay)
    """

    def __init__(
        self,
        wearer_id: str,
        settings: NudgeSettings | None = None,
        tz: dt.tzinfo = dt.UTC,
    ) -> None:
        if not wearer_id:
            raise ValueError("wearer_id must not be empty")
        self.wearer_id = wearer_id
        self.settings = settings if settings is not None else NudgeSettings()
        self.tz = tz
        s = self.settings
        # Lookup tables instead of np.isin: cheap even for one-epoch chunks.
        self._is_break_code = np.zeros(_MAX_CODE + 1, dtype=bool)
        self._is_break_code[[int(Activity.from_label(a)) for a in s.break_activities]] = True
        self._is_work_day = np.zeros(8, dtype=bool)
        self._is_work_day[list(s.work_days_iso)] = True
        self._tz_cache: dict[int, int] = {}  # 15-min bucket -> UTC offset (s); -1 marks none
        self._work = (
            _parse_hhmm(s.work_hours_local[0], "work_hours_local[0]", allow_24=False),
            _parse_hhmm(s.work_hours_local[1], "work_hours_local[1]", allow_24=True),
        )
        self._quiet = [_parse_window(w, "quiet_hours_local") for w in s.quiet_hours_local]
        self._window_ns = round(s.response_window_min * _NS_PER_MIN)
        self._escalate_ns = round(s.escalation_interval_min * _NS_PER_MIN)
        self._absence_ns = round(s.absence_reset_min * _NS_PER_MIN)
        # carried stream state
        self._last_t: int | None = None
        self._absence_acc_ns = 0
        self._brk_len = 0
        self._brk_start = 0
        self._static_s = 0
        self._period = 0
        self._flex_len = 0
        self._flex_start = 0
        self._episode = 0
        # decision state
        self._level_period = 0
        self._level = 0
        self._next_static_ns = _NEVER
        self._flex_done_episode = -1
        self._recent: deque[int] = deque(maxlen=s.max_nudges_per_h)
        self._snoozes: list[tuple[int, int]] = []
        self._pending: list[_Pending] = []

    # ------------------------------------------------------------- actions

    def snooze(self, at_ns: int, duration_s: float | None = None) -> None:
        """The wearer asked for quiet from ``at_ns`` for ``duration_s``.

        No nudge is sent in ``[at_ns, at_ns + duration)``; a nudge that falls
        due meanwhile is sent when the snooze ends if its condition still
        holds, starting the escalation ladder again at level 1 (the wearer
        did not ignore it). A pending nudge is marked ``snoozed``.
        """
        dur_s = self.settings.snooze_min * 60 if duration_s is None else float(duration_s)
        if not 0 < dur_s <= 4 * 3600:
            raise ValueError(f"snooze duration_s={duration_s} must be > 0 and at most 4 h")
        end = int(at_ns) + round(dur_s * NS_PER_S)
        self._snoozes.append((int(at_ns), end))
        self._snoozes.sort()
        self._level = 0
        self._next_static_ns = _NEVER
        for p in self._pending:
            if p.nudge.time_ns <= at_ns:
                p.snoozed = True

    @property
    def static_s(self) -> int:
        """Static seconds accumulated in the current static period."""
        return self._static_s

    def may_nudge_within(self, n_epochs: int) -> bool:
        """Whether the next ``n_epochs`` epochs could bring a nudge.

        False only when none can: the flexion nudge is off and either the
        static timer cannot reach its threshold in ``n_epochs`` seconds (it
        grows by at most one per epoch, and a new period starts at 0) or this
        period's ladder is already at ``max_level``. A caller feeding a live
        stream uses it to feed epochs in blocks while no decision is near,
        and second by second when one is (the decisions are the same).
        """
        if self.settings.flexion_nudge:
            return True
        thr = self.settings.static_timer_s
        if self._static_s + n_epochs < thr:
            return False
        if n_epochs >= thr:  # a whole new period fits in
            return True
        level, _ = self._ladder(self._period)
        return level < self.settings.max_level

    @property
    def pending(self) -> tuple[Nudge, ...]:
        """Nudges whose outcome is not known yet."""
        return tuple(p.nudge for p in self._pending)

    # ---------------------------------------------------------------- feed

    def feed(self, epochs: npt.NDArray[np.void]) -> NudgeDecisions:
        """Consume the next epochs (any count, strictly after the last ones).

        Parameters
        ----------
        epochs:
            (n,) structured array with at least ``time_ns`` (int64, epoch
            start, UTC ns, strictly increasing), ``activity`` (Activity code),
            ``static`` (bool) and ``flexion_deg`` (deg, + forward; NaN =
            unknown), e.g. :data:`analysis.contracts.EPOCH_DTYPE`.

        Returns
        -------
        NudgeDecisions
            Nudges decided in these epochs and outcomes that became known.

        Raises
        ------
        ValueError
            Malformed input; the policy's state is left unchanged, so the
            caller can fix the chunk and feed it again.
        """
        c = self._derive(epochs)
        if c is None:
            return NudgeDecisions()
        nudges, outcomes = self._decide(c)
        return NudgeDecisions(tuple(nudges), tuple(outcomes))

    # ------------------------------------------------------------- phase A

    def _validate(self, epochs: npt.NDArray[np.void]) -> None:
        names = epochs.dtype.names or ()
        missing = [f for f in _REQUIRED_FIELDS if f not in names]
        if missing:
            raise ValueError(
                f"epochs lack field(s) {', '.join(missing)}; pass an EPOCH_DTYPE array"
            )
        if epochs.ndim != 1:
            raise ValueError(f"epochs must be 1-D, got shape {epochs.shape}")
        t = epochs["time_ns"].astype(np.int64)
        if t.shape[0] > 1 and not np.all(np.diff(t) > 0):
            raise ValueError("epoch time_ns must be strictly increasing within a chunk")
        if self._last_t is not None and t.shape[0] and t[0] <= self._last_t:
            raise ValueError(
                f"epoch at {int(t[0])} ns is not after the last one fed ({self._last_t} ns); "
                "feed epochs in time order, each once"
            )
        act = epochs["activity"]
        if act.shape[0] and (act.min() < 0 or act.max() > _MAX_CODE):
            raise ValueError(f"activity codes must be 0..{_MAX_CODE} (Activity)")

    def _derive(self, epochs: npt.NDArray[np.void]) -> _Chunk | None:
        self._validate(epochs)
        n = epochs.shape[0]
        if n == 0:
            return None
        s = self.settings
        t = epochs["time_ns"].astype(np.int64)
        act = epochs["activity"].astype(np.int8)
        static = epochs["static"].astype(bool)
        flexion = epochs["flexion_deg"].astype(np.float64)
        d = t + NS_PER_S
        worn = act != _NONWEAR
        walking = act == _WALKING

        # Absence: missing time plus non-wear epochs, accumulated until a worn epoch.
        prev_end = np.empty(n, dtype=np.int64)
        prev_end[1:] = t[:-1] + NS_PER_S
        prev_end[0] = t[0] if self._last_t is None else self._last_t + NS_PER_S
        gap_ns = np.maximum(t - prev_end, 0)
        absence = gap_ns + np.where(worn, 0, NS_PER_S)
        new_abs = np.zeros(n, dtype=bool)
        new_abs[1:] = worn[:-1]
        acc = _segmented_cumsum(absence, new_abs, self._absence_acc_ns)
        abs_reset = (acc >= self._absence_ns) & (acc - absence < self._absence_ns)

        # Break runs (a long absence restarts them).
        brk = worn & self._is_break_code[act]
        if s.break_requires_movement:
            brk &= ~static
        cont = np.zeros(n, dtype=bool)
        cont[1:] = brk[:-1]
        cont[0] = self._brk_len > 0
        cont &= brk & ~abs_reset
        brk_len, brk_start, _ = _runs(brk, cont, t, self._brk_len, self._brk_start)
        completes = brk_len == s.break_epochs
        in_break = brk_len >= s.break_epochs

        # Static periods and their timer.
        reset = abs_reset | completes
        period = self._period + np.cumsum(reset)
        contrib = (worn & static & ~in_break).astype(np.int64)
        static_s = _segmented_cumsum(contrib, reset, self._static_s)

        # Flexion episodes.
        with np.errstate(invalid="ignore"):
            flexed = worn & (flexion >= s.flexion_threshold_deg)
        fcont = np.zeros(n, dtype=bool)
        fcont[1:] = flexed[:-1]
        fcont[0] = self._flex_len > 0
        fcont &= flexed & ~abs_reset
        flex_len, flex_start, fstarts = _runs(flexed, fcont, t, self._flex_len, self._flex_start)
        episode = self._episode + np.cumsum(fstarts)

        time_ok = self._time_ok(d)
        static_ok = time_ok & worn & ~walking & ~brk
        flex_ok = time_ok & worn & ~walking

        # Commit the carried state only now that the chunk is accepted.
        self._last_t = int(t[-1])
        self._absence_acc_ns = 0 if worn[-1] else int(acc[-1])
        self._brk_len = int(brk_len[-1])
        self._brk_start = int(brk_start[-1])
        self._static_s = int(static_s[-1])
        self._period = int(period[-1])
        self._flex_len = int(flex_len[-1])
        self._flex_start = int(flex_start[-1])
        self._episode = int(episode[-1])
        return _Chunk(
            t=t,
            d=d,
            period=period.astype(np.int64),
            static_s=static_s,
            completes_break=completes,
            brk=brk,
            brk_start=brk_start,
            episode=episode.astype(np.int64),
            flexed=flexed,
            flex_run=flex_len,
            static_ok=static_ok,
            flex_ok=flex_ok,
            above=np.flatnonzero(static_s >= s.static_timer_s),
        )

    def _offset_s(self, x: int) -> int:
        delta = dt.datetime.fromtimestamp(x, self.tz).utcoffset()
        return 0 if delta is None else int(delta.total_seconds())

    def _bucket_offset_s(self, bucket: int) -> int | None:
        """UTC offset over a whole 15-min bucket; None if it changes inside."""
        cached = self._tz_cache.get(bucket, _NO_OFFSET)
        if cached == _NO_OFFSET:
            lo = self._offset_s(bucket * _TZ_BUCKET_S)
            hi = self._offset_s(bucket * _TZ_BUCKET_S + _TZ_BUCKET_S - 1)
            cached = lo if lo == hi else _TRANSITION
            if len(self._tz_cache) >= _TZ_CACHE_MAX:
                self._tz_cache.clear()
            self._tz_cache[bucket] = cached
        return None if cached == _TRANSITION else cached

    def _utc_offsets_s(self, sec: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """(n,) UTC offsets (s) of the local zone at the given sorted UTC seconds."""
        bucket = sec // _TZ_BUCKET_S
        if bucket[0] == bucket[-1]:  # the common case of a short chunk
            off = self._bucket_offset_s(int(bucket[0]))
            if off is not None:
                return np.full(sec.shape[0], off, dtype=np.int64)
        new = np.empty(sec.shape[0], dtype=bool)
        new[0] = True
        new[1:] = bucket[1:] != bucket[:-1]
        firsts = np.flatnonzero(new)
        out = np.empty(sec.shape[0], dtype=np.int64)
        bounds = [*firsts.tolist(), sec.shape[0]]
        for a, b in itertools.pairwise(bounds):
            off = self._bucket_offset_s(int(bucket[a]))
            if off is None:  # a transition inside this bucket: per-epoch lookups
                out[a:b] = [self._offset_s(int(x)) for x in sec[a:b]]
            else:
                out[a:b] = off
        return out

    def _time_ok(self, d: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """(n,) True where decision times fall in working, non-quiet hours."""
        sec = d // NS_PER_S
        local = sec + self._utc_offsets_s(sec)
        day = local // _S_PER_DAY
        tod = local - day * _S_PER_DAY
        ws, we = self._work
        if ws < we:
            in_work = (tod >= ws) & (tod < we)
            shift_day = day
        else:  # the shift crosses midnight: its early hours belong to the day before
            early = tod < we
            in_work = (tod >= ws) | early
            shift_day = np.where(early, day - 1, day)
        weekday_iso = (shift_day + 3) % 7 + 1  # 1970-01-01 was a Thursday (ISO 4)
        ok = in_work & self._is_work_day[weekday_iso]
        for qs, qe in self._quiet:
            quiet = (tod >= qs) & (tod < qe) if qs < qe else (tod >= qs) | (tod < qe)
            ok &= ~quiet
        return ok

    # ------------------------------------------------------------- phase B

    def _blocked_until(self, d_ns: int) -> int | None:
        """If a nudge may not be sent at ``d_ns`` (snooze or cap): until when."""
        for start, end in self._snoozes:
            if start <= d_ns < end:
                return end
        cap = self.settings.max_nudges_per_h
        if len(self._recent) == cap and self._recent[0] > d_ns - _NS_PER_H:
            return self._recent[0] + _NS_PER_H
        return None

    def _ladder(self, period: int) -> tuple[int, int]:
        """(level already sent, earliest next send time) in static period ``period``.

        Read-only: the search may look ahead into later periods while an
        earlier nudge (another reason) is still to be sent.
        """
        if period == self._level_period:
            return self._level, self._next_static_ns
        return 0, _NEVER

    def _next_static(self, c: _Chunk, i: int) -> int:
        """First index >= i where a static nudge is due and allowed by the
        per-epoch gates (snooze and cap are checked by the caller)."""
        n = c.t.shape[0]
        above = c.above  # only epochs past the threshold can hold a static nudge
        thr = self.settings.static_timer_s
        while i < n:
            pos = int(np.searchsorted(above, i))
            if pos == above.shape[0]:
                return n
            i = max(i, int(above[pos]))
            p = int(c.period[i])
            end = int(np.searchsorted(c.period, p, side="right"))
            level, not_before = self._ladder(p)
            if level >= self.settings.max_level:
                i = end
                continue
            k = i + int(np.searchsorted(c.static_s[i:end], thr, side="left"))
            k = max(k, int(np.searchsorted(c.d, not_before, side="left")))
            if k < end:
                ok = c.static_ok[k:end]
                j = int(np.argmax(ok))
                if ok[j]:
                    return k + j
            i = end
        return n

    def _next_flex(self, c: _Chunk, i: int) -> int:
        n = c.t.shape[0]
        if not self.settings.flexion_nudge:
            return n
        due = (
            c.flexed[i:]
            & (c.flex_run[i:] >= self.settings.flexion_hold_epochs)
            & (c.episode[i:] != self._flex_done_episode)
            & c.flex_ok[i:]
        )
        j = int(np.argmax(due)) if due.shape[0] else 0
        return i + j if due.shape[0] and due[j] else n

    def _send(self, c: _Chunk, j: int, reason: NudgeReason) -> Nudge:
        d_ns = int(c.d[j])
        level = self._ladder(int(c.period[j]))[0] + 1 if reason == "static" else 1
        nudge = Nudge(
            nudge_id=f"{self.wearer_id}:{reason}:{d_ns}",
            wearer_id=self.wearer_id,
            time_ns=d_ns,
            reason=reason,
            level=level,
            static_min=float(c.static_s[j]) / 60.0,
        )
        self._recent.append(d_ns)
        if reason == "static":
            self._level_period = int(c.period[j])
            self._level = level
            self._next_static_ns = d_ns + self._escalate_ns
            scope = int(c.period[j])
        else:
            self._flex_done_episode = int(c.episode[j])
            scope = int(c.episode[j])
        self._pending.append(_Pending(nudge, d_ns + self._window_ns, scope))
        return nudge

    def _resolve(self, c: _Chunk, p: _Pending, i0: int) -> NudgeOutcome | None:
        """The outcome of ``p`` if epochs from ``i0`` on decide it, else None."""
        n = c.t.shape[0]
        if i0 >= n:
            return None
        t = c.t[i0:]
        if p.nudge.reason == "static":
            # The period ends (a completed break or a long absence) ...
            ended = c.period[i0:] != p.scope
            # ... or the window has passed with no break in progress that began in time.
            late = (t >= p.deadline_ns) & ~(c.brk[i0:] & (c.brk_start[i0:] <= p.deadline_ns))
            hit = ended | late
            j = int(np.argmax(hit))
            if not hit[j]:
                return None
            k = i0 + j
            answered = bool(ended[j] and c.completes_break[k] and c.brk_start[k] <= p.deadline_ns)
            moved_ns = int(c.brk_start[k])
        else:
            ended = ~c.flexed[i0:] | (c.episode[i0:] != p.scope)
            hit = ended | (t > p.deadline_ns)
            j = int(np.argmax(hit))
            if not hit[j]:
                return None
            k = i0 + j
            answered = bool(ended[j] and t[j] <= p.deadline_ns)
            moved_ns = int(t[j])
        delay = (moved_ns - p.nudge.time_ns) / NS_PER_S if answered else None
        return NudgeOutcome(
            nudge_id=p.nudge.nudge_id,
            wearer_id=self.wearer_id,
            time_ns=p.nudge.time_ns,
            reason=p.nudge.reason,
            level=p.nudge.level,
            answered=answered,
            response_delay_s=delay,
            decided_ns=int(c.d[k]),
            snoozed=p.snoozed,
        )

    def _decide(self, c: _Chunk) -> tuple[list[Nudge], list[NudgeOutcome]]:
        n = c.t.shape[0]
        nudges: list[Nudge] = []
        outcomes: list[NudgeOutcome] = []
        # Outcomes of nudges sent in earlier chunks.
        still: list[_Pending] = []
        for p in self._pending:
            out = self._resolve(c, p, 0)
            if out is None:
                still.append(p)
            else:
                outcomes.append(out)
        self._pending = still

        i_static = i_flex = 0
        while True:
            js = self._next_static(c, i_static)
            jf = self._next_flex(c, i_flex)
            j = min(js, jf)
            if j >= n:
                break
            reason: NudgeReason = "static" if js <= jf else "flexion"
            blocked = self._blocked_until(int(c.d[j]))
            if blocked is not None:
                resume = max(j + 1, int(np.searchsorted(c.d, blocked, side="left")))
                if reason == "static":
                    i_static = resume
                else:
                    i_flex = resume
                continue
            nudge = self._send(c, j, reason)
            nudges.append(nudge)
            if reason == "static":
                i_static = j + 1
            i_flex = max(i_flex, j + 1)  # one nudge per epoch is enough
            out = self._resolve(c, self._pending[-1], j + 1)
            if out is not None:
                outcomes.append(out)
                self._pending.pop()

        last_d = int(c.d[-1])
        self._snoozes = [(a, b) for a, b in self._snoozes if b > last_d]
        outcomes.sort(key=lambda o: (o.decided_ns, o.time_ns, o.reason))
        return nudges, outcomes


# ------------------------------------------------------------ response rates


@dataclass(frozen=True, slots=True)
class NudgeResponseStats:
    """How a wearer answered nudges over a period (a day, a week).

    ``response_rate`` is answered / decided (NaN without decided nudges);
    pending nudges (outcome not yet known) are counted but not in the rate.
    """

    sent: int
    answered: int
    unanswered: int
    pending: int
    response_rate: float
    median_response_delay_s: float

    def as_daily_fields(self) -> dict[str, Any]:
        """The :class:`~analysis.contracts.DailySummary` nudge fields, for
        ``dataclasses.replace(summary, **stats.as_daily_fields())``."""
        return {
            "nudges_sent": self.sent,
            "nudges_answered": self.answered,
            "nudge_response_rate": self.response_rate,
            "nudge_median_response_s": self.median_response_delay_s,
        }

    @classmethod
    def of(cls, nudges: Sequence[Nudge], outcomes: Iterable[NudgeOutcome]) -> NudgeResponseStats:
        by_id = {o.nudge_id: o for o in outcomes}
        decided = [by_id[x.nudge_id] for x in nudges if x.nudge_id in by_id]
        answered = [o for o in decided if o.answered]
        delays = [o.response_delay_s for o in answered if o.response_delay_s is not None]
        return cls(
            sent=len(nudges),
            answered=len(answered),
            unanswered=len(decided) - len(answered),
            pending=len(nudges) - len(decided),
            response_rate=len(answered) / len(decided) if decided else math.nan,
            median_response_delay_s=statistics.median(delays) if delays else math.nan,
        )


def local_date(time_ns: int, tz: dt.tzinfo) -> str:
    """The local calendar date (``YYYY-MM-DD``) of a UTC ns instant."""
    return dt.datetime.fromtimestamp(time_ns / NS_PER_S, tz).date().isoformat()


def daily_response_stats(
    nudges: Iterable[Nudge],
    outcomes: Iterable[NudgeOutcome],
    tz: dt.tzinfo = dt.UTC,
) -> dict[str, NudgeResponseStats]:
    """Per local day (the day each nudge was *sent*), the response statistics.

    Returns ``{"YYYY-MM-DD": NudgeResponseStats}`` in date order.
    """
    outs = list(outcomes)
    by_day: dict[str, list[Nudge]] = {}
    for x in nudges:
        by_day.setdefault(local_date(x.time_ns, tz), []).append(x)
    return {day: NudgeResponseStats.of(by_day[day], outs) for day in sorted(by_day)}

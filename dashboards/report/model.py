"""The report's numbers: days, weeks, week-over-week change, a plain summary.

Pure functions over typed records (no I/O): the loader (``load.py``) turns
InfluxDB rows into these, the renderer turns these into HTML.

Weeks start on Monday; weekly values are means per *worn* day (a week with
three worn days is not "less sitting" than one with five), maxima for the
longest bout, sums for counts, and answered/sent for the nudge response rate.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.contracts import DailySummary


@dataclass(frozen=True)
class NudgeRow:
    """One nudge as stored: when (UTC ms), its local date, and the outcome."""

    time_ms: int
    date: str
    answered: bool
    response_delay_s: float | None


@dataclass(frozen=True)
class PlanChange:
    time_ms: int
    date: str
    title: str
    text: str


@dataclass(frozen=True)
class WeekRow:
    """One Monday-to-Sunday week (means per worn day unless stated)."""

    monday: dt.date
    days_worn: int
    wear_min: float
    sitting_min: float
    standing_min: float
    walking_min: float
    longest_static_bout_min: float  # max over the week
    sitting_bouts_ge30: int  # total over the week
    breaks_per_h: float
    posture_changes_per_h: float
    flexion_gt45_min: float
    incl_p10_deg: float
    incl_p50_deg: float
    incl_p90_deg: float
    nudges_sent: int
    nudges_answered: int

    @property
    def response_rate(self) -> float:
        """Answered share 0..1, NaN without nudges."""
        return self.nudges_answered / self.nudges_sent if self.nudges_sent else math.nan


@dataclass(frozen=True)
class Change:
    """A week-over-week change of one metric (last week vs the week before)."""

    label: str
    unit: str
    before: float
    after: float
    #: +1 when an increase is the direction the care plan aims for, -1 if less is the aim
    wanted: int

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def relative(self) -> float:
        return self.delta / self.before if self.before else math.nan


@dataclass(frozen=True)
class ReportData:
    site: str
    wearer: str
    date_from: dt.date
    date_to: dt.date
    timezone: str
    days: tuple[DailySummary, ...]
    nudges: tuple[NudgeRow, ...] = ()
    plans: tuple[PlanChange, ...] = ()
    weeks: tuple[WeekRow, ...] = field(default=())

    @property
    def n_calendar_days(self) -> int:
        return (self.date_to - self.date_from).days + 1


def monday_of(date: dt.date) -> dt.date:
    return date - dt.timedelta(days=date.weekday())


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def weeks_of(days: Sequence[DailySummary], nudges: Sequence[NudgeRow]) -> tuple[WeekRow, ...]:
    """Aggregate worn days (wear_min > 0) into Monday weeks, oldest first."""
    by_week: dict[dt.date, list[DailySummary]] = {}
    for d in days:
        if d.wear_min > 0:
            by_week.setdefault(monday_of(dt.date.fromisoformat(d.date)), []).append(d)
    sent: dict[dt.date, int] = {}
    answered: dict[dt.date, int] = {}
    for n in nudges:
        wk = monday_of(dt.date.fromisoformat(n.date))
        sent[wk] = sent.get(wk, 0) + 1
        answered[wk] = answered.get(wk, 0) + int(n.answered)
    rows = []
    for monday in sorted(set(by_week) | set(sent)):
        ds = by_week.get(monday, [])
        rows.append(
            WeekRow(
                monday=monday,
                days_worn=len(ds),
                wear_min=_mean([d.wear_min for d in ds]),
                sitting_min=_mean([d.sitting_min for d in ds]),
                standing_min=_mean([d.standing_min for d in ds]),
                walking_min=_mean([d.walking_min for d in ds]),
                longest_static_bout_min=max(
                    (d.longest_static_bout_min for d in ds), default=math.nan
                ),
                sitting_bouts_ge30=sum(d.sitting_bouts_ge30 for d in ds),
                breaks_per_h=_mean([d.breaks_per_h for d in ds]),
                posture_changes_per_h=_mean([d.posture_changes_per_h for d in ds]),
                flexion_gt45_min=_mean([d.flexion_45_60_min + d.flexion_gt60_min for d in ds]),
                incl_p10_deg=_mean([d.incl_p10_deg for d in ds]),
                incl_p50_deg=_mean([d.incl_p50_deg for d in ds]),
                incl_p90_deg=_mean([d.incl_p90_deg for d in ds]),
                nudges_sent=sent.get(monday, 0),
                nudges_answered=answered.get(monday, 0),
            )
        )
    return tuple(rows)


def week_over_week(weeks: Sequence[WeekRow]) -> list[Change]:
    """Last week with worn days against the one before it (empty if < 2 such weeks)."""
    worn = [w for w in weeks if w.days_worn]
    if len(worn) < 2:
        return []
    a, b = worn[-2], worn[-1]
    changes = [
        Change("Sitting per day", "min", a.sitting_min, b.sitting_min, -1),
        Change(
            "Longest still period", "min", a.longest_static_bout_min, b.longest_static_bout_min, -1
        ),
        Change("Breaks per hour of sitting", "/h", a.breaks_per_h, b.breaks_per_h, +1),
        Change(
            "Posture changes per hour", "/h", a.posture_changes_per_h, b.posture_changes_per_h, +1
        ),
        Change("Bent forward > 45° per day", "min", a.flexion_gt45_min, b.flexion_gt45_min, -1),
        Change("Wear time per day", "min", a.wear_min, b.wear_min, +1),
    ]
    if a.nudges_sent and b.nudges_sent:
        changes.append(
            Change("Moved after a nudge", "%", 100 * a.response_rate, 100 * b.response_rate, +1)
        )
    return changes


def hours_minutes(minutes: float) -> str:
    """``250.4`` -> ``"4 h 10 min"``; under an hour -> ``"45 min"``."""
    total = round(minutes)
    h, m = divmod(total, 60)
    if h == 0:
        return f"{m} min"
    return f"{h} h" if m == 0 else f"{h} h {m:02d} min"


#: Words the patient-facing summary never uses: no alarms, no verdicts, no diagnosis.
AVOIDED_WORDS = (
    "alarm",
    "alert",
    "warning",
    "danger",
    "risk",
    "bad",
    "poor",
    "fail",
    "worse",
    "wrong",
    "abnormal",
    "diagnos",
    "disease",
    "disorder",
    "injur",
    "damage",
    "must",
    "should",
    "never",
    "slouch",
    "lazy",
)


def summary_sentences(data: ReportData) -> list[str]:
    """A short, encouraging summary a patient can read (plain words, no diagnosis)."""
    worn = [d for d in data.days if d.wear_min > 0]
    if not worn:
        return [
            "There is no sensor data for this period yet. Once the sensor has been worn "
            "for a day, this page will show how you moved."
        ]
    out = []
    wear = _mean([d.wear_min for d in worn])
    out.append(
        f"You wore the sensor on {len(worn)} of {data.n_calendar_days} days, "
        f"about {hours_minutes(wear)} a day. Thank you, that gives a clear picture."
    )
    sitting = _mean([d.sitting_min for d in worn])
    upright = _mean([d.standing_min + d.walking_min for d in worn])
    out.append(
        f"On a typical day you sat for about {hours_minutes(sitting)} and were on your "
        f"feet for about {hours_minutes(upright)}."
    )
    changes = {c.label: c for c in week_over_week(data.weeks)}
    sit = changes.get("Sitting per day")
    if sit is not None and math.isfinite(sit.delta):
        if sit.delta <= -5:
            out.append(
                f"In your last week you sat about {hours_minutes(-sit.delta)} less per day "
                "than the week before. Nice work breaking up your sitting."
            )
        elif sit.delta >= 5:
            out.append(
                f"In your last week you sat about {hours_minutes(sit.delta)} more per day than "
                "the week before. Short breaks every 30 to 45 minutes (stand, breathe, "
                "reach) are an easy way to get moving again."
            )
        else:
            out.append("Your sitting time stayed about the same as the week before.")
    breaks = _mean([d.breaks_per_h for d in worn])
    if math.isfinite(breaks):
        out.append(
            f"While sitting, you got up about {breaks:.1f} times an hour. "
            "Every break counts: backs like variety."
        )
    longest = max(worn, key=lambda d: d.longest_static_bout_min)
    day = dt.date.fromisoformat(longest.date)
    out.append(
        "Your longest stretch without moving was "
        f"{hours_minutes(longest.longest_static_bout_min)} (on {day:%A} {day.day} {day:%B}). "
        "A short walk or stretch after 30 to 45 minutes keeps things moving."
    )
    sent = len(data.nudges)
    if sent:
        answered = sum(n.answered for n in data.nudges)
        out.append(f"After a reminder to move, you moved in time {answered} out of {sent} times.")
    neutral = _mean([d.flexion_lt20_min / d.wear_min for d in worn if d.wear_min > 0])
    if math.isfinite(neutral):
        out.append(
            f"Your back spent about {round(100 * neutral)}% of the worn time within 20° of "
            "your own upright posture, and moved through a range of positions the rest of "
            "the time."
        )
    return out


def settings_periods(days: Sequence[DailySummary]) -> list[tuple[str, str, dict[str, Any]]]:
    """Runs of identical settings: (first date, last date, settings), oldest first."""
    runs: list[tuple[str, str, dict[str, Any]]] = []
    for d in sorted(days, key=lambda d: d.date):
        if runs and runs[-1][2] == d.settings:
            runs[-1] = (runs[-1][0], d.date, runs[-1][2])
        else:
            runs.append((d.date, d.date, d.settings))
    return runs

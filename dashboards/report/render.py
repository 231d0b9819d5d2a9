"""The report as one self-contained, printable HTML page (charts inline as SVG).

No scripts, no external files, no web fonts: it opens offline, prints on A4
and can be archived as is. Text is escaped; numbers are rounded to what they
can support.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Iterable, Sequence

from dashboards.report.model import (
    Change,
    ReportData,
    WeekRow,
    hours_minutes,
    settings_periods,
    summary_sentences,
    week_over_week,
)
from dashboards.report.plots import Plot, all_plots

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --rule: #d0d7de; --soft: #f3f6f9; --accent: #0072B2; }
* { box-sizing: border-box; }
html { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); }
body { margin: 0 auto; max-width: 980px; padding: 28px 32px; font-size: 15px; line-height: 1.5; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid var(--rule);
  padding-bottom: 3px; }
h3 { font-size: 15px; margin: 18px 0 4px; }
.meta { color: var(--muted); font-size: 14px; margin: 0; }
.summary { background: var(--soft); border-left: 5px solid var(--accent); padding: 12px 18px;
  border-radius: 4px; font-size: 16px; }
.summary p { margin: 6px 0; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 10px; margin: 14px 0; }
.card { border: 1px solid var(--rule); border-radius: 6px; padding: 8px 10px; }
.card .value { font-size: 22px; font-weight: bold; }
.card .label { font-size: 12.5px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 10px; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--rule); text-align: right; }
th { background: var(--soft); font-weight: 600; }
th:first-child, td:first-child { text-align: left; white-space: nowrap; }
td.text, th.text { text-align: left; }
figure { margin: 14px 0 20px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: var(--muted); }
figcaption b { color: var(--ink); font-size: 14px; display: block; }
.note { font-size: 12.5px; color: var(--muted); }
code { font-size: 12px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  h2 { break-after: avoid; }
  figure, table, .summary, .cards { break-inside: avoid; }
  thead { display: table-header-group; }
  .page-break { break-before: page; }
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(v: float, digits: int = 0, unit: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "–"
    text = f"{v:.{digits}f}"
    return f"{text} {unit}".strip()


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], text_cols: int = 1) -> str:
    th = "".join(
        f'<th class="text">{_e(h)}</th>' if i < text_cols else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="text">{c}</td>' if i < text_cols else f"<td>{c}</td>"
            for i, c in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cards(data: ReportData) -> str:
    worn = [d for d in data.days if d.wear_min > 0]

    def mean(values: list[float]) -> float:
        vals = [v for v in values if math.isfinite(v)]
        return sum(vals) / len(vals) if vals else math.nan

    sent = len(data.nudges)
    answered = sum(n.answered for n in data.nudges)
    cards = [
        (f"{len(worn)} / {data.n_calendar_days}", "days worn"),
        (hours_minutes(mean([d.sitting_min for d in worn])) if worn else "–", "sitting per day"),
        (_num(mean([d.breaks_per_h for d in worn]), 1), "breaks per hour of sitting"),
        (
            hours_minutes(max(d.longest_static_bout_min for d in worn)) if worn else "–",
            "longest still period",
        ),
        (f"{answered} of {sent}" if sent else "–", "moved after a reminder"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{_e(v)}</div>'
            f'<div class="label">{_e(k)}</div></div>'
            for v, k in cards
        )
        + "</div>"
    )


def _weeks_table(weeks: Sequence[WeekRow]) -> str:
    rows = []
    for w in weeks:
        rate = f"{w.nudges_answered}/{w.nudges_sent}" if w.nudges_sent else "–"
        rows.append(
            [
                _e(f"{w.monday:%d %b}"),
                str(w.days_worn),
                _num(w.wear_min / 60, 1),
                _num(w.sitting_min),
                _num(w.standing_min + w.walking_min),
                _num(w.longest_static_bout_min),
                str(w.sitting_bouts_ge30),
                _num(w.breaks_per_h, 1),
                _num(w.posture_changes_per_h, 1),
                _num(w.flexion_gt45_min),
                f"{_num(w.incl_p10_deg)} / {_num(w.incl_p50_deg)} / {_num(w.incl_p90_deg)}",
                rate,
            ]
        )
    return _table(
        [
            "week of",
            "days worn",
            "worn h/day",
            "sitting min/day",
            "upright min/day",
            "longest still (min)",
            "sitting ≥ 30 min",
            "breaks/h",
            "changes/h",
            "> 45° min/day",
            "APDF P10/P50/P90 (°)",
            "answered/ reminders",
        ],
        rows,
    )


def _change_row(c: Change) -> list[str]:
    digits = 1 if c.unit == "/h" else 0
    if not (math.isfinite(c.before) and math.isfinite(c.after)):
        return [_e(c.label), _num(c.before, digits), _num(c.after, digits), "–"]
    arrow = "▲" if c.delta > 0 else "▼" if c.delta < 0 else "="
    rel = f" ({c.relative:+.0%})" if math.isfinite(c.relative) else ""
    toward = ""
    if c.delta * c.wanted > 0:
        toward = " <span class='note'>(toward the plan's aim)</span>"
    return [
        _e(c.label),
        _e(_num(c.before, digits, c.unit)),
        _e(_num(c.after, digits, c.unit)),
        f"{arrow} {_e(_num(abs(c.delta), digits, c.unit))}{_e(rel)}{toward}",
    ]


def _days_table(data: ReportData) -> str:
    nudges: dict[str, list[bool]] = {}
    for n in data.nudges:
        nudges.setdefault(n.date, []).append(n.answered)
    rows = []
    for d in data.days:
        ns = nudges.get(d.date, [])
        rows.append(
            [
                _e(f"{dt.date.fromisoformat(d.date):%a %d %b}"),
                _num(d.wear_min / 60, 1),
                _num(d.sitting_min),
                _num(d.longest_static_bout_min),
                str(d.sitting_bouts_ge30),
                _num(d.breaks_per_h, 1),
                _num(d.posture_changes_per_h, 1),
                _num(d.flexion_20_45_min),
                _num(d.flexion_45_60_min + d.flexion_gt60_min),
                f"{_num(d.incl_p10_deg)} / {_num(d.incl_p50_deg)} / {_num(d.incl_p90_deg)}",
                _num(100 * d.eva_share_gt1min, 0, "%"),
                f"{sum(ns)}/{len(ns)}" if ns else "–",
            ]
        )
    return _table(
        [
            "day",
            "worn h",
            "sitting min",
            "longest still",
            "sitting ≥ 30 min",
            "breaks/h",
            "changes/h",
            "20-45° min",
            "> 45° min",
            "APDF P10/P50/P90 (°)",
            "held > 1 min",
            "answered/ reminders",
        ],
        rows,
    )


def _settings(data: ReportData) -> str:
    periods = settings_periods(data.days)
    if not periods:
        return "<p class='note'>No settings recorded.</p>"
    out = []
    for first, last, settings in periods:
        span = first if first == last else f"{first} to {last}"
        rows = [
            [f"<code>{_e(k)}</code>", _e(json.dumps(v) if not isinstance(v, str) else v)]
            for k, v in sorted(settings.items())
        ]
        out.append(f"<h3>{_e(span)}</h3>")
        out.append(_table(["setting", "value"], rows, text_cols=2) if rows else "<p>none</p>")
    return "".join(out)


def _plans(data: ReportData) -> str:
    if not data.plans:
        return "<p class='note'>No change of plan in this period.</p>"
    rows = [[_e(p.date), _e(p.title), _e(p.text)] for p in data.plans]
    return _table(["from", "change", "notes"], rows, text_cols=3)


def _figure(plot: Plot) -> str:
    return (
        f'<figure id="plot-{_e(plot.id)}" class="plot">{plot.svg}'
        f"<figcaption><b>{_e(plot.title)}</b>{_e(plot.caption)}</figcaption></figure>"
    )


def render(data: ReportData, generated: dt.datetime) -> str:
    """The whole report page."""
    plots = all_plots(data)
    summary = "".join(f"<p>{_e(s)}</p>" for s in summary_sentences(data))
    changes = week_over_week(data.weeks)
    wow = (
        _table(["", "week before", "last week", "change"], [_change_row(c) for c in changes])
        if changes
        else "<p class='note'>Needs two weeks with data.</p>"
    )
    title = f"Posture and movement report: {data.wearer}"
    period = f"{data.date_from:%d %B %Y} to {data.date_to:%d %B %Y}"
    by_id = {p.id: p for p in plots}
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Posture and movement report</h1>
<p class="meta">Wearer <b>{_e(data.wearer)}</b> · site {_e(data.site)} · {_e(period)}
 · days and weeks in {_e(data.timezone)} · made {_e(f"{generated:%d %B %Y %H:%M}")}</p>
</header>
<section>
<h2>In short</h2>
<div class="summary">{summary}</div>
{_cards(data)}
</section>
<section>
<h2>How the days were spent</h2>
{_figure(by_id["posture"])}
{_figure(by_id["static"])}
</section>
<section>
<h2>Week by week</h2>
{_weeks_table(data.weeks)}
<h3>Last week compared with the week before</h3>
{wow}
<p class="note">Weekly values are means per worn day, except the longest still period
(the week's longest) and the bout count (the week's total).</p>
</section>
<section class="page-break">
<h2>Trunk posture and its variety</h2>
{_figure(by_id["flexion"])}
{_figure(by_id["apdf"])}
{_figure(by_id["eva"])}
</section>
<section>
<h2>Reminders to move</h2>
{_figure(by_id["nudges"])}
</section>
<section class="page-break">
<h2>Day by day</h2>
{_days_table(data)}
<h2>Changes of plan</h2>
{_plans(data)}
<h2>Settings behind these numbers</h2>
<p class="note">Every number above was computed with these thresholds (recorded with each
day's summary).</p>
{_settings(data)}
<p class="note">Angles are relative to the wearer's own upright posture. Bands of forward bend
follow ISO 11226; APDF: 10th/50th/90th percentiles of trunk inclination; EVA: Exposure
Variation Analysis (Mathiassen &amp; Winkel 1991). A still period is time without meaningful
trunk movement in any posture.</p>
</section>
</body>
</html>
"""

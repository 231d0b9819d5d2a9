"""Therapist trends: one wearer, per day and per week, with plan changes marked.

Every trend panel shows the daily values as bars (target A) and the weekly
value as a black step line (target B: weeks start on Monday in the wearer's
time zone). Plan changes (``plan_change`` measurement) appear as annotations
on every chart, so before/after is visible at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import heatmap, table, timeseries
from grafana_foundation_sdk.models import common

from analysis.contracts import EVA_ANGLE_EDGES_DEG, EVA_DURATION_EDGES_S
from dashboards import panels as p
from dashboards.influxql import (
    WEEK_GROUP,
    InfluxAnnotation,
    InfluxQLTarget,
    col,
    eva_field,
    src,
    tz_clause,
    wearer_filter,
)
from postmon.store.schema import DAILY, NUDGE, PLAN_CHANGE

UID = "postmon-therapist-trends"

WeeklyAgg = Literal["mean", "max", "sum"]


@dataclass(frozen=True)
class Series:
    """One daily field of a trend panel and the name it is shown under."""

    field: str
    label: str
    colour: str


def _daily_query(series: tuple[Series, ...]) -> str:
    cols = ", ".join(f'{col(DAILY, s.field)} AS "{s.label}"' for s in series)
    return f"SELECT {cols} FROM {src(DAILY)} WHERE {wearer_filter(DAILY)} AND $timeFilter"


def _weekly_query(series: tuple[Series, ...], agg: WeeklyAgg) -> str:
    cols = ", ".join(f'{agg}({col(DAILY, s.field)}) AS "{s.label} (week)"' for s in series)
    return (
        f"SELECT {cols} FROM {src(DAILY)} WHERE {wearer_filter(DAILY)} AND $timeFilter "
        f"GROUP BY {WEEK_GROUP} fill(none) {tz_clause()}"
    )


def trend(
    title: str,
    series: tuple[Series, ...],
    *,
    unit: str,
    weekly: WeeklyAgg = "mean",
    stacked: bool = False,
    description: str = "",
) -> timeseries.Panel:
    """Daily bars (A) plus a weekly step line per series (B)."""
    panel = (
        p.default_daily_bars(title)
        .description(description)
        .unit(unit)
        .with_target(InfluxQLTarget(_daily_query(series), "A"))
        .with_target(InfluxQLTarget(_weekly_query(series, weekly), "B"))
    )
    if stacked:
        panel = panel.stacking(
            p.common_b.StackingConfig().mode(common.StackingMode.NORMAL).group("A")
        )
    for s in series:
        matcher, props = p.fixed_colour(s.label, s.colour)
        panel = panel.with_override(matcher, props)
    matcher, props = p.weekly_line_override()
    return panel.with_override(matcher, props)


def posture_time() -> timeseries.Panel:
    return trend(
        "Time in each posture per day",
        (
            Series("sitting_min", "sitting", p.ORANGE),
            Series("standing_min", "standing", p.SKY_BLUE),
            Series("walking_min", "walking", p.GREEN),
            Series("lying_min", "lying", p.PURPLE),
            Series("other_min", "other", p.YELLOW),
        ),
        unit="m",
        stacked=True,
        description="Minutes per day; the line is the weekly mean per worn day.",
    ).span(24)


def sitting_time() -> timeseries.Panel:
    return trend(
        "Sitting time",
        (Series("sitting_min", "sitting", p.ORANGE),),
        unit="m",
        description="Minutes of sitting per day; the line is the weekly mean per worn day.",
    )


def longest_static() -> timeseries.Panel:
    return trend(
        "Longest static bout",
        (Series("longest_static_bout_min", "longest still period", p.BLUE),),
        unit="m",
        weekly="max",
        description="Longest period without meaningful trunk movement; line: weekly maximum.",
    )


def long_bouts() -> timeseries.Panel:
    return trend(
        "Bouts of 30 min or more",
        (
            Series("sitting_bouts_ge30", "sitting bouts >= 30 min", p.ORANGE),
            Series("static_bouts_ge30", "still periods >= 30 min", p.BLUE),
        ),
        unit="short",
        weekly="sum",
        description="Count per day; line: total per week.",
    )


def breaks_per_hour() -> timeseries.Panel:
    return trend(
        "Breaks per hour of sitting",
        (Series("breaks_per_h", "breaks per hour", p.GREEN),),
        unit="short",
        description="Sitting interrupted by standing or walking (minimum bout length in "
        "the settings table).",
    )


def posture_changes() -> timeseries.Panel:
    return trend(
        "Posture changes per hour worn",
        (Series("posture_changes_per_h", "posture changes per hour", p.SKY_BLUE),),
        unit="short",
    )


def flexion_bands() -> timeseries.Panel:
    return trend(
        "Minutes in trunk-flexion bands",
        (
            Series("flexion_lt20_min", "< 20°", p.BAND_COLOURS[0]),
            Series("flexion_20_45_min", "20-45°", p.BAND_COLOURS[1]),
            Series("flexion_45_60_min", "45-60°", p.BAND_COLOURS[2]),
            Series("flexion_gt60_min", "> 60°", p.BAND_COLOURS[3]),
        ),
        unit="m",
        stacked=True,
        description="Forward bend relative to the wearer's upright posture (ISO 11226 bands).",
    ).span(24)


def apdf() -> timeseries.Panel:
    return (
        trend(
            "Trunk inclination percentiles (APDF)",
            (
                Series("incl_p10_deg", "P10", p.SKY_BLUE),
                Series("incl_p50_deg", "P50", p.BLUE),
                Series("incl_p90_deg", "P90", p.VERMILLION),
            ),
            unit="degree",
            description="P90 - P10 is the spread: wider means more varied postures.",
        )
        .draw_style(common.GraphDrawStyle.POINTS)
        .point_size(8)
    )


def eva_share() -> timeseries.Panel:
    return trend(
        "Share of time held > 1 min (EVA)",
        (Series("eva_share_gt1min", "held > 1 min", p.PURPLE),),
        unit="percentunit",
        description="Share of worn time in uninterrupted periods over one minute; "
        "less is more varied.",
    )


def wear_time() -> timeseries.Panel:
    return trend(
        "Wear time",
        (Series("wear_min", "worn", p.GREY),),
        unit="m",
    )


def _angle_label(angle_class: int) -> str:
    edges = (0.0, *EVA_ANGLE_EDGES_DEG)
    lo = edges[angle_class]
    if angle_class == len(EVA_ANGLE_EDGES_DEG):
        return f"> {lo:g}°"
    return f"{lo:g}-{EVA_ANGLE_EDGES_DEG[angle_class]:g}°"


def eva_bucket_names() -> tuple[str, ...]:
    """Heat-map rows: upper bound of each duration class in seconds ("le" layout)."""
    return (*(f"{e:g}" for e in EVA_DURATION_EDGES_S), "+Inf")


def eva_heatmap(angle_class: int) -> heatmap.Panel:
    """One EVA row (angle class) as a heat map: days × uninterrupted-duration class."""
    names = eva_bucket_names()
    cols = ", ".join(
        f'{col(DAILY, eva_field(angle_class, d))} AS "{name}"' for d, name in enumerate(names)
    )
    q = f"SELECT {cols} FROM {src(DAILY)} WHERE {wearer_filter(DAILY)} AND $timeFilter"
    return (
        p.default_heatmap(f"EVA {_angle_label(angle_class)}: minutes by duration held")
        .description(
            "Exposure Variation Analysis: minutes per day in this angle class, by how long "
            "the angle stayed there without interruption (rows: up to N seconds)."
        )
        .with_target(InfluxQLTarget(q))
        .rows_frame(
            heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE).value("minutes")
        )
        .y_axis(heatmap.YAxisConfig().unit("s").axis_label("held up to"))
        .cell_values(heatmap.CellValues().unit("m").decimals(0))
    )


def _response_rate_query(label: str, group: str) -> str:
    """Answered share (%) per ``group`` bucket.

    ``response_delay_s`` is written only for answered nudges (schema), so
    counting it counts answers. Both counts come per local day from a
    subquery with fill(0), because a bare ``count(a) / count(b)`` is null on a
    day with nudges but no answer; days without nudges are dropped (InfluxQL
    would report 0/0 as 0 %).
    """
    per_day = (
        f'SELECT count({col(NUDGE, "response_delay_s")}) AS "answered", '
        f'count({col(NUDGE, "level")}) AS "sent" FROM {src(NUDGE)} '
        f"WHERE {wearer_filter(NUDGE)} AND $timeFilter GROUP BY time(1d) fill(0) {tz_clause()}"
    )
    return (
        f'SELECT 100 * sum("answered") / sum("sent") AS "{label}" FROM ({per_day}) '
        f'WHERE "sent" > 0 AND $timeFilter GROUP BY {group} fill(none) {tz_clause()}'
    )


def nudge_response() -> timeseries.Panel:
    matcher, props = p.weekly_line_override()
    m2, props2 = p.fixed_colour("answered %", p.GREEN)
    return (
        p.default_daily_bars("Nudge response rate")
        .description("Share of nudges after which the wearer moved in time.")
        .unit("percent")
        .min(0)
        .max(100)
        .with_target(InfluxQLTarget(_response_rate_query("answered %", "time(1d)"), "A"))
        .with_target(InfluxQLTarget(_response_rate_query("answered % (week)", WEEK_GROUP), "B"))
        .with_override(m2, props2)
        .with_override(matcher, props)
    )


def nudges_per_day() -> timeseries.Panel:
    sent = (
        f'SELECT count({col(NUDGE, "level")}) AS "sent" FROM {src(NUDGE)} '
        f"WHERE {wearer_filter(NUDGE)} AND $timeFilter GROUP BY time(1d) fill(0) {tz_clause()}"
    )
    answered = (
        f'SELECT count({col(NUDGE, "level")}) AS "answered" FROM {src(NUDGE)} '
        f"WHERE {wearer_filter(NUDGE)} AND {col(NUDGE, 'answered')} = true AND $timeFilter "
        f"GROUP BY time(1d) fill(0) {tz_clause()}"
    )
    m1, p1 = p.fixed_colour("sent", p.GREY)
    m2, p2 = p.fixed_colour("answered", p.GREEN)
    return (
        p.default_daily_bars("Nudges sent and answered per day")
        .unit("short")
        .with_target(InfluxQLTarget(sent, "A"))
        .with_target(InfluxQLTarget(answered, "C"))
        .with_override(m1, p1)
        .with_override(m2, p2)
    )


def plan_changes_table() -> table.Panel:
    q = (
        f'SELECT {col(PLAN_CHANGE, "title")} AS "change", {col(PLAN_CHANGE, "text")} AS '
        f'"notes" FROM {src(PLAN_CHANGE)} WHERE {wearer_filter(PLAN_CHANGE)} AND $timeFilter'
    )
    return p.default_table("Plan changes").with_target(InfluxQLTarget(q).table())


def settings_table() -> table.Panel:
    q = (
        f'SELECT last({col(DAILY, "settings_json")}) AS "settings" FROM {src(DAILY)} '
        f"WHERE {wearer_filter(DAILY)} AND $timeFilter"
    )
    return (
        p.default_table("Settings behind these numbers")
        .description("Thresholds (minimum bout length, static threshold, ...) of the latest day.")
        .with_target(InfluxQLTarget(q).table())
    )


#: InfluxQL of the plan-change annotation (shown on every time-series panel).
PLAN_ANNOTATION_QUERY = (
    f"SELECT {col(PLAN_CHANGE, 'title')}, {col(PLAN_CHANGE, 'text')} FROM {src(PLAN_CHANGE)} "
    f"WHERE {wearer_filter(PLAN_CHANGE)} AND $timeFilter"
)


def plan_annotation() -> InfluxAnnotation:
    return InfluxAnnotation(
        "Plan changes",
        PLAN_ANNOTATION_QUERY,
        title_column="title",
        text_column="text",
        colour=p.PURPLE,
    )


def build(default_tz: str = "UTC") -> dash_b.Dashboard:
    d = (
        p.base_dashboard("Trends per wearer", UID, ["therapist"])
        .description("Per day and per week, with plan changes marked.")
        .time("now-42d", "now")
        .with_variable(p.site_variable(DAILY))
        .with_variable(p.wearer_variable(DAILY))
        .with_variable(p.tz_variable(default_tz))
        .annotation(plan_annotation())
        .with_row(dash_b.Row("Sitting and breaks"))
        .with_panel(posture_time())
        .with_panel(sitting_time())
        .with_panel(longest_static())
        .with_panel(long_bouts())
        .with_panel(breaks_per_hour())
        .with_panel(posture_changes())
        .with_panel(wear_time())
        .with_row(dash_b.Row("Trunk flexion and variability"))
        .with_panel(flexion_bands())
        .with_panel(apdf())
        .with_panel(eva_share())
    )
    for a in range(len(EVA_ANGLE_EDGES_DEG) + 1):
        d = d.with_panel(eva_heatmap(a))
    return (
        d.with_row(dash_b.Row("Nudges"))
        .with_panel(nudge_response())
        .with_panel(nudges_per_day())
        .with_row(dash_b.Row("Plan and settings"))
        .with_panel(plan_changes_table())
        .with_panel(settings_table())
    )

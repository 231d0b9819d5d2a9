"""'My day': what a wearer sees at a glance (today, refreshed every minute).

Plain words, friendly colours, nothing that reads as a warning: the point is
"how have I moved today", not a score.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common

from analysis.contracts import Activity, EventKind
from dashboards import panels as p
from dashboards.influxql import InfluxQLTarget, col, src, tag, wearer_filter
from postmon.store.schema import EPOCH, EVENT, NUDGE

UID = "postmon-patient-today"
#: One bucket per minute at least: a day on a typical screen is ~2 min/px anyway.
TIMELINE_MIN_INTERVAL = "1m"


def posture_now() -> stat.Panel:
    q = (
        f'SELECT last({col(EPOCH, "activity")}) AS "posture" FROM {src(EPOCH)} '
        f"WHERE {wearer_filter(EPOCH)} AND $timeFilter"
    )
    return (
        p.default_stat("Right now")
        .description("Your posture in the last reading from the sensor.")
        .with_target(InfluxQLTarget(q))
        .mappings(p.activity_mappings())
        .reduce_options(
            common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields("/^posture$/")
        )
    )


def still_since() -> stat.Panel:
    # The time of the last epoch with trunk movement; Grafana shows it as
    # "23 minutes ago", which is the static-period timer.
    q = (
        f'SELECT last({col(EPOCH, "intensity_g")}) AS "moved" FROM {src(EPOCH)} '
        f"WHERE {wearer_filter(EPOCH)} AND {col(EPOCH, 'static')} = false AND $timeFilter"
    )
    return (
        p.default_stat("Last moved")
        .description("When you last moved; a short walk or a stretch resets it.")
        .with_target(InfluxQLTarget(q))
        .unit("dateTimeFromNow")
        .color_mode(common.BigValueColorMode.NONE)
        .reduce_options(
            common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields("/^Time$/")
        )
    )


def sitting_today() -> stat.Panel:
    q = (
        f'SELECT count({col(EPOCH, "activity_code")}) / 60 AS "sitting_min" FROM {src(EPOCH)} '
        f"WHERE {wearer_filter(EPOCH)} AND {col(EPOCH, 'activity')} = '{Activity.SITTING.label}' "
        "AND $timeFilter"
    )
    return (
        p.default_stat("Sitting today")
        .with_target(InfluxQLTarget(q))
        .unit("m")
        .decimals(0)
        .color_scheme(p.fixed_scheme(p.ORANGE))
    )


def breaks_today() -> stat.Panel:
    q = (
        f'SELECT count({col(EVENT, "duration_s")}) AS "breaks" FROM {src(EVENT)} '
        f"WHERE {wearer_filter(EVENT)} AND {tag(EVENT, 'kind')} = '{EventKind.SIT_TO_STAND}' "
        "AND $timeFilter"
    )
    return (
        p.default_stat("Times you stood up")
        .with_target(InfluxQLTarget(q))
        .decimals(0)
        .color_scheme(p.fixed_scheme(p.GREEN))
    )


def trunk_angle() -> timeseries.Panel:
    q = (
        f'SELECT mean({col(EPOCH, "inclination_deg")}) AS "lean from upright", '
        f'mean({col(EPOCH, "flexion_deg")}) AS "forward bend" FROM {src(EPOCH)} '
        f"WHERE {wearer_filter(EPOCH)} AND $timeFilter GROUP BY time($__interval) fill(null)"
    )
    over_lean, props = p.fixed_colour("lean from upright", p.BLUE)
    over_bend, props_b = p.fixed_colour("forward bend", p.ORANGE)
    return (
        p.default_timeseries("Trunk angle today")
        .description("How far your trunk leaned from your own upright posture (degrees).")
        .with_target(InfluxQLTarget(q))
        .interval(TIMELINE_MIN_INTERVAL)
        .unit("degree")
        .span(24)
        .with_override(over_lean, props)
        .with_override(over_bend, props_b)
    )


def posture_timeline() -> statetimeline.Panel:
    q = (
        f'SELECT mode({col(EPOCH, "activity")}) AS "posture" FROM {src(EPOCH)} '
        f"WHERE {wearer_filter(EPOCH)} AND $timeFilter GROUP BY time($__interval) fill(null)"
    )
    return (
        p.default_state_timeline("Your day")
        .description("Sitting, standing, walking and lying through the day.")
        .with_target(InfluxQLTarget(q))
        .interval(TIMELINE_MIN_INTERVAL)
    )


def nudges_today() -> stat.Panel:
    sent = (
        f'SELECT count({col(NUDGE, "level")}) AS "reminders" FROM {src(NUDGE)} '
        f"WHERE {wearer_filter(NUDGE)} AND $timeFilter"
    )
    answered = (
        f'SELECT count({col(NUDGE, "level")}) AS "you moved" FROM {src(NUDGE)} '
        f"WHERE {wearer_filter(NUDGE)} AND {col(NUDGE, 'answered')} = true AND $timeFilter"
    )
    return (
        p.default_stat("Reminders to move")
        .description("Reminders sent today, and how many times you moved soon after one.")
        .with_target(InfluxQLTarget(sent, "A"))
        .with_target(InfluxQLTarget(answered, "B"))
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common.BigValueColorMode.NONE)
        .decimals(0)
    )


def nudge_list() -> table.Panel:
    q = (
        f'SELECT {col(NUDGE, "static_min")} AS "still for (min)", '
        f'{col(NUDGE, "answered")} AS "moved after", '
        f'{col(NUDGE, "response_delay_s")} AS "moved after (s)", '
        f'{tag(NUDGE, "channel")} AS "sent by" FROM {src(NUDGE)} '
        f"WHERE {wearer_filter(NUDGE)} AND $timeFilter"
    )
    return p.default_table("Today's reminders").with_target(InfluxQLTarget(q).table()).span(12)


def build() -> dash_b.Dashboard:
    return (
        p.base_dashboard("My day", UID, ["patient"])
        .description("Today at a glance: posture, movement and reminders.")
        .time("now/d", "now")
        .refresh("1m")
        .with_variable(p.site_variable(EPOCH))
        .with_variable(p.wearer_variable(EPOCH))
        .with_panel(posture_now())
        .with_panel(still_since())
        .with_panel(sitting_today())
        .with_panel(breaks_today())
        .with_panel(posture_timeline())
        .with_panel(trunk_angle())
        .with_panel(nudges_today().span(12).height(8))
        .with_panel(nudge_list())
    )

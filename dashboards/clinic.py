"""Clinic overview: every wearer of a site on one screen, with flags to follow up.

Flags are colours on table cells, never verdicts: sitting time rising week
over week (last 7 days vs the 7 days before, both ending at the end of the
selected range), a sensor battery running low, a sensor that sent nothing in
the last hour of the range.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models.dashboard import (
    DashboardSpecialValueMapOptions,
    DataTransformerConfig,
    DynamicConfigValue,
    MatcherConfig,
    SpecialValueMap,
    SpecialValueMatch,
    ValueMappingResult,
)

from dashboards import panels as p
from dashboards.influxql import InfluxQLTarget, col, site_filter, src, tag
from postmon.store.schema import DAILY, DEVICE, EPOCH

UID = "postmon-clinic-overview"

#: Flag thresholds (display only; documented in the panel descriptions).
BATTERY_LOW_PCT = 20.0
SITTING_RISE_RATIO = 1.10  # +10 % week over week
SILENT_WINDOW = "1h"

# Column names of the wearers table (aliases in the queries, referenced by overrides).
WEAR = "wear h/day (7 d)"
SIT_NOW = "sitting min/day (7 d)"
SIT_BEFORE = "sitting min/day (7 d before)"
SIT_CHANGE = "sitting change"
BATTERY = "battery %"
RECORDED = "minutes recorded (last hour)"


def _window(days_back_start: int, days_back_end: int) -> str:
    """A window ending at the range's end (``$__to``), e.g. (7, 0) = last 7 days."""
    end = "${__to}ms" + (f" - {days_back_end}d" if days_back_end else "")
    return f"time > ${{__to}}ms - {days_back_start}d AND time <= {end}"


def wearers_table() -> table.Panel:
    by_wearer = f"GROUP BY {tag(DAILY, 'wearer')}"
    wear = (
        f'SELECT mean({col(DAILY, "wear_min")}) / 60 AS "{WEAR}" FROM {src(DAILY)} '
        f"WHERE {site_filter(DAILY)} AND {_window(7, 0)} {by_wearer}"
    )
    sit_now = (
        f'SELECT mean({col(DAILY, "sitting_min")}) AS "{SIT_NOW}" FROM {src(DAILY)} '
        f"WHERE {site_filter(DAILY)} AND {_window(7, 0)} {by_wearer}"
    )
    sit_before = (
        f'SELECT mean({col(DAILY, "sitting_min")}) AS "{SIT_BEFORE}" FROM {src(DAILY)} '
        f"WHERE {site_filter(DAILY)} AND {_window(14, 7)} {by_wearer}"
    )
    battery = (
        f'SELECT last({col(DEVICE, "battery_pct")}) AS "{BATTERY}" FROM {src(DEVICE)} '
        f"WHERE {site_filter(DEVICE)} AND $timeFilter GROUP BY {tag(DEVICE, 'wearer')}"
    )
    recorded = (
        f'SELECT count({col(EPOCH, "activity_code")}) / 60 AS "{RECORDED}" FROM {src(EPOCH)} '
        f"WHERE {site_filter(EPOCH)} AND time > ${{__to}}ms - {SILENT_WINDOW} "
        f"AND time <= ${{__to}}ms GROUP BY {tag(EPOCH, 'wearer')}"
    )
    transformations = [
        DataTransformerConfig(id_val="joinByField", options={"byField": "wearer", "mode": "outer"}),
        DataTransformerConfig(
            id_val="calculateField",
            options={
                "alias": SIT_CHANGE,
                "mode": "binary",
                "binary": {"left": SIT_NOW, "operator": "/", "right": SIT_BEFORE},
                "replaceFields": False,
            },
        ),
        DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {
                    "Time": True,
                    "Time 1": True,
                    "Time 2": True,
                    "Time 3": True,
                    "Time 4": True,
                    "Time 5": True,
                }
            },
        ),
    ]
    silent = SpecialValueMap(
        options=DashboardSpecialValueMapOptions(
            match=SpecialValueMatch.NULL,
            result=ValueMappingResult(text="silent", color=p.VERMILLION, index=0),
        )
    )
    panel = (
        p.default_table("Wearers")
        .description(
            f"Flags: sitting change above {SITTING_RISE_RATIO:.2f}x week over week, battery "
            f"below {BATTERY_LOW_PCT:g} %, no data in the last {SILENT_WINDOW} of the range."
        )
        .span(24)
        .height(10)
        .with_target(InfluxQLTarget(wear, "A").table())
        .with_target(InfluxQLTarget(sit_now, "B").table())
        .with_target(InfluxQLTarget(sit_before, "C").table())
        .with_target(InfluxQLTarget(battery, "D").table())
        .with_target(InfluxQLTarget(recorded, "E").table())
        .transformations(transformations)
        .decimals(1)
    )
    cell_bg = DynamicConfigValue(
        id_val="custom.cellOptions", value={"type": "color-background", "mode": "basic"}
    )
    panel = panel.with_override(
        MatcherConfig(id_val="byName", options=SIT_CHANGE),
        [
            DynamicConfigValue(id_val="unit", value="percentunit"),
            DynamicConfigValue(
                id_val="thresholds",
                value=p.thresholds((None, p.GREEN), (SITTING_RISE_RATIO, p.ORANGE))
                .build()
                .to_json(),
            ),
            cell_bg,
        ],
    )
    panel = panel.with_override(
        MatcherConfig(id_val="byName", options=BATTERY),
        [
            DynamicConfigValue(id_val="unit", value="percent"),
            DynamicConfigValue(
                id_val="thresholds",
                value=p.thresholds((None, p.VERMILLION), (BATTERY_LOW_PCT, p.GREEN))
                .build()
                .to_json(),
            ),
            cell_bg,
        ],
    )
    return panel.with_override(
        MatcherConfig(id_val="byName", options=RECORDED),
        [DynamicConfigValue(id_val="mappings", value=[silent.to_json()]), cell_bg],
    )


def sitting_per_wearer() -> timeseries.Panel:
    q = (
        f'SELECT {col(DAILY, "sitting_min")} AS "sitting" FROM {src(DAILY)} '
        f"WHERE {site_filter(DAILY)} AND $timeFilter GROUP BY {tag(DAILY, 'wearer')}"
    )
    return (
        p.default_timeseries("Sitting per day, every wearer")
        .unit("m")
        .with_target(InfluxQLTarget(q).alias("$tag_wearer"))
    )


def wear_per_wearer() -> timeseries.Panel:
    q = (
        f'SELECT {col(DAILY, "wear_min")} / 60 AS "worn" FROM {src(DAILY)} '
        f"WHERE {site_filter(DAILY)} AND $timeFilter GROUP BY {tag(DAILY, 'wearer')}"
    )
    return (
        p.default_timeseries("Wear time per day, every wearer")
        .unit("h")
        .with_target(InfluxQLTarget(q).alias("$tag_wearer"))
    )


def battery_per_wearer() -> timeseries.Panel:
    q = (
        f'SELECT mean({col(DEVICE, "battery_pct")}) AS "battery" FROM {src(DEVICE)} '
        f"WHERE {site_filter(DEVICE)} AND $timeFilter "
        f"GROUP BY time($__interval), {tag(DEVICE, 'wearer')} fill(none)"
    )
    return (
        p.default_timeseries("Sensor battery")
        .unit("percent")
        .min(0)
        .max(100)
        .span(24)
        .interval("5m")
        .with_target(InfluxQLTarget(q).alias("$tag_wearer"))
    )


def build() -> p.dash_b.Dashboard:
    return (
        p.base_dashboard("Clinic overview", UID, ["clinic"])
        .description("Every wearer of a site: wear time, sitting trend and sensor health.")
        .time("now-14d", "now")
        .with_variable(p.site_variable(DAILY))
        .with_panel(wearers_table())
        .with_panel(sitting_per_wearer())
        .with_panel(wear_per_wearer())
        .with_panel(battery_per_wearer())
    )

"""Shared panel defaults, the palette and small helpers used by every dashboard.

Each panel in the dashboards is a small function that starts from one of the
defaults here (as in grafana-foundation-sdk's examples), so that fonts,
legends, tooltips and colours stay the same everywhere.

Colours: the Okabe-Ito palette, distinguishable with the common forms of
colour blindness and still apart when printed in grey.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import (
    barchart,
    heatmap,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DynamicConfigValue,
    FieldColorModeId,
    MatcherConfig,
    RangeMap,
    RegexMap,
    SpecialValueMap,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode, HeatmapColorScale

from analysis.contracts import Activity
from dashboards.influxql import DATASOURCE, VAR_SITE, VAR_TZ, VAR_WEARER, tag
from postmon.store.schema import Measurement

# Okabe & Ito (2008), "Color Universal Design".
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#999999"
BLACK = "#000000"

#: One colour and one plain-language name per activity (stored label -> display).
ACTIVITY_STYLE: dict[Activity, tuple[str, str]] = {
    Activity.SITTING: (ORANGE, "Sitting"),
    Activity.STANDING: (SKY_BLUE, "Standing"),
    Activity.WALKING: (GREEN, "Walking"),
    Activity.LYING: (PURPLE, "Lying"),
    Activity.OTHER: (YELLOW, "Moving"),
    Activity.NONWEAR: (GREY, "Sensor off"),
}

#: Trunk-flexion bands from neutral to far forward.
BAND_COLOURS = (BLUE, YELLOW, ORANGE, VERMILLION)


def activity_mappings() -> list[ValueMap | RangeMap | RegexMap | SpecialValueMap]:
    """Stored activity labels -> friendly text and colour (stat, state timeline)."""
    return [
        ValueMap(
            options={
                a.label: ValueMappingResult(text=name, color=colour, index=i)
                for i, (a, (colour, name)) in enumerate(ACTIVITY_STYLE.items())
            }
        )
    ]


def fixed_colour(name: str, colour: str) -> tuple[MatcherConfig, list[DynamicConfigValue]]:
    """An override giving the field ``name`` a fixed colour."""
    return (
        MatcherConfig(id_val="byName", options=name),
        [DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})],
    )


def thresholds(*steps: tuple[float | None, str]) -> dash_b.ThresholdsConfig:
    """Absolute thresholds: ``(None, base colour), (value, colour), ...``."""
    return (
        dash_b.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def fixed_scheme(colour: str) -> dash_b.FieldColor:
    return dash_b.FieldColor().mode(FieldColorModeId.FIXED).fixed_color(colour)


def legend() -> common_b.VizLegendOptions:
    return (
        common_b.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def tooltip() -> common_b.VizTooltipOptions:
    return (
        common_b.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.NONE)
    )


def default_stat(title: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(5)
        .span(6)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .text_mode(common.BigValueTextMode.VALUE)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def default_timeseries(title: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(8)
        .span(12)
        .line_width(2)
        .fill_opacity(10)
        .point_size(5)
        .show_points(common.VisibilityMode.AUTO)
        .draw_style(common.GraphDrawStyle.LINE)
        .span_nulls(False)
        .legend(legend())
        .tooltip(tooltip())
    )


def default_daily_bars(title: str) -> timeseries.Panel:
    """Daily values as bars (one point per local day at midnight)."""
    return (
        default_timeseries(title)
        .draw_style(common.GraphDrawStyle.BARS)
        .bar_alignment(common.BarAlignment.AFTER)
        .fill_opacity(80)
        .line_width(1)
    )


def weekly_line_override() -> tuple[MatcherConfig, list[DynamicConfigValue]]:
    """Target B of trend panels holds weekly values: a step line over the bars."""
    return (
        MatcherConfig(id_val="byFrameRefID", options="B"),
        [
            DynamicConfigValue(id_val="custom.drawStyle", value="line"),
            DynamicConfigValue(id_val="custom.lineInterpolation", value="stepAfter"),
            DynamicConfigValue(id_val="custom.lineWidth", value=3),
            DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            DynamicConfigValue(id_val="custom.stacking", value={"mode": "none", "group": "B"}),
            DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": BLACK}),
        ],
    )


def default_state_timeline(title: str) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(6)
        .span(24)
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8)
        .fill_opacity(90)
        .line_width(0)
        .legend(legend())
        .mappings(activity_mappings())
    )


def default_table(title: str) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(8)
        .span(12)
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
    )


def default_heatmap(title: str) -> heatmap.Panel:
    return (
        heatmap.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(8)
        .span(6)
        .calculate(False)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(HeatmapColorMode.SCHEME)
            .scheme("Viridis")
            .steps(64)
            .reverse(False)
            .exponent(0.5)
            .scale(HeatmapColorScale.EXPONENTIAL)
            .fill(BLUE)
        )
        .show_legend()
        .show_tooltip()
        .hide_from(common_b.HideSeriesConfig().legend(False).tooltip(False).viz(False))
    )


def default_barchart(title: str) -> barchart.Panel:
    return barchart.Panel().title(title).datasource(DATASOURCE).height(8).span(12).legend(legend())


# ------------------------------------------------------------------ variables


def site_variable(m: Measurement) -> dash_b.QueryVariable:
    return (
        dash_b.QueryVariable(VAR_SITE)
        .label("Site")
        .datasource(DATASOURCE)
        .query(f"SHOW TAG VALUES FROM {m.qualified()} WITH KEY = {tag(m, 'site')}")
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )


def wearer_variable(m: Measurement) -> dash_b.QueryVariable:
    return (
        dash_b.QueryVariable(VAR_WEARER)
        .label("Wearer")
        .datasource(DATASOURCE)
        .query(
            f"SHOW TAG VALUES FROM {m.qualified()} WITH KEY = {tag(m, 'wearer')} "
            f"WHERE {tag(m, 'site')} =~ /^${VAR_SITE}$/"
        )
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )


def tz_variable(default_tz: str) -> dash_b.TextBoxVariable:
    """The IANA time zone that defines a local day and week (e.g. Europe/Berlin)."""
    return (
        dash_b.TextBoxVariable(VAR_TZ)
        .label("Time zone")
        .description("IANA time zone of the wearers' working days, e.g. Europe/Berlin")
        .default_value(default_tz)
        .current(VariableOption(selected=True, text=default_tz, value=default_tz))
        .hide(VariableHide.DONT_HIDE)
    )


def base_dashboard(title: str, uid: str, tags: list[str]) -> dash_b.Dashboard:
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["postmon", *tags])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .timezone("browser")
        .week_start("monday")
    )

"""Expand a panel's InfluxQL exactly as Grafana would before it reaches InfluxDB.

No Grafana server can run here, so the dashboards are proven by executing
their queries against the real InfluxDB. For that proof to mean anything, the
macro and variable expansion must follow Grafana's own code, step by step:

1. The panel's interval (frontend ``rangeUtil.calculateInterval``):
   ``round_interval((to - from) / max_data_points)``, raised to the panel's
   min interval (``interval``) or the data source's ``timeInterval``.
2. Template variables (frontend ``templateSrv.replace`` with the InfluxDB data
   source's ``interpolateQueryExpr``): ``$var``, ``${var}``, ``${var:fmt}`` and
   ``[[var]]``; single values are regex-escaped unless numeric, multi-value
   and include-all variables become an alternation. ``$__interval`` and
   ``$__interval_ms`` are deliberately left for the backend; ``$__from`` /
   ``$__to`` become epoch milliseconds.
3. Backend macros (``pkg/tsdb/influxdb/models/query.go`` ``Build``):
   ``$timeFilter`` -> ``time >= <from>ms and time <= <to>ms``, then
   ``$interval``, ``$__interval_ms`` and ``$__interval`` (formatted by
   ``gtime.FormatInterval``), in that order.

Pure functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Grafana's variable syntax (``public/app/features/variables/utils.ts``).
VARIABLE_RE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
#: ``escapeRegex`` of @grafana/data.
_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")
#: ``influxSpecialRegexEscape`` of the InfluxDB data source.
_INFLUX_SPECIALS = re.compile(r"[$^*{}\[\]'+?.()|]")
_INTERVAL_RE = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|[Mwdhmsy])")
_UNIT_S = {"y": 31536000, "M": 2592000, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
ALL_VALUE = "$__all"


@dataclass(frozen=True)
class TemplateVariable:
    """A dashboard variable's current state as Grafana holds it."""

    name: str
    value: str | tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    #: every option's value, used when the current value is "All"
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel: time range, variables, width."""

    time_from_ms: int
    time_to_ms: int
    variables: tuple[TemplateVariable, ...] = ()
    #: panel.maxDataPoints, or the panel's width in pixels when unset
    max_data_points: int = 1000
    #: the data source's "Min time interval" (jsonData.timeInterval), if any
    datasource_min_interval: str | None = None

    def variable(self, name: str) -> TemplateVariable | None:
        for v in self.variables:
            if v.name == name:
                return v
        return None


def escape_regex(value: str) -> str:
    """``escapeRegex`` of @grafana/data."""
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def _is_js_number_prefix(value: str) -> bool:
    """``!isNaN(parseFloat(value))``: JavaScript parses a leading number."""
    return re.match(r"^\s*[+-]?(\d+\.?\d*|\.\d+|Infinity)", value) is not None


def influx_regular_escape(value: str) -> str:
    """``influxRegularEscape``: regex-escape unless the value reads as a number."""
    return value if _is_js_number_prefix(value) else escape_regex(value)


def influx_special_regex_escape(value: str) -> str:
    """``influxSpecialRegexEscape`` (multi-value / include-all variables)."""
    value = value.replace("\\", "\\\\\\\\")
    return _INFLUX_SPECIALS.sub(lambda m: "\\\\" + m.group(0), value)


def interpolate_query_expr(value: str | Sequence[str], variable: TemplateVariable) -> str:
    """The InfluxDB data source's ``interpolateQueryExpr``."""
    if not variable.multi and not variable.include_all:
        if isinstance(value, str):
            return influx_regular_escape(value)
        return ",".join(influx_regular_escape(v) for v in value)
    if isinstance(value, str):
        return influx_special_regex_escape(value)
    escaped = [influx_special_regex_escape(v) for v in value]
    return escaped[0] if len(escaped) == 1 else "|".join(escaped)


def _format(value: str | Sequence[str], fmt: str) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if fmt == "raw":
        return ",".join(values)
    if fmt == "regex":
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt in ("csv", "text"):
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise ValueError(f"variable format {fmt!r} is not implemented here")


def interpolate_variables(text: str, ctx: QueryContext) -> str:
    """Frontend step: replace template variables; unknown names stay as written."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in ("__from", "__to"):
            ms = ctx.time_from_ms if name == "__from" else ctx.time_to_ms
            return str(ms) if fmt in (None, "raw") else _format(str(ms), fmt)
        var = ctx.variable(name)
        if var is None:
            return m.group(0)
        value: str | Sequence[str] = var.value
        if value in (ALL_VALUE, (ALL_VALUE,)):
            value = var.options
        if fmt:
            return _format(value, fmt)
        return interpolate_query_expr(value, var)

    return VARIABLE_RE.sub(repl, text)


def round_interval(interval_ms: float) -> int:
    """``rangeUtil.roundInterval``: snap to a 'nice' interval (ms)."""
    table = (
        (10, 1),
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1500, 1000),
        (3500, 2000),
        (7500, 5000),
        (12500, 10000),
        (17500, 15000),
        (25000, 20000),
        (45000, 30000),
        (90000, 60000),
        (210000, 120000),
        (450000, 300000),
        (750000, 600000),
        (1050000, 900000),
        (1500000, 1200000),
        (2700000, 1800000),
        (5400000, 3600000),
        (9000000, 7200000),
        (16200000, 10800000),
        (32400000, 21600000),
        (86400000, 43200000),
        (604800000, 86400000),
        (1814400000, 604800000),
        (3628800000, 2592000000),
    )
    for limit, rounded in table:
        if interval_ms < limit:
            return rounded
    return 31536000000


def interval_to_ms(text: str) -> int:
    """``rangeUtil.intervalToMs`` ("1m" -> 60000; a bare number is seconds)."""
    try:
        return int(float(text) * 1000)
    except ValueError:
        pass
    m = _INTERVAL_RE.match(text)
    if not m:
        raise ValueError(f"invalid interval {text!r}: use e.g. 10s, 1m, 1h, 1d")
    count = int(float(m.group(1)))
    unit = m.group(2)
    return count if unit == "ms" else count * _UNIT_S[unit] * 1000


def calculate_interval_ms(ctx: QueryContext, panel_min_interval: str | None = None) -> int:
    """``rangeUtil.calculateInterval`` with the panel's or the data source's limit."""
    low = panel_min_interval or ctx.datasource_min_interval
    low_ms = interval_to_ms(low) if low else 1
    interval = round_interval((ctx.time_to_ms - ctx.time_from_ms) / ctx.max_data_points)
    return max(interval, low_ms)


def format_interval(interval_ms: int) -> str:
    """``gtime.FormatInterval``: the largest whole unit, truncated."""
    for unit_ms, suffix in (
        (365 * 86400_000, "y"),
        (86400_000, "d"),
        (3600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ):
        if interval_ms >= unit_ms:
            return f"{interval_ms // unit_ms}{suffix}"
    return "1ms"


def apply_backend_macros(query: str, ctx: QueryContext, interval_ms: int) -> str:
    """Backend step (``models.Query.Build`` for raw queries)."""
    time_filter = f"time >= {ctx.time_from_ms}ms and time <= {ctx.time_to_ms}ms"
    text = format_interval(interval_ms)
    query = query.replace("$timeFilter", time_filter)
    query = query.replace("$interval", text)
    query = query.replace("$__interval_ms", str(interval_ms))
    return query.replace("$__interval", text)


def expand(query: str, ctx: QueryContext, panel_min_interval: str | None = None) -> str:
    """The InfluxQL string InfluxDB receives for one raw-mode panel target."""
    interval_ms = calculate_interval_ms(ctx, panel_min_interval)
    return apply_backend_macros(interpolate_variables(query, ctx), ctx, interval_ms)


def expand_annotation(query: str, ctx: QueryContext) -> str:
    """An InfluxQL annotation query (variables, then ``$timeFilter``)."""
    return apply_backend_macros(
        interpolate_variables(query, ctx), ctx, calculate_interval_ms(ctx, None)
    )


def variables_from_mapping(values: Mapping[str, str]) -> tuple[TemplateVariable, ...]:
    """Single-value, non-multi variables from ``{"wearer": "w-01", ...}``."""
    return tuple(TemplateVariable(k, v) for k, v in values.items())

"""A typed InfluxQL target for grafana-foundation-sdk, plus InfluxQL building blocks.

The SDK ships query types for Prometheus, Loki, Elasticsearch ... but none for
InfluxDB's InfluxQL, so this module adds one the way the SDK's own
``custom-query`` example does: a ``Dataquery`` variant with ``to_json`` /
``from_json``, registered under the data-source plugin id ``influxdb`` so that
``Dashboard.from_json`` decodes it again (that round trip is how the tests
validate the generated JSON against the SDK's models).

Every query is written in raw InfluxQL (``rawQuery: true``). Identifiers come
from :mod:`postmon.store.schema` through :func:`col`, :func:`tag` and
:func:`src`, which refuse names the schema does not define, so a renamed
field breaks the build instead of a chart.
"""

from __future__ import annotations

import enum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import AnnotationQuery, DataSourceRef

from postmon.store.schema import N_EVA_ANGLE, N_EVA_DURATION, Measurement, eva_field_name

#: Grafana's plugin id of the InfluxDB data source (also the query variant id).
PLUGIN_ID = "influxdb"
#: The provisioned data source's UID; every panel and variable points at it.
DATASOURCE_UID = "postmon-influxdb"
DATASOURCE = DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)

# Template variable names shared by the dashboards (and the query expander).
VAR_SITE = "site"
VAR_WEARER = "wearer"
VAR_TZ = "tz"


class ResultFormat(enum.StrEnum):
    """How Grafana turns the InfluxDB response into data frames."""

    TIME_SERIES = "time_series"
    TABLE = "table"
    LOGS = "logs"


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel (the JSON Grafana stores in ``targets``)."""

    ref_id: str
    query: str
    raw_query: bool
    result_format: ResultFormat
    alias: str | None
    hide: bool | None
    datasource: DataSourceRef | None

    def __init__(
        self,
        query: str = "",
        *,
        ref_id: str = "A",
        raw_query: bool = True,
        result_format: ResultFormat = ResultFormat.TIME_SERIES,
        alias: str | None = None,
        hide: bool | None = None,
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.query = query
        self.ref_id = ref_id
        self.raw_query = raw_query
        self.result_format = ResultFormat(result_format)
        self.alias = alias
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "query": self.query,
            "rawQuery": self.raw_query,
            "refId": self.ref_id,
            "resultFormat": str(self.result_format),
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        args: dict[str, Any] = {}
        for key, arg in (
            ("query", "query"),
            ("refId", "ref_id"),
            ("rawQuery", "raw_query"),
            ("resultFormat", "result_format"),
            ("alias", "alias"),
            ("hide", "hide"),
        ):
            if key in data:
                args[arg] = data[key]
        if "datasource" in data:
            args["datasource"] = DataSourceRef.from_json(data["datasource"])
        return cls(**args)


def variant_config() -> cogruntime.DataqueryConfig:
    return cogruntime.DataqueryConfig(identifier=PLUGIN_ID, from_json_hook=InfluxQLQuery.from_json)


# Registered at import: panels decoded from JSON then come back as InfluxQLQuery.
cogruntime.register_dataquery_variant(variant_config())


class InfluxQLTarget(cogbuilder.Builder[InfluxQLQuery]):
    """Builder for :class:`InfluxQLQuery`, in the SDK's fluent style."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._internal = InfluxQLQuery(query=query, ref_id=ref_id, datasource=DATASOURCE)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def table(self) -> Self:
        self._internal.result_format = ResultFormat.TABLE
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self


class InfluxAnnotationQuery(AnnotationQuery):
    """An annotation whose events come from an InfluxQL query.

    The SDK's ``AnnotationQuery`` model has no field for a data source's own
    query (its ``target`` is the built-in Grafana annotation filter), so the
    InfluxDB data source's keys -- ``query``, ``titleColumn``, ``textColumn``,
    ``tagsColumn`` -- are added here. Grafana's InfluxDB plugin reads exactly
    these keys (its ``prepareAnnotation`` moves them into a query target).
    """

    EXTRA_KEYS = ("query", "tagsColumn", "textColumn", "titleColumn")

    def __init__(
        self,
        *,
        query: str,
        title_column: str,
        text_column: str,
        tags_column: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query = query
        self.title_column = title_column
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        return {
            **super().to_json(),
            "query": self.query,
            "tagsColumn": self.tags_column,
            "textColumn": self.text_column,
            "titleColumn": self.title_column,
        }


class InfluxAnnotation(cogbuilder.Builder[AnnotationQuery]):
    def __init__(
        self, name: str, query: str, *, title_column: str, text_column: str, colour: str
    ) -> None:
        self._internal = InfluxAnnotationQuery(
            name=name,
            datasource=DATASOURCE,
            enable=True,
            hide=False,
            icon_color=colour,
            query=query,
            title_column=title_column,
            text_column=text_column,
        )

    def build(self) -> InfluxAnnotationQuery:
        return self._internal


# ------------------------------------------------------------ InfluxQL pieces


def _ident(name: str) -> str:
    if '"' in name or "\n" in name:
        raise ValueError(f"identifier {name!r} cannot be quoted in InfluxQL")
    return f'"{name}"'


def eva_field(angle_class: int, duration_class: int) -> str:
    """Field name of one EVA cell in ``daily`` (see DailySummary.eva_min)."""
    if not (0 <= angle_class < N_EVA_ANGLE and 0 <= duration_class < N_EVA_DURATION):
        raise ValueError(
            f"EVA cell ({angle_class}, {duration_class}) outside {N_EVA_ANGLE}x{N_EVA_DURATION}"
        )
    return eva_field_name(angle_class, duration_class)


def col(m: Measurement, field: str) -> str:
    """A quoted field identifier of ``m``; raises if the schema lacks it."""
    m.spec(field)  # raises KeyError naming the fields there are
    return _ident(field)


def tag(m: Measurement, name: str) -> str:
    """A quoted tag key of ``m``; raises if the schema lacks it."""
    if name not in m.tags:
        raise KeyError(f"{m.name} has no tag {name!r}; tags: {', '.join(m.tags)}")
    return _ident(name)


def src(m: Measurement) -> str:
    """The FROM clause target: ``"rp"."measurement"``."""
    return m.qualified()


def match_var(m: Measurement, tag_name: str, variable: str) -> str:
    """``"tag" =~ /^$variable$/``: Grafana's idiom for a template variable in InfluxQL.

    The regex form (not ``= '$var'``) is what Grafana's InfluxDB docs use: the
    data source regex-escapes variable values, which is right inside ``/.../``
    and wrong inside a string literal.
    """
    return f"{tag(m, tag_name)} =~ /^${variable}$/"


def wearer_filter(m: Measurement) -> str:
    return f"{match_var(m, 'site', VAR_SITE)} AND {match_var(m, 'wearer', VAR_WEARER)}"


def site_filter(m: Measurement) -> str:
    return match_var(m, "site", VAR_SITE)


def tz_clause() -> str:
    """``tz('...')`` with the dashboard's time zone, unescaped (``:raw``).

    Daily points sit at local midnight; weeks must start on local Mondays,
    which InfluxQL only does with ``tz()`` (GROUP BY time(1w, 4d) alone gives
    UTC weeks: the Unix epoch began on a Thursday, hence the 4-day offset).
    """
    return f"tz('${{{VAR_TZ}:raw}}')"


#: GROUP BY for calendar weeks starting on Monday (see tz_clause).
WEEK_GROUP = "time(1w, 4d)"

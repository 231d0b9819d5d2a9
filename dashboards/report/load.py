"""Read one wearer's daily summaries, nudges and plan changes from InfluxDB.

InfluxQL is built from the schema's names (``postmon.store.schema``); the
HTTP call is the v1 ``/query`` endpoint (POST, ``epoch=ms``), the same one
Grafana uses.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import typing
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import fields
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analysis.contracts import DailySummary
from dashboards.report.model import NudgeRow, PlanChange, ReportData, weeks_of
from postmon.config import InfluxConfig
from postmon.errors import ConfigError, InputError, ServiceUnavailable
from postmon.store.schema import (
    DAILY,
    N_EVA_ANGLE,
    N_EVA_DURATION,
    NUDGE,
    PLAN_CHANGE,
    Measurement,
    eva_field_name,
    quote_ident,
)

Row = dict[str, Any]


def quote_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def query(cfg: InfluxConfig, q: str) -> list[Row]:
    """Run one InfluxQL statement; rows as dicts (``time`` in UTC ms)."""
    params = {"db": cfg.database, "q": q, "epoch": "ms"}
    if cfg.username:
        params["u"] = cfg.username
        params["p"] = cfg.password
    data = urllib.parse.urlencode(params).encode()
    try:
        with urllib.request.urlopen(f"{cfg.url}/query", data=data, timeout=cfg.timeout_s) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        if exc.code in (401, 403):
            raise ConfigError(
                f"InfluxDB at {cfg.url} refused the credentials ({exc.code})",
                hint="check [influxdb] username and $POSTMON_INFLUX_PASSWORD",
            ) from exc
        raise InputError(f"InfluxDB at {cfg.url} rejected a query ({exc.code}): {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceUnavailable(
            f"cannot reach InfluxDB at {cfg.url}: {exc}",
            hint="start it (`postmon services up` locally) or fix [influxdb] url in the config",
        ) from exc
    result = body.get("results", [{}])[0]
    if "error" in result:
        if "database not found" in str(result["error"]):
            raise ConfigError(
                f"InfluxDB at {cfg.url} has no database {cfg.database!r}",
                hint="set [influxdb] database in the config to the one postmon writes to",
            )
        raise InputError(f"InfluxDB could not run {q!r}: {result['error']}")
    rows: list[Row] = []
    for series in result.get("series", []):
        cols = series["columns"]
        tags = series.get("tags", {})
        for values in series["values"]:
            rows.append({**tags, **dict(zip(cols, values, strict=True))})
    return rows


def _where(m: Measurement, site: str, wearer: str, lo_ms: int, hi_ms: int) -> str:
    return (
        f"{quote_ident('site')} = {quote_string(site)} AND "
        f"{quote_ident('wearer')} = {quote_string(wearer)} AND "
        f"time >= {lo_ms}ms AND time < {hi_ms}ms"
    )


def _local_midnight_ms(date: dt.date, zone: ZoneInfo) -> int:
    return int(dt.datetime.combine(date, dt.time(0), tzinfo=zone).timestamp() * 1000)


def summary_from_row(row: Row) -> DailySummary:
    """Rebuild a DailySummary from a ``daily`` point (missing numbers become NaN/0)."""
    hints = typing.get_type_hints(DailySummary)
    values: dict[str, Any] = {}
    for f in fields(DailySummary):
        if f.name == "eva_min":
            values[f.name] = tuple(
                float(row.get(eva_field_name(i, j)) or 0.0)
                for i in range(N_EVA_ANGLE)
                for j in range(N_EVA_DURATION)
            )
        elif f.name == "settings":
            try:
                values[f.name] = json.loads(row.get("settings_json") or "{}")
            except json.JSONDecodeError:
                values[f.name] = {}
        elif f.name == "date":
            values[f.name] = str(row["date"])
        elif hints[f.name] is int:
            values[f.name] = int(row.get(f.name) or 0)
        else:
            v = row.get(f.name)
            values[f.name] = math.nan if v is None else float(v)
    return DailySummary(**values)


def load(
    cfg: InfluxConfig,
    *,
    site: str,
    wearer: str,
    date_from: dt.date,
    date_to: dt.date,
    timezone: str,
) -> ReportData:
    """Everything the report shows for one wearer and an inclusive date range."""
    if date_to < date_from:
        raise ConfigError(f"--to {date_to} is before --from {date_from}")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {timezone!r}", hint="use an IANA name, e.g. Europe/Berlin"
        ) from exc
    lo = _local_midnight_ms(date_from, zone)
    hi = _local_midnight_ms(date_to + dt.timedelta(days=1), zone)
    # Daily points sit at local midnight in the writer's zone; their `date`
    # field is the truth, so read a margin either side and filter on it.
    margin = 14 * 3_600_000
    where = _where(DAILY, site, wearer, lo - margin, hi + margin)
    daily_rows = query(cfg, f"SELECT * FROM {DAILY.qualified()} WHERE {where}")
    days = sorted(
        (
            summary_from_row(r)
            for r in daily_rows
            if r.get("date") and date_from.isoformat() <= r["date"] <= date_to.isoformat()
        ),
        key=lambda d: d.date,
    )
    nudge_rows = query(
        cfg,
        f"SELECT {quote_ident('answered')}, {quote_ident('response_delay_s')} "
        f"FROM {NUDGE.qualified()} WHERE {_where(NUDGE, site, wearer, lo, hi)}",
    )
    nudges = tuple(
        NudgeRow(
            time_ms=int(r["time"]),
            date=dt.datetime.fromtimestamp(r["time"] / 1000, zone).date().isoformat(),
            answered=bool(r.get("answered")),
            response_delay_s=r.get("response_delay_s"),
        )
        for r in nudge_rows
    )
    plan_rows = query(
        cfg,
        f"SELECT {quote_ident('title')}, {quote_ident('text')} FROM {PLAN_CHANGE.qualified()} "
        f"WHERE {_where(PLAN_CHANGE, site, wearer, lo, hi)}",
    )
    plans = tuple(
        PlanChange(
            time_ms=int(r["time"]),
            date=dt.datetime.fromtimestamp(r["time"] / 1000, zone).date().isoformat(),
            title=str(r.get("title") or ""),
            text=str(r.get("text") or ""),
        )
        for r in plan_rows
    )
    return ReportData(
        site=site,
        wearer=wearer,
        date_from=date_from,
        date_to=date_to,
        timezone=timezone,
        days=tuple(days),
        nudges=nudges,
        plans=plans,
        weeks=weeks_of(days, nudges),
    )

"""Read one wearer's daily summaries, nudges and plan changes from InfluxDB.

Uses the store's typed :class:`postmon.store.reader.Reader` (InfluxQL over
the v1 ``/query`` API, built from the schema's names).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dashboards.report.model import NudgeRow, PlanChange, ReportData, weeks_of
from postmon.config import InfluxConfig
from postmon.errors import ConfigError, PostmonError
from postmon.store.reader import Reader

NS_PER_MS = 1_000_000
#: Daily points sit at local midnight in the writer's time zone, which may
#: differ from the report's by up to ±14 h; read that margin and keep the
#: days by their stored ``date``.
DAILY_MARGIN_NS = 14 * 3_600 * 1_000_000_000


def _local_midnight_ns(date: dt.date, zone: ZoneInfo) -> int:
    return int(dt.datetime.combine(date, dt.time(0), tzinfo=zone).timestamp()) * 1_000_000_000


def _local_date(time_ns: int, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(time_ns / 1e9, zone).date().isoformat()


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
    lo = _local_midnight_ns(date_from, zone)
    hi = _local_midnight_ns(date_to + dt.timedelta(days=1), zone)
    first, last = date_from.isoformat(), date_to.isoformat()
    try:
        with Reader(cfg) as reader:
            daily = reader.daily(wearer, lo - DAILY_MARGIN_NS, hi + DAILY_MARGIN_NS, site=site)
            nudges = reader.nudges(wearer, lo, hi, site=site)
            plans = reader.plan_changes(wearer, lo, hi, site=site)
    except PostmonError as exc:
        if "database not found" in str(exc):
            raise ConfigError(
                f"InfluxDB at {cfg.url} has no database {cfg.database!r}",
                hint="set [influxdb] database in the config to the one postmon writes to",
            ) from exc
        raise
    days = tuple(d for d in daily if first <= d.date <= last)
    nudge_rows = tuple(
        NudgeRow(
            time_ms=n.time_ns // NS_PER_MS,
            date=_local_date(n.time_ns, zone),
            answered=bool(n.answered),
            response_delay_s=n.response_delay_s,
        )
        for n in nudges
    )
    plan_rows = tuple(
        PlanChange(
            time_ms=p.time_ns // NS_PER_MS,
            date=_local_date(p.time_ns, zone),
            title=p.title,
            text=p.text,
        )
        for p in plans
    )
    return ReportData(
        site=site,
        wearer=wearer,
        date_from=date_from,
        date_to=date_to,
        timezone=timezone,
        days=days,
        nudges=nudge_rows,
        plans=plan_rows,
        weeks=weeks_of(days, nudge_rows),
    )

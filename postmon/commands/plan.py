"""``postmon plan add|list``: record and list changes of a wearer's care plan.

A plan change is one point in the ``plan_change`` measurement (title, notes,
the new settings as JSON), effective at its time. The trend dashboard marks
it on every chart and the report lists it, so a therapist sees before/after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from postmon.config import load_config
from postmon.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="record or list changes of a wearer's care plan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="record a plan change (shown on trend charts)")
    add.add_argument("--wearer", required=True, help="the wearer's pseudonym")
    add.add_argument("--title", required=True, help='short label, e.g. "nudge every 30 min"')
    add.add_argument("--text", default="", help="what changed and why, in plain words")
    add.add_argument(
        "--settings",
        default="{}",
        help="new settings as a JSON object, e.g. '{\"static_min\": 30}'",
    )
    add.add_argument(
        "--at",
        help="when it takes effect, YYYY-MM-DD[THH:MM] in --timezone (default: now)",
    )
    _common(add)
    add.set_defaults(func=run_add)

    ls = actions.add_parser("list", help="list a wearer's plan changes")
    ls.add_argument("--wearer", required=True, help="the wearer's pseudonym")
    ls.add_argument("--days", type=int, default=365, help="how far back (default: %(default)s)")
    _common(ls)
    ls.set_defaults(func=run_list)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config ([influxdb], site)")
    p.add_argument("--site", help="site of the wearer (default: the config's site)")
    p.add_argument("--timezone", default="UTC", help="IANA time zone (default: %(default)s)")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}", hint="use an IANA name, e.g. Europe/Berlin"
        ) from exc


def _effective_ns(at: str | None, zone: ZoneInfo) -> int:
    if at is None:
        return int(dt.datetime.now(dt.UTC).timestamp()) * 1_000_000_000
    try:
        t = dt.datetime.fromisoformat(at)
    except ValueError as exc:
        raise ConfigError(f"--at {at!r} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM") from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone)
    return int(t.timestamp()) * 1_000_000_000


def run_add(args: argparse.Namespace) -> int:
    from postmon.store.records import PlanChange
    from postmon.store.writer import Writer

    try:
        settings: Any = json.loads(args.settings)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--settings is not valid JSON: {exc}") from exc
    if not isinstance(settings, dict):
        raise ConfigError("--settings must be a JSON object, e.g. '{\"static_min\": 30}'")
    cfg = load_config(args.config)
    site = args.site or cfg.site
    change = PlanChange(
        _effective_ns(args.at, _zone(args.timezone)), args.title, args.text, settings
    )
    with Writer(cfg.influxdb, name="plan") as writer:
        writer.write_plan_changes(site, args.wearer, change)
        writer.flush()
        stats = writer.stats()
    when = dt.datetime.fromtimestamp(change.time_ns / 1e9, _zone(args.timezone))
    if stats.written:
        print(f"recorded for {site}/{args.wearer} from {when:%Y-%m-%d %H:%M}: {args.title}")
    else:
        print(
            f"InfluxDB did not answer: the plan change is kept in {cfg.influxdb.spool_dir} "
            "and will be written the next time postmon writes to InfluxDB"
        )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from postmon.store.reader import Reader

    cfg = load_config(args.config)
    zone = _zone(args.timezone)
    end = int(dt.datetime.now(dt.UTC).timestamp() + 86_400) * 1_000_000_000
    start = end - (args.days + 1) * 86_400 * 1_000_000_000
    with Reader(cfg.influxdb) as reader:
        changes = reader.plan_changes(args.wearer, start, end, site=args.site or cfg.site)
    for c in changes:
        when = dt.datetime.fromtimestamp(c.time_ns / 1e9, zone)
        settings = json.dumps(c.settings, sort_keys=True) if c.settings else ""
        print(f"{when:%Y-%m-%d %H:%M}  {c.title}  {c.text}  {settings}".rstrip())
    if not changes:
        print(f"no plan changes for {args.wearer} in the last {args.days} days")
    return 0

"""``postmon report``: a printable HTML report for one wearer and a date range."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from postmon.config import load_config
from postmon.errors import ConfigError

DESCRIPTION = """\
Read one wearer's daily summaries, nudges and plan changes from InfluxDB and
write a self-contained HTML report (charts inline, print-ready for A4): per
day and per week metrics, week-over-week change, a plain-language summary the
wearer can read, and the settings that produced the numbers. Open it in a
browser and print, or save as PDF from the print dialog."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write a printable HTML report for one wearer",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--wearer", required=True, help="the wearer's pseudonym")
    p.add_argument("--from", dest="date_from", required=True, type=_date, help="first day")
    p.add_argument("--to", dest="date_to", required=True, type=_date, help="last day (inclusive)")
    p.add_argument("--out", required=True, type=Path, help="output file (.html)")
    p.add_argument(
        "--pdf", type=Path, help="also print it to this PDF file (needs Chromium; optional)"
    )
    p.add_argument("--config", help="TOML config ([influxdb], site)")
    p.add_argument("--site", help="site of the wearer (default: the config's site)")
    p.add_argument(
        "--timezone",
        default="UTC",
        help="IANA time zone of the wearer's days, e.g. Europe/Berlin (default: %(default)s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dashboards.report import load, render

    if args.out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {args.out}: the report is HTML; use a .html file name")
    cfg = load_config(args.config)
    data = load.load(
        cfg.influxdb,
        site=args.site or cfg.site,
        wearer=args.wearer,
        date_from=args.date_from,
        date_to=args.date_to,
        timezone=args.timezone,
    )
    page = render.render(data, dt.datetime.now(dt.UTC).astimezone())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    if args.pdf:
        from dashboards.report.pdf import html_to_pdf

        html_to_pdf(args.out, args.pdf)
        print(f"{args.pdf}: printed (A4)")
    worn = sum(1 for d in data.days if d.wear_min > 0)
    print(
        f"{args.out}: {worn} worn days, {len(data.nudges)} nudges, {len(data.plans)} plan changes"
    )
    return 0

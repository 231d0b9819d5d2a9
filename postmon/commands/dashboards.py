"""``postmon dashboards export|deploy``: Grafana dashboards and provisioning."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from postmon.config import load_config

if TYPE_CHECKING:
    from dashboards.build import ExportSettings

EXPORT_HELP = """\
Write the Grafana dashboards (JSON) and provisioning files for this site:
  DIR/json/*.json                      the dashboards
  DIR/provisioning/datasources/*.yaml  the InfluxDB data source (InfluxQL, uid postmon-influxdb)
  DIR/provisioning/dashboards/*.yaml   a file provider loading DIR/json
Copy provisioning/ into Grafana's provisioning directory and json/ to the
provider's path (--dashboards-path); set POSTMON_INFLUX_PASSWORD in Grafana's
environment if InfluxDB needs a password."""

DEPLOY_HELP = """\
Create or update the data source, a "postmon" folder and the dashboards in a
running Grafana through its HTTP API. The API token comes from
$POSTMON_GRAFANA_TOKEN (or $POSTMON_GRAFANA_TOKEN_FILE): a service account
token with the Editor role (Admin to manage data sources)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboards",
        help="export or deploy the Grafana dashboards",
        description="Grafana dashboards as code: export files or deploy over the HTTP API.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    exp = actions.add_parser(
        "export",
        help="write dashboard JSON and provisioning files",
        description=EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exp.add_argument("--out", required=True, type=Path, help="output directory")
    exp.add_argument(
        "--dashboards-path",
        default="/var/lib/grafana/dashboards/postmon",
        help="where Grafana will read the JSON files (default: %(default)s)",
    )
    _common(exp)
    exp.set_defaults(func=run_export)

    dep = actions.add_parser(
        "deploy",
        help="push data source and dashboards to a running Grafana",
        description=DEPLOY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dep.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    dep.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    _common(dep)
    dep.set_defaults(func=run_deploy)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config ([influxdb] is used for the data source)")
    p.add_argument(
        "--timezone",
        default="UTC",
        help="IANA time zone that defines the wearers' days and weeks (default: %(default)s)",
    )


def _settings(args: argparse.Namespace, dashboards_path: str | None = None) -> ExportSettings:
    from dashboards.build import ExportSettings

    cfg = load_config(args.config)
    settings = ExportSettings(
        influx_url=cfg.influxdb.url,
        database=cfg.influxdb.database,
        username=cfg.influxdb.username,
        timezone=args.timezone,
    )
    if dashboards_path:
        settings = dataclasses.replace(settings, dashboards_path=dashboards_path)
    return settings


def run_export(args: argparse.Namespace) -> int:
    from dashboards import build

    for path in build.write(args.out, _settings(args, args.dashboards_path)):
        print(path)
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    from dashboards.deploy import deploy

    result = deploy(args.url, _settings(args), timeout_s=args.timeout)
    print(f"data source postmon-influxdb: {result.datasource}")
    print(f"folder postmon: {result.folder}")
    for uid, url in result.dashboards.items():
        print(f"dashboard {uid}: {args.url.rstrip('/')}{url}")
    return 0

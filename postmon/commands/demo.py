"""``postmon demo``: simulated wearers through the real stack; results in out/."""

from __future__ import annotations

import argparse
from pathlib import Path

from postmon.config import load_config
from postmon.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="simulated wearers through the whole real stack; dashboards + reports in out/",
        description=(
            "Start several simulated wearers (different working-day profiles; MetaMotion, "
            "Movesense and WitMotion sensors as real GATT servers on an in-process bumble "
            "BLE stack) and stream a working day each, in accelerated sensor time, through "
            "the collector (unmodified bleak.BleakClient), per-wearer analysis and nudges, "
            "MQTT (Mosquitto) and shared-subscription ingest workers into InfluxDB. Shows a "
            "live view, then writes Grafana dashboards + provisioning and one therapist "
            "report per wearer. Needs the local services (`make services-up`)."
        ),
    )
    p.add_argument("--config", help="TOML config (InfluxDB/MQTT addresses); defaults otherwise")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    p.add_argument("--wearers", type=int, default=4, help="simulated wearers (default 4)")
    p.add_argument(
        "--hours",
        type=float,
        default=1.0,
        help="sensor hours per wearer; each wearer's working-day profile is compressed into "
        "them (default 1; --hours 8 streams a real-length day, ~15x longer)",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--no-live", action="store_true", help="no live terminal view")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from postmon.demo import DemoSettings, run_demo

    if not 1 <= args.wearers <= 50:
        raise ConfigError(f"--wearers {args.wearers}: choose 1..50")
    if not 0.05 <= args.hours <= 24:
        raise ConfigError(f"--hours {args.hours}: choose 0.05..24")
    cfg = load_config(args.config)
    res = run_demo(
        cfg,
        DemoSettings(
            wearers=args.wearers,
            hours=args.hours,
            seed=args.seed,
            out=args.out,
            live=not args.no_live,
        ),
    )
    print()
    print(
        f"demo done: {len(res.wearers)} wearers x {res.sensor_s / 3600:.1f} h of sensor time "
        f"in {res.wall_s:.0f} s wall time"
    )
    for w in res.wearers:
        print(f"  {w}: {res.epochs[w]} epochs stored")
    print(f"  nudges: {res.nudges} sent, {res.nudges_delivered} confirmed delivered")
    print("where to look:")
    for r in res.reports:
        print(f"  therapist report  {r}")
    print(f"  Grafana           {args.out / 'grafana'}  (dashboards + provisioning)")
    print(
        f"  InfluxDB          {cfg.influxdb.url} database {cfg.influxdb.database!r} "
        "(try: SHOW MEASUREMENTS)"
    )
    return 0

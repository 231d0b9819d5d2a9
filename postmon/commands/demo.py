"""``postmon demo``: simulated wearers through the real stack; results in out/."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from postmon.config import load_config
from postmon.errors import ConfigError

_CHATTY_LOGGERS = (
    "bumble",
    "collector",
    "firmware_sim",
    "postmon.bus",
    "postmon.nudges",
    "postmon.service",
    "postmon.store",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="simulated wearers through the whole real stack; dashboards + reports in out/",
        description=(
            "Start several simulated wearers (different working-day profiles; one MetaMotion "
            "with its vibration motor, WitMotion and Movesense sensors, all real GATT servers "
            "on an in-process bumble BLE stack) and stream a full working day each, in "
            "accelerated sensor time, through the collector (unmodified bleak.BleakClient), "
            "per-wearer analysis and nudges, MQTT (Mosquitto) and shared-subscription ingest "
            "workers into InfluxDB. The wearers are split over one edge process per CPU core. "
            "Shows a live view, then writes Grafana dashboards + provisioning and one "
            "therapist report per wearer. Needs the local services (`make services-up`)."
        ),
    )
    p.add_argument("--config", help="TOML config (InfluxDB/MQTT addresses); defaults otherwise")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    p.add_argument("--wearers", type=int, default=5, help="simulated wearers (default 5)")
    p.add_argument(
        "--hours",
        type=float,
        default=8.0,
        help="sensor hours per wearer (default 8: a working day)",
    )
    p.add_argument(
        "--haptic-hours",
        type=float,
        default=None,
        help="sensor hours of the MetaMotion wearer, whose link costs ~5x the CPU of the "
        "others per hour (default: --hours, a full day; 4 halves its share of the run)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=25.0,
        help="sample rate asked of each sensor; each uses its nearest supported rate "
        "(default 25: WitMotion 20, Movesense 26, MetaMotion 25 Hz)",
    )
    p.add_argument(
        "--processes", type=int, default=0, help="edge processes (default: one per CPU core)"
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
    if args.haptic_hours is not None and not 0.05 <= args.haptic_hours <= 24:
        raise ConfigError(f"--haptic-hours {args.haptic_hours}: choose 0.05..24")
    if not 20 <= args.rate <= 200:
        raise ConfigError(f"--rate {args.rate}: choose 20..200 Hz (the analysis needs >= 20)")
    if not 0 <= args.processes <= 64:
        raise ConfigError(f"--processes {args.processes}: choose 0 (one per core)..64")
    cfg = load_config(args.config)
    if not getattr(args, "verbose", 0):
        # The live view (or its progress lines) replaces the per-sensor status
        # and per-nudge log lines, which over a working day run to thousands;
        # warnings and errors still show. -v brings them back.
        for name in _CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    res = run_demo(
        cfg,
        DemoSettings(
            wearers=args.wearers,
            hours=args.hours,
            rate_hz=args.rate,
            haptic_hours=args.haptic_hours,
            processes=args.processes,
            seed=args.seed,
            out=args.out,
            live=not args.no_live,
        ),
    )
    print()
    cpu = " + ".join(f"{c:.0f}" for c in res.edge_cpu_s)
    print(
        f"demo done: {len(res.wearers)} wearers, up to {res.sensor_s / 3600:.1f} h of sensor "
        f"time each, in {res.wall_s:.0f} s wall time ({res.processes} edge process(es), "
        f"CPU {cpu} s)"
    )
    for p in res.plans:
        print(
            f"  {p.wearer}: {p.profile:17} {p.device:10} {p.placement:10} {p.hours:g} h  "
            f"{res.epochs.get(p.wearer, 0)} epochs stored"
        )
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

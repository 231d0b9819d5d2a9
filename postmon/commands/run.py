"""``postmon run``: the whole service on one host.

Collector (real sensors from the pairing table, or ``--simulate N``) ->
per-wearer analysis and nudges -> the in-process bus straight into the
InfluxDB writer (or MQTT when ``transport = "mqtt"``). SIGINT/SIGTERM stop
it gracefully: sensors are unsubscribed, pending epochs decided, and
everything accepted is written or spooled before exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from postmon.config import Config, load_config
from postmon.errors import ConfigError

log = logging.getLogger("postmon.run")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the whole service on one host (collector, analysis, nudges, storage)",
        description=(
            "Stream every paired sensor ([[sensors]] in the config), analyse each wearer's "
            "posture and activity second by second, nudge after long static periods, and "
            "store epochs, events, nudges, daily summaries and device status in InfluxDB. "
            "Results go through the in-process bus by default, or MQTT to `postmon ingest` "
            'workers when the config says transport = "mqtt". Stop with Ctrl-C or SIGTERM: '
            "nothing accepted is lost (it is written, or spooled to disk and replayed)."
        ),
        epilog="examples:\n  postmon run --config postmon.toml\n"
        "  postmon run --simulate 2 --speed 60 --duration 2h\n\n"
        'simulated sensors in the pairing table: a row with simulate = "<day profile>" '
        "(desk_worker, nurse, ...) and its device type runs a simulated sensor worn by a "
        "simulated wearer instead of connecting to the address (at --speed).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML config file (see postmon.example.toml)")
    p.add_argument("--simulate", type=int, metavar="N", help="N simulated sensors instead")
    p.add_argument(
        "--speed", type=float, default=1.0, help="simulation: sensor seconds per wall second"
    )
    p.add_argument("--duration", metavar="SECONDS", help="stop after this long (e.g. 90s, 2h)")
    p.add_argument("--seed", type=int, default=0, help="simulation: random seed")
    p.add_argument(
        "--summary-json",
        metavar="FILE",
        help="on exit, write what was produced (epochs per wearer, nudges) as JSON",
    )
    p.set_defaults(func=run)


def make_bus(cfg: Config, stack: contextlib.ExitStack) -> Any:
    """The configured bus: in-process into a Writer, or an MQTT publisher."""
    if cfg.transport == "mqtt":
        from postmon.bus.mqtt import MqttPublisher

        pub = MqttPublisher(cfg.mqtt, collector_id=f"{cfg.site}-edge", site=cfg.site).start()
        stack.callback(pub.close)
        return pub
    from postmon.bus.base import InProcessBus
    from postmon.store.writer import Writer

    writer = Writer(cfg.influxdb).start()
    stack.callback(writer.close)
    return InProcessBus(writer)


def nudge_publisher(cfg: Config, stack: contextlib.ExitStack, name: str = "") -> Any:
    """The MQTT channel for nudge messages (None if the broker is away).

    Its client id is ``<[mqtt] client_id or postmon-nudges-<host>>-<name or site>``:
    two services on one host must not share one (the broker would drop
    one connection each time the other connects).
    """
    from postmon.bus.mqtt import default_client_id
    from postmon.nudges import PahoNudgePublisher

    pub = PahoNudgePublisher(
        cfg.mqtt, client_id=default_client_id(cfg.mqtt, "nudges", name or cfg.site)
    )
    try:
        pub.start()
    except Exception as exc:  # nudges still vibrate and are stored; apps miss them
        log.warning("MQTT nudge channel unavailable (%s); haptic nudges only", exc)
        return None
    stack.callback(pub.stop)
    return pub


async def _run(args: argparse.Namespace, cfg: Config, duration_s: float | None) -> int:
    from collector.timing import SYSTEM_CLOCK, Clock, as_clock
    from postmon.commands.collect import (
        add_simulated_sensors,
        add_simulated_wearer,
        analysis_settings,
        collector_config,
    )
    from postmon.service import run_edge, wire_edge

    with contextlib.ExitStack() as stack:
        async with contextlib.AsyncExitStack() as astack:
            bus = make_bus(cfg, stack)
            clock: Clock = SYSTEM_CLOCK
            backend = scanner_backend = None
            pairings: Any = cfg.sensors
            if args.simulate or _simulated_rows(cfg):
                from firmware_sim.ble import VirtualAir
                from firmware_sim.clock import SimClock

                sim_clock = SimClock.realtime(args.speed)
                air = await astack.enter_async_context(VirtualAir(sim_clock))
                # simulated wearers wear the sensor where the config says
                worn_at = analysis_settings(cfg).placement
                if args.simulate:
                    pairings = await add_simulated_sensors(
                        air, args.simulate, seed=args.seed, site=cfg.site, placement=worn_at
                    )
                else:  # the pairing table names simulated sensors
                    pairings = [
                        await add_simulated_wearer(
                            air,
                            row.wearer,
                            profile=row.simulate,
                            device=row.device,
                            seed=args.seed + i,
                            rate_hz=collector_config(cfg).rate_hz,
                            site=row.site,
                            placement=row.placement or worn_at,
                        )
                        for i, row in enumerate(cfg.sensors)
                    ]
                backend, scanner_backend = air.client_backend, air.scanner_backend
                clock = as_clock(sim_clock)
            service, collector = wire_edge(
                cfg,
                bus,
                pairings,
                nudge_publisher=nudge_publisher(cfg, stack),
                config=collector_config(cfg),
                clock=clock,
                backend=backend,
                scanner_backend=scanner_backend,
                seed=args.seed,
            )
            log.info("running: %d sensor(s), transport %s", len(pairings), cfg.transport)
            await run_edge(service, collector, clock=clock, duration_s=duration_s)
            ok = await asyncio.to_thread(bus.flush, 60.0)
            log.info(
                "stopped: %d batches analysed, %d wearer(s); all results %s",
                service.batches_in,
                len(service.pipelines),
                "flushed" if ok else "NOT all flushed (kept in the spool, replayed next start)",
            )
            args.produced = {
                "epochs": {p.wearer: p.epochs_out for p in service.pipelines.values()},
                "nudges": len(service.delivery.reports),
            }
            return 0 if ok else 1
    return 1  # pragma: no cover (the with-blocks always return)


def _simulated_rows(cfg: Config) -> bool:
    """Whether the pairing table names simulated sensors (``simulate = "<profile>"``)."""
    return any(row.simulate for row in cfg.sensors)


def _check_simulated_rows(cfg: Config) -> None:
    if not _simulated_rows(cfg):
        return
    from firmware_sim.profiles import PROFILES

    real = [row.address for row in cfg.sensors if not row.simulate]
    if real:
        raise ConfigError(
            f"the pairing table mixes simulated and real sensors ({', '.join(real)} are real)",
            hint="run simulated sensors and real ones in separate `postmon run` processes",
        )
    for row in cfg.sensors:
        if row.simulate not in PROFILES:
            raise ConfigError(
                f"sensor {row.address}: simulate = {row.simulate!r} is not a day profile",
                hint=f"choose one of {', '.join(sorted(PROFILES))}",
            )


def run(args: argparse.Namespace) -> int:
    from postmon.commands.simulate import parse_duration

    cfg = load_config(args.config)
    _check_simulated_rows(cfg)
    if args.simulate is not None and args.simulate < 1:
        raise ConfigError(f"--simulate {args.simulate}: give a number of sensors >= 1")
    if not args.simulate and not cfg.sensors:
        raise ConfigError(
            "no sensors to run with",
            hint="list them as [[sensors]] rows in the config file, or try --simulate N",
        )
    if args.speed <= 0:
        raise ConfigError(f"--speed {args.speed}: must be > 0")
    duration_s = parse_duration(args.duration) if args.duration else None
    rc = asyncio.run(_run(args, cfg, duration_s))
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(getattr(args, "produced", {})))
    return rc

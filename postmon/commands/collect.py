"""``postmon collect``: stream paired BLE sensors into SampleBatches (the edge).

Real sensors come from the ``[[sensors]]`` pairing table of the config file
and use bleak's platform backend. ``--simulate N`` instead starts N simulated
sensors of mixed types (MetaMotion, Movesense, WitMotion) worn by simulated
wearers, as real GATT servers on an in-process bumble BLE stack, and streams
them through the same collector code and the unmodified ``bleak.BleakClient``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from postmon.config import Config, SensorPairing, from_table, load_config
from postmon.errors import ConfigError

if TYPE_CHECKING:
    from analysis.contracts import SampleBatch
    from collector.collector import Collector
    from collector.config import CollectorConfig
    from collector.session import SessionStatus

log = logging.getLogger("postmon.collect")

#: Device types of simulated sensors, in turn (one of each before repeating).
SIM_KINDS: tuple[str, ...] = ("metamotion", "movesense", "witmotion")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "collect",
        help="stream BLE sensors (real or simulated) into sample batches",
        description=(
            "Connect to every sensor of the pairing table ([[sensors]] in the config), "
            "start its stream, reconstruct per-sample timestamps, and hand 1-s sample "
            "batches on; reconnects with backoff, watches silent sensors, reads battery, "
            "and logs each sensor's rate, gaps, losses and battery every status interval. "
            "With --simulate N, N simulated sensors of mixed types worn by simulated "
            "wearers stream over an in-process BLE stack instead. Ctrl-C (or SIGTERM) "
            "stops every sensor cleanly."
        ),
        epilog="examples:\n  postmon collect --config postmon.toml\n"
        "  postmon collect --simulate 6 --speed 10 --duration 10m",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML config ([[sensors]] pairing table, [collector])")
    p.add_argument(
        "--simulate",
        type=int,
        metavar="N",
        help="stream N simulated sensors instead of real ones",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulation: sensor seconds per wall second (default 1 = real time)",
    )
    p.add_argument(
        "--virtual",
        action="store_true",
        help="simulation: run sensor time as fast as possible (needs --duration)",
    )
    p.add_argument(
        "--duration",
        metavar="SECONDS",
        help="stop after this long (seconds, or 90s, 30m, 8h); default: until Ctrl-C",
    )
    p.add_argument("--seed", type=int, default=0, help="simulation: random seed (default 0)")
    p.add_argument("--print-batches", action="store_true", help="print one line per sample batch")
    p.set_defaults(func=run)


def collector_config(cfg: Config) -> CollectorConfig:
    """The validated ``[collector]`` table."""
    from collector.config import CollectorConfig

    return from_table(CollectorConfig, cfg.collector, "collector")


async def add_simulated_sensors(
    air: Any, n: int, *, seed: int = 0, duration_s: float = 8 * 3600.0, site: str = "default"
) -> list[SensorPairing]:
    """Power on ``n`` simulated sensors on ``air`` (a ``firmware_sim.ble.VirtualAir``).

    Types alternate (MetaMotion, Movesense, WitMotion); each is worn by a
    simulated wearer (``firmware_sim.simulator.WearerStream``) with the
    day profiles in turn. Returns their pairing rows (wearers ``sim01``...).
    """
    from firmware_sim.profiles import PROFILES
    from firmware_sim.simulator import WearerStream

    profiles = sorted(PROFILES)
    pairings = []
    for i in range(n):
        kind = SIM_KINDS[i % len(SIM_KINDS)]
        wearer = WearerStream(
            profiles[i % len(profiles)], seed + i, duration_s=duration_s, device=kind
        )
        dev = await air.add_device(kind, wearer)
        pairings.append(SensorPairing(dev.address, f"sim{i + 1:02d}", site=site, device=kind))
    return pairings


def _print_batch(batch: SampleBatch) -> None:
    t0 = batch.t_ns[0] / 1e9
    gap = f" after {batch.lost_before} lost" if batch.lost_before else ""
    print(
        f"{batch.wearer_id} {batch.sensor_id} #{batch.seq} {len(batch)} samples t0={t0:.3f}{gap}",
        flush=True,
    )


async def _collect(
    args: argparse.Namespace, cfg: Config, duration_s: float | None
) -> tuple[SessionStatus, ...]:
    from collector.collector import Collector
    from collector.timing import SYSTEM_CLOCK, Clock, as_clock

    ccfg = collector_config(cfg)

    async def sink(batch: SampleBatch) -> None:
        if args.print_batches:
            _print_batch(batch)

    async with contextlib.AsyncExitStack() as stack:
        backend: type[Any] | None = None
        scanner_backend: type[Any] | None = None
        clock: Clock = SYSTEM_CLOCK
        if args.simulate:
            from firmware_sim.ble import VirtualAir
            from firmware_sim.clock import SimClock

            sim_clock = SimClock.virtual() if args.virtual else SimClock.realtime(args.speed)
            air = await stack.enter_async_context(VirtualAir(sim_clock))
            stack.push_async_callback(asyncio.sleep, 0.2)  # let the stack settle first
            pairings: Sequence[SensorPairing] = await add_simulated_sensors(
                air,
                args.simulate,
                seed=args.seed,
                duration_s=max(8 * 3600.0, duration_s or 0.0),
                site=cfg.site,
            )
            backend, scanner_backend = air.client_backend, air.scanner_backend
            clock = as_clock(sim_clock)
        else:
            pairings = cfg.sensors
        collector: Collector = Collector(
            pairings,
            sink,
            config=ccfg,
            clock=clock,
            backend=backend,
            scanner_backend=scanner_backend,
            seed=args.seed,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, collector.request_stop)
        log.info("collecting from %d sensor(s)", len(pairings))
        task = asyncio.create_task(collector.run())
        if duration_s is not None:

            async def stop_later() -> None:
                await clock.sleep(duration_s)
                collector.request_stop()

            timer = asyncio.create_task(stop_later())
            stack.callback(timer.cancel)
        await task
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        return collector.status()


def run(args: argparse.Namespace) -> int:
    from collector.collector import format_status
    from postmon.commands.simulate import parse_duration

    cfg = load_config(args.config)
    if args.simulate is not None and args.simulate < 1:
        raise ConfigError(f"--simulate {args.simulate}: give a number of sensors >= 1")
    if not args.simulate and not cfg.sensors:
        raise ConfigError(
            "no sensors to collect from",
            hint="list them as [[sensors]] rows (address, wearer, device) in the config "
            "file (see postmon.example.toml), or try --simulate N",
        )
    if args.speed <= 0:
        raise ConfigError(f"--speed {args.speed}: must be > 0")
    duration_s = parse_duration(args.duration) if args.duration else None
    if args.virtual and duration_s is None:
        raise ConfigError("--virtual runs sensor time as fast as possible: give --duration")
    statuses = asyncio.run(_collect(args, cfg, duration_s))
    for s in statuses:
        print(format_status(s), file=sys.stdout)
    return 0

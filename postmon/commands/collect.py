"""``postmon collect``: stream paired BLE sensors into SampleBatches (the edge).

Real sensors come from the ``[[sensors]]`` pairing table of the config file
and use bleak's platform backend. ``--simulate N`` instead starts N simulated
sensors of mixed types (MetaMotion, Movesense, WitMotion) worn by simulated
wearers, as real GATT servers on an in-process bumble BLE stack, and streams
them through the same collector code and the unmodified ``bleak.BleakClient``.

This is the edge of the data flow: each wearer's batches go through their
own streaming analyzer (per-wearer state lives where the stream is), and the
1-s epochs, events and every sensor's link status are published on the bus
(MQTT; ``postmon ingest`` writes them to InfluxDB). ``--raw`` also publishes
the samples themselves (``imu_raw``, kept 7 days).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from postmon.config import Config, SensorPairing, from_table, load_config, sensor_placements
from postmon.errors import ConfigError

if TYPE_CHECKING:
    from analysis.contracts import SampleBatch
    from analysis.settings import AnalysisSettings
    from analysis.stream import AnalysisOutput, WearerAnalyzer
    from collector.collector import Collector
    from collector.config import CollectorConfig
    from collector.session import SessionStatus
    from postmon.bus.base import Bus

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
    p.add_argument(
        "--scan",
        type=float,
        metavar="SECONDS",
        help="only list supported sensors advertising nearby (for the pairing table), "
        "scanning this long",
    )
    p.add_argument("--print-batches", action="store_true", help="print one line per sample batch")
    p.add_argument(
        "--bus",
        choices=("mqtt", "none"),
        default="mqtt",
        help="where epochs, events and sensor status go: the MQTT broker of the config "
        "([mqtt]; spooled to disk while it is away), or nowhere (try-out); default mqtt",
    )
    p.add_argument(
        "--raw", action="store_true", help="also publish the raw samples (imu_raw, 7 days)"
    )
    p.add_argument(
        "--no-analysis",
        action="store_true",
        help="publish sensor status (and --raw samples) only, no epochs or events",
    )
    p.set_defaults(func=run)


def _collector_id(cfg: Config) -> str:
    """Names this collector on the bus (presence topic, spool folder)."""
    import socket

    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"collect-{host or 'edge'}"


def analysis_settings(cfg: Config) -> AnalysisSettings:
    """The validated ``[analysis]`` table."""
    from analysis.settings import AnalysisSettings

    return from_table(AnalysisSettings, cfg.analysis, "analysis")


def collector_config(cfg: Config) -> CollectorConfig:
    """The validated ``[collector]`` table."""
    from collector.config import CollectorConfig

    return from_table(CollectorConfig, cfg.collector, "collector")


async def add_simulated_wearer(
    air: Any,
    wearer: str,
    *,
    profile: str,
    device: str,
    seed: int,
    duration_s: float = 8 * 3600.0,
    rate_hz: float | None = None,
    site: str = "default",
    placement: str = "upper_back",
) -> SensorPairing:
    """Power on one simulated sensor on ``air`` worn by a simulated wearer.

    ``rate_hz`` is the rate the collector will ask for: the wearer's motion
    is then generated at the rate the device will stream (the nearest it
    offers, as the collector picks it), so no sample is made only to be
    interpolated away; None keeps the device's default rate. After
    ``duration_s`` (the working day) the sensor lies on a desk. Returns the
    sensor's pairing row, which says where the sensor is worn
    (``placement``: upper_back or lower_back).
    """
    from collector.protocols import PROTOCOLS
    from firmware_sim.simulator import WearerStream

    rate = None if rate_hz is None else PROTOCOLS[device].nearest_rate_hz(rate_hz)
    # a minute of motion per generation call: its fixed cost is then small
    stream = WearerStream(
        profile,
        seed,
        duration_s=duration_s,
        placement=placement.removesuffix("_back"),
        device=device,
        rate_hz=rate,
        block_s=60.0,
    )
    dev = await air.add_device(device, stream)
    return SensorPairing(dev.address, wearer, site=site, device=device, placement=placement)


async def add_simulated_sensors(
    air: Any,
    n: int,
    *,
    seed: int = 0,
    duration_s: float = 8 * 3600.0,
    site: str = "default",
    rate_hz: float | None = None,
    placement: str = "upper_back",
) -> list[SensorPairing]:
    """Power on ``n`` simulated sensors on ``air`` (a ``firmware_sim.ble.VirtualAir``).

    Types alternate (MetaMotion, Movesense, WitMotion); each is worn by a
    simulated wearer (``firmware_sim.simulator.WearerStream``) with the day
    profiles in turn, worn at ``placement``. ``rate_hz``: see
    :func:`add_simulated_wearer`. Returns their pairing rows (wearers ``sim01``...).
    """
    from firmware_sim.profiles import PROFILES

    profiles = sorted(PROFILES)
    return [
        await add_simulated_wearer(
            air,
            f"sim{i + 1:02d}",
            profile=profiles[i % len(profiles)],
            device=SIM_KINDS[i % len(SIM_KINDS)],
            seed=seed + i,
            duration_s=duration_s,
            rate_hz=rate_hz,
            site=site,
            placement=placement,
        )
        for i in range(n)
    ]


@dataclass
class EdgePipeline:
    """What the edge does with each wearer's batches: analyse, publish.

    One ``WearerAnalyzer`` per wearer (created on the first batch); the
    epochs and events it decides, each sensor's status and, with ``raw``,
    the batches themselves go to ``bus`` (None: nowhere). Call
    :meth:`finish` at the end so the analyzers flush what they still hold.
    """

    bus: Bus | None
    sites: dict[str, str]  # wearer -> site
    analyze: bool = True
    raw: bool = False
    settings: AnalysisSettings | None = None
    #: sensor address -> where it is worn, overriding ``settings.placement``
    placements: dict[str, str] = field(default_factory=dict)
    epochs: int = 0
    events: int = 0
    _analyzers: dict[str, WearerAnalyzer] = field(default_factory=dict)
    _sensor: dict[str, str] = field(default_factory=dict)

    def _site(self, wearer: str) -> str:
        return self.sites.get(wearer, "default")

    async def on_batch(self, batch: SampleBatch) -> None:
        if self.bus is not None and self.raw:
            self.bus.publish_raw(self._site(batch.wearer_id), batch.wearer_id, batch)
        if not self.analyze:
            return
        an = self._analyzers.get(batch.wearer_id)
        if an is None:
            from analysis.settings import AnalysisSettings
            from analysis.stream import WearerAnalyzer

            settings = self.settings or AnalysisSettings()
            worn_at = self.placements.get(batch.sensor_id, settings.placement)
            an = self._analyzers[batch.wearer_id] = WearerAnalyzer(
                dataclasses.replace(settings, placement=worn_at)
            )
        self._sensor[batch.wearer_id] = batch.sensor_id
        self._publish(batch.wearer_id, an.feed(batch))

    def _publish(self, wearer: str, out: AnalysisOutput) -> None:
        self.epochs += len(out.epochs)
        self.events += len(out.events)
        if self.bus is None:
            return
        site = self._site(wearer)
        if len(out.epochs):
            self.bus.publish_epochs(site, wearer, self._sensor[wearer], out.epochs)
        if out.events:
            self.bus.publish_events(site, wearer, out.events)

    async def on_status(self, statuses: Sequence[SessionStatus]) -> None:
        if self.bus is None:
            return
        from postmon.store.records import DeviceStatus

        for s in statuses:
            if s.device_type == "unknown":
                continue  # never connected: nothing to say about a link
            self.bus.publish_status(
                s.site,
                s.wearer_id,
                [
                    DeviceStatus(
                        time_ns=s.time_ns,
                        sensor=s.sensor_id,
                        device_type=s.device_type,
                        connected=s.connected,
                        battery_pct=s.battery_pct,
                        rate_hz=s.rate_hz if s.connected else None,
                        lost_samples=s.lost_samples,
                        gaps=s.gaps,
                        reconnects=s.reconnects,
                    )
                ],
            )

    def finish(self) -> None:
        """Flush every analyzer (end of the run)."""
        for wearer, an in self._analyzers.items():
            self._publish(wearer, an.finish())


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
    bus: Bus | None = None
    async with contextlib.AsyncExitStack() as stack:
        if args.bus == "mqtt":
            from postmon.bus.mqtt import MqttPublisher

            publisher = MqttPublisher(cfg.mqtt, collector_id=_collector_id(cfg), site=cfg.site)
            publisher.start()
            stack.callback(publisher.close)  # flushes, spools what is left
            bus = publisher
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
                placement=analysis_settings(cfg).placement,
            )
            backend, scanner_backend = air.client_backend, air.scanner_backend
            clock = as_clock(sim_clock)
        else:
            pairings = cfg.sensors
        edge = EdgePipeline(
            bus,
            {p.wearer: p.site for p in pairings},
            analyze=not args.no_analysis,
            raw=args.raw,
            settings=analysis_settings(cfg),
            placements=sensor_placements(pairings),
        )

        async def sink(batch: SampleBatch) -> None:
            if args.print_batches:
                _print_batch(batch)
            await edge.on_batch(batch)

        collector: Collector = Collector(
            pairings,
            sink,
            config=ccfg,
            clock=clock,
            backend=backend,
            scanner_backend=scanner_backend,
            status_sink=edge.on_status,
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
        edge.finish()
        log.info("published %d epochs and %d events", edge.epochs, edge.events)
        return collector.status()


async def _scan(args: argparse.Namespace) -> list[str]:
    """Lines describing the supported sensors in range."""
    from collector.discovery import Discovery

    async with contextlib.AsyncExitStack() as stack:
        scanner_backend: type[Any] | None = None
        if args.simulate:
            from firmware_sim.ble import VirtualAir
            from firmware_sim.clock import SimClock

            air = await stack.enter_async_context(VirtualAir(SimClock.virtual()))
            await add_simulated_sensors(air, args.simulate, seed=args.seed)
            scanner_backend = air.scanner_backend
        found = await Discovery(scanner_backend).scan(args.scan)
    return [
        f"{s.device.address}  {kind:<10} rssi {s.rssi if s.rssi is not None else '?':>4}  "
        f"{s.name or ''}"
        for s, kind in found
    ]


def run(args: argparse.Namespace) -> int:
    from collector.collector import format_status
    from postmon.commands.simulate import parse_duration

    if args.scan is not None:
        if args.scan <= 0:
            raise ConfigError(f"--scan {args.scan}: give a scan time in seconds > 0")
        lines = asyncio.run(_scan(args))
        for line in lines:
            print(line)
        if not lines:
            print("no supported sensor found: is it charged, in range, not connected elsewhere?")
        return 0
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

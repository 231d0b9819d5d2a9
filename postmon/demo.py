"""``postmon demo``: simulated wearers through the whole real stack on one host.

Several simulated wearers (different day profiles, MetaMotion / Movesense /
WitMotion sensors) stream a working day each in accelerated sensor time:

    bumble BLE (real GATT servers) -> unmodified bleak.BleakClient -> collector
    -> per-wearer analysis + nudges -> MQTT (Mosquitto) -> shared-subscription
    ingest workers -> InfluxDB

with a live terminal view; at the end it writes the Grafana dashboards and
provisioning files and one therapist report per wearer under ``out/``, and
prints where to look.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postmon.config import Config
from postmon.errors import ServiceUnavailable

log = logging.getLogger("postmon.demo")


@dataclass(frozen=True)
class DemoSettings:
    wearers: int = 4
    hours: float = 1.0  # sensor time per wearer: a working day's profile, compressed
    ingest_workers: int = 2
    seed: int = 7
    out: Path = Path("out")
    live: bool = True


@dataclass(frozen=True)
class DemoResult:
    wearers: tuple[str, ...]
    epochs: dict[str, int]
    nudges: int
    nudges_delivered: int
    reports: tuple[Path, ...]
    dashboards: tuple[Path, ...]
    wall_s: float
    sensor_s: float


def _check_services(cfg: Config) -> None:
    from postmon.services import influx_ping, mqtt_roundtrip

    port = int(cfg.influxdb.url.rsplit(":", 1)[-1].split("/")[0])
    if not influx_ping(port):
        raise ServiceUnavailable(
            f"InfluxDB is not answering at {cfg.influxdb.url}",
            hint="start the local services with `make services-up` (or `postmon services up`)",
        )
    if not mqtt_roundtrip(cfg.mqtt.port, cfg.mqtt.host):
        raise ServiceUnavailable(
            f"the MQTT broker at {cfg.mqtt.host}:{cfg.mqtt.port} is not routing messages",
            hint="start the local services with `make services-up` (or `postmon services up`)",
        )


def _live_line(views: list[Any], sensor_s: float, wall_s: float) -> str:
    rows = [
        f"  sensor time {sensor_s / 3600:5.2f} h   wall {wall_s:5.0f} s   "
        f"speed x{sensor_s / max(wall_s, 1e-9):,.0f}",
        f"  {'wearer':8} {'sensor':10} {'posture':9} {'still':>7} {'nudges':>7} "
        f"{'moved':>6} {'link':10} {'lost':>5} {'batt':>5}",
    ]
    for v in views:
        batt = f"{v.battery_pct:.0f}%" if v.battery_pct is not None else "-"
        rows.append(
            f"  {v.wearer:8} {v.device[:10]:10} {v.activity:9} {v.static_min:5.1f}m "
            f"{v.nudges:7d} {v.answered:6d} {v.link[:10]:10} {v.lost_samples:5d} {batt:>5}"
        )
    return "\n".join(rows)


async def _live_view(service: Any, clock: Any, t0_ns: int, stop: asyncio.Event) -> None:
    tty = sys.stdout.isatty()
    wall0 = time.monotonic()
    last_print = 0.0
    lines = 0
    while not stop.is_set():
        await asyncio.sleep(0.5)
        wall = time.monotonic() - wall0
        if not tty and wall - last_print < 10.0:
            continue  # a log file gets a snapshot every 10 s, not a flood
        last_print = wall
        text = _live_line(list(service.views.values()), (clock.now_ns() - t0_ns) / 1e9, wall)
        if tty and lines:
            sys.stdout.write(f"\x1b[{lines}F\x1b[J")
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        lines = text.count("\n") + 1


async def _run_demo(cfg: Config, ds: DemoSettings) -> DemoResult:
    from collector.collector import Collector
    from collector.timing import as_clock
    from firmware_sim.ble import VirtualAir
    from firmware_sim.clock import SimClock
    from postmon.bus.mqtt import IngestWorker, MqttPublisher
    from postmon.commands.collect import add_simulated_sensors, collector_config
    from postmon.commands.run import nudge_publisher
    from postmon.service import EdgeService, run_edge
    from postmon.store.writer import Writer

    wall0 = time.monotonic()
    duration_s = ds.hours * 3600.0
    with contextlib.ExitStack() as stack:
        writer = Writer(cfg.influxdb, name="demo").start()
        stack.callback(writer.close)
        workers = []
        for i in range(ds.ingest_workers):
            w = IngestWorker(cfg.mqtt, writer, group="postmon-demo", worker_id=str(i)).start()
            stack.callback(w.stop)
            w.wait_subscribed()
            workers.append(w)
        bus = MqttPublisher(cfg.mqtt, collector_id="demo-edge", site=cfg.site).start()
        stack.callback(bus.close)
        # The day starts yesterday 08:00 UTC: recent enough for every retention
        # policy and for the dashboards' default time ranges.
        day0 = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        start = dt.datetime(day0.year, day0.month, day0.day, 8, tzinfo=dt.UTC)
        sim_clock = SimClock.virtual(start_ns=int(start.timestamp()) * 1_000_000_000)
        async with VirtualAir(sim_clock) as air:
            pairings = await add_simulated_sensors(
                air, ds.wearers, seed=ds.seed, duration_s=duration_s, site=cfg.site
            )
            _wire_nudge_responses(air)
            clock = as_clock(sim_clock)
            service: EdgeService | None = None

            async def sink(batch: Any) -> None:
                assert service is not None
                await service.on_batch(batch)

            async def status_sink(statuses: Any) -> None:
                assert service is not None
                await service.on_status(statuses)

            collector = Collector(
                pairings,
                sink,
                config=collector_config(cfg),
                clock=clock,
                backend=air.client_backend,
                scanner_backend=air.scanner_backend,
                status_sink=status_sink,
                seed=ds.seed,
            )
            service = EdgeService(
                cfg, bus, haptic=collector, nudge_publisher=nudge_publisher(cfg, stack)
            )
            stop = asyncio.Event()
            t0 = sim_clock.now_ns()
            view = (
                asyncio.create_task(_live_view(service, sim_clock, t0, stop)) if ds.live else None
            )
            try:
                await run_edge(service, collector, clock=clock, duration_s=duration_s)
            finally:
                stop.set()
                if view is not None:
                    await view
            sensor_s = (sim_clock.now_ns() - t0) / 1e9
            day = dt.datetime.fromtimestamp(t0 / 1e9, tz=dt.UTC).date()
        log.info("draining MQTT -> ingest workers -> InfluxDB ...")
        await asyncio.to_thread(bus.flush, 120.0)
        expected = {p.wearer: p.epochs_out for p in service.pipelines.values()}
        await asyncio.to_thread(_wait_ingested, workers, writer)
        reports, dashboards = _outputs(cfg, ds, sorted(expected), day)
        reps = service.delivery.reports
        return DemoResult(
            wearers=tuple(sorted(expected)),
            epochs=expected,
            nudges=len(reps),
            nudges_delivered=sum(1 for r in reps if r.delivered),
            reports=tuple(reports),
            dashboards=tuple(dashboards),
            wall_s=time.monotonic() - wall0,
            sensor_s=sensor_s,
        )


def _wire_nudge_responses(air: Any) -> None:
    """Simulated wearers feel their MetaMotion's motor and may get up."""
    for dev in air.devices:
        add = getattr(dev, "add_haptic_listener", None)
        wearer = getattr(dev, "source", None)
        if add is None or wearer is None or not hasattr(wearer, "nudge"):
            continue
        last = [-1e9]

        def felt(_dev: Any, _event: Any, wearer: Any = wearer, last: list[float] = last) -> None:
            now = float(wearer.time_s)
            if now - last[0] > 30.0:  # one pattern = several pulses = one nudge felt
                last[0] = now
                wearer.nudge(now)

        add(felt)


def _wait_ingested(workers: list[Any], writer: Any) -> None:
    """Until the broker has handed everything over and the writer made it durable."""
    deadline = time.monotonic() + 120.0
    last = -1
    while time.monotonic() < deadline:
        stats = [w.stats() for w in workers]
        received = sum(s.received for s in stats)
        if received == last and all(s.pending_acks == 0 for s in stats):
            break  # nothing new arrived for a while and everything handed over is durable
        last = received
        time.sleep(1.0)
    writer.flush(60.0, include_spool=True)


def _outputs(
    cfg: Config, ds: DemoSettings, wearers: list[str], day: dt.date
) -> tuple[list[Path], list[Path]]:
    from dashboards import build
    from dashboards.report import load, render

    settings = build.ExportSettings(
        influx_url=cfg.influxdb.url, database=cfg.influxdb.database, timezone="UTC"
    )
    dash_paths = build.write(ds.out / "grafana", settings)
    reports = []
    for wearer in wearers:
        data = load.load(
            cfg.influxdb,
            site=cfg.site,
            wearer=wearer,
            date_from=day - dt.timedelta(days=6),
            date_to=day,
            timezone="UTC",
        )
        path = ds.out / "reports" / f"{wearer}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render.render(data, dt.datetime.now(dt.UTC)), encoding="utf-8")
        reports.append(path)
    return reports, dash_paths


def run_demo(cfg: Config, ds: DemoSettings) -> DemoResult:
    _check_services(cfg)
    # Accelerated sensor time: 10-s batches keep the per-call overhead of the
    # analysis low (results are the same for any batch size), and the day is
    # compressed, so the static timer uses its shortest allowed setting.
    collector = {"batch_s": 10.0, "tick_s": 1.0, **cfg.collector}
    nudges = {"static_timer_min": 10, **cfg.nudges}
    cfg = dataclasses.replace(cfg, transport="mqtt", collector=collector, nudges=nudges)
    return asyncio.run(_run_demo(cfg, ds))

"""``postmon demo``: simulated wearers through the whole real stack on one host.

Several simulated wearers (different day profiles; one MetaMotion for its
vibration motor, the others WitMotion and Movesense sensors) stream a full
working day each in accelerated sensor time:

    bumble BLE (real GATT servers) -> unmodified bleak.BleakClient -> collector
    -> per-wearer analysis + nudges -> MQTT (Mosquitto) -> shared-subscription
    ingest workers -> InfluxDB

with a live terminal view; at the end it writes the Grafana dashboards and
provisioning files and one therapist report per wearer under ``out/``, and
prints where to look.

The wearers are split over one edge process per CPU core (each with its own
simulated BLE air, collector and analysis: per-wearer state lives where the
stream is, as on collector hosts), all publishing to the broker; this
process runs the ingest workers, the InfluxDB writer and the live view.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import importlib
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postmon.config import Config, SensorPairing
from postmon.errors import PostmonError, Reason, ServiceUnavailable

log = logging.getLogger("postmon.demo")

#: Who the demo wearers are (profile, device), in turn. The first wears the
#: MetaMotion: the only supported sensor with a vibration motor, so its
#: nudges are felt (haptic) and the simulated wearer may answer them.
#: Office work comes twice: it is where long static periods (and so nudges)
#: are most common. A warehouse worker (the sixth) moves too often for one.
LINEUP: tuple[tuple[str, str], ...] = (
    ("desk_worker", "metamotion"),
    ("nurse", "witmotion"),
    ("delivery_driver", "movesense"),
    ("new_parent", "witmotion"),
    ("desk_worker", "movesense"),
    ("warehouse_lifting", "witmotion"),
)
#: Relative CPU cost of a sensor-hour per device type at the demo rate
#: (notifications per second through the BLE stack dominate: MetaMotion
#: sends 3 samples per 20-byte packet, acceleration and rotation apart;
#: WitMotion and Movesense fill an MTU-247 notification). Used to balance
#: the wearers over the edge processes.
COST_WEIGHT: dict[str, float] = {"metamotion": 5.0, "witmotion": 1.0, "movesense": 1.0}


@dataclass(frozen=True)
class DemoSettings:
    """What ``postmon demo`` streams.

    Attributes
    ----------
    wearers:
        Simulated wearers (profiles and devices from :data:`LINEUP`, in turn).
    hours:
        Sensor hours per wearer: a full working day is 8.
    rate_hz:
        Rate asked of every sensor; each streams at its nearest supported
        rate (WitMotion 20 Hz, Movesense 26 Hz, MetaMotion 25 Hz for 25).
    haptic_hours:
        Sensor hours of the MetaMotion wearer; None: ``hours``. Its link
        costs about five times the CPU of the others per hour (3 samples
        per 20-byte notification, acceleration and rotation apart); a
        shorter day for it shortens the whole run.
    processes:
        Edge processes the wearers are split over; 0: one per CPU core.
    ingest_workers:
        Shared-subscription ingest workers (threads of this process).
    seed:
        Random seed of the simulated wearers.
    out:
        Folder for the dashboards and reports.
    live:
        Show the live view (a redrawn table on a terminal, progress lines
        otherwise).
    """

    wearers: int = 5
    hours: float = 8.0
    rate_hz: float = 25.0
    haptic_hours: float | None = None
    processes: int = 0
    ingest_workers: int = 2
    seed: int = 7
    out: Path = Path("out")
    live: bool = True


@dataclass(frozen=True)
class WearerPlan:
    """One simulated wearer of the demo: who, with which sensor worn where, for how long."""

    wearer: str
    profile: str
    device: str
    hours: float
    seed: int
    #: upper_back or lower_back (alternating: the demo shows both)
    placement: str = "upper_back"


@dataclass(frozen=True)
class DemoResult:
    wearers: tuple[str, ...]
    plans: tuple[WearerPlan, ...]
    epochs: dict[str, int]
    nudges: int
    nudges_delivered: int
    reports: tuple[Path, ...]
    dashboards: tuple[Path, ...]
    wall_s: float
    sensor_s: float  # the longest wearer's streamed sensor time
    edge_cpu_s: tuple[float, ...]  # CPU seconds of each edge process
    processes: int


def plan_wearers(ds: DemoSettings) -> list[WearerPlan]:
    """The demo's wearers (``sim01``...): lineup profiles and devices, day lengths."""
    plans = []
    for i in range(ds.wearers):
        profile, device = LINEUP[i % len(LINEUP)]
        if device == "metamotion" and i >= len(LINEUP):
            device = "witmotion"  # one haptic wearer per lineup round is enough
        hours = ds.hours
        if device == "metamotion" and ds.haptic_hours is not None:
            hours = ds.haptic_hours
        placement = "upper_back" if i % 2 == 0 else "lower_back"
        plans.append(WearerPlan(f"sim{i + 1:02d}", profile, device, hours, ds.seed + i, placement))
    return plans


def split_wearers(plans: Sequence[WearerPlan], processes: int) -> list[list[WearerPlan]]:
    """Balance ``plans`` over at most ``processes`` groups by expected CPU cost.

    Longest first, each to the least loaded group (within a few percent of
    the best split for a handful of wearers).
    """
    n = max(1, min(processes, len(plans)))
    groups: list[list[WearerPlan]] = [[] for _ in range(n)]
    load = [0.0] * n
    for p in sorted(plans, key=lambda p: -p.hours * COST_WEIGHT.get(p.device, 1.0)):
        i = load.index(min(load))
        groups[i].append(p)
        load[i] += p.hours * COST_WEIGHT.get(p.device, 1.0)
    return [sorted(g, key=lambda p: p.wearer) for g in groups if g]


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


# ------------------------------------------------------------------ edge side


@dataclass(frozen=True)
class _EdgeDone:
    epochs: dict[str, int]
    nudges: int
    nudges_delivered: int
    sensor_s: float
    cpu_s: float
    flushed: bool
    published: int  # messages the broker acknowledged


async def _edge(
    cfg: Config, plans: Sequence[WearerPlan], start_ns: int, index: int, out: Any
) -> _EdgeDone:
    """One edge process: its wearers' sensors, collector, analysis and nudges."""
    from collector.timing import as_clock
    from firmware_sim.ble import AirConfig, VirtualAir
    from firmware_sim.clock import SimClock
    from postmon.bus.mqtt import MqttPublisher
    from postmon.commands.collect import add_simulated_wearer, collector_config
    from postmon.commands.run import nudge_publisher
    from postmon.service import run_edge, wire_edge

    ccfg = collector_config(cfg)
    edge_id = f"demo-edge-{index + 1}"
    with contextlib.ExitStack() as stack:
        bus = MqttPublisher(cfg.mqtt, collector_id=edge_id, site=cfg.site).start()
        stack.callback(bus.close)
        sim_clock = SimClock.virtual(start_ns=start_ns)
        air = VirtualAir(
            sim_clock, AirConfig(device_batch_s=10.0), first_address=1 + 0x1000 * index
        )
        async with air:
            pairings: list[SensorPairing] = []
            for p in plans:
                pairings.append(
                    await add_simulated_wearer(
                        air,
                        p.wearer,
                        profile=p.profile,
                        device=p.device,
                        seed=p.seed,
                        placement=p.placement,
                        duration_s=p.hours * 3600.0,
                        rate_hz=ccfg.rate_hz,
                        site=cfg.site,
                    )
                )
            _wire_nudge_responses(air)
            clock = as_clock(sim_clock)
            service, collector = wire_edge(
                cfg,
                bus,
                pairings,
                nudge_publisher=nudge_publisher(cfg, stack, f"{edge_id}-nudges"),
                config=ccfg,
                clock=clock,
                backend=air.client_backend,
                scanner_backend=air.scanner_backend,
                seed=plans[0].seed,
            )
            longest_s = max(p.hours for p in plans) * 3600.0
            tasks = [
                asyncio.create_task(_stop_sensor_at(collector, pair.address, p.hours, sim_clock))
                for pair, p in zip(pairings, plans, strict=True)
                if p.hours * 3600.0 < longest_s
            ]
            views = asyncio.create_task(_send_views(service, index, out))
            try:
                await run_edge(
                    service, collector, clock=clock, duration_s=longest_s, install_signals=False
                )
            finally:
                for t in (*tasks, views):
                    t.cancel()
                await asyncio.gather(*tasks, views, return_exceptions=True)
                _put_views(service, index, out)
            sensor_s = (sim_clock.now_ns() - start_ns) / 1e9
        flushed = await asyncio.to_thread(bus.flush, 120.0)
        reps = service.delivery.reports
        return _EdgeDone(
            epochs={p.wearer: p.epochs_out for p in service.pipelines.values()},
            nudges=len(reps),
            nudges_delivered=sum(1 for r in reps if r.delivered),
            sensor_s=sensor_s,
            cpu_s=time.process_time(),
            flushed=flushed,
            published=bus.stats().acked,
        )


async def _stop_sensor_at(collector: Any, address: str, hours: float, clock: Any) -> None:
    """End one wearer's day early (a shorter day than the others in its process)."""
    await clock.sleep(hours * 3600.0)
    session = collector.sessions.get(address)
    if session is not None:
        session.request_stop()


def _put_views(service: Any, index: int, out: Any) -> None:
    rows = [dataclasses.asdict(v) for v in service.views.values()]
    with contextlib.suppress(Exception):
        out.put(("view", index, rows))


async def _send_views(service: Any, index: int, out: Any) -> None:
    while True:
        await asyncio.sleep(0.5)  # wall time: the view is for people
        _put_views(service, index, out)


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


def _edge_main(
    cfg: Config, plans: list[WearerPlan], start_ns: int, index: int, out: Any
) -> None:  # pragma: no cover - runs in a child process (covered by the demo test)
    try:
        done = asyncio.run(_edge(cfg, plans, start_ns, index, out))
    except BaseException as exc:
        out.put(("error", index, "".join(traceback.format_exception(exc))))
        raise
    out.put(("done", index, done))


# ------------------------------------------------------------------ live view


def _live_rows(views: Sequence[dict[str, Any]], start_ns: int) -> list[str]:
    rows = [
        f"  {'wearer':7} {'sensor':10} {'day':>6} {'posture':9} {'still':>6} "
        f"{'nudges':>6} {'moved':>5} {'link':10} {'lost':>5} {'batt':>5}"
    ]
    for v in views:
        batt = f"{v['battery_pct']:.0f}%" if v["battery_pct"] is not None else "-"
        hours = max(0, v["sensor_time_ns"] - start_ns) / 3.6e12
        rows.append(
            f"  {v['wearer']:7} {v['device'][:10]:10} {hours:5.2f}h {v['activity']:9} "
            f"{v['static_min']:5.1f}m {v['nudges']:6d} {v['answered']:5d} "
            f"{v['link'][:10]:10} {v['lost_samples']:5d} {batt:>5}"
        )
    return rows


class _LiveView:
    """A table redrawn in place on a terminal; one progress line now and then otherwise."""

    def __init__(self, start_ns: int, plans: Sequence[WearerPlan], enabled: bool) -> None:
        self.start_ns = start_ns
        self.planned_h = {p.wearer: p.hours for p in plans}
        self.enabled = enabled
        self.tty = sys.stdout.isatty()
        self.views: dict[str, dict[str, Any]] = {}
        self.wall0 = time.monotonic()
        self._lines = 0
        self._last = -1e9

    def update(self, rows: Sequence[dict[str, Any]]) -> None:
        for r in rows:
            self.views[r["wearer"]] = r

    def show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        wall = time.monotonic() - self.wall0
        views = [self.views[w] for w in sorted(self.views)]
        done_h = sum(
            min(max(0, v["sensor_time_ns"] - self.start_ns) / 3.6e12, self.planned_h[v["wearer"]])
            for v in views
        )
        total_h = sum(self.planned_h.values())
        progress = f"{done_h:5.1f} of {total_h:g} sensor hours ({100 * done_h / total_h:3.0f}%)"
        if not self.tty:
            if not force and wall - self._last < 15.0:
                return  # a log gets a line every 15 s, not a flood
            self._last = wall
            parts = ", ".join(
                f"{v['wearer']} {v['activity']} {v['static_min']:.0f}m {v['nudges']}n {v['link']}"
                for v in views
            )
            print(f"demo {wall:4.0f} s  {progress}  {parts}", flush=True)
            return
        if not force and wall - self._last < 0.5:
            return
        self._last = wall
        head = (
            f"  postmon demo   {progress}   wall {wall:4.0f} s   "
            f"x{done_h * 3600 / max(wall, 1e-9):,.0f} real time"
        )
        text = "\n".join([head, *_live_rows(views, self.start_ns)])
        if self._lines:
            sys.stdout.write(f"\x1b[{self._lines}F\x1b[J")
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        self._lines = text.count("\n") + 1


# ------------------------------------------------------------------ central side


#: What the edge processes import: loaded once here before forking, so the
#: children share it instead of each importing scipy, bumble & co. again.
_EDGE_MODULES = (
    "collector.collector",
    "firmware_sim.ble",
    "firmware_sim.devices",
    "firmware_sim.simulator",
    "postmon.bus.mqtt",
    "postmon.commands.collect",
    "postmon.commands.run",
    "postmon.service",
)


def _mp_context() -> Any:
    """fork when this process has no other thread (children share its imports);
    forkserver otherwise (forking a threaded process can copy a held lock)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        for name in _EDGE_MODULES:
            importlib.import_module(name)
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with contextlib.suppress(Exception):
        ctx.set_forkserver_preload(["postmon.demo", *_EDGE_MODULES])
    return ctx


def _demo_config(cfg: Config, ds: DemoSettings) -> Config:
    """The demo's adjustments to ``cfg`` (the user's own settings win)."""
    # 10-s batches keep the per-call cost of the analysis low (its results
    # do not depend on the batch size); a 5-s tick is plenty for them.
    collector = {
        "rate_hz": ds.rate_hz,
        "batch_s": 10.0,
        "tick_s": 10.0,
        "watchdog_s": 30.0,
        **cfg.collector,
    }
    # Unique client ids and short-lived sessions: a demo must neither take
    # over another run's MQTT session (its queued messages and
    # subscriptions) nor leave one behind.
    run_id = f"postmon-demo-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    mqtt = dataclasses.replace(
        cfg.mqtt,
        client_id=cfg.mqtt.client_id or run_id,
        ingest_group=run_id,
        session_expiry_s=min(cfg.mqtt.session_expiry_s, 600.0),
    )
    return dataclasses.replace(cfg, transport="mqtt", collector=collector, mqtt=mqtt)


def run_demo(cfg: Config, ds: DemoSettings) -> DemoResult:
    """Run the demo (see the module docstring); raises if a part fails."""
    _check_services(cfg)
    cfg = _demo_config(cfg, ds)
    plans = plan_wearers(ds)
    processes = ds.processes or (os.cpu_count() or 1)
    groups = split_wearers(plans, processes)
    # The day starts yesterday 08:00 UTC: recent enough for every retention
    # policy and for the dashboards' default time ranges.
    day0 = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start = dt.datetime(day0.year, day0.month, day0.day, 8, tzinfo=dt.UTC)
    start_ns = int(start.timestamp()) * 1_000_000_000
    wall0 = time.monotonic()
    ctx = _mp_context()
    out = ctx.Queue()
    # Edge processes first, before this one starts any thread.
    procs = [
        ctx.Process(
            target=_edge_main,
            args=(cfg, g, start_ns, i, out),
            name=f"postmon-demo-edge-{i + 1}",
            daemon=True,
        )
        for i, g in enumerate(groups)
    ]
    for p in procs:
        p.start()
    try:
        return _central(cfg, ds, plans, procs, out, start_ns, wall0)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(10.0)


def _central(
    cfg: Config,
    ds: DemoSettings,
    plans: list[WearerPlan],
    procs: list[Any],
    out: Any,
    start_ns: int,
    wall0: float,
) -> DemoResult:
    from postmon.bus.mqtt import IngestWorker
    from postmon.store.writer import Writer

    day = dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.UTC).date()
    with contextlib.ExitStack() as stack:
        writer = Writer(cfg.influxdb, name="demo").start()
        stack.callback(writer.close)
        workers = []
        for i in range(ds.ingest_workers):
            w = IngestWorker(
                cfg.mqtt, writer, group=cfg.mqtt.ingest_group, worker_id=str(i)
            ).start()
            stack.callback(w.stop)
            w.wait_subscribed()
            workers.append(w)
        log.info(
            "demo: %d wearers over %d edge process(es): %s",
            len(plans),
            len(procs),
            "; ".join(
                f"{p.wearer} {p.profile} {p.device} {p.placement} {p.hours:g} h" for p in plans
            ),
        )
        view = _LiveView(start_ns, plans, ds.live)
        done = _wait_edges(procs, out, view)
        view.show(force=True)
        if not all(d.flushed for d in done.values()):
            log.warning("an edge process could not flush everything; the rest is in its spool")
        log.info("draining MQTT -> ingest workers -> InfluxDB ...")
        _wait_ingested(workers, writer, sum(d.published for d in done.values()))
    epochs = {w: n for d in done.values() for w, n in d.epochs.items()}
    reports, dashboards = _outputs(cfg, ds, sorted(epochs), day)
    return DemoResult(
        wearers=tuple(sorted(epochs)),
        plans=tuple(plans),
        epochs=epochs,
        nudges=sum(d.nudges for d in done.values()),
        nudges_delivered=sum(d.nudges_delivered for d in done.values()),
        reports=tuple(reports),
        dashboards=tuple(dashboards),
        wall_s=time.monotonic() - wall0,
        sensor_s=max(d.sensor_s for d in done.values()),
        edge_cpu_s=tuple(done[i].cpu_s for i in sorted(done)),
        processes=len(procs),
    )


def _wait_edges(procs: list[Any], out: Any, view: _LiveView) -> dict[int, _EdgeDone]:
    """Collect the edge processes' views and results until every one is done."""
    done: dict[int, _EdgeDone] = {}
    while len(done) < len(procs):
        try:
            kind, index, payload = out.get(timeout=0.5)
        except queue.Empty:
            for i, p in enumerate(procs):
                if i not in done and not p.is_alive() and out.empty():
                    raise PostmonError(
                        f"demo edge process {i + 1} ended (exit code {p.exitcode}) "
                        "without a result",
                        Reason.SERVICE_UNAVAILABLE,
                        hint="see the log above for its error",
                    ) from None
            view.show()
            continue
        if kind == "view":
            view.update(payload)
            view.show()
        elif kind == "done":
            done[index] = payload
        else:
            raise PostmonError(
                f"demo edge process {index + 1} failed:\n{payload}", Reason.SERVICE_UNAVAILABLE
            )
    return done


def _wait_ingested(workers: list[Any], writer: Any, published: int) -> None:
    """Until the ingest workers have taken all ``published`` messages and the
    writer made them durable."""
    deadline = time.monotonic() + 120.0
    last = -1
    while time.monotonic() < deadline:
        stats = [w.stats() for w in workers]
        received = sum(s.received for s in stats)  # (also counts presence messages)
        if received >= published and received == last and all(s.pending_acks == 0 for s in stats):
            break  # everything arrived, nothing more is coming, all handed over is durable
        last = received
        time.sleep(0.5)
    else:
        log.warning("ingest took %d of %d messages in 120 s; the rest stay queued", last, published)
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

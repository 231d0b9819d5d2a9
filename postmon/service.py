"""The edge service: collector -> per-wearer pipeline -> bus, plus nudges.

``EdgeService`` is what ``postmon run`` (one host) and ``postmon collect``
(edge host of a split deployment) run, and what ``postmon demo`` drives
with simulated wearers. It owns no I/O of its own: the collector brings
``SampleBatch``es, the bus takes results away (in-process straight into the
InfluxDB writer, or MQTT to stateless ingest workers), and nudges go out
through ``postmon.nudges.NudgeDelivery`` (haptic where the sensor has a
motor, an MQTT message for every wearer).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from analysis.contracts import Activity, SampleBatch
from analysis.live import NudgeCheck
from analysis.nudge import Nudge
from analysis.settings import AnalysisSettings
from collector.session import SessionStatus
from postmon.bus.base import Bus
from postmon.config import Config, from_table, sensor_placements
from postmon.nudges import NudgeConfig, NudgeDelivery, load_nudge_config
from postmon.pipeline import PipelineOutput, WearerPipeline
from postmon.store.records import DeviceStatus, NudgeRecord

log = logging.getLogger("postmon.service")


class _BusNudgeStore:
    """``NudgeDelivery`` stores records through the bus (so they reach InfluxDB
    the same way as everything else, also across MQTT)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def write_nudges(self, site: str, wearer: str, nudges: Sequence[NudgeRecord]) -> int:
        self.bus.publish_nudges(site, wearer, nudges)
        return len(nudges)


@dataclass
class WearerView:
    """What the live view shows for one wearer (updated as data flows)."""

    wearer: str
    sensor: str
    device: str = "?"
    activity: str = "-"
    static_min: float = 0.0
    nudges: int = 0
    answered: int = 0
    #: live nudges the smoothed analysis confirmed / did not; its own extra ones
    confirmed: int = 0
    unconfirmed: int = 0
    smoothed_only: int = 0
    epochs: int = 0
    sensor_time_ns: int = 0
    link: str = "connecting"
    lost_samples: int = 0
    battery_pct: float | None = None


class EdgeService:
    """Per-wearer analysis and nudges for the batches of one collector.

    Parameters
    ----------
    cfg : the service configuration ([analysis], [nudges], site, mqtt topic root)
    bus : where results go (``InProcessBus`` or ``MqttPublisher``)
    haptic : the collector (its ``haptic_capable``/``play``), or None
    nudge_publisher : MQTT channel for nudge messages, or None
    """

    def __init__(
        self,
        cfg: Config,
        bus: Bus,
        *,
        haptic: Any | None = None,
        nudge_publisher: Any | None = None,
        placements: dict[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        #: sensor address -> where it is worn (``postmon.config.sensor_placements``)
        self.placements = placements if placements is not None else sensor_placements(cfg.sensors)
        self.bus = bus
        self.analysis_settings = from_table(AnalysisSettings, cfg.analysis, "analysis")
        self.nudge_cfg: NudgeConfig = load_nudge_config(cfg.nudges)
        self.tz = self.nudge_cfg.tzinfo
        self.delivery = NudgeDelivery(
            site=cfg.site,
            topic_root=cfg.mqtt.topic_root,
            publisher=nudge_publisher if self.nudge_cfg.mqtt else None,
            haptic=haptic if self.nudge_cfg.haptic else None,
            store=_BusNudgeStore(bus),
            response_window_s=self.nudge_cfg.defaults.response_window_min * 60.0,
            haptic_timeout_s=self.nudge_cfg.confirm_timeout_s,
        )
        self.pipelines: dict[str, WearerPipeline] = {}
        self.views: dict[str, WearerView] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.batches_in = 0
        #: the latest live-vs-smoothed nudge checks (bounded)
        self.nudge_checks: list[NudgeCheck] = []
        self._checks_max = 1024

    # ------------------------------------------------------------ inputs
    def _pipeline(self, batch: SampleBatch) -> WearerPipeline:
        p = self.pipelines.get(batch.sensor_id)
        if p is None:
            worn_at = self.placements.get(batch.sensor_id, self.analysis_settings.placement)
            p = WearerPipeline(
                self.cfg.site,
                batch.wearer_id,
                batch.sensor_id,
                analysis=dataclasses.replace(self.analysis_settings, placement=worn_at),
                nudges=self.nudge_cfg.settings_for(batch.wearer_id),
                tz=self.tz,
            )
            self.pipelines[batch.sensor_id] = p
            self.views[batch.sensor_id] = WearerView(batch.wearer_id, batch.sensor_id)
            log.info("wearer %s: analysis started for sensor %s", batch.wearer_id, batch.sensor_id)
        return p

    async def on_batch(self, batch: SampleBatch) -> None:
        """The collector's batch sink."""
        self.batches_in += 1
        p = self._pipeline(batch)
        out = p.feed(batch)
        view = self.views[batch.sensor_id]
        view.sensor_time_ns = int(batch.t_ns[-1]) if len(batch) else view.sensor_time_ns
        view.link = "streaming"
        self._emit(p, out)

    async def on_status(self, statuses: Sequence[SessionStatus]) -> None:
        """The collector's status sink: link health and battery to the store."""
        for st in statuses:
            view = self.views.get(st.sensor_id)
            if view is not None:
                view.device = st.device_type
                view.link = st.state.name.lower()
                view.lost_samples = st.lost_samples
                view.battery_pct = st.battery_pct
            status = DeviceStatus(
                time_ns=st.time_ns,
                sensor=st.sensor_id,
                device_type=st.device_type,
                connected=st.connected,
                battery_pct=st.battery_pct,
                rate_hz=round(st.rate_hz, 3),
                lost_samples=st.lost_samples,
                gaps=st.gaps,
                reconnects=st.reconnects,
            )
            self.bus.publish_status(st.site, st.wearer_id, [status])

    # ----------------------------------------------------------- outputs
    def _emit(self, p: WearerPipeline, out: PipelineOutput) -> None:
        if not out:
            return
        site, wearer = self.cfg.site, p.wearer
        view = self.views[p.sensor]
        if len(out.epochs):
            self.bus.publish_epochs(site, wearer, p.sensor, out.epochs)
            last = out.epochs[-1]
            view.activity = Activity(int(last["activity"])).label
            view.epochs += len(out.epochs)
        view.static_min = p.policy.static_s / 60.0
        if out.events:
            self.bus.publish_events(site, wearer, out.events)
        if out.daily:
            self.bus.publish_daily(site, wearer, out.daily, tz=self.nudge_cfg.timezone)
        if self.nudge_cfg.enabled:
            for nudge in out.nudges:
                view.nudges += 1
                self._spawn(self._deliver(nudge))
            for outcome in out.outcomes:
                view.answered += int(outcome.answered)
                self.delivery.record_outcome(outcome)
            for check in out.checks:
                self._note_check(view, check)

    def _note_check(self, view: WearerView, check: NudgeCheck) -> None:
        """The smoothed analysis' view of a live nudge (counted and logged)."""
        if check.kind == "confirmed":
            view.confirmed += 1
            log.info(
                "nudge %s confirmed by the smoothed analysis (%+.0f s)",
                check.nudge_id,
                check.offset_s or 0.0,
            )
        elif check.kind == "live_only":
            view.unconfirmed += 1
            log.info("nudge %s: the smoothed analysis would not have sent it", check.nudge_id)
        else:
            view.smoothed_only += 1
            log.info(
                "wearer %s: the smoothed analysis would have nudged (%s, level %d) at %d ns",
                view.wearer,
                check.reason,
                check.level,
                check.time_ns,
            )
        self.delivery.record_check(view.wearer, check)
        self.nudge_checks.append(check)
        del self.nudge_checks[: -self._checks_max]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, nudge: Nudge) -> None:
        report = await self.delivery.deliver(nudge)
        log.info(
            "nudge %s to %s (level %d, still %.0f min): %s",
            nudge.nudge_id,
            nudge.wearer_id,
            nudge.level,
            nudge.static_min,
            "delivered via " + report.channel_label if report.delivered else "NOT delivered",
        )

    async def finish(self) -> None:
        """End of streams: decide pending epochs, summarise days, deliver, flush."""
        for p in self.pipelines.values():
            self._emit(p, p.finish())
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.bus.flush, 60.0)


def wire_edge(
    cfg: Config,
    bus: Bus,
    pairings: Sequence[Any],
    *,
    nudge_publisher: Any | None = None,
    **collector_kwargs: Any,
) -> tuple[EdgeService, Any]:
    """A collector feeding a new ``EdgeService``, which nudges through it.

    The two refer to each other (batches and statuses flow in, haptic
    commands flow back), so they are built together here. ``collector_kwargs``
    go to ``collector.collector.Collector`` (config, clock, backends, seed).
    """
    from collector.collector import Collector

    service: EdgeService | None = None

    async def sink(batch: Any) -> None:
        assert service is not None
        await service.on_batch(batch)

    async def status_sink(statuses: Any) -> None:
        assert service is not None
        await service.on_status(statuses)

    collector = Collector(pairings, sink, status_sink=status_sink, **collector_kwargs)
    service = EdgeService(
        cfg,
        bus,
        haptic=collector,
        nudge_publisher=nudge_publisher,
        placements=sensor_placements(pairings),
    )
    return service, collector


async def run_edge(
    service: EdgeService,
    collector: Any,
    *,
    clock: Any,
    duration_s: float | None = None,
    install_signals: bool = True,
) -> None:
    """Run ``collector`` (feeding ``service``) until stopped, then finish cleanly.

    Stops on SIGINT/SIGTERM or after ``duration_s`` of the clock's time;
    either way every accepted sample is analysed, published and flushed.
    """
    import signal

    loop = asyncio.get_running_loop()
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, collector.request_stop)
    timer: asyncio.Task[None] | None = None
    if duration_s is not None:

        async def stop_later() -> None:
            await clock.sleep(duration_s)
            log.info("run length reached (%.0f s of sensor time): stopping", duration_s)
            collector.request_stop()

        timer = loop.create_task(stop_later())
    try:
        await collector.run()
    finally:
        if timer is not None:
            timer.cancel()
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        await service.finish()

"""Many sensor sessions in one asyncio loop, one batch sink, one status feed.

``Collector`` is what ``postmon collect`` and ``postmon run`` start: one
:class:`~collector.session.SensorSession` per row of the pairing table
(address -> wearer pseudonym, site, device type), a shared scanner, a
periodic status snapshot of every sensor (logged, and handed to an optional
status sink for the ``device`` measurement), and the haptic sinks the nudge
router uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from collector.config import CollectorConfig
from collector.discovery import Discovery
from collector.errors import CollectorError, CollectorReason
from collector.haptics import HapticSink, VibrationPattern
from collector.session import BatchSink, SensorSession, SessionState, SessionStatus
from collector.timing import SYSTEM_CLOCK, Clock, wait_for

log = logging.getLogger(__name__)

StatusSink = Callable[[Sequence[SessionStatus]], Awaitable[None]]


class Pairing(Protocol):
    """One row of the pairing table (``postmon.config.SensorPairing`` is one)."""

    @property
    def address(self) -> str: ...

    @property
    def wearer(self) -> str: ...

    @property
    def site(self) -> str: ...

    @property
    def device(self) -> str: ...


def format_status(s: SessionStatus) -> str:
    """One log line per sensor: who, what, how well."""
    batt = f"{s.battery_pct:.0f}%" if s.battery_pct is not None else "-"
    return (
        f"{s.wearer_id} {s.sensor_id} {s.device_type} {s.state.value} "
        f"{s.rate_hz:.1f}/{s.nominal_rate_hz:g} Hz batt {batt} samples {s.samples} "
        f"gaps {s.gaps} lost {s.lost_samples} reconnects {s.reconnects} "
        f"corrupt {s.frames_corrupt} unknown {s.frames_unknown}"
        + (f" last error: {s.last_error}" if s.last_error and not s.connected else "")
    )


class Collector:
    """Streams every paired sensor until stopped.

    Parameters
    ----------
    pairings:
        The pairing table; addresses must be unique.
    sink:
        Awaited with every ``SampleBatch`` of every sensor (per sensor in order).
    config:
        Collector settings.
    clock:
        Data timestamps, timeouts, backoff (the simulator's clock in a simulation).
    backend, scanner_backend:
        ``bleak`` client and scanner backend classes; None = bleak's platform backends.
    status_sink:
        Awaited every ``status_interval_s`` with a snapshot of every session.
    seed:
        Seeds the backoff jitter (reproducible tests); None = random.
    """

    def __init__(
        self,
        pairings: Sequence[Pairing],
        sink: BatchSink,
        *,
        config: CollectorConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        backend: type[Any] | None = None,
        scanner_backend: type[Any] | None = None,
        status_sink: StatusSink | None = None,
        seed: int | None = None,
    ) -> None:
        self.cfg = config or CollectorConfig()
        self._clock = clock
        self._status_sink = status_sink
        self._stop = asyncio.Event()
        self.discovery = Discovery(scanner_backend)
        seen: set[str] = set()
        self._sessions: dict[str, SensorSession] = {}
        rng = random.Random(seed)
        for p in pairings:
            key = p.address.strip().upper()
            if key in seen:
                raise CollectorError(
                    f"sensor {p.address} is paired twice",
                    CollectorReason.CONFIG_INVALID,
                    hint="each [[sensors]] address may appear once",
                )
            seen.add(key)
            self._sessions[p.address] = SensorSession(
                p.address,
                p.wearer,
                sink,
                site=p.site,
                device=p.device,
                config=self.cfg,
                discovery=self.discovery,
                clock=clock,
                backend=backend,
                rng=random.Random(rng.random()),
            )

    @property
    def sessions(self) -> Mapping[str, SensorSession]:
        return self._sessions

    def status(self) -> tuple[SessionStatus, ...]:
        return tuple(s.status() for s in self._sessions.values())

    def haptic_for(self, wearer_id: str) -> HapticSink:
        """The haptic sink of the sensor ``wearer_id`` wears (its first one)."""
        for s in self._sessions.values():
            if s.wearer_id == wearer_id:
                return s
        raise KeyError(f"no sensor is paired with wearer {wearer_id!r}")

    # The nudge router's interface (``postmon.nudges.HapticSink``), routed by wearer.

    def haptic_capable(self, wearer_id: str) -> bool:
        """True when the wearer's sensor has a motor and is streaming now."""
        for s in self._sessions.values():
            if s.wearer_id == wearer_id and s.can_vibrate and s.state == SessionState.STREAMING:
                return True
        return False

    async def play(self, wearer_id: str, pattern: VibrationPattern) -> bool:
        """Vibrate ``pattern`` on the wearer's sensor; True once every pulse was written.

        False when the wearer has no sensor with a motor, or it is not
        connected, or a write failed (``vibrate`` on the session says why).
        """
        try:
            sink = self.haptic_for(wearer_id)
        except KeyError:
            return False
        result = await sink.vibrate(pattern)
        if not result.delivered:
            log.info("haptic nudge for %s not delivered: %s", wearer_id, result.reason)
        return result.delivered

    def request_stop(self) -> None:
        """Stop every session cleanly; :meth:`run` returns when they have."""
        self._stop.set()
        for s in self._sessions.values():
            s.request_stop()

    async def run(self) -> None:
        """Run every session until :meth:`request_stop` (or until all have ended)."""
        tasks = {
            asyncio.create_task(s.run(), name=f"session {a}") for a, s in self._sessions.items()
        }
        reporter = asyncio.create_task(self._report(), name="collector status")
        try:
            stop_wait = asyncio.create_task(self._stop.wait(), name="collector stop")
            pending: set[asyncio.Task[Any]] = {*tasks, stop_wait}
            while not stop_wait.done() and pending - {stop_wait}:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done - {stop_wait}:
                    if not t.cancelled() and t.exception() is not None:
                        log.error("%s ended: %s", t.get_name(), t.exception())
            stop_wait.cancel()
        finally:
            self.request_stop()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                    log.debug("session ended with %r", r)
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            await self._emit_status()  # the final counters
            await self.discovery.close()

    async def _report(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await wait_for(self._stop.wait(), self.cfg.status_interval_s, self._clock)
            if self._stop.is_set():
                return
            await self._emit_status()

    async def _emit_status(self) -> None:
        snapshot = self.status()
        for s in snapshot:
            log.info("%s", format_status(s))
        if self._status_sink is not None:
            try:
                await self._status_sink(snapshot)
            except Exception as exc:  # status is best effort; batches are what matter
                log.error("status sink failed: %r", exc)

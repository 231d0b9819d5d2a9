"""The simulation's clock: sensor ("true") time in integer nanoseconds (UTC).

Simulated devices sample and emit in this time, and a collector reads arrival
times from the same clock, so a test can compare reconstructed timestamps
with the truth. Two modes:

``SimClock.realtime(speed=1.0)``
    Paced: ``now_ns()`` follows the monotonic wall clock multiplied by
    ``speed`` (1.0 = real time, 60.0 = a minute per second). Arrival times
    then include wall-clock latency multiplied by ``speed``: fine for demos,
    not for exact timing tests.

``SimClock.virtual()``  (as fast as possible, exact)
    Discrete-event time. ``now_ns()`` only moves when every task that
    sleeps on the clock is waiting AND the event loop has nothing else ready
    to run; the clock then jumps to the earliest wake-up. A notification is
    handed to the BLE stack at its sensor time, and the bumble link delivers
    it through ``call_soon`` hops only, so it reaches the collector's
    notification callback before the clock can move: ``now_ns()`` read in
    that callback is exactly the emission time. Everything that should take
    sensor time (device sampling, a collector's periodic flush) must sleep
    on the clock (``await clock.sleep(...)``); wall-time waits
    (``asyncio.sleep``, connect timeouts) do not hold the clock back, so
    while one device is connecting the others may stream far ahead. Wrap
    such set-up phases in ``async with clock.paused():`` to keep sensor time
    still meanwhile.

Idle detection reads the event loop's ready queue (``loop._ready``, present
in CPython's asyncio loops since 3.4; there is no public API for "the loop
is idle"). On a loop without it, the clock yields a fixed number of rounds
instead, which is correct for bumble's delivery path (a handful of hops).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

NS_PER_S = 1_000_000_000
#: Default start of virtual time: Monday 2024-01-08 08:00 UTC (a working day).
DEFAULT_START_NS = int(datetime(2024, 1, 8, 8, 0, tzinfo=UTC).timestamp()) * NS_PER_S

# Rounds to yield when the loop's ready queue cannot be inspected (see above).
_FALLBACK_IDLE_ROUNDS = 32
# Rounds the driver waits for the loop to become idle before advancing anyway,
# so a task that busy-loops with `await asyncio.sleep(0)` cannot freeze time.
_MAX_BUSY_ROUNDS = 10_000


class SimClock:
    """Sensor time for simulated devices and the collector that reads them.

    Use the constructors :meth:`virtual` and :meth:`realtime`.
    """

    def __init__(self, *, start_ns: int, speed: float | None) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 (or None for as fast as possible), got {speed}")
        self._speed = speed
        self._start_ns = int(start_ns)
        self._mono0 = time.monotonic_ns()
        # virtual mode state
        self._now = int(start_ns)
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._paused = 0
        self._advances = 0

    @classmethod
    def virtual(cls, start_ns: int = DEFAULT_START_NS) -> SimClock:
        """As fast as possible, with exact sensor-time semantics (see module doc)."""
        return cls(start_ns=start_ns, speed=None)

    @classmethod
    def realtime(cls, speed: float = 1.0, start_ns: int | None = None) -> SimClock:
        """Paced by the wall clock, ``speed`` times faster; starts at the wall clock's UTC now."""
        return cls(start_ns=time.time_ns() if start_ns is None else start_ns, speed=speed)

    @property
    def is_virtual(self) -> bool:
        return self._speed is None

    @property
    def speed(self) -> float | None:
        """Sensor seconds per wall second, or None in virtual mode."""
        return self._speed

    @property
    def start_ns(self) -> int:
        return self._start_ns

    @property
    def advances(self) -> int:
        """How many times virtual time jumped (a cost measure)."""
        return self._advances

    def now_ns(self) -> int:
        """Current sensor time, integer ns since the Unix epoch (UTC)."""
        if self._speed is None:
            return self._now
        return self._start_ns + int((time.monotonic_ns() - self._mono0) * self._speed)

    def monotonic(self) -> float:
        """Sensor seconds since the clock started (never goes backwards).

        With :meth:`now_ns` and :meth:`sleep` this makes a SimClock a
        ``collector.timing.Clock``: timeouts and watchdogs run in sensor time.
        """
        return (self.now_ns() - self._start_ns) / NS_PER_S

    def elapsed_s(self) -> float:
        """Sensor seconds since the clock started."""
        return (self.now_ns() - self._start_ns) / NS_PER_S

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of sensor time."""
        await self.sleep_until(self.now_ns() + round(seconds * NS_PER_S))

    async def sleep_until(self, t_ns: int) -> None:
        """Return once sensor time reaches ``t_ns`` (at once if it already has)."""
        if self._speed is not None:
            delay_s = (t_ns - self.now_ns()) / NS_PER_S / self._speed
            await asyncio.sleep(max(0.0, delay_s))
            return
        if t_ns <= self._now:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (int(t_ns), next(self._seq), fut))
        self._ensure_driver()
        assert self._wake is not None
        self._wake.set()
        await fut

    def hold(self) -> contextlib.AbstractAsyncContextManager[None]:
        """``collector.timing.Clock.hold``: sensor time stands still meanwhile."""
        return self.paused()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold virtual time still inside the block (no effect in paced mode)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            if self._wake is not None:
                self._wake.set()

    async def aclose(self) -> None:
        """Stop the virtual-time driver; pending sleepers are cancelled."""
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None
        for _, _, fut in self._sleepers:
            fut.cancel()
        self._sleepers.clear()

    # -- virtual-time driver ------------------------------------------------

    def _ensure_driver(self) -> None:
        if self._driver is None or self._driver.done():
            self._wake = asyncio.Event()
            self._driver = asyncio.get_running_loop().create_task(
                self._drive(), name="SimClock driver"
            )

    def _pending(self) -> bool:
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        return bool(self._sleepers)

    async def _drive(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending() or self._paused:
                self._wake.clear()
                await self._wake.wait()
            await self._until_idle(loop)
            if self._paused or not self._pending():
                continue
            t = self._sleepers[0][0]
            self._now = max(self._now, t)
            self._advances += 1
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)

    @staticmethod
    async def _until_idle(loop: asyncio.AbstractEventLoop) -> None:
        ready = getattr(loop, "_ready", None)
        if ready is None:
            for _ in range(_FALLBACK_IDLE_ROUNDS):
                await asyncio.sleep(0)
            return
        for _ in range(_MAX_BUSY_ROUNDS):
            await asyncio.sleep(0)
            if not ready:
                return

"""The simulation clock: exact discrete-event time and paced time."""

from __future__ import annotations

import asyncio
import time

import pytest

from firmware_sim.clock import DEFAULT_START_NS, NS_PER_S, SimClock


async def test_virtual_sleepers_wake_in_time_order_at_exact_times() -> None:
    clock = SimClock.virtual()
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, t_s: float) -> None:
        await clock.sleep(t_s)
        woke.append((name, clock.now_ns()))

    t0 = time.perf_counter()
    await asyncio.gather(sleeper("c", 3600.0), sleeper("a", 0.02), sleeper("b", 1.5))
    assert time.perf_counter() - t0 < 1.0  # an hour of sensor time, at once
    assert woke == [
        ("a", DEFAULT_START_NS + 20_000_000),
        ("b", DEFAULT_START_NS + 1_500_000_000),
        ("c", DEFAULT_START_NS + 3600 * NS_PER_S),
    ]
    await clock.aclose()


async def test_virtual_time_waits_for_ready_work() -> None:
    """Callbacks chained with call_soon (as the bumble link delivers) finish first."""
    clock = SimClock.virtual(start_ns=0)
    seen: list[int] = []

    def hop(n: int) -> None:
        if n == 0:
            seen.append(clock.now_ns())
        else:
            asyncio.get_running_loop().call_soon(hop, n - 1)

    async def producer() -> None:
        for i in range(1, 4):
            await clock.sleep_until(i * 1000)
            hop(20)  # delivered 20 loop iterations later

    await producer()
    await clock.sleep(0.001)
    assert seen == [1000, 2000, 3000]
    await clock.aclose()


async def test_paused_holds_virtual_time() -> None:
    clock = SimClock.virtual(start_ns=0)
    task = asyncio.create_task(clock.sleep(5.0))
    async with clock.paused():
        await asyncio.sleep(0.05)
        assert clock.now_ns() == 0
        assert not task.done()
    await task
    assert clock.now_ns() == 5 * NS_PER_S
    await clock.aclose()


async def test_sleep_in_the_past_returns_at_once() -> None:
    clock = SimClock.virtual(start_ns=10)
    await clock.sleep_until(5)
    await clock.sleep(0)
    assert clock.now_ns() == 10
    await clock.aclose()


async def test_realtime_speed() -> None:
    clock = SimClock.realtime(speed=100.0, start_ns=0)
    await clock.sleep(2.0)  # 20 ms of wall time
    assert 2.0 <= clock.elapsed_s() < 2.0 + 100 * 0.5
    assert not clock.is_virtual
    assert clock.speed == 100.0


def test_bad_speed() -> None:
    with pytest.raises(ValueError, match="speed must be > 0"):
        SimClock.realtime(speed=0.0)


async def test_monotonic_is_sensor_seconds() -> None:
    from collector.timing import Clock

    clock = SimClock.virtual(start_ns=5 * NS_PER_S)
    assert isinstance(clock, Clock)
    await clock.sleep(90.0)
    assert clock.monotonic() == 90.0
    await clock.aclose()

"""BLE through the collector: 10 simulated sensors to ``SampleBatch``es on one core.

Ten sensors of mixed types (4 WitMotion, 3 Movesense, 3 MetaMotion, as in
``bench_ble``) stream on bumble in virtual sensor time (as fast as it goes)
into the collector as deployed (``collector.collector.Collector``: a
``SensorSession`` per sensor over the unmodified ``bleak.BleakClient``,
decoding, timestamp reconstruction, 1-s ``SampleBatch``es to a sink).
Counted over the streaming phase (after every session streams):
notifications and samples per wall second, and every sample must arrive in a
batch. Side by side in the same run: ``bench_ble``'s bare ``BleakClient``
reading of the same devices (notifications stored, decoded afterwards), so
the ratio is the share of the raw BLE path's speed the collector keeps.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from bench.bench_ble import KINDS_10, RATES, _stream
from bench.common import Entry

#: most samples one notification carries (WitMotion: 12 frames at MTU 247)
IN_FLIGHT_MAX = 12


async def _collector_stream(kinds: list[str], sensor_s: float) -> tuple[float, int, int]:
    """Wall seconds, notifications and samples over ``sensor_s`` of streaming."""
    from collector.collector import Collector
    from collector.config import CollectorConfig
    from collector.session import SessionState
    from collector.timing import as_clock
    from firmware_sim.ble import VirtualAir
    from firmware_sim.clock import SimClock
    from firmware_sim.devices import ArraySource
    from postmon.config import SensorPairing

    rng = np.random.default_rng(0)
    clock = SimClock.virtual()
    got = [0]

    async def sink(batch: Any) -> None:
        got[0] += len(batch)

    async with VirtualAir(clock) as air:
        devs, pairings = [], []
        async with clock.paused():
            for i, kind in enumerate(kinds):
                n = int(RATES[kind] * (sensor_s + 120))
                src = ArraySource(
                    rng.normal(0, 0.5, (n, 3)), rng.normal(0, 50, (n, 3)), RATES[kind]
                )
                dev = await air.add_device(kind, src)
                devs.append(dev)
                pairings.append(SensorPairing(dev.address, f"b{i:02d}", device=kind))
        collector = Collector(
            pairings,
            sink,
            config=CollectorConfig(),
            clock=as_clock(clock),
            backend=air.client_backend,
            scanner_backend=air.scanner_backend,
            seed=1,
        )
        run = asyncio.create_task(collector.run())
        for _ in range(600):  # wall-time wait for every session to stream
            if all(s.state == SessionState.STREAMING for s in collector.sessions.values()):
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("not every simulated sensor started streaming within 30 s")
        await clock.sleep(2.0)  # past the first batches
        n0, s0 = sum(d.stats.notifications_sent for d in devs), got[0]
        t0 = time.perf_counter()
        await clock.sleep(sensor_s)
        wall = time.perf_counter() - t0
        n1, s1 = sum(d.stats.notifications_sent for d in devs), got[0]
        collector.request_stop()
        await run
        sent = sum(d.stats.samples_sent for d in devs)
    # every sample must arrive, except a last notification per sensor that was
    # still on air when the collector disconnected (sent, never received)
    if not 0 <= sent - got[0] <= IN_FLIGHT_MAX * len(devs):
        raise RuntimeError(f"the collector delivered {got[0]} of {sent} samples sent")
    return wall, n1 - n0, s1 - s0


def run(quick: bool) -> list[Entry]:
    sensor_s = 20.0 if quick else 60.0
    wall, notes, samples = asyncio.run(_collector_stream(KINDS_10, sensor_s))
    wall0, notes0, samples0 = asyncio.run(_stream(KINDS_10, sensor_s, fast_path=True))
    note = (
        f"10 sensors (4 WitMotion, 3 Movesense, 3 MetaMotion) x {sensor_s:g} s of 50/52 Hz, "
        f"virtual time; {10 * sensor_s / wall:.0f} sensor-seconds per wall second "
        f"(wall time per 50-Hz sensor: {wall / (10 * sensor_s) * 100:.2f} % of a core, "
        "machine load included)"
    )
    return [
        Entry(
            "ble_collector_10_devices_notifications",
            notes / wall,
            "notifications/s",
            "bare BleakClient (bench_ble path)",
            notes0 / wall0,
            (notes / wall) / (notes0 / wall0),
            "reported",
            None,
            note,
        ),
        Entry(
            "ble_collector_10_devices_samples",
            samples / wall,
            "samples/s",
            "bare BleakClient (bench_ble path), decoded afterwards",
            samples0 / wall0,
            (samples / wall) / (samples0 / wall0),
            "reported",
            None,
            note + "; every sample sent arrived in a SampleBatch (but at most the last "
            "notification per sensor, on air when the collector disconnected)",
        ),
    ]

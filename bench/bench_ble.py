"""BLE simulator throughput: simulated sensors streaming through bumble to BleakClient.

Ten devices of mixed types stream concurrently in one process, in virtual
(as fast as possible) sensor time, each read through the unmodified
``bleak.BleakClient``; we count notifications and samples per wall second
and check the decoders got every sample. Side by side, the same run on
bumble's stock Controller/Host/Device classes (``AirConfig(fast_path=False)``)
measures what the speed-only subclasses in ``firmware_sim.ble`` buy. One
device of each type alone shows what a wearer's 8-hour day costs.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from bench.common import Entry
from collector.protocols import PROTOCOLS, metamotion, movesense, witmotion
from firmware_sim.ble import AirConfig, VirtualAir
from firmware_sim.clock import SimClock
from firmware_sim.devices import ArraySource

RATES = {"witmotion": 50.0, "movesense": 52.0, "metamotion": 50.0}
KINDS_10 = ["witmotion", "movesense", "metamotion"] * 3 + ["witmotion"]
DAY_S = 8 * 3600


def _start(kind: str) -> tuple[bytes, ...]:
    if kind == "witmotion":
        return witmotion.start_commands(50)
    if kind == "movesense":
        return movesense.start_commands(52)
    return metamotion.start_commands(50, 8.0, 2000.0, packed=True)


async def _stream(kinds: list[str], sensor_s: float, fast_path: bool) -> tuple[float, int, int]:
    """Wall seconds, notifications and samples for ``kinds`` streaming ``sensor_s`` each."""
    rng = np.random.default_rng(0)
    clock = SimClock.virtual()
    async with VirtualAir(clock, AirConfig(fast_path=fast_path)) as air:
        devs, clients, counts = [], [], []
        async with clock.paused():
            for kind in kinds:
                n = int(RATES[kind] * (sensor_s + 5))
                src = ArraySource(
                    rng.normal(0, 0.5, (n, 3)), rng.normal(0, 50, (n, 3)), RATES[kind]
                )
                dev = await air.add_device(kind, src)
                proto = PROTOCOLS[kind]
                client = BleakClient(dev.address, backend=air.client_backend)
                await client.connect()
                got: list[bytes] = []

                def on_data(
                    _c: BleakGATTCharacteristic, data: bytearray, got: list[bytes] = got
                ) -> None:
                    got.append(bytes(data))

                await client.start_notify(proto.notify_uuid, on_data)
                for cmd in _start(kind):
                    await client.write_gatt_char(
                        proto.write_uuid, cmd, response=proto.write_with_response
                    )
                devs.append(dev)
                clients.append(client)
                counts.append(got)
        t0 = time.perf_counter()
        await clock.sleep(sensor_s + 0.005)
        wall = time.perf_counter() - t0
        for c in clients:
            await c.disconnect()
    notifications = sum(len(g) for g in counts)
    samples = 0
    for dev, got in zip(devs, counts, strict=True):
        decoded = len(PROTOCOLS[dev.kind].make_decoder().feed_many(got))
        assert decoded == dev.stats.samples_sent, (dev.kind, decoded, dev.stats)
        samples += decoded
    return wall, notifications, samples


def run(quick: bool) -> list[Entry]:
    sensor_s = 30.0 if quick else 120.0
    entries = []
    wall, notes, samples = asyncio.run(_stream(KINDS_10, sensor_s, fast_path=True))
    wall0, notes0, samples0 = asyncio.run(_stream(KINDS_10, sensor_s, fast_path=False))
    assert notes == notes0
    note = (
        f"10 devices (4 WitMotion, 3 Movesense, 3 MetaMotion) x {sensor_s:g} s of 50/52 Hz, MTU 247"
    )
    speedup = wall0 / wall
    realtime = f"; real time x{10 * sensor_s / wall:.0f} (device-seconds per wall second)"
    for what, ours, stock, extra in (
        ("notifications", notes, notes0, ""),
        ("samples", samples, samples0, realtime),
    ):
        entries.append(
            Entry(
                name=f"ble_10_devices_{what}",
                value=ours / wall,
                unit=f"{what}/s",
                baseline_name="stock bumble Controller/Host/Device",
                baseline_value=stock / wall0,
                ratio=speedup,
                target="prototype ~2900/s" if what == "notifications" else "",
                note=note + extra,
            )
        )
    for kind in ("witmotion", "movesense", "metamotion"):
        w, n, s = asyncio.run(_stream([kind], sensor_s, fast_path=True))
        day_s = DAY_S * w / sensor_s  # wall time scales with sensor time
        entries.append(
            Entry(
                name=f"ble_1_{kind}_samples",
                value=s / w,
                unit="samples/s",
                note=(
                    f"{n / w:.0f} notifications/s; "
                    f"an 8-hour day at {RATES[kind]:g} Hz takes {day_s:.0f} s of wall time"
                ),
            )
        )
    return entries

"""A minimal central for the BLE simulator tests, built on the unmodified BleakClient."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak_retry_connector import establish_connection

from collector.protocols import PROTOCOLS, metamotion, movesense, witmotion
from collector.protocols.base import Decoded, StreamDecoder
from firmware_sim.ble import VirtualAir
from firmware_sim.devices import ArraySource, SimulatedDevice

G = 9.80665


def smooth_source(n: int, rate_hz: float, seed: int = 0) -> ArraySource:
    """Random but bounded motion (within every device's range)."""
    rng = np.random.default_rng(seed)
    acc = np.clip(rng.normal(0.0, 0.4, (n, 3)) + np.array([0.0, 0.0, 1.0]), -3.5, 3.5)
    gyro = np.clip(rng.normal(0.0, 60.0, (n, 3)), -1500, 1500)
    return ArraySource(acc, gyro, rate_hz)


def quantised(kind: str, acc: np.ndarray, gyro: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What each wire format keeps, from the documented scales (independent of the encoders)."""
    if kind == "witmotion":
        return np.round(acc * 2048) / 2048, np.round(gyro * 32768 / 2000) * (2000 / 32768)
    if kind == "movesense":
        a = (acc * G).astype(np.float32).astype(np.float64) / G
        return a, gyro.astype(np.float32).astype(np.float64)
    return np.round(acc * 4096) / 4096, np.round(gyro * 16.4) / 16.4  # ±8 g, ±2000 deg/s


def start_commands(kind: str, rate_hz: float) -> tuple[bytes, ...]:
    if kind == "witmotion":
        return witmotion.start_commands(rate_hz)
    if kind == "movesense":
        return movesense.start_commands(int(rate_hz))
    return metamotion.start_commands(rate_hz, 8.0, 2000.0, packed=True)


@dataclass
class Session:
    """One connected sensor: client, decoder and what arrived (sensor time, bytes)."""

    kind: str
    client: BleakClient
    decoder: StreamDecoder
    arrivals: list[tuple[int, bytes]] = field(default_factory=list)
    disconnects: int = 0

    def decode(self) -> tuple[Decoded, np.ndarray]:
        """Decode all arrivals; also the (N,) arrival time of each sample's notification."""
        out = self.decoder.feed_many([d for _, d in self.arrivals])
        t = np.array([a for a, _ in self.arrivals], dtype=np.int64)
        return out, t[out.chunk_index] if len(out) else np.zeros(0, np.int64)


async def find(air: VirtualAir, dev: SimulatedDevice) -> BLEDevice:
    # by address: several MetaMotions all advertise the same name, "MetaWear"
    found = await BleakScanner.find_device_by_address(
        dev.address, timeout=10, backend=air.scanner_backend
    )
    assert found is not None, f"{dev.name} ({dev.address}) not found by a scan"
    assert found.name == dev.name
    return found


async def open_session(
    air: VirtualAir,
    dev: SimulatedDevice,
    rate_hz: float,
    *,
    start: bool = True,
    retry_connector: bool = True,
) -> Session:
    """Scan, connect (through bleak-retry-connector), enable notifications, send the start sequence.

    Runs with sensor time paused, as a collector's set-up would.
    """
    proto = PROTOCOLS[dev.kind]
    async with air.clock.paused():
        ble_device = await find(air, dev)
        holder: list[Session] = []

        def on_disconnect(_client: BleakClient) -> None:
            holder[0].disconnects += 1

        if retry_connector:
            client = await establish_connection(
                BleakClient,
                ble_device,
                dev.name,
                disconnected_callback=on_disconnect,
                backend=air.client_backend,
            )
        else:
            client = BleakClient(ble_device, on_disconnect, backend=air.client_backend)
            await client.connect()
        session = Session(dev.kind, client, proto.make_decoder())
        holder.append(session)
        clock = air.clock

        def on_data(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            session.arrivals.append((clock.now_ns(), bytes(data)))

        await client.start_notify(proto.notify_uuid, on_data)
        if start:
            for cmd in start_commands(dev.kind, rate_hz):
                await client.write_gatt_char(
                    proto.write_uuid, cmd, response=proto.write_with_response
                )
    return session

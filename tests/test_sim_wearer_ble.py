"""A simulated wearer streamed through the simulated BLE sensors and bleak."""

from __future__ import annotations

import numpy as np
import pytest

from collector.protocols import PROTOCOLS
from firmware_sim.ble import VirtualAir
from firmware_sim.clock import SimClock
from firmware_sim.devices import SampleSource
from firmware_sim.simulator import WearerStream, simulate
from tests.ble_helpers import open_session, quantised

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RATES = {"witmotion": 50.0, "movesense": 52.0, "metamotion": 50.0}


def test_wearer_stream_is_a_sample_source() -> None:
    assert isinstance(WearerStream("nurse", 1, duration_s=60), SampleSource)


@pytest.mark.parametrize("kind", sorted(PROTOCOLS))
async def test_wearer_day_arrives_through_ble_as_simulated(kind: str) -> None:
    rate = RATES[kind]
    args = {"seed": 4, "placement": "lower", "mounting": "random", "device": kind}
    stream = WearerStream("warehouse_lifting", duration_s=120, rate_hz=rate, **args)
    async with VirtualAir(SimClock.virtual()) as air:
        dev = await air.add_device(kind, stream)
        session = await open_session(air, dev, rate)
        await air.clock.sleep(30.005)
        await session.client.disconnect()
    out, _ = session.decode()
    pos = dev.streams[-1].source_positions()
    j0 = int(pos[0])
    n = len(out)
    assert n >= 29 * rate
    np.testing.assert_array_equal(pos, j0 + np.arange(pos.shape[0]))
    # the same wearer computed at once, independently of the stream
    ref = simulate("warehouse_lifting", 120, rate_hz=rate, **args)
    want_acc, want_gyro = quantised(kind, ref.accel_g[j0 : j0 + n], ref.gyro_dps[j0 : j0 + n])
    np.testing.assert_array_equal(out.accel_g, want_acc)
    np.testing.assert_array_equal(out.gyro_dps, want_gyro)
    # already on the device's grid: the wire keeps every value exactly
    if kind != "movesense":
        np.testing.assert_array_equal(out.accel_g, ref.accel_g[j0 : j0 + n])

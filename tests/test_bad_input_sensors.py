"""Unknown sensors: a paired device postmon cannot identify, next to one it can.

The unknown one's session ends with a clear, structured error (what, and
which config key fixes it); the collector and every other sensor go on.
A misspelt ``device`` in the pairing table is refused when the config loads
(tests/test_bad_input_files.py::test_malformed_config_values_name_key_and_fix).
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from bumble.gatt import Characteristic, Service

from analysis.contracts import SampleBatch
from collector.collector import Collector
from collector.config import CollectorConfig
from collector.session import SessionState
from collector.timing import NS_PER_S, as_clock
from firmware_sim.ble import VirtualAir
from firmware_sim.clock import SimClock
from firmware_sim.devices import DEVICE_TYPES, WitMotionDevice
from postmon.config import SensorPairing
from tests.test_collector_ble import source

pytestmark = pytest.mark.integration


class UnknownDevice(WitMotionDevice):
    """A BLE peripheral of no supported type (a thermometer, say)."""

    kind = "unknown-thermometer"

    @classmethod
    def default_name(cls, address: str) -> str:
        return "Thermo 42"

    def build_services(self) -> list[Service]:
        self._data_char = Characteristic(
            "4a2b0001-1111-2222-3333-444455556666",
            Characteristic.NOTIFY | Characteristic.READ,
            Characteristic.READABLE,
            b"",
        )
        return [Service("4a2b0000-1111-2222-3333-444455556666", [self._data_char])]


async def test_unknown_sensor_ends_its_own_session_with_advice_and_others_stream(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(DEVICE_TYPES, UnknownDevice.kind, UnknownDevice)
    seconds = 30.0
    air = VirtualAir(SimClock.virtual())
    got: list[SampleBatch] = []

    async def sink(batch: SampleBatch) -> None:
        got.append(batch)

    with caplog.at_level(logging.WARNING):
        async with air:
            good = await air.add_device("witmotion", source("witmotion", seconds, 1))
            odd = await air.add_device(UnknownDevice.kind, source("witmotion", seconds, 2))
            collector = Collector(
                [SensorPairing(good.address, "p001"), SensorPairing(odd.address, "p002")],
                sink,
                config=CollectorConfig(scan_timeout_s=1.0),
                clock=as_clock(air.clock),
                backend=air.client_backend,
                scanner_backend=air.scanner_backend,
                seed=3,
            )
            task = asyncio.create_task(collector.run())
            await air.clock.sleep_until(air.clock.start_ns + int(seconds * NS_PER_S))
            collector.request_stop()
            await task
            status = {s.sensor_id: s for s in collector.status()}
            await asyncio.sleep(0.2)
    bad = status[odd.address]
    assert bad.state == SessionState.STOPPED
    assert bad.device_type == "unknown"
    assert "cannot tell its type" in bad.last_error
    assert 'set device = "witmotion" | "movesense" | "metamotion"' in caplog.text
    assert all(b.sensor_id == good.address for b in got)
    t = np.concatenate([b.t_ns for b in got])
    # the known sensor streamed the whole time, unbothered
    assert (t[-1] - t[0]) / NS_PER_S > seconds - 3.0
    assert status[good.address].lost_samples == 0

"""Simulated sensors on a real bumble BLE stack, read through the unmodified BleakClient."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from collector.protocols import PROTOCOLS, detect, metamotion, movesense, witmotion
from collector.protocols.base import (
    BATTERY_LEVEL_UUID,
    FIRMWARE_REVISION_UUID,
    MANUFACTURER_NAME_UUID,
)
from firmware_sim.ble import AirConfig, VirtualAir
from firmware_sim.clock import NS_PER_S, SimClock
from firmware_sim.devices import FaultPlan, HapticEvent, MetaMotionDevice
from tests.ble_helpers import open_session, quantised, smooth_source

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RATES = {"witmotion": 50.0, "movesense": 52.0, "metamotion": 50.0}
#: samples per notification at the central's ATT MTU of 247
PER_NOTIFICATION = {"witmotion": 12, "movesense": 9, "metamotion": 3}


async def test_scan_finds_every_device_type() -> None:
    async with VirtualAir() as air:
        devs = [await air.add_device(k, smooth_source(10, 50.0)) for k in PROTOCOLS]
        found = await BleakScanner.discover(
            timeout=0.5, backend=air.scanner_backend, return_adv=True
        )
    by_address = {addr: (d, ad) for addr, (d, ad) in found.items()}
    for dev in devs:
        _, ad = by_address[dev.address]
        assert ad.local_name == dev.name
        assert detect(ad.local_name, ad.service_uuids) is PROTOCOLS[dev.kind]
    names = sorted(d.name for d in devs)
    assert names[0].startswith("MetaWear")
    assert names[1].startswith("Movesense ")
    assert names[2].startswith("WT901BLE")
    meta = by_address[devs[2].address][1] if devs[2].kind == "metamotion" else None
    assert meta is not None
    assert metamotion.SERVICE_UUID in meta.service_uuids


@pytest.mark.parametrize("kind", sorted(PROTOCOLS))
async def test_a_minute_of_data_decodes_exactly_with_exact_arrival_times(kind: str) -> None:
    rate = RATES[kind]
    source = smooth_source(int(rate * 70), rate, seed=3)
    async with VirtualAir(SimClock.virtual()) as air:
        dev = await air.add_device(kind, source)
        session = await open_session(air, dev, rate)
        assert session.client.mtu_size == 247
        await air.clock.sleep(61.005)  # off the sample grid: nothing in flight
        await session.client.disconnect()
    out, arrival = session.decode()
    rec = dev.streams[-1]
    # the device took consecutive source samples from j0 on
    pos = rec.source_positions()
    j0 = int(pos[0])
    np.testing.assert_array_equal(pos, j0 + np.arange(pos.shape[0]))
    n = len(out)
    assert n == rec.samples_emitted == dev.stats.samples_sent
    assert n >= 60 * rate
    want_acc, want_gyro = quantised(kind, source.accel_g[j0 : j0 + n], source.gyro_dps[j0 : j0 + n])
    np.testing.assert_array_equal(out.accel_g, want_acc)
    np.testing.assert_array_equal(out.gyro_dps, want_gyro)
    # each notification arrived exactly when its last sample was taken
    t_true = dev.boot_ns + np.round((j0 + np.arange(n)) * NS_PER_S / rate).astype(np.int64)
    last = np.r_[np.diff(out.chunk_index) != 0, True]
    assert np.abs(arrival[last] - t_true[last]).max() <= 1
    # packed at the negotiated MTU
    counts = np.bincount(out.chunk_index)
    assert set(counts[counts > 0].tolist()) == {PER_NOTIFICATION[kind]}
    st = session.decoder.stats
    assert (st.frames_corrupt, st.frames_unknown, st.bytes_skipped) == (0, 0, 0)
    if kind == "movesense":
        assert out.device_time is not None
        first = j0 + out.device_time.sample_index
        want_ms = np.floor(np.round(first * NS_PER_S / rate) / 1e6).astype(np.int64)
        np.testing.assert_array_equal(out.device_time.time_ms, want_ms)
        results = [m for m in out.messages if isinstance(m, movesense.CommandResult)]
        assert [(r.ref, r.status) for r in results] == [(1, 200), (0x63, 200)]


async def test_metamotion_haptic_is_recorded_and_heard() -> None:
    async with VirtualAir() as air:
        dev = await air.add_device("metamotion", smooth_source(100, 50.0))
        assert isinstance(dev, MetaMotionDevice)
        felt: list[HapticEvent] = []
        dev.add_haptic_listener(lambda _d, e: felt.append(e))
        session = await open_session(air, dev, 50.0, start=False)
        await air.clock.sleep(12.5)
        t_write = air.clock.now_ns()
        await session.client.write_gatt_char(
            metamotion.WRITE_UUID, metamotion.cmd_haptic(80, 400), response=False
        )
        await session.client.write_gatt_char(
            metamotion.WRITE_UUID, metamotion.cmd_haptic(100, 50, buzzer=True), response=False
        )
        await asyncio.sleep(0.05)
        await session.client.disconnect()
    want = [
        HapticEvent(t_write, round(80 * 248 / 100) * 100 / 248, 400, False),
        HapticEvent(t_write, 100.0, 50, True),
    ]
    assert dev.haptic_events == want
    assert felt == want
    assert t_write == dev.boot_ns + 12_500_000_000


async def test_metamotion_battery_and_device_information() -> None:
    faults = FaultPlan(battery_pct=80.0, battery_drain_pct_per_h=20.0)
    async with VirtualAir() as air:
        dev = await air.add_device("metamotion", smooth_source(10, 50.0), faults=faults)
        session = await open_session(air, dev, 50.0, start=False)
        client = session.client
        assert await client.read_gatt_char(MANUFACTURER_NAME_UUID) == b"MbientLab Inc"
        assert await client.read_gatt_char(FIRMWARE_REVISION_UUID) == b"1.7.3"
        await air.clock.sleep(3600.0)  # an hour, no streaming: instant
        assert await client.read_gatt_char(BATTERY_LEVEL_UUID) == bytes([60])
        await client.write_gatt_char(
            metamotion.WRITE_UUID, metamotion.cmd_battery_read(), response=False
        )
        await asyncio.sleep(0.05)
        out, _ = session.decode()
        assert out.messages == (metamotion.BatteryState(60, round((3.3 + 0.9 * 0.6) * 1000), 0),)
        # 60 % at 20 %/h: dead 3 h later; the link drops and it stops advertising
        await air.clock.sleep(3 * 3600.0 + 1)
        await asyncio.sleep(0.05)
        assert not client.is_connected
        assert session.disconnects == 1
        assert not dev.powered
        found = await BleakScanner.discover(timeout=0.3, backend=air.scanner_backend)
        assert dev.address not in {d.address for d in found}


async def test_witmotion_and_movesense_have_no_sig_services() -> None:
    async with VirtualAir() as air:
        for kind in ("witmotion", "movesense"):
            dev = await air.add_device(kind, smooth_source(10, 50.0))
            session = await open_session(air, dev, 50.0, start=False)
            uuids = {s.uuid for s in session.client.services}
            assert "0000180f-0000-1000-8000-00805f9b34fb" not in uuids
            assert "0000180a-0000-1000-8000-00805f9b34fb" not in uuids
            assert PROTOCOLS[kind].service_uuid in uuids
            await session.client.disconnect()


async def test_witmotion_registers_unlock_rate_save_and_reads() -> None:
    source = smooth_source(5000, 50.0, seed=5)
    faults = FaultPlan(battery_pct=50.0)
    async with VirtualAir() as air:
        dev = await air.add_device("witmotion", source, faults=faults)
        session = await open_session(air, dev, 50.0, start=False)
        client = session.client
        # streaming starts with notifications, at the power-up rate of 10 Hz
        await air.clock.sleep(10.0)
        n10 = len(session.decode()[0])
        assert n10 == 96  # 100 samples, sent 12 per notification (MTU 247)
        # a rate write without unlock is ignored
        await client.write_gatt_char(witmotion.WRITE_UUID, witmotion.cmd_set_rate(50))
        assert dev.rejected_writes == 1
        assert dev.rate_hz == 10.0
        for cmd in witmotion.start_commands(50):
            await client.write_gatt_char(witmotion.WRITE_UUID, cmd)
        assert dev.rate_hz == 50.0
        assert dev.saved_rate_hz == 50.0
        for reg in (witmotion.REG_BATTERY, witmotion.REG_QUATERNION, witmotion.REG_MAGNETOMETER):
            await client.write_gatt_char(witmotion.WRITE_UUID, witmotion.cmd_read_register(reg))
        await air.clock.sleep(10.0)
        await client.disconnect()
    session.decoder = PROTOCOLS["witmotion"].make_decoder()
    out, _ = session.decode()
    assert len(out) - n10 >= 500 - 12
    battery, quat, mag = out.messages
    assert battery == witmotion.BatteryVoltageReply(
        round((3.3 + 0.9 * 0.5) * 100) / 100, battery.chunk_index
    )
    assert isinstance(quat, witmotion.QuaternionReply)
    assert abs(np.linalg.norm(quat.q) - 1.0) < 1e-3
    assert isinstance(mag, witmotion.MagnetometerReply)
    assert abs(np.linalg.norm(mag.field) - np.linalg.norm([0.2, 0.0, -0.43])) < 0.02
    # the on-board roll agrees with the (quantised) accelerometer's tilt
    roll = np.degrees(np.arctan2(out.accel_g[:, 1], out.accel_g[:, 2]))
    assert out.angle_deg is not None
    err = np.abs(out.angle_deg[:, 0] - roll)
    assert np.median(err) < 0.02
    assert err.max() < 1.0


async def test_witmotion_saved_rate_survives_power_cycle() -> None:
    async with VirtualAir() as air:
        dev = await air.add_device("witmotion", smooth_source(10, 50.0))
        session = await open_session(air, dev, 20.0)
        await session.client.disconnect()
        await dev.power_off()
        await dev.power_on()
        assert dev.rate_hz == 20.0


async def test_split_notifications_still_decode_exactly() -> None:
    source = smooth_source(2000, 50.0, seed=9)
    faults = FaultPlan(seed=1, split_prob=0.4)
    async with VirtualAir() as air:
        dev = await air.add_device("witmotion", source, faults=faults)
        session = await open_session(air, dev, 50.0)
        await air.clock.sleep(20.005)  # off the sample grid: nothing in flight
        await session.client.disconnect()
    out, _ = session.decode()
    assert dev.stats.notifications_split > 10
    j0 = int(dev.streams[-1].source_positions()[0])
    want, _ = quantised("witmotion", source.accel_g[j0 : j0 + len(out)], source.gyro_dps[:1])
    np.testing.assert_array_equal(out.accel_g, want)
    assert len(out) == dev.streams[-1].samples_emitted
    assert session.decoder.stats.bytes_skipped == 0


async def test_corrupted_notifications_are_counted_and_the_stream_goes_on() -> None:
    faults = FaultPlan(seed=2, corrupt_prob=0.1)
    async with VirtualAir() as air:
        dev = await air.add_device(
            "witmotion", smooth_source(2000, 50.0), faults=faults, max_frames_per_notification=1
        )
        session = await open_session(air, dev, 50.0)
        await air.clock.sleep(20.005)  # off the sample grid: nothing in flight
        await session.client.disconnect()
    out, _ = session.decode()
    st = session.decoder.stats
    corrupted = dev.stats.notifications_corrupted
    assert corrupted > 20
    emitted = dev.streams[-1].samples_emitted
    # no checksum: a corrupted header loses (at most) its frame and the next
    assert emitted - 2 * corrupted <= len(out) <= emitted
    assert st.bytes_in == st.bytes_decoded + st.bytes_skipped + st.bytes_pending


async def test_dropped_notifications_show_as_gaps_in_movesense_timestamps() -> None:
    rate = 52.0
    source = smooth_source(3000, rate, seed=4)
    faults = FaultPlan(seed=3, drop_prob=0.1)
    async with VirtualAir() as air:
        dev = await air.add_device("movesense", source, faults=faults)
        session = await open_session(air, dev, rate)
        await air.clock.sleep(30.005)  # off the sample grid: nothing in flight
        await session.client.disconnect()
    out, _ = session.decode()
    rec = dev.streams[-1]
    assert dev.stats.notifications_dropped > 5
    assert len(out) == dev.stats.samples_sent
    assert len(out) + dev.stats.samples_dropped == rec.samples_emitted
    assert out.device_time is not None
    # the device timestamp of each packet identifies its source samples: values match
    first_j = np.ceil(out.device_time.time_ms * rate / 1000).astype(np.int64)
    per = np.diff(np.r_[out.device_time.sample_index, len(out)])
    j = np.repeat(first_j, per) + (
        np.arange(len(out)) - np.repeat(out.device_time.sample_index, per)
    )
    want_acc, _ = quantised("movesense", source.accel_g[j], source.gyro_dps[j])
    np.testing.assert_array_equal(out.accel_g, want_acc)
    # the packets missing from the device's 9-sample grid are exactly the dropped ones
    j0 = int(rec.source_positions()[0])
    grid = j0 + 9 * np.arange(rec.samples_emitted // 9)
    assert set(first_j.tolist()) <= set(grid.tolist())
    assert len(grid) - len(first_j) == dev.stats.notifications_dropped


async def test_forced_disconnect_drops_movesense_subscription_and_reconnect_works() -> None:
    rate = 52.0
    faults = FaultPlan(disconnect_at_s=(20.0,))
    async with VirtualAir() as air:
        dev = await air.add_device("movesense", smooth_source(5000, rate), faults=faults)
        session = await open_session(air, dev, rate)
        await air.clock.sleep(25.0)
        assert session.disconnects == 1
        assert not session.client.is_connected
        assert dev.stats.disconnects_forced == 1
        before = len(session.arrivals)
        # reconnect and enable notifications only: no data (the subscription was dropped)
        again = await open_session(air, dev, rate, start=False)
        await air.clock.sleep(5.0)
        assert again.arrivals == []
        await again.client.write_gatt_char(
            movesense.WRITE_UUID, movesense.cmd_subscribe_imu6(0x63, 52), response=True
        )
        await air.clock.sleep(5.005)  # off the sample grid: nothing in flight
        await again.client.disconnect()
    _, arrival = session.decode()
    assert before == len(session.arrivals)
    assert arrival.max() <= dev.boot_ns + 20 * NS_PER_S
    out2, arrival2 = again.decode()
    assert 5 * rate - 10 <= len(out2) <= 5 * rate + 1
    assert arrival2.min() >= dev.boot_ns + 30 * NS_PER_S


async def test_crystal_drift_changes_the_true_sample_rate() -> None:
    rate, ppm = 52.0, 400.0
    faults = FaultPlan(crystal_ppm=ppm)
    async with VirtualAir() as air:
        dev = await air.add_device("movesense", smooth_source(20000, rate), faults=faults)
        session = await open_session(air, dev, rate)
        await air.clock.sleep(300.005)  # off the sample grid: nothing in flight
        await session.client.disconnect()
    out, arrival = session.decode()
    assert out.device_time is not None
    # samples per true second = nominal × (1 + ppm)
    span_s = (arrival[-1] - arrival[0]) / NS_PER_S
    measured = (len(out) - 9) / span_s
    assert abs(measured / rate - 1 - ppm * 1e-6) < 30e-6
    # the device clock runs fast too: its timestamps advance (1 + ppm) per true second
    dev_span_ms = out.device_time.time_ms[-1] - out.device_time.time_ms[0]
    true_span_ms = (arrival[-1] - arrival[0]) / 1e6
    assert abs(dev_span_ms / true_span_ms - 1 - ppm * 1e-6) < 20e-6


async def test_movesense_asks_for_a_bigger_mtu_when_the_central_does_not() -> None:
    async with VirtualAir(config=AirConfig(central_mtu=23)) as air:
        dev = await air.add_device("movesense", smooth_source(2000, 52.0))
        session = await open_session(air, dev, 52.0)
        await air.clock.sleep(5.0)
        # the central never asked (central_mtu 23): the firmware did
        assert session.client.mtu_size == 161
        await session.client.disconnect()
    out, _ = session.decode()
    counts = np.bincount(out.chunk_index)
    assert set(counts[counts > 0].tolist()) == {6}


async def test_default_mtu_sends_one_witmotion_frame_per_notification() -> None:
    async with VirtualAir(config=AirConfig(central_mtu=23)) as air:
        dev = await air.add_device("witmotion", smooth_source(2000, 50.0))
        session = await open_session(air, dev, 50.0)
        await air.clock.sleep(2.005)  # off the sample grid: nothing in flight
        await session.client.disconnect()
    assert all(len(d) == 20 for _, d in session.arrivals)


async def test_plain_bleak_client_and_unbound_backends() -> None:
    from firmware_sim.bleak_backend import BumbleBleakClient, BumbleBleakScanner

    async with VirtualAir() as air:
        dev = await air.add_device("metamotion", smooth_source(10, 50.0))
        found = await BleakScanner.find_device_by_name(
            "MetaWear", timeout=5, backend=BumbleBleakScanner
        )
        assert found is not None
        async with BleakClient(found, backend=BumbleBleakClient) as client:
            assert client.is_connected
            assert client.name == "MetaWear"
            assert client.services.get_service(metamotion.SERVICE_UUID) is not None
        assert not client.is_connected
        assert dev.stats.connections == 1


async def test_ten_devices_stream_concurrently() -> None:
    kinds = ["witmotion", "movesense", "metamotion"] * 3 + ["witmotion"]
    async with VirtualAir() as air:
        devs = [
            await air.add_device(k, smooth_source(2000, RATES[k], seed=i))
            for i, k in enumerate(kinds)
        ]
        sessions = [await open_session(air, d, RATES[d.kind]) for d in devs]
        await air.clock.sleep(20.005)
        for s in sessions:
            await s.client.disconnect()
    for dev, s in zip(devs, sessions, strict=True):
        out, _ = s.decode()
        j0 = int(dev.streams[-1].source_positions()[0])
        src = dev.source
        want, _ = quantised(dev.kind, src.accel_g[j0 : j0 + len(out)], src.gyro_dps[:1])  # type: ignore[attr-defined]
        np.testing.assert_array_equal(out.accel_g, want, err_msg=f"{dev.kind} {dev.streams}")
        assert len(out) >= 19 * RATES[dev.kind]


async def test_missing_device_raises_bleak_error_quickly() -> None:
    from bleak.exc import BleakDeviceNotFoundError

    async with VirtualAir(config=AirConfig(connect_timeout_s=0.3)) as air:
        client = BleakClient("C0:00:00:00:99:99", backend=air.client_backend)
        with pytest.raises(BleakDeviceNotFoundError):
            await client.connect()


async def test_stock_bumble_classes_deliver_the_same_bytes_at_the_same_times() -> None:
    runs = []
    for fast in (True, False):
        async with VirtualAir(config=AirConfig(fast_path=fast)) as air:
            dev = await air.add_device("metamotion", smooth_source(1000, 50.0, seed=11))
            session = await open_session(air, dev, 50.0)
            await air.clock.sleep(10.005)  # off the sample grid: nothing in flight
            await session.client.disconnect()
        runs.append([(t - dev.boot_ns, d) for t, d in session.arrivals])
    assert len(runs[0]) >= 2 * 10 * 50 // 3
    assert runs[0] == runs[1]


async def test_two_centrals_each_connect_to_their_own_sensor() -> None:
    async with VirtualAir() as air:
        second = await air.add_central("second-host")
        a = await air.add_device("witmotion", smooth_source(1000, 50.0, seed=1))
        b = await air.add_device("witmotion", smooth_source(1000, 50.0, seed=2))
        c1 = BleakClient(a.address, backend=air.client_backend)
        c2 = BleakClient(b.address, backend=air.client_backend, central=1)
        async with air.clock.paused():
            await c1.connect()
            await c2.connect()
        assert a.connection is not None
        assert b.connection is not None
        assert str(a.connection.peer_address) == air.central(0).address
        assert str(b.connection.peer_address) == second.address
        await c1.disconnect()
        await c2.disconnect()


async def test_connection_interval_quantises_arrival_times() -> None:
    rate = 52.0
    faults = FaultPlan(conn_interval_ms=50.0)
    async with VirtualAir() as air:
        dev = await air.add_device("movesense", smooth_source(3000, rate), faults=faults)
        session = await open_session(air, dev, rate)
        await air.clock.sleep(20.005)  # off the sample grid and the connection events
        await session.client.disconnect()
    out, arrival = session.decode()
    assert len(out) >= 19 * rate
    data_arrivals = np.unique(arrival)
    # every notification waited for a connection event, 50 ms apart
    assert set((np.diff(data_arrivals) % 50_000_000).tolist()) == {0}
    # and never left before its last sample was taken
    j0 = int(dev.streams[-1].source_positions()[0])
    t_sample = dev.boot_ns + np.round((j0 + np.arange(len(out))) * NS_PER_S / rate).astype(np.int64)
    assert np.all(arrival >= t_sample)
    assert np.all(arrival - t_sample < 9 * NS_PER_S / rate + 50_000_000)

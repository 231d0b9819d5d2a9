"""The collector against simulated sensors: real bumble GATT servers, unmodified BleakClient.

Every test runs the production ``Collector`` (discovery through
``BleakScanner``, connection through ``bleak-retry-connector``, the devices'
start sequences, decoding, timestamping, batching) with the simulator's
bleak backends and its virtual sensor clock, so minutes of sensor time take
seconds. The truth comes from the simulated devices themselves: which source
samples each stream emitted and when (``StreamRecord``), and the source
arrays; expected values use the documented wire scales
(``tests.ble_helpers.quantised``), not the encoders.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest

from analysis.contracts import SampleBatch
from collector.collector import Collector
from collector.config import CollectorConfig
from collector.errors import CollectorReason
from collector.haptics import MOVE_NUDGE, Pulse, VibrationPattern
from collector.session import SessionState, SessionStatus
from collector.timing import NS_PER_S, as_clock
from firmware_sim.ble import VirtualAir
from firmware_sim.clock import SimClock
from firmware_sim.devices import ArraySource, FaultPlan, MetaMotionDevice, SimulatedDevice
from postmon.config import SensorPairing
from tests.ble_helpers import quantised

pytestmark = pytest.mark.integration

KINDS = ("witmotion", "movesense", "metamotion")
RATE = {"witmotion": 50.0, "movesense": 52.0, "metamotion": 50.0}


def source(kind: str, seconds: float, seed: int) -> ArraySource:
    """Random bounded motion: every sample distinct, within every device's range."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE[kind]) + 500
    acc = np.clip(rng.normal(0.0, 0.4, (n, 3)) + np.array([0.0, 0.0, 1.0]), -3.5, 3.5)
    gyro = np.clip(rng.normal(0.0, 60.0, (n, 3)), -1500, 1500)
    return ArraySource(acc, gyro, RATE[kind])


@dataclass
class Fleet:
    air: VirtualAir
    devices: list[SimulatedDevice]
    sources: list[ArraySource]
    batches: dict[str, list[SampleBatch]] = field(default_factory=dict)
    status: dict[str, SessionStatus] = field(default_factory=dict)


async def run_fleet(
    kinds: list[str],
    seconds: float,
    *,
    faults: FaultPlan | None = None,
    config: CollectorConfig | None = None,
    during: object = None,
) -> Fleet:
    """Stream ``kinds`` devices for ``seconds`` of sensor time through a Collector."""
    air = VirtualAir(SimClock.virtual())
    async with air:
        sources = [source(k, seconds, seed=i) for i, k in enumerate(kinds)]
        devices = [
            await air.add_device(k, s, faults=faults) for k, s in zip(kinds, sources, strict=True)
        ]
        fleet = Fleet(air, devices, sources, {d.address: [] for d in devices})

        async def sink(batch: SampleBatch) -> None:
            fleet.batches[batch.sensor_id].append(batch)

        pairings = [SensorPairing(d.address, f"w{i:02d}") for i, d in enumerate(devices)]
        collector = Collector(
            pairings,
            sink,
            config=config,
            clock=as_clock(air.clock),
            backend=air.client_backend,
            scanner_backend=air.scanner_backend,
            seed=7,
        )
        task = asyncio.create_task(collector.run())
        if callable(during):
            await during(air, collector, devices)  # type: ignore[operator]
        await air.clock.sleep_until(air.clock.start_ns + int(seconds * NS_PER_S))
        collector.request_stop()
        await task
        fleet.status = {s.sensor_id: s for s in collector.status()}
        await asyncio.sleep(0.2)  # let the devices' re-advertising settle before the air closes
    return fleet


@dataclass
class Truth:
    """What a device's streams emitted, sample by sample."""

    positions: np.ndarray  # (N,) source index of each emitted sample
    t_ns: np.ndarray  # (N,) true sample time
    stream_of: np.ndarray  # (N,) which stream (connection) emitted it
    starts: list[int]  # true start time of each stream
    stops: list[int]


def truth(dev: SimulatedDevice) -> Truth:
    recs = [r for r in dev.streams if r.samples_emitted > 0]
    pos = np.concatenate([r.source_positions() for r in recs])
    assert np.allclose(pos, np.rint(pos)), "device rate equals source rate: integer positions"
    return Truth(
        positions=np.rint(pos).astype(np.int64),
        t_ns=np.concatenate([r.sample_times_ns() for r in recs]),
        stream_of=np.concatenate([np.full(r.samples_emitted, i) for i, r in enumerate(recs)]),
        starts=[r.start_ns for r in recs],
        stops=[r.stop_ns or 0 for r in recs],
    )


def joined(batches: list[SampleBatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.concatenate([b.t_ns for b in batches])
    acc = np.concatenate([b.accel_g for b in batches])
    gyro = np.concatenate([b.gyro_dps for b in batches if b.gyro_dps is not None])
    return t, acc, gyro


def check_batch_shape(batches: list[SampleBatch], rate: float) -> None:
    assert batches, "no batches"
    assert [b.seq for b in batches] == list(range(len(batches)))
    assert all(0 < len(b) <= round(rate) for b in batches), "a batch is at most 1 s of samples"
    assert all(b.rate_hz == rate for b in batches)
    t = np.concatenate([b.t_ns for b in batches])
    assert np.all(np.diff(t) > 0)


@pytest.mark.parametrize("kind", KINDS)
async def test_five_minutes_arrive_exactly_with_timestamps_within_a_period(kind: str) -> None:
    seconds = 300.0
    fleet = await run_fleet([kind], seconds)
    dev, src = fleet.devices[0], fleet.sources[0]
    batches = fleet.batches[dev.address]
    rate = RATE[kind]
    check_batch_shape(batches, rate)
    tr = truth(dev)
    t, acc, gyro = joined(batches)
    assert acc.shape[0] == tr.positions.shape[0] >= int(0.98 * seconds * rate)
    q_acc, q_gyro = quantised(kind, src.accel_g[tr.positions], src.gyro_dps[tr.positions])
    np.testing.assert_array_equal(acc, q_acc)
    np.testing.assert_array_equal(gyro, q_gyro)
    err = np.abs(t - tr.t_ns)
    assert err.max() < NS_PER_S / rate, f"max timestamp error {err.max() / 1e6:.2f} ms"
    assert all(b.lost_before == 0 for b in batches)
    st = fleet.status[dev.address]
    assert (st.device_type, st.state, st.gaps, st.lost_samples) == (
        kind,
        SessionState.STOPPED,
        0,
        0,
    )
    assert (st.connects, st.frames_corrupt, st.frames_unknown) == (1, 0, 0)
    assert st.samples == acc.shape[0]
    if kind == "movesense":
        assert st.battery_pct is None  # no battery over GSP
    else:
        assert st.battery_pct == pytest.approx(100.0)


async def test_forced_disconnects_every_minute_resume_within_5_s_with_exact_gaps() -> None:
    seconds = 185.0
    disconnects = (60.0, 120.0, 180.0)
    fleet = await run_fleet(list(KINDS), seconds, faults=FaultPlan(disconnect_at_s=disconnects))
    for dev, src in zip(fleet.devices, fleet.sources, strict=True):
        kind = dev.kind
        batches = fleet.batches[dev.address]
        check_batch_shape(batches, RATE[kind])
        tr = truth(dev)
        assert len(tr.starts) == len(disconnects) + 1, f"{kind}: one stream per connection"
        t, acc, gyro = joined(batches)
        # every emitted sample arrived, exactly, at its time
        assert acc.shape[0] == tr.positions.shape[0]
        q_acc, q_gyro = quantised(kind, src.accel_g[tr.positions], src.gyro_dps[tr.positions])
        np.testing.assert_array_equal(acc, q_acc)
        np.testing.assert_array_equal(gyro, q_gyro)
        assert np.abs(t - tr.t_ns).max() < NS_PER_S / RATE[kind]
        # streaming again within 5 s of sensor time after each drop
        for stop, start in zip(tr.stops[:-1], tr.starts[1:], strict=True):
            assert 0 < (start - stop) / NS_PER_S < 5.0, (
                f"{kind}: back after {(start - stop) / 1e9} s"
            )
        # the reported gaps are exactly the samples the device took while disconnected
        first_of_stream = np.flatnonzero(np.diff(tr.stream_of)) + 1
        missed = (tr.positions[first_of_stream] - tr.positions[first_of_stream - 1] - 1).tolist()
        reported = [b.lost_before for b in batches if b.lost_before]
        assert reported == missed, f"{kind}: reported {reported}, missed {missed}"
        assert all(m > 0 for m in missed)
        st = fleet.status[dev.address]
        assert (st.reconnects, st.gaps, st.lost_samples) == (
            len(disconnects),
            len(disconnects),
            sum(missed),
        )


async def test_corrupt_truncated_and_unknown_frames_are_counted_and_skipped() -> None:
    seconds = 60.0
    faults = FaultPlan(seed=5, corrupt_prob=0.03, split_prob=0.03)
    fleet = await run_fleet(list(KINDS), seconds, faults=faults)
    for dev, src in zip(fleet.devices, fleet.sources, strict=True):
        kind = dev.kind
        st = fleet.status[dev.address]
        assert dev.stats.notifications_corrupted > 0
        assert dev.stats.notifications_split > 0
        # the stream went on: one connection, samples up to the end
        assert st.connects == 1
        assert st.watchdog_trips == 0
        batches = fleet.batches[dev.address]
        check_batch_shape(batches, RATE[kind])
        assert (batches[-1].t_ns[-1] - fleet.air.clock.start_ns) / NS_PER_S > seconds - 2.0
        if kind == "witmotion":
            assert st.bytes_skipped > 0  # junk bytes resynchronised over
        else:
            assert st.frames_corrupt + st.frames_unknown > 0
        # samples that decode to their true values (a flipped payload byte cannot
        # be detected without a checksum) come with their true time
        tr = truth(dev)
        t, acc, _ = joined(batches)
        q_acc, _ = quantised(kind, src.accel_g[tr.positions], src.gyro_dps[tr.positions])
        index = {row.tobytes(): i for i, row in enumerate(q_acc)}
        found = np.array([index.get(row.tobytes(), -1) for row in acc])
        ok = found >= 0
        assert ok.mean() > 0.9
        assert np.all(np.diff(found[ok]) > 0), "never duplicated or reordered"
        # Counter-less devices cannot say where inside a notification a frame
        # was skipped. WitMotion (many frames per notification at a large MTU):
        # the loss is placed at the notification's start, so the samples before
        # it in that notification are one period late. MetaMotion: a skipped
        # frame of one sensor mis-pairs the samples decoded in the same tick
        # (the session then re-pairs), one 3-sample frame late.
        period = NS_PER_S / RATE[kind]
        err = np.abs(t[ok] - tr.t_ns[found[ok]])
        worst = {"witmotion": 1.0, "movesense": 0.5, "metamotion": 3.0}[kind]
        assert err.max() <= worst * period + 1
        assert np.mean(err < period) > 0.9
        if kind == "metamotion":
            assert st.repairs > 0
        # whatever was skipped is reported as lost, never invented
        assert acc.shape[0] + st.lost_samples >= ok.sum()
        assert acc.shape[0] <= tr.positions.shape[0]


async def test_twenty_sensors_for_two_minutes_without_loss() -> None:
    seconds = 120.0
    kinds = [KINDS[i % 3] for i in range(20)]
    fleet = await run_fleet(kinds, seconds)
    for dev, src in zip(fleet.devices, fleet.sources, strict=True):
        tr = truth(dev)
        batches = fleet.batches[dev.address]
        t, acc, _ = joined(batches)
        assert acc.shape[0] == tr.positions.shape[0] >= int(0.98 * seconds * RATE[dev.kind])
        q_acc, _ = quantised(dev.kind, src.accel_g[tr.positions], src.gyro_dps[tr.positions])
        np.testing.assert_array_equal(acc, q_acc)
        assert np.abs(t - tr.t_ns).max() < NS_PER_S / RATE[dev.kind]
        st = fleet.status[dev.address]
        assert (st.gaps, st.lost_samples, st.reconnects) == (0, 0, 0)


async def test_haptic_pattern_reaches_metamotion_and_other_sensors_say_why_not() -> None:
    from collector.haptics import PATTERN_GENTLE

    results: dict[str, object] = {}

    async def during(air: VirtualAir, collector: Collector, devices: list[SimulatedDevice]) -> None:
        await air.clock.sleep(5.0)
        for dev in devices:
            sink = collector.sessions[dev.address]
            results[dev.kind] = (sink.can_vibrate, await sink.vibrate(MOVE_NUDGE))
        # the nudge router's interface, by wearer (w02 wears the MetaMotion)
        results["capable"] = [collector.haptic_capable(f"w{i:02d}") for i in range(3)]
        results["play"] = await collector.play("w02", PATTERN_GENTLE)
        results["play_witmotion"] = await collector.play("w00", PATTERN_GENTLE)

    fleet = await run_fleet(list(KINDS), 10.0, during=during)
    mm_dev = next(d for d in fleet.devices if isinstance(d, MetaMotionDevice))
    can, res = results["metamotion"]  # type: ignore[misc]
    assert can
    assert res
    assert res.pulses_sent == 2
    events = mm_dev.haptic_events
    # MOVE_NUDGE: 2 × 300 ms at 100 %; then the router's gentle pattern: 2 × 200 ms at 60 %
    assert [(e.pulse_ms, round(e.duty_percent), e.buzzer) for e in events] == [
        (300, 100, False),
        (300, 100, False),
        (200, 60, False),
        (200, 60, False),
    ]
    gap_ms = (events[1].t_ns - events[0].t_ns) / 1e6
    assert gap_ms == pytest.approx(550, abs=1)  # on 300 ms + off 250 ms, in sensor time
    assert (events[3].t_ns - events[2].t_ns) / 1e6 == pytest.approx(450, abs=1)
    assert results["capable"] == [False, False, True]
    assert results["play"] is True
    assert results["play_witmotion"] is False
    for kind in ("witmotion", "movesense"):
        can, res = results[kind]  # type: ignore[misc]
        assert not can
        assert not res
        assert res.reason == CollectorReason.NO_MOTOR
    # the streams went on while vibrating
    assert all(fleet.status[d.address].gaps == 0 for d in fleet.devices)


async def test_vibrate_when_not_connected_reports_it() -> None:
    collector = Collector(
        [SensorPairing("D4:00:00:00:00:99", "w01", device="metamotion")],
        lambda b: asyncio.sleep(0),
    )
    res = await collector.haptic_for("w01").vibrate(VibrationPattern((Pulse(100),)))
    assert (res.delivered, res.reason) == (False, CollectorReason.NOT_CONNECTED)
    with pytest.raises(KeyError, match="w02"):
        collector.haptic_for("w02")


async def test_watchdog_reconnects_a_sensor_that_goes_silent_while_connected() -> None:
    from collector.protocols import metamotion as mm

    async def during(air: VirtualAir, collector: Collector, devices: list[SimulatedDevice]) -> None:
        await air.clock.sleep(20.0)
        session = collector.sessions[devices[0].address]
        client = session._client  # the firmware stops streaming but keeps the link
        assert client is not None
        for cmd in mm.stop_commands(packed=True):
            await client.write_gatt_char(mm.WRITE_UUID, cmd, response=False)

    cfg = CollectorConfig(watchdog_s=3.0)
    fleet = await run_fleet(["metamotion"], 40.0, config=cfg, during=during)
    dev = fleet.devices[0]
    st = fleet.status[dev.address]
    assert st.watchdog_trips == 1
    assert st.reconnects == 1
    tr = truth(dev)
    assert len(tr.starts) == 2
    # silent for the watchdog's 3 s, then back quickly
    assert (tr.starts[1] - tr.stops[0]) / NS_PER_S < 3.0 + 0.25 + 5.0
    batches = fleet.batches[dev.address]
    t, acc, _ = joined(batches)
    assert acc.shape[0] == tr.positions.shape[0]
    assert np.abs(t - tr.t_ns).max() < NS_PER_S / 50.0
    reported = [b.lost_before for b in batches if b.lost_before]
    first = int(np.flatnonzero(np.diff(tr.stream_of))[0]) + 1
    assert reported == [int(tr.positions[first] - tr.positions[first - 1] - 1)]


async def test_missing_sensor_backs_off_and_reports_not_found() -> None:
    cfg = CollectorConfig(scan_timeout_s=0.3, backoff_initial_s=1.0, backoff_max_s=2.0)
    air = VirtualAir(SimClock.virtual())
    async with air:
        await air.add_device("witmotion", source("witmotion", 5.0, 0))
        collector = Collector(
            [SensorPairing("E8:00:00:00:00:77", "w09", device="witmotion")],
            lambda b: asyncio.sleep(0),
            config=cfg,
            clock=as_clock(air.clock),
            backend=air.client_backend,
            scanner_backend=air.scanner_backend,
        )
        task = asyncio.create_task(collector.run())
        await air.clock.sleep(6.0)
        st = collector.status()[0]
        collector.request_stop()
        await task
    assert st.connects == 0
    assert "not seen advertising" in st.last_error
    assert st.state in (SessionState.BACKOFF, SessionState.SCANNING)

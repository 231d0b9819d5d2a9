"""BLE faults on the real stack: bumble GATT servers, the unmodified BleakClient, the Collector.

Disconnect storms, a sensor that reboots mid-stream, and a device clock that
jumps forward and back. The truth is what each simulated device emitted
(its ``StreamRecord``s and source arrays), as in tests/test_collector_ble.py
(whose one-disconnect-a-minute test this extends); sensor time is virtual,
so minutes take seconds.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from analysis.contracts import NS_PER_S, SampleBatch
from collector.config import CollectorConfig
from collector.session import SessionState
from firmware_sim.devices import FaultPlan
from postmon.pipeline import WearerPipeline
from tests.ble_helpers import quantised
from tests.test_collector_ble import KINDS, RATE, check_batch_shape, joined, run_fleet, truth

pytestmark = pytest.mark.integration


def _check_accounted(kind: str, fleet: object, dev: object, src: object) -> tuple[int, int]:
    """Every sample the device took is delivered (exact value, true time, in order) or
    counted as lost; returns (delivered, lost in flight: sent as the link dropped)."""
    batches = fleet.batches[dev.address]  # type: ignore[attr-defined]
    check_batch_shape(batches, RATE[kind])  # in order, strictly increasing times
    tr = truth(dev)
    t, acc, gyro = joined(batches)
    q_acc, q_gyro = quantised(kind, src.accel_g[tr.positions], src.gyro_dps[tr.positions])  # type: ignore[attr-defined]
    # which emitted sample each delivered one is (random source: values are unique)
    # (+ 0.0: -0.0 and 0.0 are the same value, not the same bytes)
    index = {row.tobytes(): i for i, row in enumerate(np.hstack([q_acc, q_gyro]) + 0.0)}
    found = np.array([index.get(row.tobytes(), -1) for row in np.hstack([acc, gyro]) + 0.0])
    assert np.all(found >= 0), f"{kind}: a delivered sample the device never sent"
    assert np.all(np.diff(found) > 0), f"{kind}: duplicated or reordered"
    assert np.abs(t - tr.t_ns[found]).max() < NS_PER_S / RATE[kind]
    st = fleet.status[dev.address]  # type: ignore[attr-defined]
    span = int(tr.positions[-1] - tr.positions[0] + 1)  # every sample the device took
    assert acc.shape[0] + st.lost_samples == span, f"{kind}: samples neither delivered nor counted"
    assert st.samples == acc.shape[0]
    return acc.shape[0], tr.positions.shape[0] - acc.shape[0]


async def test_disconnect_storm_loses_no_delivered_sample_and_counts_every_gap() -> None:
    """A link dropped every 3 s for half a minute, then calm: every sample arrives once
    at its time or is counted lost; streaming resumes after each drop and stays."""
    seconds = 60.0
    storm = tuple(10.0 + 3.0 * i for i in range(9))  # 10 s .. 34 s
    fleet = await run_fleet(list(KINDS), seconds, faults=FaultPlan(disconnect_at_s=storm))
    for dev, src in zip(fleet.devices, fleet.sources, strict=True):
        kind = dev.kind
        assert dev.stats.disconnects_forced == len(storm), f"{kind}: the storm did not happen"
        delivered, in_flight = _check_accounted(kind, fleet, dev, src)
        # at most the notification on air when the link dropped is lost per drop
        assert in_flight <= len(storm) * 12, in_flight
        tr = truth(dev)
        st = fleet.status[dev.address]
        assert st.reconnects == len(tr.starts) - 1 == len(storm)
        assert st.gaps >= len(storm)
        t = np.concatenate([b.t_ns for b in fleet.batches[dev.address]])
        assert (t[-1] - fleet.air.clock.start_ns) / NS_PER_S > seconds - 3.0
        assert delivered >= 0.75 * seconds * RATE[kind]


async def test_sensor_reboot_mid_stream_keeps_data_before_and_after_and_counts_the_gap() -> None:
    seconds = 80.0
    faults = FaultPlan(reboot_at_s=(25.0, 50.0), reboot_downtime_s=4.0)
    # a rebooting sensor is not advertising: short scans, so the retries come quickly
    cfg = CollectorConfig(scan_timeout_s=0.3)
    fleet = await run_fleet(list(KINDS), seconds, faults=faults, config=cfg)
    for dev, src in zip(fleet.devices, fleet.sources, strict=True):
        kind = dev.kind
        assert dev.stats.reboots == 2
        tr = truth(dev)
        assert len(tr.starts) == 3, f"{kind}: one stream per boot"
        _, in_flight = _check_accounted(kind, fleet, dev, src)
        assert in_flight <= 2 * 12
        st = fleet.status[dev.address]
        # the gap over each reboot (downtime + reconnection) is counted as such
        assert (st.reconnects, st.gaps) == (2, 2)
        assert st.lost_samples >= 2 * 4.0 * RATE[kind]
        assert st.state == SessionState.STOPPED
        # a device with its own clock shows the restart as such; the others cannot tell
        assert st.device_restarts == (2 if kind == "movesense" else 0)
        # data before the first and after the last reboot is there
        t = np.concatenate([b.t_ns for b in fleet.batches[dev.address]])
        assert (t[0] - tr.starts[0]) / NS_PER_S < 2.0
        assert (t[-1] - fleet.air.clock.start_ns) / NS_PER_S > seconds - 3.0


def _epochs(batches: list[SampleBatch]) -> np.ndarray:
    p = WearerPipeline("clinic-a", batches[0].wearer_id, batches[0].sensor_id)
    parts = [p.feed(b).epochs for b in batches]
    parts.append(p.finish().epochs)
    return np.concatenate(parts)


@pytest.mark.parametrize(
    "jumps",
    [((30.0, 60.0), (60.0, -30.0)), ((30.0, -3600.0),), ((30.0, 2.0**32 / 1e3 - 5.0),)],
    ids=["forward-then-back", "back-one-hour", "forward-to-the-wrap"],
)
async def test_device_clock_jump_is_detected_logged_counted_and_epochs_stay_whole(
    jumps: tuple[tuple[float, float], ...], caplog: pytest.LogCaptureFixture
) -> None:
    seconds = 90.0
    cfg = CollectorConfig(rate_hz=52.0)
    with caplog.at_level(logging.WARNING, logger="collector.session"):
        fleet = await run_fleet(
            ["movesense"], seconds, faults=FaultPlan(clock_jumps=jumps), config=cfg
        )
    dev, src = fleet.devices[0], fleet.sources[0]
    batches = fleet.batches[dev.address]
    check_batch_shape(batches, RATE["movesense"])
    tr = truth(dev)
    assert len(tr.starts) == 1, "the link never dropped: a clock fault only"
    t, acc, _ = joined(batches)
    q_acc, _ = quantised("movesense", src.accel_g[tr.positions], src.gyro_dps[tr.positions])
    np.testing.assert_array_equal(acc, q_acc)  # nothing lost, nothing invented
    # timestamps follow true time across the jumps (from arrivals), never the jumped clock
    assert np.abs(t - tr.t_ns).max() < NS_PER_S / RATE["movesense"]
    st = fleet.status[dev.address]
    assert st.device_restarts == len(jumps)  # detected and counted
    assert (st.gaps, st.lost_samples) == (0, 0)  # and not mistaken for lost samples
    logged = [r.getMessage() for r in caplog.records if "clock discontinuity" in r.getMessage()]
    assert len(logged) == len(jumps)
    for (_, jump_s), msg in zip(jumps, logged, strict=True):
        moved = float(msg.split("its time moved ")[1].split(" s")[0])
        passed = float(msg.split(" s while ")[1].split(" s")[0])
        wrapped = (jump_s + 2**31 / 1e3) % (2**32 / 1e3) - 2**31 / 1e3  # u32 ms counter
        assert moved - passed == pytest.approx(wrapped, abs=0.01), msg
    # the epochs the analysis makes of it: one per second, none twice, no hole
    ep = _epochs(batches)
    dt = np.diff(ep["time_ns"])
    assert np.all(dt == NS_PER_S), np.unique(dt)
    assert len(ep) >= seconds - 3

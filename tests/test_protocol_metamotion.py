"""MetaMotion (MetaWear) wire format: exact vectors, round trips, malformed frames."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.protocols import metamotion as mm
from collector.protocols.base import Decoded
from tests.protocol_helpers import array3, assert_decoded_equal, bytes_balance, frames_balance

# By hand, ±8 g (4096 LSB/g) and ±2000 deg/s (16.4 LSB/(deg/s)):
ACC = bytes.fromhex("0304 0010 00f0 0020")  # x=4096 (1 g) y=-4096 z=8192 (2 g)
GYRO = bytes.fromhex("1305 a400 5cff 0000")  # x=164 (10 deg/s) y=-164 z=0
ACC_PACKED = bytes.fromhex("031c 0010 0000 0000 0000 0010 0000 0000 0000 00f0")
GYRO_PACKED = bytes.fromhex("1307 a400 0000 0000 0000 a400 0000 0000 0000 5cff")
BATTERY = bytes.fromhex("118c 63 7c10")  # 99 %, 0x107c = 4220 mV


def test_hand_built_single_frames_decode_exactly() -> None:
    got = mm.MetaMotionDecoder(acc_range_g=8, gyro_range_dps=2000).feed_many([ACC, GYRO])
    want = Decoded(
        accel_g=np.array([[1.0, -1.0, 2.0]]),
        gyro_dps=np.array([[164 / 16.4, -164 / 16.4, 0.0]]),
        chunk_index=np.array([1]),  # complete when the gyro half arrived
    )
    assert_decoded_equal(got, want)


def test_hand_built_packed_frames_and_battery() -> None:
    d = mm.MetaMotionDecoder(acc_range_g=8, gyro_range_dps=2000)
    got = d.feed_many([GYRO_PACKED, BATTERY, ACC_PACKED])
    want = Decoded(
        accel_g=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]),
        gyro_dps=np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, -10.0]]),
        chunk_index=np.array([2, 2, 2]),
        messages=(mm.BatteryState(99, 4220, 1),),
    )
    assert_decoded_equal(got, want)
    assert (d.stats.frames_data, d.stats.frames_control) == (2, 1)
    assert frames_balance(d.stats) == 0
    assert bytes_balance(d.stats) == 0


def test_commands_match_the_documented_layout() -> None:
    assert mm.encode_command(mm.SensorConfig(mm.MODULE_ACC, 100, 16)) == bytes.fromhex("0303280c")
    assert mm.encode_command(mm.SensorConfig(mm.MODULE_ACC, 50, 2)) == bytes.fromhex("03032703")
    assert mm.encode_command(mm.SensorConfig(mm.MODULE_GYRO, 100, 2000)) == bytes.fromhex(
        "13032800"
    )
    assert mm.encode_command(mm.SensorInterrupt(mm.MODULE_ACC, True)) == bytes.fromhex("03020100")
    assert mm.encode_command(mm.SensorPower(mm.MODULE_GYRO, True)) == bytes.fromhex("130101")
    assert mm.encode_command(mm.Subscribe(mm.MODULE_ACC, False, True)) == bytes.fromhex("030401")
    assert mm.encode_command(mm.Subscribe(mm.MODULE_ACC, True, True)) == bytes.fromhex("031c01")
    assert mm.encode_command(mm.Subscribe(mm.MODULE_GYRO, True, True)) == bytes.fromhex("130701")
    assert mm.cmd_battery_read() == bytes.fromhex("118c")
    # 100 % for 500 ms on the motor: 08 01 f8 f401 00
    assert mm.cmd_haptic(100, 500) == bytes.fromhex("0801f8f40100")
    assert mm.cmd_haptic(50, 1000, buzzer=True) == bytes.fromhex("08017ce80301")
    with pytest.raises(ValueError, match="unsupported"):
        mm.encode_command(mm.SensorConfig(mm.MODULE_ACC, 60, 8))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        mm.cmd_haptic(120, 10)


def test_start_sequence() -> None:
    assert mm.start_commands(50, 8, 2000, packed=True) == (
        bytes.fromhex("03032708"),
        bytes.fromhex("031c01"),
        bytes.fromhex("13032700"),
        bytes.fromhex("130701"),
        bytes.fromhex("03020100"),
        bytes.fromhex("030101"),
        bytes.fromhex("13020100"),
        bytes.fromhex("130101"),
    )


command_strategy = st.one_of(
    st.builds(
        mm.SensorConfig,
        st.just(mm.MODULE_ACC),
        st.sampled_from(list(mm.ODR_CODES)),
        st.sampled_from(list(mm.ACC_RANGES)),
    ),
    st.builds(
        mm.SensorConfig,
        st.just(mm.MODULE_GYRO),
        st.sampled_from(list(mm.ODR_CODES)),
        st.sampled_from(list(mm.GYRO_RANGES)),
    ),
    st.builds(mm.SensorPower, st.sampled_from([mm.MODULE_ACC, mm.MODULE_GYRO]), st.booleans()),
    st.builds(mm.SensorInterrupt, st.sampled_from([mm.MODULE_ACC, mm.MODULE_GYRO]), st.booleans()),
    st.builds(
        mm.Subscribe, st.sampled_from([mm.MODULE_ACC, mm.MODULE_GYRO]), st.booleans(), st.booleans()
    ),
    st.builds(mm.Haptic, st.integers(0, 248), st.integers(0, 0xFFFF), st.booleans()),
    st.just(mm.BatteryRead()),
)


@given(command_strategy)
def test_command_round_trip(cmd: mm.Command) -> None:
    assert mm.parse_command(mm.encode_command(cmd)) == cmd


def test_parse_rejects_malformed_commands() -> None:
    for raw in [b"", b"\x03", b"\x03\x01", b"\x03\x01\x05", b"\x08\x01\xff\x00\x00\x00", bytes(21)]:
        assert mm.parse_command(raw) is None


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.sampled_from(list(mm.ACC_RANGES)),
    st.sampled_from(list(mm.GYRO_RANGES)),
    st.booleans(),
    st.data(),
)
def test_sensor_frames_round_trip(
    k: int, acc_range: float, gyro_range: float, packed: bool, data: st.DataObject
) -> None:
    n = 3 * k
    acc = data.draw(array3(n, 20.0))
    gyro = data.draw(array3(n, 2500.0))
    acc_lsb = {2.0: 16384, 4.0: 8192, 8.0: 4096, 16.0: 2048}[acc_range]
    gyro_lsb = {2000.0: 16.4, 1000.0: 32.8, 500.0: 65.6, 250.0: 131.2, 125.0: 262.4}[gyro_range]
    a = mm.encode_sensor_frames(mm.MODULE_ACC, acc, acc_lsb, packed)
    g = mm.encode_sensor_frames(mm.MODULE_GYRO, gyro, gyro_lsb, packed)
    size = 20 if packed else 8
    per = 3 if packed else 1
    a_chunks = [a[i : i + size] for i in range(0, len(a), size)]
    g_chunks = [g[i : i + size] for i in range(0, len(g), size)]
    chunks = [c for pair in zip(a_chunks, g_chunks, strict=True) for c in pair]  # acc, gyro, ...
    d = mm.MetaMotionDecoder(acc_range_g=acc_range, gyro_range_dps=gyro_range)
    got = d.feed_many(chunks)
    want = Decoded(
        accel_g=np.clip(np.round(acc * acc_lsb), -32768, 32767) / acc_lsb,
        gyro_dps=np.clip(np.round(gyro * gyro_lsb), -32768, 32767) / gyro_lsb,
        chunk_index=np.repeat(2 * np.arange(n // per) + 1, per),
    )
    assert_decoded_equal(got, want)
    assert d.stats.samples_pending == 0


def test_pairing_waits_across_calls() -> None:
    d = mm.MetaMotionDecoder()
    first = d.feed_many([BATTERY, GYRO_PACKED])
    assert len(first) == 0
    assert d.stats.samples_pending == 3
    second = d.feed_many([ACC_PACKED, GYRO_PACKED])  # the pair completes in the first chunk
    assert len(second) == 3
    np.testing.assert_array_equal(second.chunk_index, [0, 0, 0])
    assert d.stats.samples_pending == 3
    third = d.feed_many([ACC_PACKED])
    np.testing.assert_array_equal(third.chunk_index, [0, 0, 0])
    d.feed_many([ACC_PACKED])
    d.reset()
    assert d.stats.samples_unpaired == 3
    assert d.stats.samples_pending == 0


def test_accel_only_stream() -> None:
    d = mm.MetaMotionDecoder(gyro=False)
    got = d.feed_many([ACC, GYRO])
    assert got.gyro_dps is None
    np.testing.assert_array_equal(got.accel_g, [[1.0, -1.0, 2.0]])
    assert d.stats.samples_unpaired == 1


def test_pending_queue_is_bounded_and_counted() -> None:
    d = mm.MetaMotionDecoder(max_pending=6)
    d.feed_many([ACC_PACKED] * 5)
    assert d.stats.samples_pending == 6
    assert d.stats.samples_unpaired == 9


def test_malformed_frames_are_counted_not_raised() -> None:
    d = mm.MetaMotionDecoder()
    bad = [b"", b"\x03", ACC[:-1], ACC_PACKED + b"\x00", BATTERY[:-1], b"\x19\x04abc", b"\xff\xff"]
    got = d.feed_many([*bad, ACC, GYRO])
    np.testing.assert_array_equal(got.accel_g, [[1.0, -1.0, 2.0]])
    np.testing.assert_array_equal(got.chunk_index, [8])
    assert d.stats.frames_corrupt == 3
    assert d.stats.frames_unknown == 4
    assert frames_balance(d.stats) == 0
    assert bytes_balance(d.stats) == 0


def test_streams_line_up_when_the_second_sensor_starts() -> None:
    """Accelerometer alone for a while, then both: pairs start at the first gyro frame."""

    def acc(v: int) -> bytes:
        return mm.encode_sensor_frames(mm.MODULE_ACC, np.full((3, 3), v / 4096), 4096, True)

    def gyro(v: int) -> bytes:
        return mm.encode_sensor_frames(mm.MODULE_GYRO, np.full((3, 3), v / 16.4), 16.4, True)

    d = mm.MetaMotionDecoder(8, 2000)
    first = d.feed_many([acc(1), acc(2)])  # gyro not started yet
    assert len(first) == 0
    got = d.feed_many([acc(3), gyro(3), acc(4), gyro(4)])
    np.testing.assert_array_equal(got.accel_g[:, 0] * 4096, [3, 3, 3, 4, 4, 4])
    np.testing.assert_array_equal(np.round(got.gyro_dps[:, 0] * 16.4), [3, 3, 3, 4, 4, 4])
    assert d.stats.samples_unpaired == 6
    assert d.stats.samples_pending == 0


@given(st.integers(0, 255), st.integers(0, 0xFFFF))
def test_battery_round_trip(percent: int, millivolts: int) -> None:
    got = mm.MetaMotionDecoder().feed(mm.encode_battery(percent, millivolts))
    assert got.messages == (mm.BatteryState(percent, millivolts, 0),)
    assert len(got) == 0

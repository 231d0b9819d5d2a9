"""Movesense GSP wire format: exact vectors, round trips, malformed messages."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.protocols import movesense as ms
from collector.protocols.base import Decoded, DeviceTimestamps
from tests.protocol_helpers import array3, assert_decoded_equal, bytes_balance, frames_balance

G = 9.80665


def _f32(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


# Data message by hand: 02 ref=0x63 | timestamp 1000 ms | 2 samples:
# acc (m/s²) [0, 0, 9.80665], [9.80665, 0, 0] then gyro (deg/s) [1, 2, 3], [-4, 5, -6]
DATA = (
    bytes.fromhex("02 63 e8030000")
    + _f32(0.0, 0.0, G, G, 0.0, 0.0)
    + _f32(1.0, 2.0, 3.0, -4.0, 5.0, -6.0)
)
DATA_DECODED = Decoded(
    accel_g=np.array([[0.0, 0.0, float(np.float32(G)) / G], [float(np.float32(G)) / G, 0.0, 0.0]]),
    gyro_dps=np.array([[1.0, 2.0, 3.0], [-4.0, 5.0, -6.0]]),
    chunk_index=np.array([0, 0]),
    device_time=DeviceTimestamps(np.array([0]), np.array([1000])),
)


def test_hand_built_data_message_decodes_exactly() -> None:
    assert len(DATA) == 6 + 2 * 24
    assert_decoded_equal(ms.MovesenseDecoder().feed(DATA), DATA_DECODED)


def test_hand_built_command_results() -> None:
    d = ms.MovesenseDecoder()
    got = d.feed_many(
        [bytes.fromhex("01 01 c800"), bytes.fromhex("01 63 9401"), b"\x01\x05Hello", DATA]
    )
    want = Decoded(
        accel_g=DATA_DECODED.accel_g,
        gyro_dps=DATA_DECODED.gyro_dps,
        chunk_index=np.array([3, 3]),
        device_time=DeviceTimestamps(np.array([0]), np.array([1000])),
        messages=(
            ms.CommandResult(1, 200, b"", 0),
            ms.CommandResult(0x63, 404, b"", 1),
            ms.CommandResult(5, None, b"Hello", 2),
        ),
    )
    assert_decoded_equal(got, want)
    assert (d.stats.frames_control, d.stats.frames_data) == (3, 1)
    assert frames_balance(d.stats) == 0
    assert bytes_balance(d.stats) == 0


def test_commands_match_the_documented_layout() -> None:
    assert ms.cmd_hello(1) == b"\x00\x01"
    assert ms.cmd_subscribe_imu6(0x63, 52) == b"\x01\x63/Meas/IMU6/52"
    assert ms.cmd_unsubscribe(0x63) == b"\x02\x63"
    assert ms.start_commands(104) == (b"\x00\x01", b"\x01\x63/Meas/IMU6/104")
    with pytest.raises(ValueError, match="unsupported"):
        ms.cmd_subscribe_imu6(0x63, 50)
    with pytest.raises(ValueError, match=r"1\.\.255"):
        ms.cmd_hello(0)


def test_parse_command_and_paths() -> None:
    assert ms.parse_command(b"\x01\x63/Meas/IMU6/52") == ms.Subscribe(0x63, "/Meas/IMU6/52")
    assert ms.parse_command(b"\x00\x07") == ms.Hello(7)
    assert ms.parse_command(b"\x02\x07") == ms.Unsubscribe(7)
    assert ms.parse_command(b"\x00\x00") is None  # ref 0 is invalid
    assert ms.parse_command(b"\x09\x01") is None
    assert ms.parse_command(b"\x01\x01\xff") is None
    assert ms.parse_imu6_path("/Meas/IMU6/208") == 208
    assert ms.parse_imu6_path("/Meas/IMU6/50") is None
    assert ms.parse_imu6_path("/Meas/Acc/52") is None


def test_samples_per_packet_at_mtu() -> None:
    assert ms.samples_per_packet(23) == 0
    assert ms.samples_per_packet(33) == 1
    assert ms.samples_per_packet(161) == 6  # what the real firmware negotiates
    assert ms.samples_per_packet(247, cap=100) == 9


@given(
    st.one_of(
        st.integers(1, 255).map(ms.Hello),
        st.integers(1, 255).map(ms.Unsubscribe),
        st.tuples(st.integers(1, 255), st.text(alphabet=st.characters(max_codepoint=127))).map(
            lambda t: ms.Subscribe(*t)
        ),
    )
)
def test_command_round_trip(cmd: ms.Command) -> None:
    assert ms.parse_command(ms.encode_command(cmd)) == cmd


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=10))
def test_command_result_round_trip(ref: int, status: int, payload: bytes) -> None:
    got = ms.MovesenseDecoder().feed(ms.encode_command_result(ref, status, payload))
    assert got.messages == (ms.CommandResult(ref, status, payload, 0),)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 6), st.integers(0, 2**32 - 1), st.data())
def test_imu6_round_trip(p: int, n: int, t0: int, data: st.DataObject) -> None:
    acc = data.draw(array3(p * n, 50.0)).reshape(p, n, 3)
    gyro = data.draw(array3(p * n, 5000.0)).reshape(p, n, 3)
    times = (t0 + 20 * np.arange(p)) % 2**32
    raw = ms.encode_imu6_packets(0x63, times, acc, gyro)
    size = 6 + 24 * n
    chunks = [raw[i * size : (i + 1) * size] for i in range(p)]
    got = ms.MovesenseDecoder(data_refs=[0x63]).feed_many(chunks)
    want = Decoded(
        accel_g=(acc.reshape(-1, 3) * G).astype(np.float32).astype(np.float64) / G,
        gyro_dps=gyro.reshape(-1, 3).astype(np.float32).astype(np.float64),
        chunk_index=np.repeat(np.arange(p), n),
        device_time=DeviceTimestamps(np.arange(p) * n, times),
    )
    assert_decoded_equal(got, want)
    np.testing.assert_array_equal(got.accel_g, ms.quantize_accel(acc.reshape(-1, 3)))


def test_mixed_packet_sizes_keep_arrival_order() -> None:
    rng = np.random.default_rng(1)
    sizes = [2, 1, 2, 3, 1]
    acc = [rng.normal(size=(k, 3)) for k in sizes]
    gyro = [rng.normal(size=(k, 3)) for k in sizes]
    chunks = [
        ms.encode_imu6_packets(1, [10 * i], a[None], g[None])
        for i, (a, g) in enumerate(zip(acc, gyro, strict=True))
    ]
    got = ms.MovesenseDecoder().feed_many(chunks)
    np.testing.assert_array_equal(got.accel_g, ms.quantize_accel(np.concatenate(acc)))
    np.testing.assert_array_equal(got.gyro_dps, ms.quantize_gyro(np.concatenate(gyro)))
    np.testing.assert_array_equal(got.chunk_index, np.repeat(np.arange(5), sizes))
    assert got.device_time is not None
    np.testing.assert_array_equal(got.device_time.sample_index, [0, 2, 3, 5, 8])
    np.testing.assert_array_equal(got.device_time.time_ms, [0, 10, 20, 30, 40])


def test_malformed_messages_are_counted_not_raised() -> None:
    d = ms.MovesenseDecoder(data_refs=[0x63])
    bad = [
        b"",  # empty
        b"\x02",  # too short
        DATA[:-5],  # truncated data (len - 6 not a multiple of 24)
        DATA[:6],  # header only: no sample
        b"\x07\x01abc",  # unknown type
        b"\x02\x05" + DATA[2:],  # data for a ref we did not subscribe
        b"\x01",  # result without ref
    ]
    got = d.feed_many([*bad, DATA])
    assert_decoded_equal(
        got,
        Decoded(
            DATA_DECODED.accel_g,
            DATA_DECODED.gyro_dps,
            np.array([7, 7]),
            DeviceTimestamps(np.array([0]), np.array([1000])),
        ),
    )
    assert d.stats.frames_corrupt == 2
    assert d.stats.frames_unknown == 5
    assert frames_balance(d.stats) == 0
    assert bytes_balance(d.stats) == 0


def test_split_message_is_two_bad_messages_and_stream_goes_on() -> None:
    # GATT never splits a notification; if something did, the pieces are bad
    # messages (a piece of valid IMU6 length is indistinguishable from a real
    # one: GSP has no length field) and the next whole message decodes.
    d = ms.MovesenseDecoder()
    for cut in range(1, len(DATA)):
        got = d.feed_many([DATA[:cut], DATA[cut:], DATA])
        np.testing.assert_array_equal(got.accel_g[-2:], DATA_DECODED.accel_g)
        head_valid = cut > 6 and (cut - 6) % 24 == 0
        assert len(got) == 2 + (1 if head_valid else 0)
    assert frames_balance(d.stats) == 0
    assert bytes_balance(d.stats) == 0

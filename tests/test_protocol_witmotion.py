"""WitMotion wire format: exact vectors, round trips, malformed streams."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.protocols import witmotion as wm
from collector.protocols.base import Decoded, DeviceTimestamps
from tests.protocol_helpers import array3, assert_decoded_equal, bytes_balance, concat, vectors

# A data frame built by hand from the documented layout:
# 55 61 | ax=0x0800 (2048 -> 1 g) ay=0xF800 (-2048 -> -1 g) az=0x4000 (16384 -> 8 g)
#       | gx=0x0010 (16 -> 16*2000/32768 deg/s) gy=0xFFF0 (-16) gz=0x7FFF (32767)
#       | roll=0x2000 (8192 -> 45 deg) pitch=0xE000 (-45 deg) yaw=0x8000 (-180 deg)
FRAME = bytes.fromhex("5561 0008 00f8 0040 1000 f0ff ff7f 0020 00e0 0080")
FRAME_DECODED = Decoded(
    accel_g=np.array([[1.0, -1.0, 8.0]]),
    gyro_dps=np.array([[16 * 2000 / 32768, -16 * 2000 / 32768, 32767 * 2000 / 32768]]),
    chunk_index=np.array([0]),
    angle_deg=np.array([[45.0, -45.0, -180.0]]),
)
# Register replies by hand: 55 71 <reg lo> <reg hi> + 8 int16
BATTERY_REPLY = bytes.fromhex("5571 6400 8501") + bytes(14)  # 0x0185 = 389 -> 3.89 V
QUAT_REPLY = bytes.fromhex("5571 5100 0040 0000 00c0 0020") + bytes(8)  # 0.5, 0, -0.5, 0.25
MAG_REPLY = bytes.fromhex("5571 3a00 7800 88ff f000") + bytes(10)  # 120 -> 1.0, -1.0, 2.0


def test_hand_built_data_frame_decodes_exactly() -> None:
    assert len(FRAME) == 20
    assert_decoded_equal(wm.WitMotionDecoder().feed(FRAME), FRAME_DECODED)


def test_hand_built_register_replies() -> None:
    d = wm.WitMotionDecoder()
    got = d.feed_many([BATTERY_REPLY, QUAT_REPLY + MAG_REPLY, FRAME])
    want = Decoded(
        accel_g=FRAME_DECODED.accel_g,
        gyro_dps=FRAME_DECODED.gyro_dps,
        chunk_index=np.array([2]),
        angle_deg=FRAME_DECODED.angle_deg,
        messages=(
            wm.BatteryVoltageReply(3.89, 0),
            wm.QuaternionReply((0.5, 0.0, -0.5, 0.25), 1),
            wm.MagnetometerReply((1.0, -1.0, 2.0), 1),
        ),
    )
    assert_decoded_equal(got, want)
    assert d.stats.frames_control == 3
    assert d.stats.frames_data == 1


def test_unknown_register_reply_keeps_raw_values() -> None:
    raw = bytes.fromhex("5571 0300 0800") + bytes(14)
    got = wm.WitMotionDecoder().feed(raw)
    assert got.messages == (wm.RegisterReply(0x03, (8, 0, 0, 0, 0, 0, 0, 0), 0),)


def test_command_bytes_match_the_documented_layout() -> None:
    assert wm.cmd_unlock() == bytes.fromhex("ffaa6988b5")
    assert wm.cmd_save() == bytes.fromhex("ffaa000000")
    assert wm.cmd_set_rate(50) == bytes.fromhex("ffaa030800")
    assert wm.cmd_set_rate(200) == bytes.fromhex("ffaa030b00")
    assert wm.cmd_read_register(0x64) == bytes.fromhex("ffaa276400")
    assert wm.start_commands(10) == (
        bytes.fromhex("ffaa6988b5"),
        bytes.fromhex("ffaa030600"),
        bytes.fromhex("ffaa000000"),
    )
    with pytest.raises(ValueError, match="unsupported"):
        wm.cmd_set_rate(30)


def test_parse_command() -> None:
    assert wm.parse_command(bytes.fromhex("ffaa6988b5")) == wm.Unlock()
    assert wm.parse_command(bytes.fromhex("ffaa276400")) == wm.ReadRegister(0x64)
    assert wm.parse_command(bytes.fromhex("ffaa030900")) == wm.WriteRegister(3, 9)
    save = wm.parse_command(bytes.fromhex("ffaa000000"))
    assert isinstance(save, wm.WriteRegister)
    assert save.is_save
    assert wm.parse_command(b"\xff\xab\x00\x00\x00") is None
    assert wm.parse_command(b"\xff\xaa\x00") is None


@given(
    st.one_of(
        st.just(wm.Unlock()),
        st.integers(0, 255).map(wm.ReadRegister),
        st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF))
        .filter(lambda t: t[0] not in (wm.REG_READ, wm.REG_UNLOCK))
        .map(lambda t: wm.WriteRegister(*t)),
    )
)
def test_command_round_trip(cmd: wm.Command) -> None:
    assert wm.parse_command(wm.encode_command(cmd)) == cmd


@settings(max_examples=60, deadline=None)
@given(vectors(40, 20.0), st.data())
def test_data_frames_round_trip_to_quantised_values(acc: np.ndarray, data: st.DataObject) -> None:
    n = acc.shape[0]
    gyro = data.draw(array3(n, 2500.0))
    angle = data.draw(array3(n, 200.0))
    got = wm.WitMotionDecoder().feed(wm.encode_data_frames(acc, gyro, angle))
    # quantisation from the documented scales: raw = round(x / (range/32768)), saturating
    want_acc = np.clip(np.round(acc * 32768 / 16), -32768, 32767) * (16 / 32768)
    want_gyro = np.clip(np.round(gyro * 32768 / 2000), -32768, 32767) * (2000 / 32768)
    want_angle = np.clip(np.round(angle * 32768 / 180), -32768, 32767) * (180 / 32768)
    np.testing.assert_array_equal(got.accel_g, want_acc)
    np.testing.assert_array_equal(got.gyro_dps, want_gyro)
    np.testing.assert_array_equal(got.angle_deg, want_angle)
    np.testing.assert_array_equal(got.chunk_index, np.zeros(n))


@given(st.integers(0, 0xFFFF), st.lists(st.integers(-32768, 32767), min_size=8, max_size=8))
# register 0x7155 reads 55 71 55 71 00...: a header-like pair inside the frame
@example(0x7155, [0] * 8)
@example(0x6155, [0x7155, 0x6155, 0, 0, 0, 0, 0, 0x5555])
def test_register_reply_round_trip(reg: int, raw: list[int]) -> None:
    got = wm.WitMotionDecoder().feed(wm.encode_register_reply(reg, raw))
    assert got.messages == (wm.decode_register_reply(reg, tuple(raw), 0),)
    assert len(got) == 0


@given(st.floats(0.0, 327.0))
def test_battery_reply_round_trip(volts: float) -> None:
    (msg,) = wm.WitMotionDecoder().feed(wm.encode_battery_reply(volts)).messages
    assert msg == wm.BatteryVoltageReply(round(volts * 100) / 100)


# Frame payloads (18 bytes after the header) built mostly from header bytes, so
# that `55 61` / `55 71` pairs occur inside frames at every offset.
_HEADERISH_PAYLOAD = st.lists(
    st.sampled_from([0x55, 0x61, 0x71, 0x00, 0xFF]), min_size=18, max_size=18
).map(bytes)


def _frame_truth(frame: bytes) -> tuple[np.ndarray | None, wm.Message | None]:
    """Independent decoding of one frame with struct (acc in g, or the reply message)."""
    if frame[1] == wm.TYPE_DATA:
        raw = struct.unpack("<BB9h", frame)[2:]
        return np.array(raw[:3], dtype=np.float64) * 16 / 32768, None
    _, _, reg, *values = struct.unpack("<BBH8h", frame)
    return None, wm.decode_register_reply(reg, tuple(values), 0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([0x61, 0x71]), _HEADERISH_PAYLOAD), min_size=1, max_size=8),
    st.lists(st.integers(0, 160), max_size=6),
)
def test_frames_with_header_bytes_inside_are_never_abandoned(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(bytes((0x55, kind)) + payload for kind, payload in frames)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    d = wm.WitMotionDecoder()
    acc, _, msgs = concat([d.feed(stream[a:b]) for a, b in itertools.pairwise(bounds)])
    truth = [_frame_truth(stream[i : i + 20]) for i in range(0, len(stream), 20)]
    want_acc = [a for a, _ in truth if a is not None]
    np.testing.assert_array_equal(acc, np.array(want_acc).reshape(-1, 3))
    assert msgs == [m for _, m in truth if m is not None]
    assert d.stats.frames_corrupt == 0
    assert d.stats.bytes_skipped == 0
    assert d.stats.bytes_pending == 0
    assert bytes_balance(d.stats) == 0


def test_frame_with_inner_header_waits_for_the_next_header_byte() -> None:
    reply = wm.encode_register_reply(0x7155, [0] * 8)
    raw, want = _stream(1)
    d = wm.WitMotionDecoder()
    first = d.feed(reply + raw[:1])  # only the 55 of the next header: undecidable
    assert first.messages == ()
    second = d.feed(raw[1:])
    assert second.messages == (wm.RegisterReply(0x7155, (0,) * 8, 0),)
    np.testing.assert_array_equal(second.accel_g, want)
    assert d.stats.frames_corrupt == 0


def _stream(n: int, seed: int = 0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    acc = rng.uniform(-2, 2, (n, 3))
    raw = wm.encode_data_frames(acc, rng.uniform(-300, 300, (n, 3)), rng.uniform(-90, 90, (n, 3)))
    return raw, np.clip(np.round(acc * 2048), -32768, 32767) / 2048


def test_split_at_every_offset_gives_the_same_samples() -> None:
    raw, want = _stream(3)
    raw = raw + BATTERY_REPLY + raw
    want = np.concatenate([want, want])
    for cut in range(len(raw) + 1):
        d = wm.WitMotionDecoder()
        acc, _, msgs = concat([d.feed(raw[:cut]), d.feed(raw[cut:])])
        np.testing.assert_array_equal(acc, want, err_msg=f"cut at {cut}")
        assert msgs == [wm.BatteryVoltageReply(3.89, 0)]
        assert d.stats.bytes_skipped == 0
        assert bytes_balance(d.stats) == 0


def test_every_split_into_three_parts() -> None:
    raw, want = _stream(2)
    for i in range(len(raw)):
        for j in range(i, len(raw) + 1):
            d = wm.WitMotionDecoder()
            got = d.feed_many([raw[:i], raw[i:j], raw[j:]])
            np.testing.assert_array_equal(got.accel_g, want)
            # frame k completes in the part holding its byte 20k+19
            ends = np.array([i, j, len(raw)])
            want_chunk = np.searchsorted(ends, np.array([19, 39]), side="right")
            np.testing.assert_array_equal(got.chunk_index, want_chunk)


def test_joined_frames_and_chunk_index() -> None:
    raw, want = _stream(12)
    d = wm.WitMotionDecoder()
    got = d.feed_many([raw[:100], raw[100:240]])  # 5 frames, then 7 frames
    np.testing.assert_array_equal(got.accel_g, want)
    np.testing.assert_array_equal(got.chunk_index, [0] * 5 + [1] * 7)


def test_garbage_before_between_and_after_is_skipped_and_counted() -> None:
    raw, want = _stream(4)
    garbage = b"\x00\x55\x62\x13\x37"  # 55 62 is not a WitMotion header
    d = wm.WitMotionDecoder()
    got = d.feed(garbage + raw[:40] + garbage + raw[40:] + garbage)
    np.testing.assert_array_equal(got.accel_g, want)
    assert d.stats.bytes_skipped == 3 * len(garbage)
    assert d.stats.frames_data == 4
    assert bytes_balance(d.stats) == 0


def test_truncated_frame_is_counted_and_stream_resyncs() -> None:
    raw, want = _stream(3)
    truncated = raw[:20] + raw[20:31] + raw[40:]  # frame 1 loses its last 9 bytes
    d = wm.WitMotionDecoder()
    got = d.feed(truncated)
    np.testing.assert_array_equal(got.accel_g, want[[0, 2]])
    assert d.stats.frames_corrupt == 1
    assert d.stats.bytes_skipped == 11
    assert bytes_balance(d.stats) == 0


def test_truncated_last_frame_waits_for_the_next_notification() -> None:
    raw, want = _stream(2)
    d = wm.WitMotionDecoder()
    first = d.feed(raw[:12] + raw[20:30])  # 12 bytes of frame 0, then 10 of frame 1
    assert len(first) == 0  # undecidable: wait
    second = d.feed(raw[30:])
    np.testing.assert_array_equal(second.accel_g, want[1:])
    assert d.stats.frames_corrupt == 1
    assert bytes_balance(d.stats) == 0


def test_only_garbage_and_a_trailing_header_byte() -> None:
    d = wm.WitMotionDecoder()
    assert len(d.feed(b"\x01\x02\x03\x55")) == 0
    assert d.stats.bytes_pending == 1  # 0x55 may start a header
    raw, want = _stream(1)
    got = d.feed(raw[1:])
    np.testing.assert_array_equal(got.accel_g, want)
    assert d.stats.bytes_skipped == 3
    assert bytes_balance(d.stats) == 0


def test_reset_counts_buffered_bytes_as_skipped() -> None:
    raw, _ = _stream(1)
    d = wm.WitMotionDecoder()
    d.feed(raw[:15])
    d.reset()
    assert d.stats.bytes_pending == 0
    assert d.stats.bytes_skipped == 15
    assert bytes_balance(d.stats) == 0


def test_decoded_has_no_device_time() -> None:
    got = wm.WitMotionDecoder().feed(FRAME)
    assert got.device_time is None
    assert not isinstance(got.device_time, DeviceTimestamps)

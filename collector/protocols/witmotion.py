"""WitMotion WT901BLE / WT901BLECL / BWT901BLE5.0 wire format.

Source: the vendor's own bleak example (WITMOTION/WitBluetooth_BWT901BLE5_0,
``device_model.py``); summarised in ``shared/reference/devices.md``.

The data characteristic (``ffe4``) carries a BYTE STREAM of 20-byte frames
with no checksum, counter or timestamp:

- data frame ``55 61`` + 9 × int16 LE: ax ay az, gx gy gz, roll pitch yaw;
- register reply ``55 71 <reg u16 LE>`` + 8 × int16 LE (registers reg..reg+7).

Frames may be split or joined across notifications, so the decoder keeps a
byte buffer and resynchronises on the two-byte headers. Commands go to
``ffe9`` as ``FF AA <reg> <value u16 LE>``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.protocols.base import (
    Decoded,
    DecoderStats,
    DeviceProtocol,
    F64Array,
    Message,
    empty3,
    empty_index,
)

KIND = "witmotion"
SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"  # base ...9a34fb, not the SIG 9b34fb
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

HEADER = 0x55
TYPE_DATA = 0x61
TYPE_REGISTER = 0x71
FRAME_LEN = 20
HEADER_DATA = bytes((HEADER, TYPE_DATA))
HEADER_REGISTER = bytes((HEADER, TYPE_REGISTER))

FULL_SCALE = 32768.0
ACC_RANGE_G = 16.0
GYRO_RANGE_DPS = 2000.0
ANGLE_RANGE_DEG = 180.0
ACC_SCALE_G = ACC_RANGE_G / FULL_SCALE  # g per LSB
GYRO_SCALE_DPS = GYRO_RANGE_DPS / FULL_SCALE  # deg/s per LSB
ANGLE_SCALE_DEG = ANGLE_RANGE_DEG / FULL_SCALE  # deg per LSB
QUATERNION_SCALE = 1.0 / FULL_SCALE
MAG_LSB = 120.0  # counts per magnetometer unit
BATTERY_LSB_PER_V = 100.0

COMMAND_PREFIX = b"\xff\xaa"
REG_SAVE = 0x00
REG_RATE = 0x03
REG_READ = 0x27
REG_UNLOCK = 0x69
UNLOCK_VALUE = 0xB588  # FF AA 69 88 B5
REG_MAGNETOMETER = 0x3A
REG_QUATERNION = 0x51
REG_BATTERY = 0x64

#: Output rate register 0x03 values (Hz -> code).
RATE_CODES: dict[float, int] = {10.0: 0x06, 20.0: 0x07, 50.0: 0x08, 100.0: 0x09, 200.0: 0x0B}
RATE_BY_CODE: dict[int, float] = {code: hz for hz, code in RATE_CODES.items()}
#: Output rate after power-up (the vendor's factory setting).
DEFAULT_RATE_HZ = 10.0

#: Structured layouts of the two frame types (numpy for bulk, struct for one frame).
DATA_DTYPE = np.dtype(
    [
        ("head", "u1"),
        ("kind", "u1"),
        ("acc", "<i2", (3,)),
        ("gyro", "<i2", (3,)),
        ("angle", "<i2", (3,)),
    ]
)
REGISTER_DTYPE = np.dtype([("head", "u1"), ("kind", "u1"), ("reg", "<u2"), ("values", "<i2", (8,))])
DATA_FRAME = struct.Struct("<BB9h")
REGISTER_FRAME = struct.Struct("<BBH8h")
COMMAND = struct.Struct("<2sBH")
assert DATA_DTYPE.itemsize == REGISTER_DTYPE.itemsize == FRAME_LEN == DATA_FRAME.size


def quantize(x: npt.ArrayLike, scale: float) -> npt.NDArray[np.int16]:
    """Physical values -> int16 raw counts (round half to even, saturate at the range).

    Parameters
    ----------
    x:
        Array of physical values (any shape), in the unit of ``scale``.
    scale:
        Physical value of one LSB (e.g. ``ACC_SCALE_G``). The data scales are
        powers of two or dyadic fractions (16/32768, 2000/32768, 180/32768),
        so ``raw * scale`` is exact.
    """
    raw = np.rint(np.asarray(x, dtype=np.float64) / scale)
    return np.clip(raw, -32768, 32767).astype(np.int16)


def quantize_counts(x: npt.ArrayLike, lsb_per_unit: float) -> npt.NDArray[np.int16]:
    """Like :func:`quantize` for decimal scales (raw = round(x * lsb), value = raw / lsb)."""
    raw = np.rint(np.asarray(x, dtype=np.float64) * lsb_per_unit)
    return np.clip(raw, -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------
# Commands (ffe9)
# ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unlock:
    """``FF AA 69 88 B5``: allow register writes for a while."""


@dataclass(frozen=True, slots=True)
class WriteRegister:
    """``FF AA <reg> <lo> <hi>``. ``reg == 0, value == 0`` is SAVE."""

    reg: int
    value: int

    @property
    def is_save(self) -> bool:
        return self.reg == REG_SAVE and self.value == 0


@dataclass(frozen=True, slots=True)
class ReadRegister:
    """``FF AA 27 <reg> 00``: the device answers with a ``55 71`` reply frame."""

    reg: int


Command = Unlock | WriteRegister | ReadRegister


def encode_command(cmd: Command) -> bytes:
    """One command as the bytes written to ``ffe9``."""
    if isinstance(cmd, Unlock):
        return COMMAND.pack(COMMAND_PREFIX, REG_UNLOCK, UNLOCK_VALUE)
    if isinstance(cmd, ReadRegister):
        return COMMAND.pack(COMMAND_PREFIX, REG_READ, cmd.reg & 0xFFFF)
    return COMMAND.pack(COMMAND_PREFIX, cmd.reg & 0xFF, cmd.value & 0xFFFF)


def parse_command(data: bytes | bytearray) -> Command | None:
    """The command in a write to ``ffe9``, or None when it is not one (wrong prefix/length)."""
    if len(data) != COMMAND.size or bytes(data[:2]) != COMMAND_PREFIX:
        return None
    _, reg, value = COMMAND.unpack(bytes(data))
    if reg == REG_UNLOCK and value == UNLOCK_VALUE:
        return Unlock()
    if reg == REG_READ:
        return ReadRegister(value & 0xFF)
    return WriteRegister(reg, value)


def cmd_unlock() -> bytes:
    return encode_command(Unlock())


def cmd_save() -> bytes:
    return encode_command(WriteRegister(REG_SAVE, 0))


def cmd_set_rate(rate_hz: float) -> bytes:
    """Write the output-rate register; ``rate_hz`` must be one of ``RATE_CODES``."""
    try:
        code = RATE_CODES[float(rate_hz)]
    except KeyError as exc:
        allowed = ", ".join(f"{r:g}" for r in RATE_CODES)
        raise ValueError(f"WitMotion rate {rate_hz} Hz unsupported; use one of {allowed}") from exc
    return encode_command(WriteRegister(REG_RATE, code))


def cmd_read_register(reg: int) -> bytes:
    return encode_command(ReadRegister(reg))


def start_commands(rate_hz: float) -> tuple[bytes, ...]:
    """Writes that set the output rate persistently: unlock, rate, save.

    Streaming itself starts when notifications on ``ffe4`` are enabled; every
    write must be awaited (the vendor's example forgets to, so its writes
    never happen).
    """
    return (cmd_unlock(), cmd_set_rate(rate_hz), cmd_save())


# ----------------------------------------------------------------------------
# Frames (ffe4)
# ----------------------------------------------------------------------------


def encode_data_frames(accel_g: F64Array, gyro_dps: F64Array, angle_deg: F64Array) -> bytes:
    """N samples -> N back-to-back 20-byte ``55 61`` frames.

    Parameters
    ----------
    accel_g, gyro_dps, angle_deg:
        (N, 3) acceleration (g), angular rate (deg/s), roll/pitch/yaw (deg).
        Quantised here (saturating at ±16 g, ±2000 deg/s, ±180 deg).
    """
    n = np.shape(accel_g)[0]
    frames = np.empty(n, dtype=DATA_DTYPE)
    frames["head"] = HEADER
    frames["kind"] = TYPE_DATA
    frames["acc"] = quantize(accel_g, ACC_SCALE_G)
    frames["gyro"] = quantize(gyro_dps, GYRO_SCALE_DPS)
    frames["angle"] = quantize(angle_deg, ANGLE_SCALE_DEG)
    return frames.tobytes()


def encode_register_reply(reg: int, raw: Sequence[int]) -> bytes:
    """A ``55 71`` reply frame: up to 8 raw int16 register values (zero-padded)."""
    values = [int(v) for v in raw][:8]
    values += [0] * (8 - len(values))
    return REGISTER_FRAME.pack(HEADER, TYPE_REGISTER, reg & 0xFFFF, *values)


def encode_quaternion_reply(q: Sequence[float]) -> bytes:
    """Reply to a read of register 0x51: q0..q3 (unit quaternion, raw/32768)."""
    return encode_register_reply(REG_QUATERNION, quantize(q, QUATERNION_SCALE).tolist())


def encode_magnetometer_reply(field: Sequence[float]) -> bytes:
    """Reply to a read of register 0x3A: hx hy hz (raw/120)."""
    return encode_register_reply(REG_MAGNETOMETER, quantize_counts(field, MAG_LSB).tolist())


def encode_battery_reply(volts: float) -> bytes:
    """Reply to a read of register 0x64: battery voltage (raw/100 V)."""
    return encode_register_reply(REG_BATTERY, quantize_counts([volts], BATTERY_LSB_PER_V).tolist())


@dataclass(frozen=True, slots=True)
class RegisterReply(Message):
    """A ``55 71`` reply for a register without a specific decoding."""

    reg: int
    raw: tuple[int, ...]
    chunk_index: int = 0


@dataclass(frozen=True, slots=True)
class QuaternionReply(Message):
    """Register 0x51: orientation quaternion (q0 scalar first)."""

    q: tuple[float, float, float, float]
    chunk_index: int = 0


@dataclass(frozen=True, slots=True)
class MagnetometerReply(Message):
    """Register 0x3A: magnetic field, device units (raw/120)."""

    field: tuple[float, float, float]
    chunk_index: int = 0


@dataclass(frozen=True, slots=True)
class BatteryVoltageReply(Message):
    """Register 0x64: battery voltage in volts."""

    volts: float
    chunk_index: int = 0


def _quaternion(reg: int, raw: tuple[int, ...], chunk: int) -> Message:
    q = tuple(v * QUATERNION_SCALE for v in raw[:4])
    return QuaternionReply((q[0], q[1], q[2], q[3]), chunk)


def _magnetometer(reg: int, raw: tuple[int, ...], chunk: int) -> Message:
    f = tuple(v / MAG_LSB for v in raw[:3])
    return MagnetometerReply((f[0], f[1], f[2]), chunk)


def _battery(reg: int, raw: tuple[int, ...], chunk: int) -> Message:
    return BatteryVoltageReply(raw[0] / BATTERY_LSB_PER_V, chunk)


#: Register reply dispatch table: register -> decoder of its 8 raw values.
REPLY_DECODERS: dict[int, Callable[[int, tuple[int, ...], int], Message]] = {
    REG_QUATERNION: _quaternion,
    REG_MAGNETOMETER: _magnetometer,
    REG_BATTERY: _battery,
}


def decode_register_reply(reg: int, raw: tuple[int, ...], chunk_index: int = 0) -> Message:
    """A register reply as its typed message (``RegisterReply`` for unknown registers)."""
    fn = REPLY_DECODERS.get(reg)
    return fn(reg, raw, chunk_index) if fn else RegisterReply(reg, raw, chunk_index)


def _find_header(buf: bytes | bytearray, start: int, end: int | None = None) -> int:
    """First position >= start of ``55 61`` or ``55 71`` lying wholly in [start, end)."""
    stop = len(buf) if end is None else end
    a = buf.find(HEADER_DATA, start, stop)
    b = buf.find(HEADER_REGISTER, start, stop)
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


class WitMotionDecoder:
    """Streaming decoder of the ``ffe4`` byte stream.

    The frames carry no checksum, so a frame is judged by where the next
    header lies. A frame (header + 20 bytes) is accepted when the next header
    follows exactly 20 bytes later, or when no header-like pair (``55 61`` /
    ``55 71``) lies inside it. Payload bytes may look like a header (a reply
    for register 0x7155 reads ``55 71 55 71 ...``), so an inner header alone
    never abandons a complete frame; it wins only when it is confirmed:

    1. the next header follows the frame: the frame is accepted;
    2. the bytes after the frame are not known yet: the frame is accepted
       when it ends exactly where the bytes received so far end (a whole
       frame per notification is how the sensor sends), else it waits;
    3. the inner candidate is followed by a header, or ends exactly where
       the bytes received so far end: the frame was truncated, it is counted
       in ``frames_corrupt`` and decoding resumes at the inner header;
    4. the bytes after the inner candidate are not known yet: wait;
    5. neither is followed by a header: the frame is counted as truncated
       and decoding resumes at the inner header. Without a checksum a frame
       cut short by lost bytes and a whole frame followed by junk look
       alike; lost bytes are the likelier cause.

    Bytes before a header are skipped and counted. Complete runs of aligned
    frames are decoded with one numpy view, so the cost per frame is a few
    nanoseconds.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._stats = DecoderStats()

    @property
    def stats(self) -> DecoderStats:
        return self._stats

    def reset(self) -> None:
        self._stats.bytes_skipped += len(self._buf)
        self._stats.bytes_pending = 0
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> Decoded:
        return self.feed_many((data,))

    def feed_many(self, chunks: Sequence[bytes | bytearray | memoryview]) -> Decoded:
        st = self._stats
        base = len(self._buf)
        joined = b"".join(chunks)
        st.notifications += len(chunks)
        st.bytes_in += len(joined)
        buf = self._buf + joined if base else joined
        # chunk_ends[j]: offset in `buf` just past notification j
        lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
        chunk_ends = base + np.cumsum(lengths)

        runs, consumed = self._scan(buf)
        rest = buf[consumed:]
        self._buf = bytearray(rest)
        st.bytes_pending = len(rest)
        if not runs:
            return Decoded(empty3(), empty3(), empty_index())
        arr = np.frombuffer(buf, dtype=np.uint8)
        # each run is `count` aligned frames from `start`: a free (count, 20) view
        blocks = [arr[a : a + FRAME_LEN * c].reshape(c, FRAME_LEN) for a, c in runs]
        rows = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        pos = np.concatenate([a + FRAME_LEN * np.arange(c, dtype=np.int64) for a, c in runs])
        st.bytes_decoded += FRAME_LEN * int(pos.shape[0])
        is_data = rows[:, 1] == TYPE_DATA
        all_data = bool(is_data.all())
        data = (rows if all_data else rows[is_data]).view(DATA_DTYPE)[:, 0]
        n = int(data.shape[0])
        st.frames_data += n
        st.samples += n
        # The notification that delivered a frame's last byte completes it.
        # Count frames completed by the end of each notification (C lookups
        # into the sorted frame ends, cheaper than N lookups into C ends).
        done_by = np.searchsorted(pos + FRAME_LEN, chunk_ends, side="right")
        per_chunk = np.diff(done_by, prepend=0)
        chunk_of = np.repeat(np.arange(len(chunks), dtype=np.int64), per_chunk)
        messages: tuple[Message, ...] = ()
        if not all_data:
            regs = rows[~is_data].view(REGISTER_DTYPE)[:, 0]
            reg_chunks = chunk_of[~is_data]
            messages = tuple(
                decode_register_reply(int(r["reg"]), tuple(int(v) for v in r["values"]), int(c))
                for r, c in zip(regs, reg_chunks, strict=True)
            )
            st.frames_control += len(messages)
            chunk_of = chunk_of[is_data]
        return Decoded(
            accel_g=data["acc"] * ACC_SCALE_G,
            gyro_dps=data["gyro"] * GYRO_SCALE_DPS,
            chunk_index=chunk_of,
            angle_deg=data["angle"] * ANGLE_SCALE_DEG,
            messages=messages,
        )

    def _scan(self, buf: bytes | bytearray) -> tuple[list[tuple[int, int]], int]:
        """Runs of aligned frames as (start, count), and how many bytes are consumed."""
        st = self._stats
        n = len(buf)
        arr = np.frombuffer(buf, dtype=np.uint8)
        out: list[tuple[int, int]] = []
        pos = 0
        while True:
            p = _find_header(buf, pos)
            if p < 0:
                # keep a trailing 0x55: it may start the next notification's header
                keep = 1 if n > pos and buf[n - 1] == HEADER else 0
                st.bytes_skipped += n - pos - keep
                return out, n - keep
            st.bytes_skipped += p - pos
            k = (n - p) // FRAME_LEN
            if k == 0:
                return out, p  # a partial frame: wait for the rest
            block = arr[p : p + k * FRAME_LEN].reshape(k, FRAME_LEN)
            ok = (block[:, 0] == HEADER) & (
                (block[:, 1] == TYPE_DATA) | (block[:, 1] == TYPE_REGISTER)
            )
            bad = np.flatnonzero(~ok)
            run = k if bad.shape[0] == 0 else int(bad[0])
            last = p + (run - 1) * FRAME_LEN
            end = last + FRAME_LEN
            # Frames before `last` are confirmed by the header that follows them;
            # `last` is judged by the rules in the class docstring.
            verdict = _judge_last(buf, last, n)
            if verdict == _ACCEPT:
                out.append((p, run))
                pos = end
                continue
            if run > 1:
                out.append((p, run - 1))
            if verdict == _WAIT:
                return out, last  # undecidable until more bytes come
            st.frames_corrupt += 1
            st.bytes_skipped += verdict - last
            pos = verdict


_ACCEPT = -1
_WAIT = -2


def _is_header(buf: bytes | bytearray, at: int) -> bool:
    return buf[at] == HEADER and buf[at + 1] in (TYPE_DATA, TYPE_REGISTER)


def _judge_last(buf: bytes | bytearray, p: int, n: int) -> int:
    """Whether the complete frame at ``p`` (of ``n`` bytes received) is a frame.

    Returns ``_ACCEPT``, ``_WAIT``, or the offset of the inner header to
    resynchronise on (the frame at ``p`` was truncated); see the rules in
    :class:`WitMotionDecoder`.
    """
    end = p + FRAME_LEN
    if n >= end + 2 and _is_header(buf, end):
        return _ACCEPT  # 1: confirmed by the next header
    inner = _find_header(buf, p + 1, end)
    if inner < 0:
        return _ACCEPT  # nothing else it could be
    if n < end + 2:
        # 2: the follower is not known yet; a frame filling the bytes so far is whole
        return _ACCEPT if n == end else _WAIT
    inner_end = inner + FRAME_LEN
    if inner_end == n or (n >= inner_end + 2 and _is_header(buf, inner_end)):
        return inner  # 3: the inner candidate is confirmed, the outer frame was cut
    if n < inner_end + 2:
        return _WAIT  # 4
    return inner  # 5: neither is confirmed: the frame was cut short


PROTOCOL = DeviceProtocol(
    kind=KIND,
    vendor_model="WitMotion WT901BLE",
    service_uuid=SERVICE_UUID,
    notify_uuid=NOTIFY_UUID,
    write_uuid=WRITE_UUID,
    write_with_response=True,
    name_patterns=(re.compile(r"WT"),),
    advertised_service_uuids=(),
    supported_rates_hz=tuple(RATE_CODES),
    has_gyro=True,
    has_haptic=False,
    has_device_timestamps=False,
    sig_services=(),
    make_decoder=WitMotionDecoder,
)

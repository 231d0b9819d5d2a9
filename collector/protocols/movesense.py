"""Movesense GATT SensorData Protocol ("GSP") wire format.

Source: Movesense device-lib ``samples/gatt_sensordata_app`` and
``movesense-api/meas/imu.yaml``; summarised in ``shared/reference/devices.md``.

Each notification on the data characteristic is one message ``[type][ref]…``
(GATT keeps notification boundaries, so there is no framing to recover):

- type 1, command result: ``01 ref <status u16 LE> [payload]`` (200 = ok);
- type 2, data: ``02 ref <timestamp u32 LE, ms> N × acc (3 × float32 m/s²)
  N × gyro (3 × float32 deg/s)`` for IMU6, ``N = (len − 6) / 24``.

Commands written to the command characteristic: ``[cmd][ref≠0][payload]``:
HELLO = 0, SUBSCRIBE = 1 + ASCII resource path (no terminator),
UNSUBSCRIBE = 2. The device drops every subscription on disconnect.

Some stock firmware builds answer HELLO with the ASCII text ``Hello`` instead
of a status; the decoder recognises that form too.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.protocols.base import (
    STANDARD_GRAVITY_MS2,
    Chunks,
    Decoded,
    DecoderStats,
    DeviceProtocol,
    DeviceTimestamps,
    F64Array,
    Message,
    empty3,
    empty_index,
)

KIND = "movesense"
SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
WRITE_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
NOTIFY_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"

CMD_HELLO = 0
CMD_SUBSCRIBE = 1
CMD_UNSUBSCRIBE = 2
RESP_COMMAND_RESULT = 1
RESP_DATA = 2

STATUS_OK = 200
STATUS_BAD_REQUEST = 400
STATUS_NOT_FOUND = 404
STATUS_INSUFFICIENT_STORAGE = 507  # no free subscription slot

HELLO_TEXT = b"Hello"
IMU6_PREFIX = "/Meas/IMU6/"
#: IMU6 sample rates the sensor accepts (Hz).
IMU6_RATES_HZ: tuple[int, ...] = (13, 26, 52, 104, 208, 416, 833, 1666)

DATA_HEADER = struct.Struct("<BBI")  # type, ref, timestamp ms
RESULT_HEADER = struct.Struct("<BBH")  # type, ref, status
SAMPLE_BYTES = 24  # 3 × f32 acc + 3 × f32 gyro
HEADER_BYTES = DATA_HEADER.size

#: Default cap of samples per notification. The real firmware asks for an
#: ATT MTU of 161 (158-byte payload), which holds (158 - 6) // 24 = 6 samples.
MAX_SAMPLES_PER_PACKET = 6


def imu6_dtype(n: int) -> np.dtype:
    """Structured layout of one IMU6 data message with ``n`` samples."""
    return np.dtype(
        [
            ("type", "u1"),
            ("ref", "u1"),
            ("time_ms", "<u4"),
            ("acc", "<f4", (n, 3)),
            ("gyro", "<f4", (n, 3)),
        ]
    )


def samples_per_packet(att_mtu: int, cap: int = MAX_SAMPLES_PER_PACKET) -> int:
    """How many IMU6 samples fit in one notification at ``att_mtu`` (0 if none)."""
    return max(0, min(cap, (att_mtu - 3 - HEADER_BYTES) // SAMPLE_BYTES))


def quantize_accel(accel_g: npt.ArrayLike) -> F64Array:
    """What the wire keeps of an acceleration in g: float32 m/s², back in g (float64)."""
    ms2 = (np.asarray(accel_g, dtype=np.float64) * STANDARD_GRAVITY_MS2).astype(np.float32)
    return ms2.astype(np.float64) / STANDARD_GRAVITY_MS2


def quantize_gyro(gyro_dps: npt.ArrayLike) -> F64Array:
    """What the wire keeps of an angular rate: float32 deg/s (as float64)."""
    return np.asarray(gyro_dps, dtype=np.float64).astype(np.float32).astype(np.float64)


# ----------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    ref: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    ref: int
    path: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    ref: int


Command = Hello | Subscribe | Unsubscribe


def _check_ref(ref: int) -> int:
    if not 1 <= ref <= 255:
        raise ValueError(f"Movesense client reference must be 1..255, got {ref}")
    return ref


def encode_command(cmd: Command) -> bytes:
    if isinstance(cmd, Hello):
        return bytes((CMD_HELLO, _check_ref(cmd.ref)))
    if isinstance(cmd, Subscribe):
        return bytes((CMD_SUBSCRIBE, _check_ref(cmd.ref))) + cmd.path.encode("ascii")
    return bytes((CMD_UNSUBSCRIBE, _check_ref(cmd.ref)))


def parse_command(data: bytes | bytearray) -> Command | None:
    """The command in a write, or None (too short, ref 0, unknown command, non-ASCII path)."""
    if len(data) < 2 or data[1] == 0:
        return None
    cmd, ref = data[0], data[1]
    if cmd == CMD_HELLO:
        return Hello(ref)
    if cmd == CMD_SUBSCRIBE:
        try:
            return Subscribe(ref, bytes(data[2:]).decode("ascii"))
        except UnicodeDecodeError:
            return None
    if cmd == CMD_UNSUBSCRIBE:
        return Unsubscribe(ref)
    return None


def imu6_path(rate_hz: int) -> str:
    """The IMU6 resource path for ``rate_hz`` (one of ``IMU6_RATES_HZ``)."""
    if int(rate_hz) not in IMU6_RATES_HZ:
        allowed = ", ".join(map(str, IMU6_RATES_HZ))
        raise ValueError(f"Movesense IMU6 rate {rate_hz} Hz unsupported; use one of {allowed}")
    return f"{IMU6_PREFIX}{int(rate_hz)}"


def parse_imu6_path(path: str) -> int | None:
    """Rate of an IMU6 path (``/Meas/IMU6/52`` -> 52), None if it is not one we serve."""
    m = re.fullmatch(r"/Meas/IMU6/(\d+)", path)
    if not m or int(m.group(1)) not in IMU6_RATES_HZ:
        return None
    return int(m.group(1))


def cmd_hello(ref: int = 1) -> bytes:
    return encode_command(Hello(ref))


def cmd_subscribe_imu6(ref: int, rate_hz: int) -> bytes:
    return encode_command(Subscribe(ref, imu6_path(rate_hz)))


def cmd_unsubscribe(ref: int) -> bytes:
    return encode_command(Unsubscribe(ref))


def start_commands(rate_hz: int, ref: int = 0x63, hello_ref: int = 1) -> tuple[bytes, ...]:
    """HELLO then SUBSCRIBE /Meas/IMU6/<rate>, after notifications are enabled."""
    return (cmd_hello(hello_ref), cmd_subscribe_imu6(ref, rate_hz))


# ----------------------------------------------------------------------------
# Responses
# ----------------------------------------------------------------------------


def encode_command_result(ref: int, status: int, payload: bytes = b"") -> bytes:
    return RESULT_HEADER.pack(RESP_COMMAND_RESULT, ref & 0xFF, status & 0xFFFF) + payload


def encode_imu6_packets(
    ref: int, time_ms: npt.ArrayLike, accel_g: F64Array, gyro_dps: F64Array
) -> bytes:
    """P IMU6 data messages of N samples each, back to back (P × (6 + 24 N) bytes).

    Parameters
    ----------
    ref:
        Client reference of the subscription.
    time_ms:
        (P,) device time of each packet's first sample, ms (taken modulo 2**32).
    accel_g, gyro_dps:
        (P, N, 3) acceleration in g (sent as float32 m/s²) and angular rate
        in deg/s (float32).
    """
    acc = np.asarray(accel_g, dtype=np.float64)
    p, n = acc.shape[0], acc.shape[1]
    out = np.empty(p, dtype=imu6_dtype(n))
    out["type"] = RESP_DATA
    out["ref"] = ref & 0xFF
    out["time_ms"] = np.asarray(time_ms, dtype=np.int64) & 0xFFFFFFFF
    out["acc"] = acc * STANDARD_GRAVITY_MS2
    out["gyro"] = gyro_dps
    return out.tobytes()


@dataclass(frozen=True, slots=True)
class CommandResult(Message):
    """Answer to a command: HTTP-like ``status`` (None for the text HELLO reply)."""

    ref: int
    status: int | None
    payload: bytes = b""
    chunk_index: int = 0


class MovesenseDecoder:
    """Streaming decoder of the GSP data characteristic (one message per notification).

    Parameters
    ----------
    data_refs:
        Client references whose data messages are IMU6 streams. None (default)
        treats every data message as IMU6; data for other refs counts as unknown.
    """

    def __init__(self, data_refs: Sequence[int] | None = None) -> None:
        self._refs = None if data_refs is None else frozenset(data_refs)
        self._stats = DecoderStats()

    @property
    def stats(self) -> DecoderStats:
        return self._stats

    def reset(self) -> None:
        """Nothing is buffered between notifications: only counters persist."""

    def feed(self, data: bytes | bytearray | memoryview) -> Decoded:
        return self.feed_many((data,))

    def feed_many(self, chunks: Sequence[bytes | bytearray | memoryview]) -> Decoded:
        st = self._stats
        c = Chunks.join(chunks)
        st.notifications += len(chunks)
        total = int(c.data.shape[0])
        st.bytes_in += total
        kind = c.byte_at(0)
        ref = c.byte_at(1)
        length = c.lengths
        is_data = (kind == RESP_DATA) & (length >= HEADER_BYTES)
        if self._refs is not None:
            is_data &= np.isin(ref, list(self._refs))
        good = is_data & (length > HEADER_BYTES) & ((length - HEADER_BYTES) % SAMPLE_BYTES == 0)
        bad_data = is_data & ~good
        is_result = (kind == RESP_COMMAND_RESULT) & (length >= 2)
        unknown = ~(is_data | is_result)

        n_good = int(good.sum())
        st.frames_corrupt += int(bad_data.sum())
        st.frames_unknown += int(unknown.sum())
        st.bytes_skipped += int(length[bad_data | unknown].sum())

        messages: tuple[Message, ...] = ()
        if is_result.any():
            messages = tuple(
                self._result(bytes(chunks[int(i)]), int(i)) for i in np.flatnonzero(is_result)
            )
            st.frames_control += len(messages)
            st.bytes_decoded += int(length[is_result].sum())
        if n_good == 0:
            return Decoded(empty3(), empty3(), empty_index(), messages=messages)

        st.frames_data += n_good
        st.bytes_decoded += int(length[good].sum())
        idx = np.flatnonzero(good)
        sizes = length[idx]
        accs, gyros, chunk_of, first, times = [], [], [], [], []
        count = 0
        # one vectorised pass per distinct packet size (normally a single one)
        for size in np.unique(sizes):
            sel = idx[sizes == size]
            n = (int(size) - HEADER_BYTES) // SAMPLE_BYTES
            rec = c.rows(sel, int(size)).view(imu6_dtype(n))[:, 0]
            accs.append(rec["acc"].reshape(-1, 3))
            gyros.append(rec["gyro"].reshape(-1, 3))
            chunk_of.append(np.repeat(sel, n))
            times.append(rec["time_ms"].astype(np.int64))
            first.append(sel)
            count += n * int(sel.shape[0])
        if len(accs) == 1:
            acc32, gyro32, chunk_index = accs[0], gyros[0], chunk_of[0]
            time_ms = times[0]
            first_sample = np.arange(0, count, count // int(idx.shape[0]), dtype=np.int64)
        else:
            # restore notification order across packet sizes
            chunk_index = np.concatenate(chunk_of)
            order = np.argsort(chunk_index, kind="stable")
            chunk_index = chunk_index[order]
            acc32 = np.concatenate(accs)[order]
            gyro32 = np.concatenate(gyros)[order]
            pkt_chunk = np.concatenate(first)
            pkt_order = np.argsort(pkt_chunk, kind="stable")
            time_ms = np.concatenate(times)[pkt_order]
            first_sample = np.searchsorted(chunk_index, pkt_chunk[pkt_order], side="left")
        st.samples += count
        return Decoded(
            accel_g=acc32.astype(np.float64) / STANDARD_GRAVITY_MS2,
            gyro_dps=gyro32.astype(np.float64),
            chunk_index=chunk_index.astype(np.int64),
            device_time=DeviceTimestamps(first_sample.astype(np.int64), time_ms),
            messages=messages,
        )

    @staticmethod
    def _result(msg: bytes, chunk_index: int) -> CommandResult:
        ref = msg[1]
        if msg[2:] == HELLO_TEXT:
            return CommandResult(ref, None, HELLO_TEXT, chunk_index)
        if len(msg) >= RESULT_HEADER.size:
            _, _, status = RESULT_HEADER.unpack_from(msg)
            return CommandResult(ref, status, msg[RESULT_HEADER.size :], chunk_index)
        return CommandResult(ref, None, msg[2:], chunk_index)


PROTOCOL = DeviceProtocol(
    kind=KIND,
    vendor_model="Movesense (GATT SensorData Protocol)",
    service_uuid=SERVICE_UUID,
    notify_uuid=NOTIFY_UUID,
    write_uuid=WRITE_UUID,
    write_with_response=True,
    name_patterns=(re.compile(r"^Movesense\b"),),
    advertised_service_uuids=(),
    supported_rates_hz=tuple(float(r) for r in IMU6_RATES_HZ),
    has_gyro=True,
    has_haptic=False,
    has_device_timestamps=True,
    sig_services=(),
    make_decoder=MovesenseDecoder,
)

"""MbientLab MetaMotion (MetaWear protocol, BMI160 accelerometer/gyroscope).

Source: mbientlab/MetaWear-SDK-Cpp (``sensor/cpp/*bosch*``,
``peripheral/cpp/haptic.cpp``); summarised in ``shared/reference/devices.md``.

Every command (written without response to ``326a9001``) and every
notification (on ``326a9006``) is one frame ``[module][register][data…]``
with at most 18 data bytes; a read sets bit 7 of the register and the answer
comes back as a notification with the same two header bytes.

Streamed acceleration and rotation come in separate notifications with no
timestamp or counter. The decoder pairs them in arrival order (k-th
accelerometer sample with the k-th gyroscope sample), which is what a host
without the device's logging/accounting features can do, after lining the
two streams up when the second one starts (see ``_align_start``); ``stats``
exposes how many samples wait for their pair or had none. A lost
notification of one sensor shifts the pairing until the next ``reset``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.protocols.base import (
    BATTERY_SERVICE_UUID,
    DEVICE_INFORMATION_SERVICE_UUID,
    Chunks,
    Decoded,
    DecoderStats,
    DeviceProtocol,
    F64Array,
    I64Array,
    Message,
    empty3,
    empty_index,
)

KIND = "metamotion"
SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
WRITE_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"

MODULE_ACC = 0x03
MODULE_HAPTIC = 0x08
MODULE_SETTINGS = 0x11
MODULE_GYRO = 0x13
MODULE_SENSOR_FUSION = 0x19
READ_BIT = 0x80
MAX_DATA_BYTES = 18

# register numbers (same layout for the accelerometer and the gyroscope)
REG_POWER = 0x01  # start (1) / stop (0)
REG_INTERRUPT_ENABLE = 0x02  # enable: 01 00, disable: 00 01
REG_CONFIG = 0x03  # <odr | bwp << 4> <range>
ACC_REG_DATA = 0x04
ACC_REG_PACKED = 0x1C
GYRO_REG_DATA = 0x05
GYRO_REG_PACKED = 0x07
HAPTIC_REG_PULSE = 0x01
SETTINGS_REG_BATTERY = 0x0C
BATTERY_READ = SETTINGS_REG_BATTERY | READ_BIT  # 0x8C

PACKED_SAMPLES = 3
BWP_NORMAL = 2  # filter bandwidth parameter "normal" (bits 4-6 of the config byte)

#: BMI160 output data rates: Hz -> ODR code (shared by accelerometer and gyroscope).
ODR_CODES: dict[float, int] = {
    25.0: 0x06,
    50.0: 0x07,
    100.0: 0x08,
    200.0: 0x09,
    400.0: 0x0A,
    800.0: 0x0B,
    1600.0: 0x0C,
}
ODR_BY_CODE: dict[int, float] = {c: hz for hz, c in ODR_CODES.items()}
#: Accelerometer range (±g) -> (range code, LSB per g).
ACC_RANGES: dict[float, tuple[int, float]] = {
    2.0: (0x03, 16384.0),
    4.0: (0x05, 8192.0),
    8.0: (0x08, 4096.0),
    16.0: (0x0C, 2048.0),
}
ACC_RANGE_BY_CODE: dict[int, float] = {code: g for g, (code, _) in ACC_RANGES.items()}
#: Gyroscope range (±deg/s) -> (range code, LSB per deg/s).
GYRO_RANGES: dict[float, tuple[int, float]] = {
    2000.0: (0x00, 16.4),
    1000.0: (0x01, 32.8),
    500.0: (0x02, 65.6),
    250.0: (0x03, 131.2),
    125.0: (0x04, 262.4),
}
GYRO_RANGE_BY_CODE: dict[int, float] = {code: d for d, (code, _) in GYRO_RANGES.items()}

HAPTIC_DUTY_FULL = 248  # duty byte for 100 %

HEADER = struct.Struct("<BB")
XYZ = struct.Struct("<3h")
CONFIG = struct.Struct("<BBBB")  # module, register, odr|bwp, range
HAPTIC = struct.Struct("<BBBHB")  # 08 01 duty pulse_ms motor(0)/buzzer(1)
BATTERY = struct.Struct("<BBBH")  # 11 8C percent millivolts


def _lookup(table: dict[float, tuple[int, float]], value: float, what: str) -> tuple[int, float]:
    try:
        return table[float(value)]
    except KeyError as exc:
        allowed = ", ".join(f"±{v:g}" for v in table)
        raise ValueError(f"MetaMotion {what} {value} unsupported; use one of {allowed}") from exc


def acc_lsb_per_g(range_g: float) -> float:
    return _lookup(ACC_RANGES, range_g, "accelerometer range (g)")[1]


def gyro_lsb_per_dps(range_dps: float) -> float:
    return _lookup(GYRO_RANGES, range_dps, "gyroscope range (deg/s)")[1]


def quantize(x: npt.ArrayLike, lsb_per_unit: float) -> npt.NDArray[np.int16]:
    """Physical values -> int16 counts (round half to even, saturating)."""
    raw = np.rint(np.asarray(x, dtype=np.float64) * lsb_per_unit)
    return np.clip(raw, -32768, 32767).astype(np.int16)


def odr_code(rate_hz: float) -> int:
    try:
        return ODR_CODES[float(rate_hz)]
    except KeyError as exc:
        allowed = ", ".join(f"{r:g}" for r in ODR_CODES)
        raise ValueError(f"MetaMotion rate {rate_hz} Hz unsupported; use one of {allowed}") from exc


# ----------------------------------------------------------------------------
# Commands (326a9001)
# ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """``03 03`` / ``13 03``: output data rate and range of one sensor."""

    module: int
    rate_hz: float
    range_: float  # ±g for the accelerometer, ±deg/s for the gyroscope


@dataclass(frozen=True, slots=True)
class SensorPower:
    """``03 01 01`` / ``13 01 01`` start, ``… 00`` stop."""

    module: int
    on: bool


@dataclass(frozen=True, slots=True)
class SensorInterrupt:
    """``03 02 01 00`` enable the data interrupt, ``03 02 00 01`` disable."""

    module: int
    enable: bool


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``03 04 01`` (single samples) / ``03 1C 01`` (packed), ``… 00`` to unsubscribe."""

    module: int
    packed: bool
    on: bool


@dataclass(frozen=True, slots=True)
class Haptic:
    """``08 01 <duty> <pulse_ms u16> <0=motor|1=buzzer>``."""

    duty: int  # 0..248
    pulse_ms: int
    buzzer: bool

    @property
    def duty_percent(self) -> float:
        return self.duty * 100.0 / HAPTIC_DUTY_FULL


@dataclass(frozen=True, slots=True)
class BatteryRead:
    """``11 8C``: answered by a ``11 8C <percent> <mV u16>`` notification."""


Command = SensorConfig | SensorPower | SensorInterrupt | Subscribe | Haptic | BatteryRead

_DATA_REGISTERS = {
    MODULE_ACC: (ACC_REG_DATA, ACC_REG_PACKED),
    MODULE_GYRO: (GYRO_REG_DATA, GYRO_REG_PACKED),
}


def encode_command(cmd: Command) -> bytes:
    if isinstance(cmd, SensorConfig):
        if cmd.module == MODULE_ACC:
            rng_code = _lookup(ACC_RANGES, cmd.range_, "accelerometer range (g)")[0]
        else:
            rng_code = _lookup(GYRO_RANGES, cmd.range_, "gyroscope range (deg/s)")[0]
        return CONFIG.pack(
            cmd.module, REG_CONFIG, odr_code(cmd.rate_hz) | BWP_NORMAL << 4, rng_code
        )
    if isinstance(cmd, SensorPower):
        return bytes((cmd.module, REG_POWER, int(cmd.on)))
    if isinstance(cmd, SensorInterrupt):
        return bytes(
            (cmd.module, REG_INTERRUPT_ENABLE, 1, 0) if cmd.enable else (cmd.module, 2, 0, 1)
        )
    if isinstance(cmd, Subscribe):
        reg = _DATA_REGISTERS[cmd.module][1 if cmd.packed else 0]
        return bytes((cmd.module, reg, int(cmd.on)))
    if isinstance(cmd, Haptic):
        if not 0 <= cmd.duty <= HAPTIC_DUTY_FULL or not 0 <= cmd.pulse_ms <= 0xFFFF:
            raise ValueError(f"haptic duty must be 0..248 and pulse 0..65535 ms, got {cmd}")
        return HAPTIC.pack(MODULE_HAPTIC, HAPTIC_REG_PULSE, cmd.duty, cmd.pulse_ms, int(cmd.buzzer))
    return bytes((MODULE_SETTINGS, BATTERY_READ))


def _parse_config(data: bytes) -> Command | None:
    if len(data) != CONFIG.size:
        return None
    module, _, odr_bwp, rng = CONFIG.unpack(data)
    rate = ODR_BY_CODE.get(odr_bwp & 0x0F)
    table = ACC_RANGE_BY_CODE if module == MODULE_ACC else GYRO_RANGE_BY_CODE
    rng_value = table.get(rng)
    if rate is None or rng_value is None:
        return None
    return SensorConfig(module, rate, rng_value)


def _parse_power(data: bytes) -> Command | None:
    return SensorPower(data[0], bool(data[2])) if len(data) == 3 and data[2] in (0, 1) else None


def _parse_interrupt(data: bytes) -> Command | None:
    if len(data) != 4 or data[2:] not in (b"\x01\x00", b"\x00\x01"):
        return None
    return SensorInterrupt(data[0], data[2] == 1)


def _parse_subscribe(data: bytes) -> Command | None:
    if len(data) != 3 or data[2] not in (0, 1):
        return None
    packed = data[1] == _DATA_REGISTERS[data[0]][1]
    return Subscribe(data[0], packed, bool(data[2]))


def _parse_haptic(data: bytes) -> Command | None:
    if len(data) != HAPTIC.size:
        return None
    _, _, duty, pulse_ms, kind = HAPTIC.unpack(data)
    return (
        Haptic(duty, pulse_ms, bool(kind)) if kind in (0, 1) and duty <= HAPTIC_DUTY_FULL else None
    )


def _parse_battery(data: bytes) -> Command | None:
    return BatteryRead() if len(data) == 2 else None


#: Command dispatch table: (module, register) -> parser of the whole frame.
COMMAND_PARSERS: dict[tuple[int, int], Callable[[bytes], Command | None]] = {
    (MODULE_ACC, REG_CONFIG): _parse_config,
    (MODULE_GYRO, REG_CONFIG): _parse_config,
    (MODULE_ACC, REG_POWER): _parse_power,
    (MODULE_GYRO, REG_POWER): _parse_power,
    (MODULE_ACC, REG_INTERRUPT_ENABLE): _parse_interrupt,
    (MODULE_GYRO, REG_INTERRUPT_ENABLE): _parse_interrupt,
    (MODULE_ACC, ACC_REG_DATA): _parse_subscribe,
    (MODULE_ACC, ACC_REG_PACKED): _parse_subscribe,
    (MODULE_GYRO, GYRO_REG_DATA): _parse_subscribe,
    (MODULE_GYRO, GYRO_REG_PACKED): _parse_subscribe,
    (MODULE_HAPTIC, HAPTIC_REG_PULSE): _parse_haptic,
    (MODULE_SETTINGS, BATTERY_READ): _parse_battery,
}


def parse_command(data: bytes | bytearray) -> Command | None:
    """The command in a write, or None when unknown or malformed."""
    if len(data) < 2 or len(data) > 2 + MAX_DATA_BYTES:
        return None
    parser = COMMAND_PARSERS.get((data[0], data[1]))
    return parser(bytes(data)) if parser else None


def cmd_haptic(duty_percent: float, pulse_ms: int, buzzer: bool = False) -> bytes:
    """Vibrate (or buzz) for ``pulse_ms`` at ``duty_percent`` (0-100 %)."""
    if not 0.0 <= duty_percent <= 100.0:
        raise ValueError(f"haptic duty must be 0..100 %, got {duty_percent}")
    duty = round(duty_percent * HAPTIC_DUTY_FULL / 100.0)
    return encode_command(Haptic(duty, int(pulse_ms), buzzer))


def cmd_battery_read() -> bytes:
    return encode_command(BatteryRead())


def start_commands(
    rate_hz: float = 50.0,
    acc_range_g: float = 8.0,
    gyro_range_dps: float = 2000.0,
    packed: bool = True,
) -> tuple[bytes, ...]:
    """The MetaWear SDK's streaming sequence: configure, subscribe, enable, start.

    Written after notifications on ``326a9006`` are enabled.
    """
    seq: list[Command] = []
    for module, rng in ((MODULE_ACC, acc_range_g), (MODULE_GYRO, gyro_range_dps)):
        seq += [SensorConfig(module, rate_hz, rng), Subscribe(module, packed, True)]
    for module in (MODULE_ACC, MODULE_GYRO):
        seq += [SensorInterrupt(module, True), SensorPower(module, True)]
    return tuple(encode_command(c) for c in seq)


def stop_commands(packed: bool = True) -> tuple[bytes, ...]:
    seq: list[Command] = []
    for module in (MODULE_ACC, MODULE_GYRO):
        seq += [
            SensorPower(module, False),
            SensorInterrupt(module, False),
            Subscribe(module, packed, False),
        ]
    return tuple(encode_command(c) for c in seq)


# ----------------------------------------------------------------------------
# Notifications (326a9006)
# ----------------------------------------------------------------------------


def encode_sensor_frames(module: int, values: F64Array, lsb_per_unit: float, packed: bool) -> bytes:
    """N samples of one sensor -> notifications, back to back.

    Parameters
    ----------
    module:
        ``MODULE_ACC`` or ``MODULE_GYRO``.
    values:
        (N, 3) acceleration in g or angular rate in deg/s; quantised here.
        With ``packed`` N must be a multiple of 3.
    lsb_per_unit:
        Counts per g / per deg/s of the configured range.
    packed:
        3 samples per 20-byte frame (registers 0x1C / 0x07), else one per 8-byte frame.

    Returns
    -------
    bytes
        ``N/3`` frames of 20 bytes (packed) or ``N`` frames of 8 bytes.
    """
    raw = quantize(values, lsb_per_unit)
    per = PACKED_SAMPLES if packed else 1
    if raw.shape[0] % per:
        raise ValueError(f"packed frames need a multiple of 3 samples, got {raw.shape[0]}")
    frames = raw.shape[0] // per
    out = np.empty((frames, 2 + 6 * per), dtype=np.uint8)
    out[:, 0] = module
    out[:, 1] = _DATA_REGISTERS[module][1 if packed else 0]
    out[:, 2:] = raw.reshape(frames, 3 * per).astype("<i2").view(np.uint8)
    return out.tobytes()


def encode_battery(percent: int, millivolts: int) -> bytes:
    return BATTERY.pack(MODULE_SETTINGS, BATTERY_READ, percent & 0xFF, millivolts & 0xFFFF)


@dataclass(frozen=True, slots=True)
class BatteryState(Message):
    """Answer to ``11 8C``: charge (%) and voltage (mV)."""

    percent: int
    millivolts: int
    chunk_index: int = 0


def _battery_message(msg: bytes, chunk_index: int) -> Message | None:
    if len(msg) != BATTERY.size:
        return None
    _, _, pct, mv = BATTERY.unpack(msg)
    return BatteryState(pct, mv, chunk_index)


#: Control-notification dispatch table: (module, register) -> decoder (None = malformed).
MESSAGE_DECODERS: dict[tuple[int, int], Callable[[bytes, int], Message | None]] = {
    (MODULE_SETTINGS, BATTERY_READ): _battery_message,
}

# (module, register) of streamed data -> samples per frame
_STREAMS: dict[tuple[int, int], int] = {
    (MODULE_ACC, ACC_REG_DATA): 1,
    (MODULE_ACC, ACC_REG_PACKED): PACKED_SAMPLES,
    (MODULE_GYRO, GYRO_REG_DATA): 1,
    (MODULE_GYRO, GYRO_REG_PACKED): PACKED_SAMPLES,
}


class MetaMotionDecoder:
    """Streaming decoder of ``326a9006`` notifications.

    Parameters
    ----------
    acc_range_g, gyro_range_dps:
        The ranges the collector configured (they set the scale).
    gyro:
        Whether the gyroscope streams; if False, accelerometer samples are
        returned alone (``gyro_dps`` None).
    max_pending:
        Bound on samples of one sensor waiting for their pair; beyond it the
        oldest are dropped and counted in ``stats.samples_unpaired``.
    """

    def __init__(
        self,
        acc_range_g: float = 8.0,
        gyro_range_dps: float = 2000.0,
        gyro: bool = True,
        max_pending: int = 4096,
    ) -> None:
        # divide by the LSB count (not multiply by its inverse): exactly what
        # `raw / lsb` gives, so decode(encode(x)) == rint(x * lsb) / lsb
        self._acc_lsb = acc_lsb_per_g(acc_range_g)
        self._gyro_lsb = gyro_lsb_per_dps(gyro_range_dps)
        self._gyro = gyro
        self._max_pending = max_pending
        self._stats = DecoderStats()
        # whether each sensor's stream has started since the last reset
        self._seen = {MODULE_ACC: False, MODULE_GYRO: False}
        self._pending: dict[int, npt.NDArray[np.int16]] = {
            MODULE_ACC: np.zeros((0, 3), np.int16),
            MODULE_GYRO: np.zeros((0, 3), np.int16),
        }

    @property
    def stats(self) -> DecoderStats:
        return self._stats

    def reset(self) -> None:
        dropped = sum(int(p.shape[0]) for p in self._pending.values())
        self._stats.samples_unpaired += dropped
        self._stats.samples_pending = 0
        for k in self._pending:
            self._pending[k] = np.zeros((0, 3), np.int16)
            self._seen[k] = False

    def feed(self, data: bytes | bytearray | memoryview) -> Decoded:
        return self.feed_many((data,))

    def feed_many(self, chunks: Sequence[bytes | bytearray | memoryview]) -> Decoded:
        st = self._stats
        c = Chunks.join(chunks)
        st.notifications += len(chunks)
        st.bytes_in += int(c.data.shape[0])
        key = c.byte_at(0) << 8 | c.byte_at(1)
        length = c.lengths
        handled = np.zeros(length.shape[0], dtype=bool)

        new: dict[int, tuple[npt.NDArray[np.int16], I64Array]] = {}
        for (module, reg), per in _STREAMS.items():
            mine = key == (module << 8 | reg)
            if not mine.any():
                continue
            handled |= mine
            size = 2 + 6 * per
            good = np.flatnonzero(mine & (length == size))
            bad = mine & (length != size)
            st.frames_corrupt += int(bad.sum())
            st.bytes_skipped += int(length[bad].sum())
            if good.shape[0] == 0:
                continue
            st.frames_data += int(good.shape[0])
            st.bytes_decoded += size * int(good.shape[0])
            raw = c.fields(good, size, 2, "<i2").reshape(-1, 3)
            prev = new.get(module)
            chunk_of = np.repeat(good, per)
            if prev is None:
                new[module] = (raw, chunk_of)
            else:  # both single and packed frames in one call: keep arrival order
                allc = np.concatenate([prev[1], chunk_of])
                order = np.argsort(allc, kind="stable")
                new[module] = (np.concatenate([prev[0], raw])[order], allc[order])

        messages: list[Message] = []
        for i in np.flatnonzero(~handled):
            k = int(key[i])
            fn = MESSAGE_DECODERS.get((k >> 8, k & 0xFF)) if k >= 0 else None
            msg = fn(bytes(chunks[int(i)]), int(i)) if fn else None
            n = int(length[i])
            if msg is not None:
                messages.append(msg)
                st.frames_control += 1
                st.bytes_decoded += n
            else:
                st.bytes_skipped += n
                if fn:
                    st.frames_corrupt += 1
                else:
                    st.frames_unknown += 1
        return self._pair(new, tuple(messages))

    def _align_start(
        self,
        new: dict[int, tuple[npt.NDArray[np.int16], I64Array]],
        raws: dict[int, npt.NDArray[np.int16]],
        chunks: dict[int, I64Array],
    ) -> None:
        """Line the two streams up when the second one starts.

        The sensors are started by separate writes, so one streams alone for a
        while. Both sample on one clock and the frames of one sampling instant
        go out together, so the first frame of the sensor that starts second
        belongs with the LATEST frame of the other: the other's earlier
        samples have no partner and are dropped (counted as unpaired).
        """
        starting = sorted(
            (int(new[m][1][0]), m)
            for m in (MODULE_ACC, MODULE_GYRO)
            if m in new and not self._seen[m]
        )
        for first_chunk, m in starting:
            self._seen[m] = True
            other = MODULE_GYRO if m == MODULE_ACC else MODULE_ACC
            if not self._seen[other]:
                continue  # the other has not started: m is the first stream
            first_frame = int(np.count_nonzero(new[m][1] == first_chunk))
            before = int(np.count_nonzero(chunks[other] < first_chunk))
            drop = max(0, before - first_frame)
            if drop:
                raws[other] = raws[other][drop:]
                chunks[other] = chunks[other][drop:]
                self._stats.samples_unpaired += drop

    def _pair(
        self, new: dict[int, tuple[npt.NDArray[np.int16], I64Array]], messages: tuple[Message, ...]
    ) -> Decoded:
        st = self._stats
        modules = (MODULE_ACC, MODULE_GYRO) if self._gyro else (MODULE_ACC,)
        raws: dict[int, npt.NDArray[np.int16]] = {}
        chunks: dict[int, I64Array] = {}
        for m in modules:
            old = self._pending[m]
            got_raw, got_chunks = new.get(m, (np.zeros((0, 3), np.int16), empty_index()))
            if old.shape[0]:
                raws[m] = np.concatenate([old, got_raw])
                # samples from earlier calls completed before this call: chunk -1
                chunks[m] = np.concatenate([np.full(old.shape[0], -1, np.int64), got_chunks])
            else:
                raws[m], chunks[m] = got_raw, got_chunks
        if not self._gyro and MODULE_GYRO in new:
            st.samples_unpaired += int(new[MODULE_GYRO][0].shape[0])
        if self._gyro:
            self._align_start(new, raws, chunks)
        n = min(int(raws[m].shape[0]) for m in modules)
        for m in modules:
            rest = raws[m][n:]
            if rest.shape[0] > self._max_pending:
                st.samples_unpaired += int(rest.shape[0]) - self._max_pending
                rest = rest[-self._max_pending :]
            # a copy: a view would keep this call's whole sample array alive
            self._pending[m] = rest.copy()
        st.samples_pending = sum(int(self._pending[m].shape[0]) for m in modules)
        st.samples += n
        if n == 0:
            return Decoded(
                empty3(), empty3() if self._gyro else None, empty_index(), messages=messages
            )
        chunk_index = chunks[MODULE_ACC][:n]
        gyro = None
        if self._gyro:
            chunk_index = np.maximum(chunk_index, chunks[MODULE_GYRO][:n])
            gyro = raws[MODULE_GYRO][:n] / self._gyro_lsb
        return Decoded(
            accel_g=raws[MODULE_ACC][:n] / self._acc_lsb,
            gyro_dps=gyro,
            chunk_index=np.maximum(chunk_index, 0),
            messages=messages,
        )


PROTOCOL = DeviceProtocol(
    kind=KIND,
    vendor_model="MbientLab MetaMotion",
    service_uuid=SERVICE_UUID,
    notify_uuid=NOTIFY_UUID,
    write_uuid=WRITE_UUID,
    write_with_response=False,
    name_patterns=(re.compile(r"^MetaWear$"), re.compile(r"^MetaMotion")),
    advertised_service_uuids=(SERVICE_UUID,),
    supported_rates_hz=tuple(ODR_CODES),
    has_gyro=True,
    has_haptic=True,
    has_device_timestamps=False,
    sig_services=(DEVICE_INFORMATION_SERVICE_UUID, BATTERY_SERVICE_UUID),
    make_decoder=MetaMotionDecoder,
)

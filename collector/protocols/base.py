"""Shared types of the device wire formats.

Every device module (``witmotion``, ``movesense``, ``metamotion``) defines its
format once, as module-level constants and ``struct``/numpy layouts, and
derives from it both a pure ENCODER (used by the simulated firmware in
``firmware_sim/devices``) and a streaming DECODER (used by the collector).

Decoders are objects with state (a byte buffer, pending samples, counters) and
one entry point, :meth:`StreamDecoder.feed_many`, that decodes every complete
frame of a list of notifications at once with numpy. They never raise on bad
input: corrupt, truncated or unknown frames are counted in
:class:`DecoderStats` and skipped, and the stream goes on.

Units: acceleration in g (standard gravity, 9.80665 m/s²), angular rate in
deg/s, angles in degrees, device timestamps in milliseconds of the device's
own clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

STANDARD_GRAVITY_MS2 = 9.80665

F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]

_EMPTY3 = np.zeros((0, 3), dtype=np.float64)
_EMPTY3.flags.writeable = False
_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_I.flags.writeable = False


def empty3() -> F64Array:
    """A read-only (0, 3) float64 array (shared; never written)."""
    return _EMPTY3


def empty_index() -> I64Array:
    """A read-only (0,) int64 array (shared; never written)."""
    return _EMPTY_I


def sig_uuid(short: int) -> str:
    """The 128-bit form of a Bluetooth SIG 16-bit UUID (``0x180F`` -> ``0000180f-...``)."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


#: Bluetooth SIG services and characteristics used by the simulators and the collector.
BATTERY_SERVICE_UUID = sig_uuid(0x180F)
BATTERY_LEVEL_UUID = sig_uuid(0x2A19)
DEVICE_INFORMATION_SERVICE_UUID = sig_uuid(0x180A)
MANUFACTURER_NAME_UUID = sig_uuid(0x2A29)
MODEL_NUMBER_UUID = sig_uuid(0x2A24)
SERIAL_NUMBER_UUID = sig_uuid(0x2A25)
FIRMWARE_REVISION_UUID = sig_uuid(0x2A26)
HARDWARE_REVISION_UUID = sig_uuid(0x2A27)


class Message:
    """Base of the control messages a decoder returns beside the samples
    (register replies, command results, battery readings).

    Every message dataclass carries ``chunk_index``: the index, in the list
    given to :meth:`StreamDecoder.feed_many`, of the notification that
    completed it (0 for :meth:`StreamDecoder.feed`).
    """

    __slots__ = ()


@dataclass(slots=True)
class DecoderStats:
    """Counters of one decoder (live state; use :meth:`snapshot` to keep a copy).

    Byte accounting always balances::

        bytes_in == bytes_decoded + bytes_skipped + bytes_pending

    and, for notification-framed devices (Movesense, MetaMotion), every
    notification is exactly one of data, control, corrupt or unknown::

        notifications == frames_data + frames_control + frames_corrupt + frames_unknown

    For byte-stream devices (WitMotion), frames may straddle notifications;
    ``frames_corrupt`` counts frames found truncated by a following header and
    ``bytes_skipped`` counts every byte that was not part of a decoded frame.
    """

    notifications: int = 0
    bytes_in: int = 0
    bytes_decoded: int = 0
    bytes_skipped: int = 0
    bytes_pending: int = 0
    frames_data: int = 0
    frames_control: int = 0
    frames_corrupt: int = 0
    frames_unknown: int = 0
    samples: int = 0
    #: samples decoded but not yet returned (MetaMotion accel/gyro waiting for their pair)
    samples_pending: int = 0
    #: samples dropped because their pair never came (MetaMotion; bounded queue)
    samples_unpaired: int = 0

    def snapshot(self) -> DecoderStats:
        return DecoderStats(
            self.notifications,
            self.bytes_in,
            self.bytes_decoded,
            self.bytes_skipped,
            self.bytes_pending,
            self.frames_data,
            self.frames_control,
            self.frames_corrupt,
            self.frames_unknown,
            self.samples,
            self.samples_pending,
            self.samples_unpaired,
        )


@dataclass(frozen=True, slots=True)
class DeviceTimestamps:
    """Per-packet device timestamps (devices that send them: Movesense).

    Attributes
    ----------
    sample_index:
        (P,) int64 index, into the decoded samples, of each packet's first sample.
    time_ms:
        (P,) int64 device clock of that first sample, milliseconds (u32 on
        the wire: it wraps after 2**32 ms, about 49.7 days; not unwrapped here).
    """

    sample_index: I64Array
    time_ms: I64Array


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one ``feed``/``feed_many`` call produced.

    Attributes
    ----------
    accel_g:
        (N, 3) float64 acceleration in g, sensor frame.
    gyro_dps:
        (N, 3) float64 angular rate in deg/s, or None when the stream has no gyro.
    chunk_index:
        (N,) int64: for each sample, the index (in the list given to
        ``feed_many``) of the notification that completed it; use it to map
        samples to arrival times.
    device_time:
        Per-packet device timestamps, or None when the device sends none.
    angle_deg:
        (N, 3) float64 roll, pitch, yaw computed on the device (WitMotion), or None.
    messages:
        Control messages (register replies, command results, battery), in order.
    """

    accel_g: F64Array
    gyro_dps: F64Array | None
    chunk_index: I64Array
    device_time: DeviceTimestamps | None = None
    angle_deg: F64Array | None = None
    messages: tuple[Message, ...] = ()

    def __len__(self) -> int:
        return int(self.accel_g.shape[0])


class StreamDecoder(Protocol):
    """One decoder per notification stream (per connection)."""

    @property
    def stats(self) -> DecoderStats: ...

    def feed(self, data: bytes | bytearray | memoryview) -> Decoded:
        """Decode one notification (all complete frames it finishes)."""
        ...

    def feed_many(self, chunks: Sequence[bytes | bytearray | memoryview]) -> Decoded:
        """Decode a list of notifications at once (vectorised over all of them)."""
        ...

    def reset(self) -> None:
        """Forget buffered bytes and pending samples (after a reconnect).

        Dropped bytes/samples are counted as skipped/unpaired, never lost silently.
        """
        ...


@dataclass(frozen=True, slots=True)
class DeviceProtocol:
    """Everything the collector needs to find, start and decode one device type.

    Attributes
    ----------
    kind:
        Stable device type name (``witmotion``, ``movesense``, ``metamotion``);
        used in configuration and stored as a tag.
    vendor_model:
        Human-readable model name.
    service_uuid, notify_uuid, write_uuid:
        The device's GATT service, its data characteristic (notifications) and
        its command characteristic, lower-case 128-bit strings.
    write_with_response:
        Whether commands are written with a response (ATT Write Request) or
        without (ATT Write Command), as the vendor's own SDK does.
    name_patterns:
        Regular expressions matched (``search``) against the advertised name.
    advertised_service_uuids:
        Service UUIDs the device puts in its advertisement (may be empty).
    supported_rates_hz:
        Output data rates the device can be set to.
    has_gyro, has_haptic, has_device_timestamps:
        Capabilities: gyroscope stream, a vibration motor, per-packet device clock.
    make_decoder:
        Factory of a fresh decoder for one stream (keyword arguments are device specific).
    sig_services:
        Bluetooth SIG services the device exposes (Battery 0x180F, Device
        Information 0x180A), as 128-bit UUIDs.
    """

    kind: str
    vendor_model: str
    service_uuid: str
    notify_uuid: str
    write_uuid: str
    write_with_response: bool
    name_patterns: tuple[re.Pattern[str], ...]
    advertised_service_uuids: tuple[str, ...]
    supported_rates_hz: tuple[float, ...]
    has_gyro: bool
    has_haptic: bool
    has_device_timestamps: bool
    make_decoder: Callable[..., StreamDecoder] = field(repr=False)
    sig_services: tuple[str, ...] = ()

    def matches(self, name: str | None, service_uuids: Sequence[str] = ()) -> bool:
        """True when an advertisement (name, service UUIDs) looks like this device."""
        lowered = {u.lower() for u in service_uuids}
        if any(u in lowered for u in self.advertised_service_uuids):
            return True
        return name is not None and any(p.search(name) for p in self.name_patterns)

    def nearest_rate_hz(self, rate_hz: float) -> float:
        """The supported output rate closest to ``rate_hz`` (ties: the higher one)."""
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        return min(self.supported_rates_hz, key=lambda r: (abs(r - rate_hz), -r))


# ----------------------------------------------------------------------------
# Helpers shared by the notification-framed decoders (Movesense, MetaMotion)
# ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunks:
    """A list of notifications joined into one array, with their offsets.

    Attributes
    ----------
    data:
        (B,) uint8, all notifications back to back.
    starts, lengths:
        (C,) int64 offset and length of each notification in ``data``.
    """

    data: npt.NDArray[np.uint8]
    starts: I64Array
    lengths: I64Array
    #: The common length of all notifications, or -1 if they differ (or there are none).
    uniform_length: int = -1

    @classmethod
    def join(cls, chunks: Sequence[bytes | bytearray | memoryview]) -> Chunks:
        # the per-notification Python work (len, join) is most of a decoder's
        # cost at 20-byte notifications: each is done once, here
        lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
        starts = np.zeros(len(chunks), dtype=np.int64)
        if len(chunks) > 1:
            np.cumsum(lengths[:-1], out=starts[1:])
        data = np.frombuffer(b"".join(chunks), dtype=np.uint8)
        uniform = -1
        if len(chunks):
            first = int(lengths[0])
            if int(data.shape[0]) == first * len(chunks) and bool(np.all(lengths == first)):
                uniform = first
        return cls(data, starts, lengths, uniform)

    def byte_at(self, offset: int, default: int = -1) -> npt.NDArray[np.int64]:
        """(C,) int64 byte ``offset`` of every notification, ``default`` where too short."""
        size = self.uniform_length
        if size > offset:
            return self.data.reshape(-1, size)[:, offset].astype(np.int64)
        out = np.full(self.starts.shape[0], default, dtype=np.int64)
        ok = self.lengths > offset
        out[ok] = self.data[self.starts[ok] + offset]
        return out

    def rows(self, which: I64Array, length: int) -> npt.NDArray[np.uint8]:
        """(len(which), length) uint8 rows of the selected notifications (all of that length).

        A view into ``data`` where the selection is contiguous, else a copy.
        """
        if which.shape[0] == 0:
            return np.zeros((0, length), dtype=np.uint8)
        if self.uniform_length == length:
            every = self.data.reshape(-1, length)
            # all of them (the usual data-only call): the rows as they are, no gather
            return every if which.shape[0] == every.shape[0] else every[which]
        first = int(self.starts[which[0]])
        # Common case: the selected notifications are consecutive (a stream of
        # same-sized data packets), hence contiguous in `data`: a free view.
        if int(which[-1]) - int(which[0]) + 1 == which.shape[0]:
            return self.data[first : first + which.shape[0] * length].reshape(-1, length)
        idx = self.starts[which][:, None] + np.arange(length, dtype=np.int64)[None, :]
        return self.data[idx]

    def fields(
        self, which: I64Array, length: int, first: int, dtype: npt.DTypeLike
    ) -> npt.NDArray[Any]:
        """Bytes ``first:length`` of the selected notifications viewed as ``dtype``.

        Returns a (len(which), (length - first) // itemsize) array, one copy:
        for notifications of one length the byte range of every row is
        reinterpreted in place and only the selected rows are gathered.
        """
        dt = np.dtype(dtype)
        if self.uniform_length == length and which.shape[0]:
            rows = self.data.reshape(-1, length)[:, first:length].view(dt)
            if which.shape[0] == rows.shape[0]:
                return np.ascontiguousarray(rows)
            return rows[which]
        return self.rows(which, length)[:, first:].copy().view(dt)

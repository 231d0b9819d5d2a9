"""Pure MQTT topic and payload codec (no I/O). Documented in docs/MQTT.md.

Topic tree (version in the root, default ``postmon/v1``)::

    {root}/{site}/{wearer}/{stream}            stream: epochs|events|nudges|status|raw|daily
    {root}/{site}/_collector/{collector}/status   retained presence (last will)

Epoch and raw batches are compact little-endian binary with a version byte
(an hour of epochs of one wearer is 94 kB instead of ~600 kB as JSON);
everything else is JSON with a ``"v"`` version key. Decoders check every
length and refuse anything else with ``BusDecodeError`` naming what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.contracts import EPOCH_DTYPE, DailySummary, Event, SampleBatch
from postmon.errors import InputError
from postmon.store.records import DeviceStatus, NudgeRecord

STREAMS: tuple[str, ...] = ("epochs", "events", "nudges", "status", "raw", "daily")
PRESENCE_LEVEL = "_collector"

EPOCHS_KIND = 1
RAW_KIND = 2
BINARY_VERSION = 1
JSON_VERSION = 1

_HEAD = struct.Struct("<BBH")  # version, kind, sensor id length
_EPOCH_TAIL = struct.Struct("<QI")  # seq, n
_RAW_TAIL = struct.Struct("<dQIBI")  # rate_hz, seq, lost_before, flags, n
#: epoch columns on the wire, in order, with their little-endian types
_EPOCH_WIRE: tuple[tuple[str, str], ...] = (
    ("time_ns", "<i8"),
    ("activity", "i1"),
    ("inclination_deg", "<f4"),
    ("flexion_deg", "<f4"),
    ("lateral_deg", "<f4"),
    ("static", "u1"),
    ("intensity_g", "<f4"),
)
EPOCH_WIRE_BYTES = sum(np.dtype(t).itemsize for _, t in _EPOCH_WIRE)  # 26 per epoch


class BusDecodeError(InputError):
    """A message that does not follow docs/MQTT.md (kept in the dead-letter file)."""


# ------------------------------------------------------------------ topics


def _check_level(value: str, what: str) -> None:
    if not value or any(c in value for c in "/+#\x00") or value.startswith(("_", "$")):
        raise ValueError(
            f"{what}={value!r} cannot be an MQTT topic level "
            "(no empty value, '/', '+', '#', and no leading '_' or '$')"
        )


def data_topic(root: str, site: str, wearer: str, stream: str) -> str:
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; expected one of {', '.join(STREAMS)}")
    _check_level(site, "site")
    _check_level(wearer, "wearer")
    return f"{root}/{site}/{wearer}/{stream}"


def presence_topic(root: str, site: str, collector: str) -> str:
    _check_level(site, "site")
    _check_level(collector, "collector")
    return f"{root}/{site}/{PRESENCE_LEVEL}/{collector}/status"


@dataclass(frozen=True, slots=True)
class Topic:
    site: str
    wearer: str  # the collector id for presence
    stream: str  # one of STREAMS, or "presence"


def parse_topic(root: str, topic: str) -> Topic:
    if not topic.startswith(root + "/"):
        raise BusDecodeError(f"topic {topic!r} is not under {root!r}")
    levels = topic[len(root) + 1 :].split("/")
    if len(levels) == 3 and levels[2] in STREAMS and all(levels):
        return Topic(levels[0], levels[1], levels[2])
    if len(levels) == 4 and levels[1] == PRESENCE_LEVEL and levels[3] == "status":
        return Topic(levels[0], levels[2], "presence")
    raise BusDecodeError(
        f"topic {topic!r} is not {root}/<site>/<wearer>/<{'|'.join(STREAMS)}> "
        f"nor {root}/<site>/{PRESENCE_LEVEL}/<collector>/status"
    )


# ---------------------------------------------------------- binary batches


def _sensor_bytes(sensor: str) -> bytes:
    b = sensor.encode()
    if len(b) > 0xFFFF:
        raise ValueError("sensor id longer than 65535 bytes")
    return b


def encode_epochs(sensor: str, epochs: npt.NDArray[Any], seq: int = 0) -> bytes:
    """Binary epoch batch, version 1 (layout in docs/MQTT.md)."""
    if epochs.dtype != EPOCH_DTYPE or epochs.ndim != 1:
        raise ValueError(
            f"epochs must be a 1-D EPOCH_DTYPE array, got {epochs.dtype} {epochs.shape}"
        )
    sb = _sensor_bytes(sensor)
    parts = [
        _HEAD.pack(BINARY_VERSION, EPOCHS_KIND, len(sb)),
        sb,
        _EPOCH_TAIL.pack(seq, epochs.shape[0]),
    ]
    parts.extend(np.ascontiguousarray(epochs[name]).astype(t).tobytes() for name, t in _EPOCH_WIRE)
    return b"".join(parts)


def _head(payload: bytes, kind: int) -> tuple[str, int]:
    if len(payload) < _HEAD.size:
        raise BusDecodeError(f"payload of {len(payload)} bytes is too short for a batch header")
    version, got_kind, slen = _HEAD.unpack_from(payload, 0)
    if version != BINARY_VERSION:
        raise BusDecodeError(
            f"binary batch version {version} is not supported (this is {BINARY_VERSION})"
        )
    if got_kind != kind:
        raise BusDecodeError(f"batch kind {got_kind} where {kind} was expected")
    end = _HEAD.size + slen
    if len(payload) < end:
        raise BusDecodeError("payload ends inside the sensor id")
    try:
        sensor = payload[_HEAD.size : end].decode()
    except UnicodeDecodeError as exc:
        raise BusDecodeError("sensor id is not UTF-8") from exc
    return sensor, end


@dataclass(frozen=True, slots=True)
class EpochBatch:
    sensor: str
    seq: int
    epochs: npt.NDArray[Any]


def decode_epochs(payload: bytes) -> EpochBatch:
    sensor, off = _head(payload, EPOCHS_KIND)
    if len(payload) < off + _EPOCH_TAIL.size:
        raise BusDecodeError("payload ends inside the epoch batch header")
    seq, n = _EPOCH_TAIL.unpack_from(payload, off)
    off += _EPOCH_TAIL.size
    want = off + n * EPOCH_WIRE_BYTES
    if len(payload) != want:
        raise BusDecodeError(f"epoch batch of {n} epochs must be {want} bytes, got {len(payload)}")
    out = np.zeros(n, dtype=EPOCH_DTYPE)
    for name, t in _EPOCH_WIRE:
        dt = np.dtype(t)
        out[name] = np.frombuffer(payload, dtype=dt, count=n, offset=off)
        off += n * dt.itemsize
    return EpochBatch(sensor, int(seq), out)


def encode_raw(batch: SampleBatch) -> bytes:
    """Binary raw IMU batch, version 1: accel/gyro as float32 (16-bit sensors
    lose nothing), times as int64 ns."""
    sb = _sensor_bytes(batch.sensor_id)
    n = len(batch)
    flags = 1 if batch.gyro_dps is not None else 0
    parts = [
        _HEAD.pack(BINARY_VERSION, RAW_KIND, len(sb)),
        sb,
        _RAW_TAIL.pack(batch.rate_hz, batch.seq, batch.lost_before, flags, n),
        np.asarray(batch.t_ns, dtype="<i8").tobytes(),
        np.asarray(batch.accel_g, dtype="<f4").tobytes(),
    ]
    if batch.gyro_dps is not None:
        parts.append(np.asarray(batch.gyro_dps, dtype="<f4").tobytes())
    return b"".join(parts)


def decode_raw(payload: bytes, wearer: str) -> SampleBatch:
    sensor, off = _head(payload, RAW_KIND)
    if len(payload) < off + _RAW_TAIL.size:
        raise BusDecodeError("payload ends inside the raw batch header")
    rate_hz, seq, lost, flags, n = _RAW_TAIL.unpack_from(payload, off)
    off += _RAW_TAIL.size
    has_gyro = bool(flags & 1)
    want = off + n * 8 + n * 12 * (2 if has_gyro else 1)
    if len(payload) != want:
        raise BusDecodeError(f"raw batch of {n} samples must be {want} bytes, got {len(payload)}")
    t = np.frombuffer(payload, "<i8", n, off).astype(np.int64)
    off += n * 8
    acc = np.frombuffer(payload, "<f4", 3 * n, off).reshape(n, 3).astype(np.float64)
    off += n * 12
    gyro = (
        np.frombuffer(payload, "<f4", 3 * n, off).reshape(n, 3).astype(np.float64)
        if has_gyro
        else None
    )
    try:
        return SampleBatch(sensor, wearer, rate_hz, t, acc, gyro, lost_before=lost, seq=seq)
    except ValueError as exc:
        raise BusDecodeError(f"raw batch: {exc}") from exc


# -------------------------------------------------------------------- JSON


def _safe(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, dict):
        return {str(k): _safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_safe(x) for x in v]
    return v


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(_safe(doc), separators=(",", ":"), allow_nan=False).encode()


def _loads(payload: bytes, key: str) -> tuple[dict[str, Any], list[Any]]:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BusDecodeError(f"payload is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BusDecodeError("JSON payload must be an object")
    if doc.get("v") != JSON_VERSION:
        raise BusDecodeError(
            f"JSON payload version {doc.get('v')!r} is not supported (this is {JSON_VERSION})"
        )
    items = doc.get(key)
    if not isinstance(items, list):
        raise BusDecodeError(f"JSON payload needs a list under {key!r}")
    return doc, items


def encode_events(events: Sequence[Event]) -> bytes:
    return _dumps(
        {
            "v": JSON_VERSION,
            "events": [
                {
                    "t_ns": int(e.time_ns),
                    "kind": e.kind,
                    "duration_s": e.duration_s,
                    "attrs": e.attrs,
                }
                for e in events
            ],
        }
    )


def decode_events(payload: bytes) -> list[Event]:
    _, items = _loads(payload, "events")
    try:
        return [
            Event(
                int(d["t_ns"]),
                str(d["kind"]),
                float(d.get("duration_s") or 0.0),
                dict(d.get("attrs") or {}),
            )
            for d in items
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BusDecodeError(f"bad event in payload: {exc!r}") from exc


def encode_nudges(nudges: Sequence[NudgeRecord]) -> bytes:
    return _dumps({"v": JSON_VERSION, "nudges": [dataclasses.asdict(n) for n in nudges]})


def decode_nudges(payload: bytes) -> list[NudgeRecord]:
    _, items = _loads(payload, "nudges")
    try:
        return [NudgeRecord(**d) for d in items]
    except TypeError as exc:
        raise BusDecodeError(f"bad nudge in payload: {exc}") from exc


def encode_status(statuses: Sequence[DeviceStatus]) -> bytes:
    return _dumps({"v": JSON_VERSION, "status": [dataclasses.asdict(s) for s in statuses]})


def decode_status(payload: bytes) -> list[DeviceStatus]:
    _, items = _loads(payload, "status")
    try:
        return [DeviceStatus(**d) for d in items]
    except TypeError as exc:
        raise BusDecodeError(f"bad status in payload: {exc}") from exc


def encode_daily(summaries: Sequence[DailySummary], tz: str) -> bytes:
    return _dumps(
        {"v": JSON_VERSION, "tz": tz, "daily": [dataclasses.asdict(s) for s in summaries]}
    )


def decode_daily(payload: bytes) -> tuple[list[DailySummary], str]:
    doc, items = _loads(payload, "daily")
    out = []
    float_fields = {f.name for f in dataclasses.fields(DailySummary) if f.type in ("float", float)}
    try:
        for item in items:
            d = dict(item)
            for k in float_fields:
                if d.get(k) is None:
                    d[k] = math.nan  # NaN travels as null in JSON
            d["eva_min"] = tuple(math.nan if x is None else float(x) for x in d.get("eva_min", ()))
            out.append(DailySummary(**d))
    except TypeError as exc:
        raise BusDecodeError(f"bad daily summary in payload: {exc}") from exc
    return out, str(doc.get("tz") or "UTC")


def encode_presence(collector: str, online: bool, time_ns: int) -> bytes:
    return _dumps({"v": JSON_VERSION, "collector": collector, "online": online, "t_ns": time_ns})


def decode_presence(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BusDecodeError(f"presence payload is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or "online" not in doc:
        raise BusDecodeError("presence payload needs 'online'")
    return doc

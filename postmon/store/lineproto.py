"""Pure InfluxDB line-protocol encoder (no I/O, no clocks, no logging).

Two paths that produce byte-identical output (a property test holds them to
it):

* ``encode_point``: one point from a mapping, typed by the schema. Used for
  low-volume records (events, nudges, daily summaries, device status) and as
  the reference implementation.
* a vectorised path for epoch and raw-IMU batches: every line is laid out in
  a (rows × bytes) ``uint8`` matrix (digits computed with integer numpy
  arithmetic) plus a mask of the bytes that belong to the line; the body is
  ``matrix[mask]``. No per-row Python: formatting floats with ``repr`` per
  value costs ~1 µs each and dominated a per-row encoder.

Escaping follows the line-protocol reference (v1 and v2 agree):
measurements escape comma and space; tag keys, tag values and field keys
escape comma, equals sign and space; string field values escape double
quote and backslash. Backslashes elsewhere are not escaped (InfluxDB 1.x
stores ``\\\\`` in a tag value as two backslashes). What line protocol cannot
represent is refused with ``EncodeError`` rather than mangled: newlines and
carriage returns in names, tag values and string fields, and a tag value or
key ending in a backslash (it would escape the separator that follows).

Floats are written in fixed point with the field's resolution
(``FieldSpec.decimals``), trailing zeros dropped; NaN and ±inf fields are
omitted (InfluxDB cannot store them) and a point left with no field is
skipped and counted (``Encoded.skipped``). Integers get the ``i`` suffix,
booleans are ``true``/``false``. Timestamps are integers in the
measurement's precision, floored (an epoch at 12:00:00.4 is stored at
12:00:00).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from analysis.contracts import (
    ACTIVITY_LABELS,
    EPOCH_DTYPE,
    Activity,
    DailySummary,
    Event,
    SampleBatch,
)
from postmon.errors import InputError
from postmon.store import schema
from postmon.store.records import DeviceStatus, NudgeRecord, PlanChange
from postmon.store.schema import PRECISION_NS, Measurement

# Values whose fixed-point integer would not be exact in float64 (2**53) go
# through the scalar path, which falls back to repr().
_MAX_EXACT = float(2**53)
#: rows per matrix block: bounds the temporary matrix to a few tens of MB
_BLOCK_ROWS = 50_000


class EncodeError(InputError):
    """A value cannot be written as line protocol (what and why in the message)."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """Line-protocol body for one measurement, ready for ``/write``.

    ``body`` holds ``points`` lines, each ending in a newline; ``skipped``
    points had no writable field. ``t_min_ns``/``t_max_ns`` span the encoded
    points (0 when empty).
    """

    measurement: str
    rp: str
    precision: str
    body: bytes
    points: int
    skipped: int = 0
    t_min_ns: int = 0
    t_max_ns: int = 0


# ---------------------------------------------------------------- escaping

_MEAS_ESC = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESC = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STR_ESC = str.maketrans({'"': r"\"", "\\": r"\\"})


def _check_text(s: str, what: str) -> None:
    if "\n" in s or "\r" in s:
        raise EncodeError(f"{what} {s!r} contains a line break, which line protocol cannot carry")


def _check_name(s: str, what: str) -> None:
    if not s:
        raise EncodeError(f"{what} must not be empty")
    _check_text(s, what)
    if s.endswith("\\"):
        raise EncodeError(
            f"{what} {s!r} ends with a backslash, which line protocol cannot carry",
            hint="remove the trailing backslash from the name",
        )


def escape_measurement(name: str) -> str:
    _check_name(name, "measurement")
    return name.translate(_MEAS_ESC)


def escape_key(key: str) -> str:
    """A tag key or field key."""
    _check_name(key, "key")
    return key.translate(_KEY_ESC)


def escape_tag_value(value: str) -> str:
    _check_name(value, "tag value")
    return value.translate(_KEY_ESC)


def escape_string(value: str) -> str:
    """A string field value, with its surrounding double quotes."""
    _check_text(value, "string field")
    return '"' + value.translate(_STR_ESC) + '"'


def format_float(x: float, decimals: int) -> str | None:
    """Fixed point with ``decimals`` digits, trailing zeros dropped; None for NaN/inf.

    Rounds half to even on ``x * 10**decimals`` exactly as ``numpy.rint``
    does in the vectorised path.
    """
    x = float(x)
    if not math.isfinite(x):
        return None
    scaled = x * 10.0**decimals
    if abs(scaled) >= _MAX_EXACT:
        r = repr(x)
        return r[:-2] if r.endswith(".0") else r
    q = round(scaled)
    neg = q < 0
    a = -q if neg else q
    ip, fp = divmod(a, 10**decimals)
    frac = f"{fp:0{decimals}d}".rstrip("0") if decimals else ""
    return ("-" if neg else "") + str(ip) + ("." + frac if frac else "")


def format_field(value: Any, spec: schema.FieldSpec) -> str | None:
    """``value`` as the field's type; None when it is not writable (None/NaN)."""
    if value is None:
        return None
    try:
        if spec.type == "float":
            if isinstance(value, bool | np.bool_):
                raise TypeError("a boolean is not a number")
            return format_float(float(value), spec.decimals)
        if spec.type == "integer":
            if isinstance(value, float | np.floating):
                if not math.isfinite(value):
                    return None
                if not float(value).is_integer():
                    raise TypeError(f"{value!r} is not a whole number")
            return f"{int(value)}i"
        if spec.type == "boolean":
            return "true" if bool(value) else "false"
        if spec.type == "string":
            return escape_string(str(value))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError(f"field {spec.name}={value!r} is not a valid {spec.type}: {exc}") from exc
    raise EncodeError(f"field {spec.name}: unknown type {spec.type!r}")  # pragma: no cover


def series_prefix(meas: Measurement, tags: Mapping[str, str]) -> str:
    """``measurement,tag=value,...`` with tags sorted by key (InfluxDB's own
    order, cheapest to index); empty tag values are omitted as the line
    protocol requires. Tags not in the schema are refused."""
    unknown = set(tags) - set(meas.tags)
    if unknown:
        raise EncodeError(
            f"{meas.name}: unknown tag(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(meas.tags)}"
        )
    parts = [escape_measurement(meas.name)]
    for key in sorted(tags):
        value = tags[key]
        if value is None or value == "":
            continue
        parts.append(f"{escape_key(key)}={escape_tag_value(str(value))}")
    return ",".join(parts)


def encode_point(
    meas: Measurement, tags: Mapping[str, str], values: Mapping[str, Any], time_ns: int
) -> str | None:
    """One line (without newline) or None if no field is writable.

    Fields are written in schema order; names not in the schema are refused
    (the schema document must match what is stored).
    """
    unknown = set(values) - set(meas.fields)
    if unknown:
        raise EncodeError(
            f"{meas.name}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(meas.fields)}"
        )
    parts = []
    for spec in meas.specs:
        if spec.name in values:
            text = format_field(values[spec.name], spec)
            if text is not None:
                parts.append(f"{escape_key(spec.name)}={text}")
    if not parts:
        return None
    t = int(time_ns) // PRECISION_NS[meas.precision]
    return f"{series_prefix(meas, tags)} {','.join(parts)} {t}"


def _encode_rows(
    meas: Measurement, rows: Iterable[tuple[Mapping[str, str], Mapping[str, Any], int]]
) -> Encoded:
    lines: list[str] = []
    skipped = 0
    t_lo: int | None = None
    t_hi: int | None = None
    for tags, values, t_ns in rows:
        line = encode_point(meas, tags, values, t_ns)
        if line is None:
            skipped += 1
            continue
        lines.append(line)
        t_lo = t_ns if t_lo is None else min(t_lo, t_ns)
        t_hi = t_ns if t_hi is None else max(t_hi, t_ns)
    body = ("\n".join(lines) + "\n").encode() if lines else b""
    return Encoded(
        meas.name, meas.rp.name, meas.precision, body, len(lines), skipped, t_lo or 0, t_hi or 0
    )


# ------------------------------------------------------- vectorised columns

_SEP = ord(",")


@dataclass(frozen=True)
class _Seg:
    mat: npt.NDArray[np.uint8]  # (n, w)
    mask: npt.NDArray[np.bool_]  # (n, w)


def _const(text: str, n: int) -> _Seg:
    b = np.frombuffer(text.encode(), dtype=np.uint8)
    return _Seg(np.broadcast_to(b, (n, b.size)), np.ones((n, b.size), dtype=bool))


def _table(entries: Sequence[str], codes: npt.NDArray[np.intp]) -> _Seg:
    """Per-row text chosen by code from a small table."""
    raw = [e.encode() for e in entries]
    w = max((len(r) for r in raw), default=0)
    tab = np.zeros((len(raw), w), dtype=np.uint8)
    lens = np.zeros(len(raw), dtype=np.intp)
    for i, r in enumerate(raw):
        tab[i, : len(r)] = np.frombuffer(r, dtype=np.uint8)
        lens[i] = len(r)
    return _Seg(tab[codes], np.arange(w) < lens[codes][:, None])


def _digits(a: npt.NDArray[np.int64], min_width: int = 1) -> _Seg:
    """Decimal digits of non-negative integers, right-aligned, leading zeros masked."""
    top = int(a.max()) if a.size else 0
    w = max(min_width, len(str(top)))
    pow10 = 10 ** np.arange(w - 1, -1, -1, dtype=np.int64)
    mat = ((a[:, None] // pow10) % 10 + ord("0")).astype(np.uint8)
    mask = a[:, None] >= pow10
    mask[:, -min_width:] = True
    return _Seg(mat, mask)


def _signed_int_segs(v: npt.NDArray[np.int64]) -> list[_Seg]:
    neg = v < 0
    return [_Seg(np.full((v.size, 1), ord("-"), np.uint8), neg[:, None]), _digits(np.abs(v))]


def _float_segs(
    v: npt.NDArray[np.float64], decimals: int
) -> tuple[list[_Seg], npt.NDArray[np.bool_]]:
    """Fixed-point text of finite values and the validity mask (NaN/inf -> invalid)."""
    valid = np.isfinite(v)
    q = np.rint(np.where(valid, v, 0.0) * 10.0**decimals).astype(np.int64)
    neg = q < 0
    a = np.abs(q)
    scale = np.int64(10**decimals)
    ip, fp = a // scale, a % scale
    segs = [_Seg(np.full((v.size, 1), ord("-"), np.uint8), neg[:, None]), _digits(ip)]
    if decimals:
        segs.append(_Seg(np.full((v.size, 1), ord("."), np.uint8), (fp != 0)[:, None]))
        pow_desc = 10 ** np.arange(decimals - 1, -1, -1, dtype=np.int64)
        fmat = ((fp[:, None] // pow_desc) % 10 + ord("0")).astype(np.uint8)
        # digit j stays if any digit from j on is non-zero (trailing zeros dropped)
        fmask = (fp[:, None] % (pow_desc * 10)) != 0
        segs.append(_Seg(fmat, fmask))
    return segs, valid


@dataclass(frozen=True)
class FloatColumn:
    key: str
    values: npt.NDArray[Any]
    decimals: int


@dataclass(frozen=True)
class IntColumn:
    key: str
    values: npt.NDArray[Any]


@dataclass(frozen=True)
class TableColumn:
    """Per-row field text (``key=value`` fragments, already escaped) by code."""

    codes: npt.NDArray[Any]
    entries: Sequence[str]


Column = FloatColumn | IntColumn | TableColumn


def encode_columns(
    prefix: str, columns: Sequence[Column], times: npt.NDArray[np.int64]
) -> tuple[bytes, int, int]:
    """Vectorised lines ``prefix field,field,... time``; returns (body, points, skipped).

    Parameters
    ----------
    prefix:
        ``measurement,tags`` (already escaped), shared by every row.
    columns:
        Field columns of length N, written in this order; a row's NaN/inf
        floats are omitted.
    times:
        (N,) int64 timestamps already in the write precision.
    """
    n = int(times.shape[0])
    if n == 0:
        return b"", 0, 0
    chunks: list[bytes] = []
    points = 0
    for lo in range(0, n, _BLOCK_ROWS):
        hi = min(n, lo + _BLOCK_ROWS)
        body, pts = _encode_block(prefix, columns, times, lo, hi)
        chunks.append(body)
        points += pts
    return b"".join(chunks), points, n - points


def _encode_block(
    prefix: str, columns: Sequence[Column], times: npt.NDArray[np.int64], lo: int, hi: int
) -> tuple[bytes, int]:
    n = hi - lo
    segs: list[_Seg] = [_const(prefix + " ", n)]
    comma_cols: list[int] = []  # matrix column of each field's leading comma
    present: list[npt.NDArray[np.bool_]] = []
    width = segs[0].mat.shape[1]

    def add(field_segs: list[_Seg], valid: npt.NDArray[np.bool_]) -> None:
        nonlocal width
        comma_cols.append(width)
        present.append(valid)
        for s in field_segs:
            segs.append(_Seg(s.mat, s.mask & valid[:, None]))
            width += s.mat.shape[1]

    for col in columns:
        if isinstance(col, TableColumn):
            codes = np.asarray(col.codes[lo:hi], dtype=np.intp)
            valid = np.ones(n, dtype=bool)
            add([_const(",", n), _table(col.entries, codes)], valid)
        elif isinstance(col, IntColumn):
            v = np.asarray(col.values[lo:hi], dtype=np.int64)
            add(
                [_const(f",{escape_key(col.key)}=", n), *_signed_int_segs(v), _const("i", n)],
                np.ones(n, bool),
            )
        else:
            fsegs, valid = _float_segs(
                np.asarray(col.values[lo:hi], dtype=np.float64), col.decimals
            )
            add([_const(f",{escape_key(col.key)}=", n), *fsegs], valid)
    t = times[lo:hi]
    segs.extend([_const(" ", n), *_signed_int_segs(t), _const("\n", n)])

    mat = np.concatenate([s.mat for s in segs], axis=1)
    mask = np.concatenate([s.mask for s in segs], axis=1)
    pres = np.stack(present, axis=1) if present else np.zeros((n, 0), bool)
    has_field = pres.any(axis=1)
    # the first present field of each row loses its leading comma
    first = np.argmax(pres, axis=1)
    rows = np.nonzero(has_field)[0]
    mask[rows, np.asarray(comma_cols, dtype=np.intp)[first[rows]]] = False
    mask[~has_field] = False
    return mat[mask].tobytes(), int(has_field.sum())


def _needs_scalar_path(columns: Sequence[Column]) -> bool:
    for col in columns:
        if isinstance(col, FloatColumn):
            v = np.asarray(col.values, dtype=np.float64)
            fin = np.isfinite(v)
            if np.any(np.abs(v[fin]) * 10.0**col.decimals >= _MAX_EXACT):
                return True
    return False


# ----------------------------------------------------------------- epochs

_ACTIVITY_ENTRIES: tuple[str, ...] = tuple(
    f"activity={escape_string(label)},activity_code={int(Activity.from_label(label))}i"
    for label in ACTIVITY_LABELS
)
_STATIC_ENTRIES = ("static=false", "static=true")
_EPOCH_FLOATS = ("inclination_deg", "flexion_deg", "lateral_deg", "intensity_g")


def _check_epochs(epochs: npt.NDArray[Any]) -> None:
    if epochs.dtype != EPOCH_DTYPE:
        raise EncodeError(
            f"epochs must be a structured array of analysis.contracts.EPOCH_DTYPE, "
            f"got dtype {epochs.dtype}"
        )
    if epochs.ndim != 1:
        raise EncodeError(f"epochs must be 1-D, got shape {epochs.shape}")
    codes = epochs["activity"]
    bad = (codes < 0) | (codes >= len(ACTIVITY_LABELS))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise EncodeError(
            f"epoch {i} has activity code {int(codes[i])}; expected 0..{len(ACTIVITY_LABELS) - 1}"
        )


def encode_epochs(site: str, wearer: str, sensor: str, epochs: npt.NDArray[Any]) -> Encoded:
    """Line protocol for a batch of 1-s epochs (``EPOCH_DTYPE``, shape (N,)).

    Fields: ``activity`` (string) + ``activity_code`` (integer), ``static``,
    then the angles (deg, 0.01) and ``intensity_g`` (0.0001 g); NaN angles
    are omitted. Vectorised; byte-identical to ``encode_point`` per row.
    """
    _check_epochs(epochs)
    meas = schema.EPOCH
    n = int(epochs.shape[0])
    if n == 0:
        return Encoded(meas.name, meas.rp.name, meas.precision, b"", 0)
    prefix = series_prefix(meas, {"site": site, "wearer": wearer, "sensor": sensor})
    columns: list[Column] = [
        TableColumn(epochs["activity"], _ACTIVITY_ENTRIES),
        TableColumn(epochs["static"].astype(np.intp), _STATIC_ENTRIES),
        *(FloatColumn(f, epochs[f], meas.spec(f).decimals) for f in _EPOCH_FLOATS),
    ]
    times = epochs["time_ns"].astype(np.int64)
    t_min, t_max = int(times.min()), int(times.max())
    if _needs_scalar_path(columns):
        rows = (
            ({"site": site, "wearer": wearer, "sensor": sensor}, epoch_values(e), int(e["time_ns"]))
            for e in epochs
        )
        enc = _encode_rows(meas, rows)
        return Encoded(
            meas.name, meas.rp.name, meas.precision, enc.body, enc.points, enc.skipped, t_min, t_max
        )
    body, points, skipped = encode_columns(prefix, columns, times // PRECISION_NS[meas.precision])
    return Encoded(meas.name, meas.rp.name, meas.precision, body, points, skipped, t_min, t_max)


def epoch_values(row: Any) -> dict[str, Any]:
    """The field mapping of one epoch row (for ``encode_point``)."""
    code = int(row["activity"])
    return {
        "activity": ACTIVITY_LABELS[code],
        "activity_code": code,
        "static": bool(row["static"]),
        **{f: float(row[f]) for f in _EPOCH_FLOATS},
    }


# -------------------------------------------------------------------- raw

_RAW_FIELDS = ("ax_g", "ay_g", "az_g", "gx_dps", "gy_dps", "gz_dps")


def encode_raw(site: str, wearer: str, batch: SampleBatch) -> Encoded:
    """Line protocol for raw IMU samples (ns precision), vectorised."""
    meas = schema.IMU_RAW
    n = len(batch)
    if n == 0:
        return Encoded(meas.name, meas.rp.name, meas.precision, b"", 0)
    cols: list[Column] = [
        FloatColumn(k, batch.accel_g[:, i], meas.spec(k).decimals)
        for i, k in enumerate(_RAW_FIELDS[:3])
    ]
    if batch.gyro_dps is not None:
        gyro = batch.gyro_dps
        cols.extend(
            FloatColumn(k, gyro[:, i], meas.spec(k).decimals) for i, k in enumerate(_RAW_FIELDS[3:])
        )
    times = np.asarray(batch.t_ns, dtype=np.int64)
    t_min, t_max = int(times.min()), int(times.max())
    tags = {"site": site, "wearer": wearer, "sensor": batch.sensor_id}
    if _needs_scalar_path(cols):
        rows = (
            (
                tags,
                {c.key: float(c.values[i]) for c in cols if isinstance(c, FloatColumn)},
                int(times[i]),
            )
            for i in range(n)
        )
        enc = _encode_rows(meas, rows)
        return Encoded(
            meas.name, meas.rp.name, meas.precision, enc.body, enc.points, enc.skipped, t_min, t_max
        )
    body, points, skipped = encode_columns(series_prefix(meas, tags), cols, times)
    return Encoded(meas.name, meas.rp.name, meas.precision, body, points, skipped, t_min, t_max)


# ----------------------------------------------------------------- events

_EVENT_ATTR_FIELDS = ("activity", "mean_flexion_deg", "value")


def _json_safe(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def _activity_label(v: Any) -> str:
    if isinstance(v, str):
        return Activity.from_label(v).label
    return Activity(int(v)).label


def event_values(event: Event) -> dict[str, Any]:
    """The field mapping of one (non-nudge) event."""
    values: dict[str, Any] = {"duration_s": float(event.duration_s)}
    extra: dict[str, Any] = {}
    for key, v in event.attrs.items():
        if key == "activity":
            try:
                values["activity"] = _activity_label(v)
            except ValueError as exc:
                raise EncodeError(f"event {event.kind} at {event.time_ns}: {exc}") from exc
        elif key in _EVENT_ATTR_FIELDS:
            values[key] = v
        elif key != "duration_s":
            extra[key] = v
    if extra:
        values["attrs_json"] = json.dumps(
            _json_safe(extra), sort_keys=True, separators=(",", ":"), default=str
        )
    return values


def encode_events(site: str, wearer: str, events: Sequence[Event]) -> Encoded:
    """Events (not nudges: see ``encode_nudges``) as ``event`` points, ms precision."""
    rows = (
        ({"site": site, "wearer": wearer, "kind": e.kind}, event_values(e), int(e.time_ns))
        for e in events
    )
    return _encode_rows(schema.EVENT, rows)


def nudge_values(n: NudgeRecord) -> dict[str, Any]:
    return {
        "nudge_id": n.nudge_id,
        "level": n.level,
        "static_min": n.static_min,
        "delivered": n.delivered,
        "answered": n.answered,
        "response_delay_s": n.response_delay_s,
        "confirmed": n.confirmed,
        "confirm_offset_s": n.confirm_offset_s,
    }


def encode_nudges(site: str, wearer: str, nudges: Sequence[NudgeRecord]) -> Encoded:
    rows = (
        (
            {"site": site, "wearer": wearer, "reason": n.reason, "channel": n.channel},
            nudge_values(n),
            int(n.time_ns),
        )
        for n in nudges
    )
    return _encode_rows(schema.NUDGE, rows)


def status_values(s: DeviceStatus) -> dict[str, Any]:
    return {
        "connected": s.connected,
        "battery_pct": s.battery_pct,
        "rate_hz": s.rate_hz,
        "lost_samples": s.lost_samples,
        "gaps": s.gaps,
        "reconnects": s.reconnects,
    }


def encode_status(site: str, wearer: str, statuses: Sequence[DeviceStatus]) -> Encoded:
    rows = (
        (
            {"site": site, "wearer": wearer, "sensor": s.sensor, "device_type": s.device_type},
            status_values(s),
            int(s.time_ns),
        )
        for s in statuses
    )
    return _encode_rows(schema.DEVICE, rows)


# ------------------------------------------------------------------ daily


def local_midnight_ns(date: str, tz: str) -> int:
    """The UTC instant (ns) of 00:00 on ``date`` (YYYY-MM-DD) in time zone ``tz``."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise EncodeError(
            f"unknown time zone {tz!r}", hint="use an IANA name, e.g. Europe/Paris"
        ) from exc
    try:
        day = dt.date.fromisoformat(date)
    except ValueError as exc:
        raise EncodeError(f"daily summary date {date!r} is not YYYY-MM-DD") from exc
    midnight = dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone)
    return int(midnight.timestamp()) * 1_000_000_000


def daily_values(summary: DailySummary) -> dict[str, Any]:
    """Flatten a DailySummary: scalars, ``eva_a{i}_d{j}_min``, ``settings_json``."""
    expected = schema.N_EVA_ANGLE * schema.N_EVA_DURATION
    if len(summary.eva_min) != expected:
        raise EncodeError(
            f"DailySummary.eva_min has {len(summary.eva_min)} values; expected "
            f"{schema.N_EVA_ANGLE} angle × {schema.N_EVA_DURATION} duration classes = {expected}"
        )
    values: dict[str, Any] = {}
    for f in fields(summary):
        if f.name not in ("eva_min", "settings"):
            values[f.name] = getattr(summary, f.name)
    for k, v in enumerate(summary.eva_min):
        i, j = divmod(k, schema.N_EVA_DURATION)
        values[schema.eva_field_name(i, j)] = v
    values["settings_json"] = json.dumps(
        _json_safe(summary.settings), sort_keys=True, separators=(",", ":"), default=str
    )
    return values


def encode_daily(
    site: str, wearer: str, summaries: Sequence[DailySummary], *, tz: str = "UTC"
) -> Encoded:
    """Daily summaries; each point's time is local midnight of its date in ``tz``."""
    rows = (
        ({"site": site, "wearer": wearer}, daily_values(s), local_midnight_ns(s.date, tz))
        for s in summaries
    )
    return _encode_rows(schema.DAILY, rows)


def encode_plan_changes(site: str, wearer: str, changes: Sequence[PlanChange]) -> Encoded:
    """Care-plan changes (``plan_change``), s precision."""
    rows = (
        (
            {"site": site, "wearer": wearer},
            {
                "title": c.title,
                "text": c.text or None,
                "settings_json": json.dumps(
                    _json_safe(c.settings), sort_keys=True, separators=(",", ":"), default=str
                ),
            },
            int(c.time_ns),
        )
        for c in changes
    )
    return _encode_rows(schema.PLAN_CHANGE, rows)

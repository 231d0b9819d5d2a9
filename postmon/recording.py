"""The project's recording format: CSV files of IMU samples and per-second tables.

``imu.csv``: header ``time_s,ax,ay,az[,gx,gy,gz]``; seconds from the start of
the recording, acceleration in g (gravity included), angular rate in deg/s,
sensor axes as recorded (any mounting), any constant rate >= 20 Hz (detected
from ``time_s``; gaps are allowed and kept).

``truth.csv`` / ``epochs.csv``: one row per second,
``time_s,activity,inclination_deg,flexion_deg,lateral_deg,static``.

Reading validates everything and says which line is wrong and why; it never
guesses silently. Units are checked from the gravity magnitude (m/s² where g
is expected is detected and reported) and, when the recording has enough
slow trunk rotation, the gyroscope from how fast the gravity direction turns
(rad/s where deg/s is expected is detected and reported).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analysis.contracts import NS_PER_S, SampleBatch
from postmon.errors import InputError, Reason

IMU_COLUMNS_ACC = ("time_s", "ax", "ay", "az")
IMU_COLUMNS_GYRO = ("gx", "gy", "gz")
EPOCH_COLUMNS = ("time_s", "activity", "inclination_deg", "flexion_deg", "lateral_deg", "static")
MIN_RATE_HZ = 20.0
CHUNK_LINES = 250_000  # ~10 MB of text per parse call: bounded memory, progress steps

Progress = Callable[[int, int], object]  # (bytes_done, bytes_total)


@dataclass(frozen=True)
class Recording:
    """A validated IMU recording held in memory.

    Attributes
    ----------
    time_s : (N,) float64, seconds from the recording start, strictly increasing
    accel_g : (N, 3) float64, g
    gyro_dps : (N, 3) float64 deg/s, or None when the file has no gyro columns
    rate_hz : the constant nominal sample rate detected from ``time_s``
    gaps : number of places where consecutive samples are > 1.5 periods apart
    """

    time_s: npt.NDArray[np.float64]
    accel_g: npt.NDArray[np.float64]
    gyro_dps: npt.NDArray[np.float64] | None
    rate_hz: float
    gaps: int
    source: str = ""

    def to_batch(
        self, sensor_id: str = "recording", wearer_id: str = "recording", start_ns: int = 0
    ) -> SampleBatch:
        t_ns = start_ns + np.round(self.time_s * NS_PER_S).astype(np.int64)
        return SampleBatch(sensor_id, wearer_id, self.rate_hz, t_ns, self.accel_g, self.gyro_dps)


def _parse_header(line: str, where: str) -> bool:
    cols = tuple(c.strip() for c in line.strip().lstrip("\ufeff").split(","))
    if cols == IMU_COLUMNS_ACC:
        return False
    if cols == IMU_COLUMNS_ACC + IMU_COLUMNS_GYRO:
        return True
    raise InputError(
        f"{where}:1: header is {','.join(cols)!r}",
        hint="expected 'time_s,ax,ay,az' or 'time_s,ax,ay,az,gx,gy,gz' "
        "(seconds, g, deg/s); see README 'recording format'",
    )


def _locate_bad_line(lines: Sequence[str], first_lineno: int, ncols: int, where: str) -> InputError:
    for i, line in enumerate(lines):
        parts = line.strip().split(",")
        lineno = first_lineno + i
        if len(parts) != ncols:
            return InputError(f"{where}:{lineno}: expected {ncols} values, found {len(parts)}")
        for col, p in enumerate(parts):
            try:
                v = float(p)
            except ValueError:
                return InputError(f"{where}:{lineno}: column {col + 1} is not a number: {p!r}")
            if not math.isfinite(v):
                return InputError(f"{where}:{lineno}: column {col + 1} is not finite: {p!r}")
    return InputError(f"{where}:{first_lineno}: could not parse this block")


def read_recording(path: str | Path, progress: Progress | None = None) -> Recording:
    """Read and validate an ``imu.csv`` recording.

    Raises
    ------
    InputError
        naming the file and line for malformed content, or with
        ``reason=Reason.INPUT_UNITS`` when the data is not in g.
    """
    p = Path(path)
    where = str(p)
    try:
        total = p.stat().st_size
        fh = p.open("r", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from exc
    blocks: list[npt.NDArray[np.float64]] = []
    with fh:
        try:
            header = fh.readline()
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{where}:1: not a text file (byte {exc.start} is not UTF-8)",
                hint="expected a CSV text file; see README 'recording format'",
            ) from exc
        if not header:
            raise InputError(f"{where}: file is empty", hint="expected a CSV with a header row")
        has_gyro = _parse_header(header, where)
        ncols = 7 if has_gyro else 4
        lineno = 2
        done = len(header)
        while True:
            try:
                lines = list(itertools.islice(fh, CHUNK_LINES))
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{where}: not a text file (byte {exc.start} of a block after line "
                    f"{lineno - 1} is not UTF-8)",
                    hint="expected a CSV text file; see README 'recording format'",
                ) from exc
            if not lines:
                break
            body = [ln for ln in lines if ln.strip()]
            if body:
                try:
                    arr = np.loadtxt(io.StringIO("".join(body)), delimiter=",", ndmin=2)
                except ValueError:
                    raise _locate_bad_line(lines, lineno, ncols, where) from None
                if arr.shape[1] != ncols or not np.isfinite(arr).all():
                    raise _locate_bad_line(lines, lineno, ncols, where)
                blocks.append(arr)
            lineno += len(lines)
            done += sum(len(ln) for ln in lines)  # ASCII: chars == bytes
            if progress is not None:
                progress(done, total)
    data = np.concatenate(blocks) if blocks else np.empty((0, ncols))
    return _validate(data, has_gyro, where)


def _validate(data: npt.NDArray[np.float64], has_gyro: bool, where: str) -> Recording:
    if data.shape[0] < 2:
        raise InputError(f"{where}: needs at least 2 samples, found {data.shape[0]}")
    t = np.ascontiguousarray(data[:, 0])
    dt = np.diff(t)
    bad = np.flatnonzero(dt <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise InputError(
            f"{where}:{i + 2}: time_s {t[i]!r} does not increase (previous {t[i - 1]!r})",
            hint="samples must be in time order without duplicates",
        )
    period = float(np.median(dt))
    rate = 1.0 / period
    if rate < MIN_RATE_HZ * 0.98:
        raise InputError(
            f"{where}: sample rate {rate:.1f} Hz (median step {period:.4f} s) is below "
            f"{MIN_RATE_HZ:.0f} Hz",
            hint="record at 20 Hz or more; walking and transitions need it",
        )
    # Snap to the nominal rate when within 2% (device crystals drift).
    for nominal in (20, 25, 26, 50, 52, 100, 104, 200, 208):
        if abs(rate - nominal) / nominal < 0.02:
            rate = float(nominal)
            break
    gaps = int(np.count_nonzero(dt > 1.5 * period))
    acc = np.ascontiguousarray(data[:, 1:4])
    _check_units(acc, where)
    gyro = np.ascontiguousarray(data[:, 4:7]) if has_gyro else None
    if gyro is not None:
        _check_gyro_units(acc, gyro, rate, where)
    return Recording(t, acc, gyro, rate, gaps, where)


#: gyro / gravity-direction turn rate: measured 0.5-1.0 in deg/s and 0.009-0.017 in rad/s
#: (12 HAPT recordings, the simulator, synthetic signals); the cut sits between, geometrically
_RAD_RATIO_MAX = 0.09
#: seconds of clean slow rotation needed before the gyro's unit is judged
_MIN_TURN_S = 2.0


def gyro_turn_ratio(
    acc: npt.NDArray[np.float64], gyro: npt.NDArray[np.float64], rate_hz: float
) -> float | None:
    """How the gyroscope's rate compares with the turning of the gravity direction.

    The gravity direction ``u`` seen by the sensor turns as ``du/dt = −ω × u``,
    so ``|ω × u|`` (gyro in deg/s) equals the turn rate of the low-passed
    accelerometer direction (deg/s): the median ratio is ~1 in deg/s and
    ~1/57.3 in rad/s. Only samples where the trunk turns slowly (5–100 deg/s)
    and the acceleration is close to 1 g and calm over the window (little linear
    acceleration: steps shake the accelerometer without turning the trunk) count.

    Parameters
    ----------
    acc : (N, 3) float64 acceleration in g
    gyro : (N, 3) float64 angular rate in the file's unit
    rate_hz : sample rate (Hz)

    Returns
    -------
    The median ratio, or None with less than ``_MIN_TURN_S`` s of such samples.
    """
    w = max(1, round(0.5 * rate_hz))  # 0.5-s moving average: tremor and steps out
    lag = max(1, round(0.25 * rate_hz))
    n = acc.shape[0] - w + 1 - lag
    if n <= 0:
        return None

    def moving_mean(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        c = np.cumsum(np.vstack([np.zeros((1, 3)), x]), axis=0)
        return np.asarray((c[w:] - c[:-w]) / w, dtype=np.float64)

    a = moving_mean(acc)
    g = moving_mean(gyro)
    # steps shake the accelerometer without turning the trunk: only calm windows count
    mag = np.linalg.norm(acc, axis=1)[:, None]
    shake = np.sqrt(
        np.maximum(
            moving_mean(np.repeat(mag**2, 3, axis=1))[:, 0]
            - moving_mean(np.repeat(mag, 3, axis=1))[:, 0] ** 2,
            0.0,
        )
    )
    norm = np.linalg.norm(a, axis=1)
    u = a / np.maximum(norm, 1e-9)[:, None]
    cos = np.clip(np.einsum("ij,ij->i", u[:-lag], u[lag:]), -1.0, 1.0)
    acc_rate = np.degrees(np.arccos(cos)) * rate_hz / lag  # (n,) deg/s
    mid = lag // 2
    gyro_rate = np.linalg.norm(np.cross(g[mid : mid + n], u[mid : mid + n]), axis=1)
    clean = (
        (acc_rate > 5.0) & (acc_rate < 100.0) & (shake[:n] < 0.05) & (shake[lag : lag + n] < 0.05)
    )
    clean &= (np.abs(norm[:n] - 1.0) < 0.1) & (np.abs(norm[lag : lag + n] - 1.0) < 0.1)
    if np.count_nonzero(clean) < _MIN_TURN_S * rate_hz:
        return None
    return float(np.median(gyro_rate[clean] / acc_rate[clean]))


def _check_gyro_units(
    acc: npt.NDArray[np.float64], gyro: npt.NDArray[np.float64], rate_hz: float, where: str
) -> None:
    ratio = gyro_turn_ratio(acc, gyro, rate_hz)
    if ratio is not None and ratio < _RAD_RATIO_MAX:
        raise InputError(
            f"{where}: the gyroscope turns {1 / max(ratio, 1e-9):.0f}x slower than the "
            "gravity direction seen by the accelerometer; looks like rad/s, expected deg/s",
            reason=Reason.INPUT_UNITS,
            hint="multiply gx, gy, gz by 57.2958 (180/π) to convert rad/s to deg/s",
        )


def _check_units(acc: npt.NDArray[np.float64], where: str) -> None:
    """Gravity dominates a body-worn accelerometer: its median magnitude is ~1 g."""
    g = float(np.median(np.linalg.norm(acc, axis=1)))
    if 7.0 < g < 12.5:
        raise InputError(
            f"{where}: median |acceleration| is {g:.2f}; looks like m/s², expected g",
            reason=Reason.INPUT_UNITS,
            hint="divide ax, ay, az by 9.80665 to convert m/s² to g",
        )
    if not 0.5 < g < 1.5:
        raise InputError(
            f"{where}: median |acceleration| is {g:.3f}, expected about 1 g (gravity included)",
            reason=Reason.INPUT_UNITS,
            hint="accelerometer columns must be in g and include gravity",
        )


def _fmt_rows(fmt: str, columns: Sequence[npt.ArrayLike]) -> Iterable[str]:
    rows = zip(*(np.asarray(c).tolist() for c in columns), strict=True)
    return (fmt % row for row in rows)


#: Below this, ``abs(x) * 10**decimals`` and its integer part are exact in float64.
_EXACT_LIMIT = 2.0**52
_SPACE, _MINUS, _DOT, _ZERO = (ord(c) for c in " -.0")
_SPLIT = 2.0**27 + 1.0  # Veltkamp's splitter for float64


def _product_error(a: npt.NDArray[np.float64], b: float) -> npt.NDArray[np.float64]:
    """``a * b - fl(a * b)`` exactly (Dekker's two-product without FMA).

    Parameters
    ----------
    a : (N,) float64, finite, far from overflow.
    b : a finite float64.
    """
    p = a * b
    ca = _SPLIT * a
    a_hi = ca - (ca - a)
    a_lo = a - a_hi
    cb = _SPLIT * b
    b_hi = cb - (cb - b)
    b_lo = b - b_hi
    return ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _round_scaled(x: npt.NDArray[np.float64], decimals: int) -> npt.NDArray[np.float64] | None:
    """``abs(x) * 10**decimals`` rounded half to even on the exact product.

    Python's ``"%.{d}f"`` rounds the exact binary value; ``rint`` of the
    float product agrees everywhere except where that product landed exactly
    on a half (a half is representable here, so a product that is not on it
    is more than its own rounding error away from it): there the exact
    product's rounding error decides. Returns None when a value is not
    finite or too large for exact integer arithmetic.

    Parameters
    ----------
    x : (N,) float64.

    Returns
    -------
    (N,) float64 holding integers.
    """
    ax = np.abs(x)
    scale = float(10**decimals)
    scaled = ax * scale
    if not bool(np.all(scaled < _EXACT_LIMIT)):  # also false for nan
        return None
    r = np.rint(scaled)
    down = np.floor(scaled)
    tie = np.flatnonzero(scaled - down == 0.5)
    if tie.shape[0]:
        err = _product_error(ax[tie], scale)
        r[tie] = np.where(err > 0, down[tie] + 1.0, np.where(err < 0, down[tie], r[tie]))
    return r


def _fixed_width(r: npt.NDArray[np.float64], decimals: int) -> int:
    """Characters of the widest ``-int.frac`` field of the rounded magnitudes ``r``."""
    most = max(1, len(str(int(r.max(initial=0.0)))) - decimals)
    return 2 + most + decimals


def _fixed_field(
    out: npt.NDArray[np.uint8],
    r: npt.NDArray[np.float64],
    decimals: int,
    negative: npt.NDArray[np.bool_],
) -> None:
    """Write the fixed-point text of ``±r / 10**decimals`` into ``out``, right-aligned.

    Parameters
    ----------
    out : (N, W) uint8 view to fill with ASCII, W from :func:`_fixed_width`;
        unused leading places become spaces.
    r : (N,) float64 holding integers in [0, 2**52): the value's magnitude in
        units of ``10**-decimals``.
    decimals : digits after the point (>= 1).
    negative : (N,) bool, rows that get a leading minus sign.

    Digits come from float64 division: for integers below 2**53,
    ``floor(r / 10**j)`` is exact (a non-integer quotient is at least
    ``10**-j`` from the next integer, more than the rounding error), and
    float division is vectorised where int64 division is not.
    """
    most = out.shape[1] - 2 - decimals
    n_dig = most + decimals
    q = np.floor(r[:, None] / 10.0 ** np.arange(n_dig - 1, -1, -1))  # (N, n_dig) prefixes
    digits = q - 10.0 * np.floor(q / 10.0) + _ZERO
    out[:, 1 : most + 1] = digits[:, :most]
    out[:, most + 1] = _DOT
    out[:, most + 2 :] = digits[:, most:]
    # slot 0 holds the sign, slots 1..most the integer digits; leading zeros of
    # the integer part (all but its units digit) are blanks, and the sign goes
    # in the last blank before the first digit
    blank = np.zeros((r.shape[0], most + 1), dtype=bool)
    blank[:, 0] = True
    blank[:, 1:most] = q[:, : most - 1] == 0.0
    sign = blank[:, :most] & ~blank[:, 1:] & negative[:, None]
    lead = out[:, : most + 1]
    np.copyto(lead, _SPACE, where=blank)
    np.copyto(lead[:, :most], _MINUS, where=sign)


def _fixed_point_lines(block: npt.NDArray[np.float64], decimals: Sequence[int]) -> bytes | None:
    """Rows of ``block`` as CSV text, byte for byte what ``"%.{d}f"`` per value gives.

    Vectorised: each value is rounded to an integer count of ``10**-d`` (see
    :func:`_round_scaled`) and its digits are written column-wise as bytes
    into one (N, width) buffer; the padding is squeezed out at the end.
    Returns None when a value is not finite or too large for exact integer
    arithmetic (the caller formats those rows in Python).

    Parameters
    ----------
    block : (N, K) float64.
    decimals : K digit counts after the point (>= 1).
    """
    rounded = []
    for j, d in enumerate(decimals):
        r = _round_scaled(block[:, j], d)
        if r is None:
            return None
        rounded.append(r)
    widths = [_fixed_width(r, d) for r, d in zip(rounded, decimals, strict=True)]
    out = np.empty((block.shape[0], sum(widths) + len(widths)), dtype=np.uint8)
    at = 0
    for j, (r, d, w) in enumerate(zip(rounded, decimals, widths, strict=True)):
        _fixed_field(out[:, at : at + w], r, d, np.signbit(block[:, j]))
        out[:, at + w] = ord(",") if j < len(decimals) - 1 else ord("\n")
        at += w + 1
    text = out.ravel()
    return text[text != _SPACE].tobytes()


def _fixed_point_blocks(
    fmt: str, columns: npt.NDArray[np.float64], decimals: Sequence[int], rows_per_block: int
) -> Iterable[str]:
    """Blocks of CSV lines (each ending in a newline) for :func:`_write_blocks`."""
    for start in range(0, columns.shape[0], rows_per_block):
        block = columns[start : start + rows_per_block]
        text = _fixed_point_lines(block, decimals)
        if text is None:  # rare: non-finite or huge values, Python formats them
            yield "".join(line + "\n" for line in _fmt_rows(fmt, list(block.T)))
        else:
            yield text.decode("ascii")


def write_recording(
    path: str | Path,
    time_s: npt.ArrayLike,
    accel_g: npt.ArrayLike,
    gyro_dps: npt.ArrayLike | None = None,
) -> None:
    """Write an ``imu.csv`` recording (see module docstring for the format).

    Time with 4 decimals (0.1 ms), acceleration with 6 (1 µg), angular rate
    with 4 (0.1 mdeg/s): exactly ``"%.4f"`` / ``"%.6f"`` per value, formatted
    a block of rows at a time in numpy (``bench_recording``: an 8-h day at
    50 Hz in ~3 CPU s, about 4x the per-row ``csv`` module).
    """
    t = np.asarray(time_s, dtype=np.float64)
    a = np.asarray(accel_g, dtype=np.float64)
    cols = [t[:, None], a]
    header = ",".join(IMU_COLUMNS_ACC)
    decimals = [4, 6, 6, 6]
    if gyro_dps is not None:
        cols.append(np.asarray(gyro_dps, dtype=np.float64))
        header += "," + ",".join(IMU_COLUMNS_GYRO)
        decimals += [4, 4, 4]
    fmt = ",".join(f"%.{d}f" for d in decimals)
    data = np.hstack(cols)
    _write_blocks(Path(path), header, _fixed_point_blocks(fmt, data, decimals, 100_000))


def write_epoch_table(
    path: str | Path,
    time_s: npt.ArrayLike,
    activity: Sequence[str],
    inclination_deg: npt.ArrayLike,
    flexion_deg: npt.ArrayLike,
    lateral_deg: npt.ArrayLike,
    static: npt.ArrayLike,
) -> None:
    """Write a per-second table (``truth.csv`` or ``epochs.csv``)."""
    st = np.asarray(static).astype(np.int64)
    cols: list[npt.ArrayLike] = [
        np.asarray(time_s, dtype=np.float64),
        np.asarray(activity),
        np.asarray(inclination_deg, dtype=np.float64),
        np.asarray(flexion_deg, dtype=np.float64),
        np.asarray(lateral_deg, dtype=np.float64),
        st,
    ]
    _write_lines(Path(path), ",".join(EPOCH_COLUMNS), _fmt_rows("%g,%s,%.2f,%.2f,%.2f,%d", cols))


@dataclass(frozen=True)
class EpochTable:
    time_s: npt.NDArray[np.float64]
    activity: npt.NDArray[np.str_]
    inclination_deg: npt.NDArray[np.float64]
    flexion_deg: npt.NDArray[np.float64]
    lateral_deg: npt.NDArray[np.float64]
    static: npt.NDArray[np.bool_]


def read_epoch_table(path: str | Path) -> EpochTable:
    """Read a ``truth.csv`` / ``epochs.csv`` table, validating header and values."""
    p = Path(path)
    where = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not a text file (byte {exc.start} is not UTF-8)") from exc
    lines = text.splitlines()
    if not lines or tuple(c.strip() for c in lines[0].split(",")) != EPOCH_COLUMNS:
        raise InputError(f"{where}:1: header must be {','.join(EPOCH_COLUMNS)}")
    rows = [ln.split(",") for ln in lines[1:] if ln.strip()]
    for i, r in enumerate(rows):
        if len(r) != len(EPOCH_COLUMNS):
            raise InputError(
                f"{where}:{i + 2}: expected {len(EPOCH_COLUMNS)} values, found {len(r)}"
            )
    try:
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(EPOCH_COLUMNS)
        return EpochTable(
            np.asarray(cols[0], dtype=np.float64),
            np.asarray(cols[1], dtype=np.str_),
            np.asarray(cols[2], dtype=np.float64),
            np.asarray(cols[3], dtype=np.float64),
            np.asarray(cols[4], dtype=np.float64),
            np.asarray(cols[5], dtype=np.int64).astype(bool),
        )
    except ValueError as exc:
        raise InputError(f"{where}: non-numeric value in a numeric column ({exc})") from exc


def _write_lines(path: Path, header: str, lines: Iterable[str]) -> None:
    it = iter(lines)
    blocks = (
        "\n".join(block) + "\n" for block in iter(lambda: list(itertools.islice(it, 100_000)), [])
    )
    _write_blocks(path, header, blocks)


def _write_blocks(path: Path, header: str, blocks: Iterable[str]) -> None:
    """Write ``header`` and text blocks (each ending in a newline) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "\n")
        for block in blocks:
            fh.write(block)
    tmp.replace(path)  # readers never see a half-written file

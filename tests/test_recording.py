"""The recording CSV format: round trip, validation with line numbers, units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postmon.errors import InputError, Reason
from postmon.recording import read_epoch_table, read_recording, write_epoch_table, write_recording


def _still(n: int, rate: float = 50.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    t = np.arange(n) / rate
    acc = np.tile([0.0, 0.0, 1.0], (n, 1)) + rng.normal(0, 0.01, (n, 3))
    gyro = rng.normal(0, 0.5, (n, 3))
    return t, acc, gyro


def test_round_trip_with_gyro(tmp_path: Path) -> None:
    t, acc, gyro = _still(500)
    write_recording(tmp_path / "imu.csv", t, acc, gyro)
    rec = read_recording(tmp_path / "imu.csv")
    assert rec.rate_hz == 50.0
    assert rec.gaps == 0
    np.testing.assert_allclose(rec.time_s, t, atol=5e-5)
    np.testing.assert_allclose(rec.accel_g, acc, atol=5e-7)
    assert rec.gyro_dps is not None
    np.testing.assert_allclose(rec.gyro_dps, gyro, atol=5e-5)


def test_accel_only_and_rate_detection(tmp_path: Path) -> None:
    t, acc, _ = _still(300, rate=26.0)
    write_recording(tmp_path / "imu.csv", t, acc)
    rec = read_recording(tmp_path / "imu.csv")
    assert rec.gyro_dps is None
    assert rec.rate_hz == 26.0


def test_gaps_are_counted(tmp_path: Path) -> None:
    t, acc, _ = _still(300)
    keep = np.r_[0:100, 150:300]
    write_recording(tmp_path / "imu.csv", t[keep], acc[keep])
    assert read_recording(tmp_path / "imu.csv").gaps == 1


def _lines(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "imu.csv"
    p.write_text(text)
    return p


def test_bad_header(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"imu\.csv:1: header is 'time,x,y,z'"):
        read_recording(_lines(tmp_path, "time,x,y,z\n0,0,0,1\n"))


def test_bad_value_names_line(tmp_path: Path) -> None:
    rows = "".join(f"{i / 50},0,0,1\n" for i in range(10))
    text = "time_s,ax,ay,az\n" + rows + "0.2,0,abc,1\n" + rows.replace("0,0,1", "0,0,1.0")
    with pytest.raises(InputError, match=r":12: column 3 is not a number: 'abc'"):
        read_recording(_lines(tmp_path, text))


def test_wrong_column_count_names_line(tmp_path: Path) -> None:
    text = "time_s,ax,ay,az\n0,0,0,1\n0.02,0,1\n"
    with pytest.raises(InputError, match=r":3: expected 4 values, found 3"):
        read_recording(_lines(tmp_path, text))


def test_time_must_increase(tmp_path: Path) -> None:
    rows = [f"{i / 50},0,0,1" for i in range(20)]
    rows[7] = "0.1,0,0,1"  # same as row 5 (0.1)
    with pytest.raises(InputError, match=r":9: time_s .* does not increase"):
        read_recording(_lines(tmp_path, "time_s,ax,ay,az\n" + "\n".join(rows) + "\n"))


def test_low_rate_refused(tmp_path: Path) -> None:
    rows = "".join(f"{i / 10},0,0,1\n" for i in range(20))
    with pytest.raises(InputError, match=r"10\.0 Hz .* below 20 Hz"):
        read_recording(_lines(tmp_path, "time_s,ax,ay,az\n" + rows))


def test_m_per_s2_detected(tmp_path: Path) -> None:
    t, acc, _ = _still(200)
    write_recording(tmp_path / "imu.csv", t, acc * 9.80665)
    with pytest.raises(InputError, match="m/s²") as info:
        read_recording(tmp_path / "imu.csv")
    assert info.value.reason is Reason.INPUT_UNITS
    assert "9.80665" in str(info.value)


def test_missing_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_recording(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="empty"):
        read_recording(_lines(tmp_path, ""))


def test_epoch_table_round_trip(tmp_path: Path) -> None:
    acts = ["sitting", "standing", "walking"]
    write_epoch_table(
        tmp_path / "e.csv", [0, 1, 2], acts, [1, 2, 3], [0.5, -1, 2], [3, 4, 5], [1, 0, 1]
    )
    tab = read_epoch_table(tmp_path / "e.csv")
    assert list(tab.activity) == acts
    np.testing.assert_allclose(tab.flexion_deg, [0.5, -1, 2])
    assert list(tab.static) == [True, False, True]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.text(max_size=300))
def test_fuzz_reader_never_crashes(tmp_path: Path, junk: str) -> None:
    """Arbitrary content is either a valid recording or a clear InputError."""
    p = tmp_path / "fuzz.csv"
    p.write_text("time_s,ax,ay,az\n0,0,0,1\n" + junk, encoding="utf-8")
    err: InputError | None = None
    try:
        read_recording(p)
    except InputError as exc:
        err = exc
    assert err is None or "fuzz.csv" in str(err)


def _per_row(t: np.ndarray, acc: np.ndarray, gyro: np.ndarray | None) -> str:
    """The file format written the plain way: one '%' format per row (independent truth)."""
    header = "time_s,ax,ay,az" + (",gx,gy,gz" if gyro is not None else "")
    fmt = "%.4f,%.6f,%.6f,%.6f" + (",%.4f,%.4f,%.4f" if gyro is not None else "")
    cols = [t, acc] + ([gyro] if gyro is not None else [])
    rows = np.column_stack(cols).tolist()
    return header + "\n" + "".join(fmt % tuple(r) + "\n" for r in rows)


# values the vectorised writer must round exactly as '%' does: device counts
# (k / 2048 g, k * 2000 / 32768 deg/s) land exactly on decimal halves, tiny
# negatives print as -0.000000, carries ripple into new integer digits
_TRICKY = st.one_of(
    st.floats(-40.0, 40.0, allow_nan=False),
    st.integers(-32768, 32767).map(lambda k: k / 2048),
    st.integers(-32768, 32767).map(lambda k: k * 2000 / 32768),
    st.sampled_from([0.0, -0.0, -4e-7, 5e-7, -5e-5, 9.9999995, 99.99995, 0.00005, 1234.56785]),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(_TRICKY, min_size=6, max_size=6 * 40).map(
        lambda v: np.asarray(v[: len(v) // 6 * 6]).reshape(-1, 6)
    ),
    start=st.floats(0.0, 1e6, allow_nan=False),
    with_gyro=st.booleans(),
)
def test_writer_output_is_byte_for_byte_the_per_row_format(
    tmp_path: Path, values: np.ndarray, start: float, with_gyro: bool
) -> None:
    t = start + np.arange(values.shape[0]) / 50.0
    acc, gyro = values[:, :3], (values[:, 3:] * 50 if with_gyro else None)
    write_recording(tmp_path / "imu.csv", t, acc, gyro)
    assert (tmp_path / "imu.csv").read_text() == _per_row(t, acc, gyro)


def test_writer_falls_back_for_values_beyond_exact_integers(tmp_path: Path) -> None:
    t = np.array([0.0, 0.02, 0.04])
    acc = np.array([[0.0, 0.0, 1.0], [1e12, -3e11, 1.0], [np.inf, np.nan, -1.0]])
    write_recording(tmp_path / "imu.csv", t, acc)
    assert (tmp_path / "imu.csv").read_text() == _per_row(t, acc, None)

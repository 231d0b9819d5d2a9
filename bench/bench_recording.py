"""Recording writer: an 8-hour day at 50 Hz written as ``imu.csv``.

``postmon.recording.write_recording`` formats whole blocks of rows in numpy
(fixed-point digits as bytes). Side by side on the same samples: the
standard library's ``csv`` writer with each value formatted per row exactly
as the file format says (``%.4f`` time and rate, ``%.6f`` acceleration), the
straightforward way to write the same file. Both files are compared byte for
byte. CPU seconds of this process, one core; the day is measured on 1 h of
samples (full run) and scaled to 8 h.
"""

from __future__ import annotations

import csv
import filecmp
import tempfile
from pathlib import Path

import numpy as np

from bench.common import Entry, best_cpu_of, simulated_day
from postmon.recording import IMU_COLUMNS_ACC, IMU_COLUMNS_GYRO, write_recording

DAY_H = 8.0


def _csv_module(path: Path, t: np.ndarray, acc: np.ndarray, gyro: np.ndarray) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(IMU_COLUMNS_ACC + IMU_COLUMNS_GYRO)
        w.writerows(
            (
                f"{r[0]:.4f}",
                f"{r[1]:.6f}",
                f"{r[2]:.6f}",
                f"{r[3]:.6f}",
                f"{r[4]:.4f}",
                f"{r[5]:.4f}",
                f"{r[6]:.4f}",
            )
            for r in np.column_stack((t, acc, gyro)).tolist()
        )


def run(quick: bool) -> list[Entry]:
    hours = 0.25 if quick else 1.0
    rec = simulated_day(hours)
    t, acc, gyro = rec.time_s, rec.accel_g, rec.gyro_dps
    assert gyro is not None
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, theirs_path = Path(tmp) / "ours.csv", Path(tmp) / "csv.csv"
        ours = best_cpu_of(lambda: write_recording(ours_path, t, acc, gyro), 2)
        theirs = best_cpu_of(lambda: _csv_module(theirs_path, t, acc, gyro), 1)
        same = filecmp.cmp(ours_path, theirs_path, shallow=False)
        size = ours_path.stat().st_size
    scale = DAY_H / hours
    return [
        Entry(
            name="recording.write_8h_day",
            value=ours * scale,
            unit="CPU s",
            baseline_name="csv module, per-row formatting",
            baseline_value=theirs * scale,
            ratio=theirs / ours,
            target="<= 3 s per 8-h day, >= 3x csv, same bytes",
            ok=ours * scale <= 3.0 and theirs / ours >= 3.0 and same,
            note=f"{len(t)} rows ({hours:g} h at {rec.rate_hz:g} Hz, acc+gyro, "
            f"{size / 2**20:.1f} MiB) scaled to 8 h; files identical: {same}",
        )
    ]

"""Regression checks on two real HAPT recordings (waist-worn phone), rotated.

Not the accuracy evaluation (that is ``make eval``, leave-wearers-out): these
recordings are among the shipped model's training wearers. They guard the
whole ``postmon analyze`` path on real data against regressions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from postmon.commands.analyze import analyze_file
from postmon.recording import read_epoch_table, write_recording

ACT = {1: "walking", 2: "walking", 3: "walking", 4: "sitting", 5: "standing", 6: "lying"}
TRANS = {7: "stand_to_sit", 8: "sit_to_stand"}


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize(("exp", "user"), [(1, 1), (30, 15)])
def test_hapt_recording_regression(hapt_dir: Path, tmp_path: Path, exp: int, user: int) -> None:
    raw = hapt_dir / "RawData"
    acc = np.loadtxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt")
    gyro = np.degrees(np.loadtxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt"))
    lab = np.loadtxt(raw / "labels.txt", dtype=np.int64)
    lab = lab[lab[:, 0] == exp][:, 2:]
    rot = _rotation(exp)
    csv = tmp_path / "imu.csv"
    write_recording(csv, np.arange(acc.shape[0]) / 50.0, acc @ rot.T, gyro @ rot.T)
    analyze_file(csv, tmp_path / "out")
    tab = read_epoch_table(tmp_path / "out" / "epochs.csv")
    correct = total = 0
    for a, s, e in lab.tolist():
        if a in ACT:
            k0, k1 = int(np.ceil((s - 1) / 50.0)), int(np.floor(e / 50.0))
            correct += int((tab.activity[k0:k1] == ACT[a]).sum())
            total += k1 - k0
    assert total > 200
    assert correct / total >= 0.9
    events = [
        ln.split(",") for ln in (tmp_path / "out" / "events.csv").read_text().splitlines()[1:]
    ]
    for a, s, e in lab.tolist():
        if a in TRANS:
            t0, t1 = (s - 1) / 50.0 - 2.0, e / 50.0 + 2.0
            assert any(k == TRANS[a] and t0 <= float(t) <= t1 for t, k, *_ in events), (a, s, e)

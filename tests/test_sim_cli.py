"""``postmon simulate``: files in the recording format, help and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.profiles import PROFILES
from firmware_sim.simulator import simulate
from postmon.cli import main
from postmon.recording import read_epoch_table, read_recording


def test_simulate_writes_a_readable_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    rc = main(
        [
            "simulate",
            "--device",
            "movesense",
            "--profile",
            "nurse",
            "--duration",
            "2m",
            "--seed",
            "5",
            "--out",
            str(out),
            "--placement",
            "lower",
            "--mounting",
            "typical",
            "--progress",
            "never",
        ]
    )
    assert rc == 0
    assert "imu.csv" in capsys.readouterr().out
    rec = read_recording(out / "imu.csv")
    assert rec.rate_hz == 52.0
    assert rec.time_s.shape == (120 * 52,)
    assert rec.gyro_dps is not None
    ref = simulate("nurse", 120, seed=5, placement="lower", mounting="typical", device="movesense")
    assert np.allclose(rec.accel_g, ref.accel_g, atol=1e-6)
    assert np.allclose(rec.gyro_dps, ref.gyro_dps, atol=1e-4)
    truth = read_epoch_table(out / "truth.csv")
    assert truth.time_s.shape == (120,)
    assert list(truth.activity) == ref.truth.activity_labels
    assert np.allclose(truth.flexion_deg, ref.truth.flexion_deg, atol=0.006, equal_nan=True)
    assert np.array_equal(truth.static, ref.truth.static)
    events = json.loads((out / "transitions.json").read_text())
    assert [e["kind"] for e in events] == [t.kind for t in ref.transitions]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["calibration_s"] == list(ref.calibration_s)
    assert np.allclose(meta["mounting_quat_xyzw"], ref.mounting.as_quat())


def test_help_lists_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in PROFILES:
        assert name in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--duration", "eight hours"], "not a duration"),
        (["--duration", "0"], "between 1 s and 7 days"),
        (["--duration", "60", "--rate-hz", "52"], "offers 10, 20, 50, 100, 200"),
        (["--duration", "60", "--seed", "-1"], "must be >= 0"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    args = ["simulate", "--device", "witmotion", "--profile", "nurse", "--out", str(tmp_path)]
    assert main(args + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "imu.csv").exists()


def test_unknown_profile_is_rejected_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "simulate",
                "--device",
                "witmotion",
                "--profile",
                "pilot",
                "--duration",
                "60",
                "--out",
                "x",
            ]
        )
    assert exc.value.code == 2
    assert "desk_worker" in capsys.readouterr().err

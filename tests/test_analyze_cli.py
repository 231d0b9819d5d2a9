"""``postmon analyze``: outputs, config, malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from postmon.cli import main
from postmon.recording import EPOCH_COLUMNS, read_epoch_table, write_recording
from tests.analysis_signals import day_signal, rot_y


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    batch, _ = day_signal(rate_hz=25.0, mount=rot_y(100), seed=2)
    p = tmp_path_factory.mktemp("rec") / "imu.csv"
    t = (batch.t_ns - batch.t_ns[0]) / 1e9
    write_recording(p, t, batch.accel_g, batch.gyro_dps)
    return p


def test_analyze_writes_all_outputs(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(recording), "--out", str(out), "--progress", "never"]) == 0
    tab = read_epoch_table(out / "epochs.csv")
    header = (out / "epochs.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == EPOCH_COLUMNS
    # one row per second from the start
    np.testing.assert_array_equal(tab.time_s, np.arange(tab.time_s.size))
    assert tab.time_s.size == 210
    assert set(tab.activity) <= {"lying", "sitting", "standing", "walking", "other", "nonwear"}
    assert (tab.activity == "walking").sum() >= 55  # 70 s of walking in the signal
    ev = (out / "events.csv").read_text().splitlines()
    assert ev[0].startswith("time_s,kind")
    doc = json.loads((out / "summary.json").read_text())
    assert doc["summary"]["settings"]["min_bout_s"] == 10.0
    assert doc["summary"]["settings"]["decision_lag_s"] == 300  # offline look-ahead
    assert doc["recording"]["rate_hz"] == 25.0
    assert doc["reference"]["source"] == "walking"


def _settings_used(recording: Path, out: Path, config: str, *args: str) -> dict:
    """``postmon analyze`` with a config file (TOML text) and extra arguments:
    the settings its summary.json says it used."""
    cfg = out.with_suffix(".toml")
    cfg.write_text(config)
    argv = ["analyze", str(recording), "--out", str(out), "--config", str(cfg), *args]
    assert main(argv) == 0
    settings: dict = json.loads((out / "summary.json").read_text())["summary"]["settings"]
    return settings


def test_analyze_config_changes_settings(recording: Path, tmp_path: Path) -> None:
    settings = _settings_used(recording, tmp_path / "out", "[analysis]\nmin_bout_s = 3.0\n")
    assert settings["min_bout_s"] == 3.0


def test_placement_from_config_and_command_line(recording: Path, tmp_path: Path) -> None:
    upper = '[analysis]\nplacement = "upper_back"\n'
    assert _settings_used(recording, tmp_path / "cfg", upper)["placement"] == "upper_back"
    # the command line wins over the config file
    cli = _settings_used(recording, tmp_path / "cli", upper, "--placement", "lower_back")
    assert cli["placement"] == "lower_back"


def test_unknown_placement_is_usage_error(recording: Path, tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[analysis]\nplacement = "chest"\n')
    assert main(["analyze", str(recording), "--out", str(tmp_path), "--config", str(cfg)]) == 2
    assert "lower_back, upper_back" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(recording), "--out", str(tmp_path), "--placement", "chest"])
    assert exc.value.code == 2


def test_bad_config_key_is_usage_error(recording: Path, tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[analysis]\nmin_bout = 3.0\n")
    assert main(["analyze", str(recording), "--out", str(tmp_path), "--config", str(cfg)]) == 2
    assert "min_bout" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("time,x,y,z\n0,0,0,1\n", "header"),
        ("time_s,ax,ay,az\n0,0,0,1\n0.02,0,0,x\n", ":3"),
        ("time_s,ax,ay,az\n0,0,0,9.8\n0.02,0,0,9.8\n0.04,0,0,9.8\n", "m/s"),
        ("time_s,ax,ay,az\n0,0,0,1\n1,0,0,1\n2,0,0,1\n", "Hz"),
    ],
    ids=["empty", "header", "bad-number", "units", "rate"],
)
def test_malformed_input_exit_4(tmp_path: Path, capsys, content: str, needle: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(content)
    assert main(["analyze", str(p), "--out", str(tmp_path / "o")]) == 4
    err = capsys.readouterr().err
    assert needle in err
    assert not (tmp_path / "o" / "epochs.csv").exists()


def test_missing_file_exit_4(tmp_path: Path, capsys) -> None:
    assert main(["analyze", str(tmp_path / "nope.csv"), "--out", str(tmp_path)]) == 4
    assert "no such file" in capsys.readouterr().err


def test_bad_calibration_argument(recording: Path, tmp_path: Path) -> None:
    assert main(["analyze", str(recording), "--out", str(tmp_path), "--calibrate", "5"]) == 2


def test_explicit_calibration_is_used(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(recording), "--out", str(out), "--calibrate", "2:15"]) == 0
    doc = json.loads((out / "summary.json").read_text())
    assert doc["reference"]["source"] == "calibration"


def test_two_passes_by_default_one_on_request(tmp_path: Path) -> None:
    # a simulated office morning (upper back) that starts reclined at the desk:
    # only a first pass over the whole file shows which way is forward then
    from firmware_sim.simulator import simulate

    rec = simulate("desk_worker", 900.0, seed=1000, placement="upper", rate_hz=20.0)
    p = tmp_path / "morning.csv"
    write_recording(p, rec.time_s - rec.time_s[0], rec.accel_g, rec.gyro_dps)
    a, b = rec.calibration_s
    truth = np.asarray(rec.truth.activity_labels)
    first_sit = int(np.argmax(truth == "sitting"))
    bout = slice(first_sit, first_sit + 300)
    assert (truth[bout] == "sitting").all()
    common = ["analyze", str(p), "--calibrate", f"{a:.3f}:{b:.3f}", "--progress", "never"]
    assert main([*common, "--out", str(tmp_path / "two")]) == 0
    assert main([*common, "--out", str(tmp_path / "one"), "--one-pass"]) == 0
    two = read_epoch_table(tmp_path / "two" / "epochs.csv")
    one = read_epoch_table(tmp_path / "one" / "epochs.csv")
    assert np.isfinite(two.flexion_deg[bout]).all()
    # one pass learns which way is forward only late in the bout
    assert np.isnan(one.flexion_deg[bout]).mean() > 0.8
    assert (two.activity[bout] == "sitting").mean() > (one.activity[bout] == "sitting").mean() + 0.3
    for name, passes in (("two", 2), ("one", 1)):
        doc = json.loads((tmp_path / name / "summary.json").read_text())
        assert doc["recording"]["passes"] == passes

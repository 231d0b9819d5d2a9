"""Bad input in files: recordings, per-second tables and config files.

Each is either accepted or refused with a ``PostmonError`` subclass that says
what is wrong (file, line, unit, key) and what to do; nothing else may escape
(the CLI turns these into an exit code and a message, anything else is a
traceback). Wrong units are caught on real recordings (HAPT): acceleration
in m/s² from the gravity magnitude, a gyroscope in rad/s from how fast the
gravity direction turns.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.nudge import NudgeSettings
from analysis.settings import AnalysisSettings
from collector.config import CollectorConfig
from postmon.commands.collect import collector_config
from postmon.config import (
    Config,
    ConfigError,
    InfluxConfig,
    MqttConfig,
    SensorPairing,
    ServicesConfig,
    from_table,
    load_config,
)
from postmon.errors import InputError, Reason
from postmon.nudges import load_nudge_config
from postmon.recording import (
    gyro_turn_ratio,
    read_epoch_table,
    read_recording,
    write_epoch_table,
    write_recording,
)

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ------------------------------------------------------------------ recordings


def _valid_recording_bytes(tmp: Path) -> bytes:
    t = np.arange(60) / 50.0
    acc = np.tile([0.0, 0.0, 1.0], (60, 1))
    write_recording(tmp / "valid.csv", t, acc, np.zeros((60, 3)))
    return (tmp / "valid.csv").read_bytes()


@FUZZ
@given(data=st.data())
def test_fuzz_recording_reader_bytes_refused_cleanly(tmp_path: Path, data: st.DataObject) -> None:
    """Arbitrary bytes (not only text), cut or spliced into a valid file."""
    valid = _valid_recording_bytes(tmp_path)
    cut = data.draw(st.integers(0, len(valid)))
    junk = data.draw(st.binary(max_size=120))
    tail = data.draw(st.sampled_from([b"", valid[cut:]]))
    p = tmp_path / "fuzz.csv"
    p.write_bytes(valid[:cut] + junk + tail)
    err: InputError | None = None
    try:
        rec = read_recording(p)
    except InputError as exc:
        err = exc
    if err is not None:
        assert "fuzz.csv" in str(err)
        return
    assert np.all(np.diff(rec.time_s) > 0)
    assert np.isfinite(rec.accel_g).all()


@FUZZ
@given(junk=st.binary(max_size=200))
def test_fuzz_epoch_table_reader_refused_cleanly(tmp_path: Path, junk: bytes) -> None:
    p = tmp_path / "epochs.csv"
    write_epoch_table(p, [0, 1], ["sitting", "walking"], [1, 2], [3, 4], [5, 6], [1, 0])
    p.write_bytes(p.read_bytes() + junk)
    err: InputError | None = None
    try:
        tab = read_epoch_table(p)
    except InputError as exc:
        err = exc
    if err is not None:
        assert "epochs.csv" in str(err)
        return
    assert tab.time_s.shape == tab.static.shape


def test_binary_file_is_named_as_not_text(tmp_path: Path) -> None:
    p = tmp_path / "imu.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(InputError, match=r"imu\.csv:1: not a text file"):
        read_recording(p)
    q = tmp_path / "body.csv"
    q.write_bytes(_valid_recording_bytes(tmp_path) + b"0.9,\xff\xfe,0,1,0,0,0\n")
    with pytest.raises(InputError, match=r"body\.csv(:1)?: not a text file"):
        read_recording(q)


def _hapt(hapt_dir: Path, exp: int, user: int) -> tuple[np.ndarray, np.ndarray]:
    raw = hapt_dir / "RawData"
    acc = np.loadtxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt")  # g
    gyro_rad = np.loadtxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt")  # rad/s (the dataset's)
    return acc, gyro_rad


@pytest.mark.parametrize(("exp", "user"), [(1, 1), (30, 15)])
def test_real_recording_units_are_checked(
    hapt_dir: Path, tmp_path: Path, exp: int, user: int
) -> None:
    acc, gyro_rad = _hapt(hapt_dir, exp, user)
    t = np.arange(acc.shape[0]) / 50.0
    ok = tmp_path / "ok.csv"
    write_recording(ok, t, acc, np.degrees(gyro_rad))
    rec = read_recording(ok)  # right units: accepted
    assert rec.rate_hz == 50.0
    # the gyroscope in rad/s, as the dataset itself ships it
    rad = tmp_path / "rad.csv"
    write_recording(rad, t, acc, gyro_rad)
    with pytest.raises(InputError, match="looks like rad/s, expected deg/s") as info:
        read_recording(rad)
    assert info.value.reason is Reason.INPUT_UNITS
    assert "57.2958" in str(info.value)
    # acceleration in m/s²
    ms2 = tmp_path / "ms2.csv"
    write_recording(ms2, t, acc * 9.80665, np.degrees(gyro_rad))
    with pytest.raises(InputError, match="looks like m/s²") as info:
        read_recording(ms2)
    assert info.value.reason is Reason.INPUT_UNITS


def test_gyro_unit_is_not_judged_without_rotation() -> None:
    """A sensor lying still gives no evidence: no verdict rather than a guess."""
    rng = np.random.default_rng(0)
    acc = np.tile([0.0, 0.0, 1.0], (3000, 1)) + rng.normal(0, 0.003, (3000, 3))
    assert gyro_turn_ratio(acc, rng.normal(0, 0.5, (3000, 3)), 50.0) is None


# --------------------------------------------------------------------- config


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def _fields(cls: Any) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(cls)]


SECTIONS = {
    "services": _fields(ServicesConfig),
    "influxdb": [f for f in _fields(InfluxConfig) if f not in ("password", "token")],
    "mqtt": [f for f in _fields(MqttConfig) if f != "password"],
    "analysis": _fields(AnalysisSettings),
    "nudges": [*_fields(NudgeSettings), "timezone", "enabled", "haptic", "mqtt"],
    "collector": _fields(CollectorConfig),
}
scalars = (
    st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats()  # nan and inf included: TOML has them
    | st.sampled_from([0, -1, 1, 0.0, 1e-9, 1e9, 65536, "", "x", "Europe/Paris", "Mars/Base"])
    | st.text(string.printable, max_size=10)
)
values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.sampled_from("abc"), scalars)


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(f"site = {_toml_value(draw(values))}")
    if draw(st.booleans()):
        lines.append(f"transport = {_toml_value(draw(st.sampled_from(['mqtt', 'carrier', 3])))}")
    for section, keys in SECTIONS.items():
        if not draw(st.booleans()):
            continue
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
            lines.append(f"{key} = {_toml_value(draw(values))}")
        if draw(st.integers(0, 9)) == 0:
            lines.append(f"{draw(st.sampled_from(['tiemout_s', 'port ', 'x']))!r} = 1")
    for _ in range(draw(st.integers(0, 2))):
        lines.append("[[sensors]]")
        for key in draw(st.lists(st.sampled_from(_fields(SensorPairing)), max_size=4, unique=True)):
            lines.append(f"{key} = {_toml_value(draw(values))}")
    return "\n".join(lines) + "\n"


def _finite_numbers(obj: Any, where: str) -> None:
    import dataclasses

    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, float):
            assert math.isfinite(v), f"{where}.{f.name} = {v}"
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            _finite_numbers(v, f"{where}.{f.name}")


@FUZZ
@given(doc=config_documents())
def test_fuzz_config_files_load_or_say_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, doc: str
) -> None:
    """Random config files: every part the service validates at start-up
    either builds or raises ConfigError; what builds holds only finite numbers."""
    for var in ("POSTMON_INFLUX_PASSWORD", "POSTMON_INFLUX_TOKEN", "POSTMON_MQTT_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    p = tmp_path / "postmon.toml"
    p.write_text(doc, encoding="utf-8")
    err: ConfigError | None = None
    try:
        cfg = load_config(p)
        _finite_numbers(cfg, "config")
        _finite_numbers(from_table(AnalysisSettings, cfg.analysis, "analysis"), "analysis")
        load_nudge_config(cfg.nudges)
        _finite_numbers(collector_config(cfg), "collector")
    except ConfigError as exc:
        err = exc
    assert err is None or str(err).strip()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "[influxdb]\ntimeout_s = nan\n",
            r"influxdb\.timeout_s: expected a finite number, got nan",
        ),
        ("[influxdb]\nspool_after_s = inf\n", r"influxdb\.spool_after_s: expected a finite number"),
        ("[mqtt]\nkeepalive_s = -1\n", r"keepalive_s=-1\.0 must be > 0"),
        ("[mqtt]\nsession_expiry_s = 1e12\n", r"session_expiry_s=.* must be in 0\.\.4294967295"),
        ("[influxdb]\nurl = 'influx:8086'\n", "must start with http:// or https://"),
        ("[[sensors]]\nwearer = 'p001'\n", r"sensors\[0\]: missing required key\(s\) address"),
        ("[[sensors]]\naddress = 'AA'\nwearer = 'p001'\ndevice = 'thingy'\n", "device='thingy'"),
        ("[influxdb\n", "not valid TOML"),
        ("\ufeff[mqtt]\nport = 1\n", "not valid TOML"),
    ],
)
def test_malformed_config_values_name_key_and_fix(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "postmon.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_config(p)


def test_config_that_is_not_text_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "postmon.toml"
    p.write_bytes(b"[mqtt]\nport = 1883\n\xff\xfe")
    with pytest.raises(ConfigError, match=r"postmon\.toml: not a text file"):
        load_config(p)


def test_defaults_are_one_valid_config() -> None:
    assert isinstance(load_config(None), Config)

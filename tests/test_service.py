"""The service end to end on the real stack: a reduced demo and `postmon run`.

bumble BLE (simulated sensors) -> unmodified BleakClient -> collector ->
analysis + nudges -> MQTT (real Mosquitto) -> ingest workers -> real InfluxDB.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from postmon.config import Config, InfluxConfig, MqttConfig
from postmon.store.reader import Reader

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
FAR_PAST, FAR_FUTURE = 0, 4_000_000_000 * 1_000_000_000


def _cfg(influx_url: str, db: str, prefix: str, tmp: Path) -> Config:
    return Config(
        influxdb=dataclasses.replace(
            InfluxConfig(url=influx_url, database=db), spool_dir=tmp / "spool-influx"
        ),
        mqtt=dataclasses.replace(MqttConfig(topic_root=prefix), spool_dir=tmp / "spool-mqtt"),
        nudges={"static_timer_min": 10},
    )


def test_reduced_demo_stores_everything_and_writes_outputs(
    influx_url: str, influx_db: str, mqtt_prefix: str, tmp_path: Path
) -> None:
    from postmon.demo import DemoSettings, run_demo

    cfg = _cfg(influx_url, influx_db, mqtt_prefix, tmp_path)
    out = tmp_path / "out"
    ds = DemoSettings(wearers=3, hours=0.2, haptic_hours=0.35, processes=2, out=out, live=False)
    res = run_demo(cfg, ds)
    # the lineup: the MetaMotion wearer (its shorter day) first, then WitMotion, Movesense;
    # split over two edge processes
    assert [(p.wearer, p.device, p.hours) for p in res.plans] == [
        ("sim01", "metamotion", 0.35),
        ("sim02", "witmotion", 0.2),
        ("sim03", "movesense", 0.2),
    ]
    assert res.processes == 2
    assert len(res.edge_cpu_s) == 2
    # the nearest rate each device offers to the 25 Hz asked (vendor rate tables)
    expected_rate_hz = {"metamotion": 25.0, "witmotion": 20.0, "movesense": 26.0}
    with Reader(cfg.influxdb) as reader:
        for plan in res.plans:
            wearer = plan.wearer
            # every epoch the edge produced landed exactly once, and the edge
            # produced one per second of the wearer's day (start-up aside)
            stored = reader.count_epochs(wearer, FAR_PAST, FAR_FUTURE)
            assert stored == res.epochs[wearer]
            assert plan.hours * 3600 - 20 <= stored <= plan.hours * 3600 + 10
            assert reader.events(wearer, FAR_PAST, FAR_FUTURE)
            assert [
                d.wear_min + d.nonwear_min for d in reader.daily(wearer, FAR_PAST, FAR_FUTURE)
            ] == [pytest.approx(stored / 60.0)]
            status = reader.status(wearer, FAR_PAST, FAR_FUTURE)
            assert {s.device_type for s in status} == {plan.device}
            rates = [s.rate_hz for s in status if s.rate_hz]
            assert rates
            assert rates[-1] == pytest.approx(expected_rate_hz[plan.device], rel=0.02)
            assert all(s.lost_samples == 0 for s in status)
        stored_nudges = sum(len(reader.nudges(w, FAR_PAST, FAR_FUTURE)) for w in res.wearers)
    assert res.nudges >= 1  # the desk worker sits > 10 min within 20 min
    assert stored_nudges == res.nudges
    for wearer in res.wearers:
        html = (out / "reports" / f"{wearer}.html").read_text()
        assert wearer in html
        assert "<svg" in html
    names = {p.name for p in (out / "grafana").rglob("*.json")}
    assert {"postmon-patient-today.json", "postmon-therapist-trends.json"} <= names


def test_run_until_sigterm_loses_nothing(
    influx_url: str, influx_db: str, mqtt_prefix: str, tmp_path: Path
) -> None:
    cfg_file = tmp_path / "postmon.toml"
    cfg_file.write_text(
        f'[influxdb]\nurl = "{influx_url}"\ndatabase = "{influx_db}"\n'
        f'spool_dir = "{tmp_path / "spool"}"\n'
        f'[mqtt]\ntopic_root = "{mqtt_prefix}"\nspool_dir = "{tmp_path / "mspool"}"\n'
        # the pairing table names two simulated sensors
        '[[sensors]]\naddress = "sim-a"\nwearer = "w-01"\ndevice = "witmotion"\n'
        'simulate = "desk_worker"\n'
        '[[sensors]]\naddress = "sim-b"\nwearer = "w-02"\ndevice = "movesense"\n'
        'simulate = "nurse"\n'
    )
    summary = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "postmon",
            "run",
            "--config",
            str(cfg_file),
            "--speed",
            "30",
            "--summary-json",
            str(summary),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120.0
    # start-up time varies with the machine's load: wait until both stream
    while sum("streaming" in line and " for w-0" in line for line in lines) < 2:
        assert proc.poll() is None, "".join(lines)[-3000:]
        assert time.monotonic() < deadline, "".join(lines)[-3000:]
        time.sleep(0.2)
    time.sleep(10.0)  # about five minutes of sensor time at x30
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    reader.join(10.0)
    proc.stdout.close()
    output = "".join(lines)
    assert proc.returncode == 0, output[-3000:]
    produced = json.loads(summary.read_text())["epochs"]
    assert set(produced) == {"w-01", "w-02"}
    assert all(n > 60 for n in produced.values()), produced
    with Reader(InfluxConfig(url=influx_url, database=influx_db)) as reader:
        stored = {w: reader.count_epochs(w, FAR_PAST, FAR_FUTURE) for w in produced}
    assert stored == produced


def _run_config(cfg: Path) -> subprocess.CompletedProcess[str]:
    """``postmon run --config CFG`` as a user runs it (expected to stop at start-up)."""
    return subprocess.run(
        [sys.executable, "-m", "postmon", "run", "--config", str(cfg)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ('address = "a"\nwearer = "w-1"\nsimulate = "nurse"\n', "needs its device type"),
        (
            'address = "a"\nwearer = "w-1"\ndevice = "witmotion"\nsimulate = "astronaut"\n',
            "not a day profile",
        ),
    ],
)
def test_simulated_pairing_rows_are_checked(tmp_path: Path, rows: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[[sensors]]\n" + rows)
    proc = _run_config(cfg)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_simulated_and_real_rows_do_not_mix(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[sensors]]\naddress = "a"\nwearer = "w-1"\ndevice = "witmotion"\nsimulate = "nurse"\n'
        '[[sensors]]\naddress = "C4:4F:33:12:34:56"\nwearer = "v-2"\n'
    )
    proc = _run_config(cfg)
    assert proc.returncode == 2
    assert "mixes simulated and real sensors (C4:4F:33:12:34:56 are real)" in proc.stderr

"""`postmon ingest` as a user runs it: real process, real broker and database, SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from postmon.bus.mqtt import MqttPublisher
from postmon.config import load_config
from postmon.store.http import StoreError
from postmon.store.reader import Reader
from tests.conftest import INFLUX_URL, MQTT_PORT, REPO
from tests.store_helpers import HOUR_NS, make_epochs, recent_hour_ns

pytestmark = pytest.mark.integration


def test_ingest_help_describes_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "postmon", "ingest", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    assert "$share/<group>/<topic_root>/#" in out
    assert "--group" in out
    assert "SIGINT/SIGTERM" in out


def test_ingest_stores_and_exits_cleanly_on_sigterm(
    influx_db: str, mqtt_prefix: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    conf = tmp_path / "postmon.toml"
    conf.write_text(
        f"""
site = "clinic-a"
[influxdb]
url = "{INFLUX_URL}"
database = "{influx_db}"
flush_interval_s = 0.2
spool_dir = "{tmp_path / "spool"}"
[mqtt]
port = {MQTT_PORT}
topic_root = "{mqtt_prefix}"
client_id = "cli{tag}"
session_expiry_s = 60.0
spool_dir = "{tmp_path / "mqtt-spool"}"
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "postmon", "ingest", "--config", str(conf), "--group", f"g{tag}"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cfg = load_config(conf)
        t0 = recent_hour_ns(2)
        # the worker subscribes asynchronously: the publisher keeps "unheard" messages
        with MqttPublisher(cfg.mqtt, collector_id=f"e{tag}", site="clinic-a") as pub:
            for b in range(20):
                pub.publish_epochs("clinic-a", "p042", "s1", make_epochs(2, t0, 60, start=b * 60))
            assert pub.flush(30), pub.stats()
        deadline = time.monotonic() + 30
        with Reader(cfg.influxdb) as r:
            n = 0
            while n < 1200 and time.monotonic() < deadline:
                time.sleep(0.2)
                with contextlib.suppress(StoreError):  # the worker may still be creating the db
                    n = r.count_epochs("p042", t0, t0 + HOUR_NS)
            assert n == 1200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "points written 1200" in out
    assert "SIGTERM: stopping" in err
    assert "subscribed to $share/g" in err

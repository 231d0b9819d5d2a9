"""``postmon collect``: simulated sensors through the collector, published on the real broker."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from postmon.bus import codec
from postmon.cli import main

pytestmark = pytest.mark.integration


def test_collect_simulated_sensors_publishes_epochs_events_and_status(
    tmp_path: Path,
    mqtt_broker: tuple[str, int],
    mqtt_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host, port = mqtt_broker
    cfg = tmp_path / "postmon.toml"
    cfg.write_text(
        f'site = "clinic-a"\n[mqtt]\nhost = "{host}"\nport = {port}\n'
        f'topic_root = "{mqtt_prefix}"\nspool_dir = "{tmp_path / "spool"}"\n'
        f'client_id = "test-{uuid.uuid4().hex[:8]}"\n'
        "[collector]\nstatus_interval_s = 20.0\n",
        encoding="utf-8",
    )
    got: dict[str, list[bytes]] = {}
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.setdefault(msg.topic, []).append(msg.payload)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect(host, port)
    sub.loop_start()
    try:
        sub.subscribe(f"{mqtt_prefix}/#", qos=1)
        assert subscribed.wait(10)
        code = main(
            [
                "-q",
                "collect",
                "--config",
                str(cfg),
                "--simulate",
                "3",
                "--virtual",
                "--duration",
                "60s",
            ]
        )
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3  # one summary line per sensor
    assert all(" lost 0 " in line and " gaps 0 " in line for line in out)
    topics = {codec.parse_topic(mqtt_prefix, t): p for t, p in got.items()}
    wearers = {"sim01", "sim02", "sim03"}
    epochs = {
        t.wearer: sum(len(codec.decode_epochs(p).epochs) for p in ps)
        for t, ps in topics.items()
        if t.stream == "epochs"
    }
    # every wearer's 60 s became 1-s epochs (the analyzers flush at the end)
    assert epochs.keys() == wearers
    assert all(55 <= n <= 61 for n in epochs.values()), epochs
    statuses = [
        s
        for t, ps in topics.items()
        if t.stream == "status"
        for p in ps
        for s in codec.decode_status(p)
    ]
    assert {s.device_type for s in statuses} == {"metamotion", "movesense", "witmotion"}
    assert all(t.site == "clinic-a" for t in topics if t.stream != "presence")
    final = [s for s in statuses if not s.connected]  # the snapshot after stopping
    assert len(final) == 3
    assert all(s.lost_samples == 0 and s.gaps == 0 and s.reconnects == 0 for s in final)


def test_collect_without_sensors_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collect", "--bus", "none"]) == 2
    err = capsys.readouterr().err
    assert "no sensors to collect from" in err
    assert "[[sensors]]" in err
    assert main(["collect", "--simulate", "2", "--virtual", "--bus", "none"]) == 2
    assert "--duration" in capsys.readouterr().err


def test_scan_lists_supported_sensors_with_their_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--simulate", "4", "--scan", "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = sorted(line.split()[1] for line in lines)
    assert kinds == ["metamotion", "metamotion", "movesense", "witmotion"]

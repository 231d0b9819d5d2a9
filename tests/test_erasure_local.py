"""Erasure from this host's disk spools and dead-letter files.

The spools are made by the real components (the InfluxDB ``Writer`` while
InfluxDB is unreachable, the ``MqttPublisher`` while the broker is), the
wearer is erased from them, and then the spools are replayed into the real
InfluxDB and Mosquitto: only the other wearer's data arrives.
"""

from __future__ import annotations

import dataclasses
import gzip
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from postmon.bus.mqtt import MqttPublisher
from postmon.config import Config, InfluxConfig, MqttConfig, SensorPairing
from postmon.erasure import erase_local, lp_line_is_wearer, topic_is_wearer
from postmon.store.spool import Spool
from postmon.store.writer import Writer
from tests.conftest import INFLUX_URL, free_port, influx_query
from tests.store_helpers import make_epochs, recent_hour_ns

GONE, KEPT = "p017", "p018"
N = 120  # epochs per wearer


def test_line_and_topic_matching() -> None:
    assert lp_line_is_wearer(b"epoch,sensor=AA,site=a,wearer=p017 v=1 1\n", "p017")
    assert lp_line_is_wearer(b"epoch,site=a,wearer=p017,x=y v=1 1\n", "p017")
    assert not lp_line_is_wearer(b"epoch,site=a,wearer=p0170 v=1 1\n", "p017")
    assert not lp_line_is_wearer(b"epoch,site=a,wearer=p01 v=1 1\n", "p017")
    # a string field mentioning the tag is not the series key
    assert not lp_line_is_wearer(b'event,site=a,wearer=p1 note="wearer=p017" 1\n', "p017")
    assert not lp_line_is_wearer(b"epoch,site=a,xwearer=p017 v=1 1\n", "p017")
    assert topic_is_wearer("postmon/v1/clinic-a/p017/epochs", "p017")
    assert not topic_is_wearer("postmon/v1/clinic-a/p0171/epochs", "p017")
    assert not topic_is_wearer("postmon/v1/clinic-a/_collector/p017/status", "p017")


def _spool_lines(d: Path) -> list[bytes]:
    """Every line-protocol line in a writer spool, read back through the Spool API."""
    work = d.with_name(d.name + "-read")
    import shutil

    shutil.copytree(d, work)
    sp = Spool(work, max_bytes=1 << 40)
    lines: list[bytes] = []
    while (rec := sp.peek()) is not None:
        body = gzip.decompress(rec.body) if rec.meta.get("gz") else rec.body
        lines += body.splitlines()
        sp.pop()
    sp.close()
    shutil.rmtree(work)
    return lines


def _spool_topics(d: Path) -> list[str]:
    import shutil

    work = d.with_name(d.name + "-read")
    shutil.copytree(d, work)
    sp = Spool(work, max_bytes=1 << 40)
    topics: list[str] = []
    while (rec := sp.peek()) is not None:
        topics.append(str(rec.meta["topic"]))
        sp.pop()
    sp.close()
    shutil.rmtree(work)
    return topics


@pytest.mark.integration
def test_erased_wearer_is_gone_from_spools_and_never_replayed(
    influx_db: str, mqtt_prefix: str, tmp_path: Path
) -> None:
    t0 = recent_hour_ns(3)
    dead = f"http://127.0.0.1:{free_port()}"
    icfg = InfluxConfig(
        url=dead,
        database=influx_db,
        spool_dir=tmp_path / "influx",
        spool_after_s=0.0,
        retry_initial_s=0.05,
        retry_max_s=0.1,
        flush_interval_s=0.05,
    )
    mcfg = MqttConfig(
        port=free_port(), topic_root=mqtt_prefix, spool_dir=tmp_path / "mqtt", reconnect_max_s=1.0
    )
    # 1. data of both wearers waits on disk: InfluxDB and the broker are away
    w = Writer(icfg, name="edge").start()
    for i, wearer in enumerate((GONE, KEPT)):
        w.write_epochs("clinic-a", wearer, "AA", make_epochs(i, t0, N))
    w.close(timeout_s=10)
    pub = MqttPublisher(mcfg, collector_id="edge1", site="clinic-a").start()
    for i, wearer in enumerate((GONE, KEPT)):
        pub.publish_epochs("clinic-a", wearer, "AA", make_epochs(i, t0, 60))
        pub.publish_epochs("clinic-a", wearer, "AA", make_epochs(i, t0, 60, start=60))
    pub.close(timeout_s=0.5)
    # dead letters as the writer and the ingest worker write them
    rej = tmp_path / "influx" / "rejected"
    rej.mkdir(parents=True)
    (rej / "rejected.lp").write_bytes(
        b"# HTTP 400: partial write\n"
        + f"epoch,sensor=AA,site=clinic-a,wearer={GONE} flexion_deg=1 1\n".encode()
        + f"epoch,sensor=AA,site=clinic-a,wearer={KEPT} flexion_deg=2 1\n".encode()
    )
    (tmp_path / "mqtt" / "rejected").mkdir()
    (tmp_path / "mqtt" / "rejected" / "mqtt-g-0.log").write_text(
        f"1 {mqtt_prefix}/clinic-a/{GONE}/epochs bad length 0102\n"
        f"2 {mqtt_prefix}/clinic-a/{KEPT}/epochs bad length 0304\n"
    )
    influx_spool, mqtt_spool = tmp_path / "influx", tmp_path / "mqtt" / "edge1"
    before_lines = _spool_lines(influx_spool)
    before_topics = _spool_topics(mqtt_spool)
    kept_lines = [ln for ln in before_lines if f"wearer={KEPT}".encode() in ln]
    assert len(kept_lines) == N
    assert sum(f"wearer={GONE}".encode() in ln for ln in before_lines) == N
    assert sum(f"/{GONE}/" in t for t in before_topics) == 2

    cfg = Config(
        site="clinic-a",
        influxdb=icfg,
        mqtt=mcfg,
        sensors=(SensorPairing("AA", KEPT, site="clinic-a"),),
    )
    dry = erase_local(cfg, GONE, dry_run=True)
    assert _spool_lines(influx_spool) == before_lines  # a dry run changes nothing
    found = erase_local(cfg, GONE)
    assert found == dry
    assert found == {
        str(influx_spool): N,
        str(mqtt_spool): 2,
        str(rej / "rejected.lp"): 1,
        str(tmp_path / "mqtt" / "rejected" / "mqtt-g-0.log"): 1,
    }

    # 2. the spools hold exactly the other wearer's data, in order
    assert _spool_lines(influx_spool) == kept_lines
    assert _spool_topics(mqtt_spool) == [t for t in before_topics if f"/{GONE}/" not in t]
    assert GONE not in (rej / "rejected.lp").read_text()
    assert KEPT in (rej / "rejected.lp").read_text()
    mlog = (tmp_path / "mqtt" / "rejected" / "mqtt-g-0.log").read_text()
    assert GONE not in mlog
    assert KEPT in mlog
    assert not list(tmp_path.rglob(".erase-*"))  # no work copies left behind

    # 3. the services are back: the spools replay, and only the kept wearer arrives
    with Writer(dataclasses.replace(icfg, url=INFLUX_URL), name="edge") as w2:
        assert w2.flush(30, include_spool=True)
    rows = influx_query(
        'SELECT count(activity_code) FROM "epochs_2y"."epoch" GROUP BY wearer', db=influx_db
    )
    counts = {s["tags"]["wearer"]: s["values"][0][1] for s in rows["results"][0]["series"]}
    assert counts == {KEPT: N}

    got: list[str] = []
    lock = threading.Lock()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        with lock:
            got.append(msg.topic)

    sub.on_message = on_message
    from tests.conftest import MQTT_PORT

    sub.connect("127.0.0.1", MQTT_PORT)
    sub.loop_start()
    try:
        sub.subscribe(f"{mqtt_prefix}/+/+/epochs", qos=1)
        time.sleep(0.3)
        live = dataclasses.replace(mcfg, port=MQTT_PORT)
        pub2 = MqttPublisher(live, collector_id="edge1", site="clinic-a").start()
        assert pub2.flush(15)
        pub2.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                if len(got) >= 2:
                    break
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert got == [f"{mqtt_prefix}/clinic-a/{KEPT}/epochs"] * 2

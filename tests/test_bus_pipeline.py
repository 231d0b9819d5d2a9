"""Edge -> MQTT -> shared-subscription ingest workers -> InfluxDB, on the real servers.

20 simulated wearers, 1 h of sensor time each (accelerated), published as
1-minute epoch batches; every epoch must land exactly once, also across an
InfluxDB outage and a Mosquitto restart (private servers for those).

The InfluxDB outage lasts POSTMON_TEST_INFLUX_OUTAGE_S seconds (default 15,
to keep `make test` short); POSTMON_TEST_INFLUX_OUTAGE_S=120 runs the full
two-minute outage.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from postmon.bus.base import InProcessBus
from postmon.bus.mqtt import IngestWorker, MqttPublisher
from postmon.config import InfluxConfig, MqttConfig
from postmon.store.reader import Reader
from postmon.store.writer import BatchInfo, Writer
from tests.conftest import INFLUX_URL, MQTT_PORT
from tests.store_helpers import (
    HOUR_NS,
    make_epochs,
    recent_hour_ns,
    start_services,
    stop_service,
)

pytestmark = pytest.mark.integration

N_WEARERS = 20
SENSOR_S = 3600
BATCH_S = 60
N_COLLECTORS = 4
N_WORKERS = 3
OUTAGE_S = float(os.environ.get("POSTMON_TEST_INFLUX_OUTAGE_S", "15"))


def wearer(i: int) -> str:
    return f"p{i:03d}"


@dataclasses.dataclass
class Pipeline:
    t0: int
    publishers: list[MqttPublisher]
    workers: list[IngestWorker]
    writers: list[Writer]
    batches: list[list[BatchInfo]]
    influx: InfluxConfig


@contextmanager
def pipeline(
    tmp_path: Path,
    mqtt_port: int,
    influx_url: str,
    db: str,
    root: str,
    *,
    n_workers: int = N_WORKERS,
) -> Iterator[Pipeline]:
    tag = uuid.uuid4().hex[:8]
    mcfg = MqttConfig(
        port=mqtt_port,
        topic_root=root,
        client_id=f"t{tag}",
        ingest_group=f"g{tag}",
        session_expiry_s=120.0,  # the shared broker forgets these test sessions soon
        spool_dir=tmp_path / "mqtt-spool",
    )
    icfg = InfluxConfig(
        url=influx_url,
        database=db,
        flush_interval_s=0.3,
        retry_initial_s=0.1,
        retry_max_s=1.0,
        spool_after_s=1.0,
        timeout_s=2.0,
        spool_dir=tmp_path / "influx-spool",
    )
    batches: list[list[BatchInfo]] = [[] for _ in range(n_workers)]
    with ExitStack() as stack:
        writers = []
        workers = []
        for k in range(n_workers):
            w = Writer(
                dataclasses.replace(icfg, spool_dir=tmp_path / f"influx-spool-{k}"),
                name=f"w{k}",
                on_batch=batches[k].append,
            ).start()
            stack.callback(w.close)
            writers.append(w)
        for k in range(n_workers):
            iw = IngestWorker(mcfg, writers[k], worker_id=str(k)).start()
            stack.callback(iw.stop)
            workers.append(iw)
        for iw in workers:
            assert iw.wait_subscribed(10)
        pubs = []
        for c in range(N_COLLECTORS):
            p = MqttPublisher(mcfg, collector_id=f"edge{c}", site="clinic-a").start()
            stack.callback(p.close)
            pubs.append(p)
        for p in pubs:
            assert p.wait_connected(10)
        time.sleep(0.3)  # the SUBACKs are in: nothing published now can miss the group
        yield Pipeline(recent_hour_ns(3), pubs, workers, writers, batches, icfg)


def publish_all(
    pl: Pipeline, wall_s: float = 0.0, on_progress: Callable[[float], None] | None = None
) -> None:
    """Publish 1 h of epochs for every wearer, spread over ``wall_s`` seconds."""
    n_batches = SENSOR_S // BATCH_S
    start = time.monotonic()
    for b in range(n_batches):
        for i in range(N_WEARERS):
            e = make_epochs(i, pl.t0, BATCH_S, start=b * BATCH_S)
            pl.publishers[i % N_COLLECTORS].publish_epochs("clinic-a", wearer(i), f"s{i}", e)
        if on_progress:
            on_progress((b + 1) / n_batches)
        if wall_s:
            delay = start + wall_s * (b + 1) / n_batches - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def wait_all_landed(pl: Pipeline, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    for p in pl.publishers:
        assert p.flush(timeout_s), f"publisher {p.collector_id} not acknowledged: {p.stats()}"
    reader = Reader(pl.influx)
    try:
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            for w in pl.writers:
                w.flush(5, include_spool=True)
            counts = {
                wearer(i): reader.count_epochs(wearer(i), pl.t0, pl.t0 + 2 * HOUR_NS)
                for i in range(N_WEARERS)
            }
            if all(c >= SENSOR_S for c in counts.values()):
                break
            time.sleep(0.5)
        return counts
    finally:
        reader.close()


def check_order(pl: Pipeline) -> None:
    for k, seen in enumerate(pl.batches):
        seqs = [(b.first_seq, b.last_seq) for b in seen]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(seqs)), f"writer {k} out of order"


def check_values(pl: Pipeline, i: int) -> None:
    with Reader(pl.influx) as r:
        got = r.epochs(wearer(i), pl.t0, pl.t0 + 2 * HOUR_NS)
    want = make_epochs(i, pl.t0, SENSOR_S)
    assert np.array_equal(got["time_ns"], want["time_ns"])
    assert np.array_equal(got["activity"], want["activity"])
    assert np.allclose(got["flexion_deg"], want["flexion_deg"], atol=0.0051, equal_nan=True)


def test_20_wearers_1h_through_3_shared_ingest_workers(
    influx_db: str, mqtt_prefix: str, tmp_path: Path
) -> None:
    with pipeline(tmp_path, MQTT_PORT, INFLUX_URL, influx_db, mqtt_prefix) as pl:
        publish_all(pl)
        counts = wait_all_landed(pl, 60)
        assert counts == {wearer(i): SENSOR_S for i in range(N_WEARERS)}
        got = [w.stats() for w in pl.workers]
        # the shared subscription split the work: each worker took a share
        assert all(s.received > 0 for s in got), got
        assert sum(s.received for s in got) >= N_WEARERS * SENSOR_S // BATCH_S
        assert sum(w.stats().written for w in pl.writers) >= N_WEARERS * SENSOR_S
        check_order(pl)
        check_values(pl, 7)


def test_influxdb_outage_mid_run_loses_nothing_and_keeps_order(
    private_services: Any, tmp_path: Path
) -> None:
    svc = private_services
    url = f"http://127.0.0.1:{svc.cfg.influx_port}"
    with pipeline(tmp_path, svc.cfg.mqtt_port, url, "postmon", "postmon/v1") as pl:
        pl.writers[0].flush()  # database and retention policies exist
        stopped = threading.Event()

        def progress(frac: float) -> None:
            if frac >= 0.3 and not stopped.is_set():
                stop_service(svc, "influxdb")
                stopped.set()

        wall_s = 4.0 + OUTAGE_S  # publishing goes on before, during and after the outage
        t = threading.Thread(target=publish_all, args=(pl, wall_s, progress))
        t.start()
        assert stopped.wait(wall_s + 30)
        outage_start = time.monotonic()
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_start)))
        spooled_during = sum(w.stats().spooled for w in pl.writers)
        start_services(svc)
        t.join()
        counts = wait_all_landed(pl, 120)
        assert counts == {wearer(i): SENSOR_S for i in range(N_WEARERS)}
        assert spooled_during > 0, "the outage never reached the spool"
        assert sum(w.stats().replayed for w in pl.writers) > 0
        assert sum(w.stats().dropped for w in pl.writers) == 0
        check_order(pl)
        check_values(pl, 11)


def test_mosquitto_restart_mid_run_loses_nothing(private_services: Any, tmp_path: Path) -> None:
    svc = private_services
    url = f"http://127.0.0.1:{svc.cfg.influx_port}"
    with pipeline(tmp_path, svc.cfg.mqtt_port, url, "postmon", "postmon/v1") as pl:
        stopped = threading.Event()

        def progress(frac: float) -> None:
            if frac >= 0.4 and not stopped.is_set():
                stop_service(svc, "mosquitto")
                stopped.set()

        t = threading.Thread(target=publish_all, args=(pl, 6.0, progress))
        t.start()
        assert stopped.wait(30)
        time.sleep(2.0)
        start_services(svc)
        t.join()
        counts = wait_all_landed(pl, 90)
        assert counts == {wearer(i): SENSOR_S for i in range(N_WEARERS)}
        assert sum(p.stats().spooled for p in pl.publishers) > 0, "the broker outage was not felt"
        check_values(pl, 3)


def test_in_process_bus_stores_through_the_writer(influx_db: str, tmp_path: Path) -> None:
    icfg = InfluxConfig(url=INFLUX_URL, database=influx_db, spool_dir=tmp_path / "s")
    seen: list[tuple[str, str]] = []
    t0 = recent_hour_ns(3)
    with Writer(icfg) as w:
        bus = InProcessBus(w)
        bus.subscribe(lambda stream, _site, who, _obj: seen.append((stream, who)))
        for b in range(10):
            bus.publish_epochs("clinic-a", "p001", "s1", make_epochs(1, t0, 60, start=b * 60))
        assert bus.flush()
    with Reader(icfg) as r:
        assert r.count_epochs("p001", t0, t0 + HOUR_NS) == 600
    assert seen == [("epochs", "p001")] * 10


def test_presence_is_online_then_last_will_says_offline(mqtt_prefix: str, tmp_path: Path) -> None:
    import json

    import paho.mqtt.client as mqtt

    from postmon.bus import codec

    tag = uuid.uuid4().hex[:8]
    cfg = MqttConfig(
        port=MQTT_PORT,
        topic_root=mqtt_prefix,
        client_id=f"p{tag}",
        session_expiry_s=30.0,
        spool_dir=tmp_path / "spool",
    )
    topic = codec.presence_topic(mqtt_prefix, "clinic-a", "edge9")
    seen: list[bool] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda _c, _u, m: (
        seen.append(json.loads(m.payload)["online"]) if m.payload else None
    )
    watcher.connect("127.0.0.1", MQTT_PORT)
    watcher.loop_start()
    try:
        watcher.subscribe(topic, qos=1)
        pub = MqttPublisher(cfg, collector_id="edge9", site="clinic-a").start()
        assert pub.wait_connected(10)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen[-1:] == [True]
        # the collector vanishes without a DISCONNECT (crash, cable pulled)
        pub._client.loop_stop()
        sock = pub._client.socket()
        assert sock is not None
        sock.close()
        deadline = time.monotonic() + 10
        while seen[-1] is not False and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen[-1] is False
        pub.close(timeout_s=1)
    finally:
        watcher.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # clear retained
        watcher.loop_stop()
        watcher.disconnect()

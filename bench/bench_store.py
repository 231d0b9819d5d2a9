"""Store and bus throughput, each measured side by side with a baseline.

1. Line-protocol encoding of epochs: ``postmon.store.lineproto.encode_epochs``
   vs ``influxdb_client.Point`` serialisation of the same epochs (target
   >= 10x).
2. Writer into the real InfluxDB (encode + batch + gzip + HTTP) vs posting
   the same pre-encoded body in the same batch sizes with a plain
   ``http.client`` loop (target >= 0.8x).
3. Ingest from MQTT to InfluxDB (publisher -> Mosquitto -> shared
   subscription -> ingest worker(s) -> Writer), with 1 and 3 workers.

Needs the local services (``make services-up``); uses throw-away databases
and topic roots.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analysis.contracts import ACTIVITY_LABELS, EPOCH_DTYPE
from bench.common import Entry, best_cpu_of
from postmon.config import DEFAULT_INFLUX_PORT, DEFAULT_MQTT_PORT, InfluxConfig, MqttConfig
from postmon.store import lineproto as lp

HOUR_NS = 3_600_000_000_000


def _epochs(n: int, t0: int, seed: int = 0) -> npt.NDArray[np.void]:
    rng = np.random.default_rng(seed)
    e = np.zeros(n, EPOCH_DTYPE)
    e["time_ns"] = t0 + np.arange(n, dtype=np.int64) * 1_000_000_000
    e["activity"] = (np.arange(n) // 300) % len(ACTIVITY_LABELS)
    e["inclination_deg"] = np.abs(rng.normal(15, 10, n))
    e["flexion_deg"] = rng.normal(10, 12, n)
    e["lateral_deg"] = rng.normal(0, 4, n)
    e["static"] = rng.random(n) < 0.6
    e["intensity_g"] = rng.random(n) * 0.2
    return e


def _point_lines(e: npt.NDArray[np.void]) -> list[str]:
    """The baseline: one influxdb-client Point per epoch, from Python values."""
    from influxdb_client import Point

    out = []
    cols = {name: e[name].tolist() for name in EPOCH_DTYPE.names or ()}
    for i in range(e.shape[0]):
        code = cols["activity"][i]
        p = (
            Point("epoch")
            .tag("site", "clinic-a")
            .tag("wearer", "p001")
            .tag("sensor", "s1")
            .field("activity", ACTIVITY_LABELS[code])
            .field("activity_code", code)
            .field("static", cols["static"][i])
            .field("inclination_deg", cols["inclination_deg"][i])
            .field("flexion_deg", cols["flexion_deg"][i])
            .field("lateral_deg", cols["lateral_deg"][i])
            .field("intensity_g", cols["intensity_g"][i])
            .time(cols["time_ns"][i] // 1_000_000_000, "s")
        )
        out.append(p.to_line_protocol())
    return out


def bench_encoder(quick: bool) -> Entry:
    n = 20_000 if quick else 200_000
    e = _epochs(n, 1_700_000_000_000_000_000)
    ours = best_cpu_of(lambda: lp.encode_epochs("clinic-a", "p001", "s1", e), 3 if quick else 5)
    m = min(n, 20_000)  # the baseline is slow: time a slice, scale per point
    theirs = best_cpu_of(lambda: _point_lines(e[:m]), 2 if quick else 3)
    ours_rate, theirs_rate = n / ours, m / theirs
    ratio = ours_rate / theirs_rate
    return Entry(
        "store.encode_epochs",
        ours_rate,
        "points/s",
        "influxdb_client.Point.to_line_protocol",
        theirs_rate,
        ratio,
        ">= 10x",
        ratio >= 10,
        f"{n} epochs (baseline on {m})",
    )


def _query(port: int, q: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = urllib.parse.urlencode({"q": q}).encode()
        conn.request("POST", "/query", body, {"Content-Type": "application/x-www-form-urlencoded"})
        conn.getresponse().read()
    finally:
        conn.close()


def _count(port: int, db: str, wearer_re: str, t0: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        q = (
            f'SELECT count("activity_code") FROM "{db}"."epochs_2y"."epoch" '
            f"WHERE wearer =~ /{wearer_re}/ AND time >= {t0} AND time < {t0 + 4 * HOUR_NS}"
        )
        conn.request(
            "POST",
            "/query",
            urllib.parse.urlencode({"q": q}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        doc = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    series = doc["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def _writer_run(batches: list[npt.NDArray[np.void]], port: int) -> tuple[float, int, int]:
    """Seconds to store all batches through a Writer into a fresh database."""
    from postmon.store.writer import Writer

    db = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = InfluxConfig(
                url=f"http://127.0.0.1:{port}", database=db, spool_dir=Path(tmp) / "spool"
            )
            w = Writer(cfg).start()  # creates the database and retention policies
            w.flush()
            t_start = time.perf_counter()
            for i, e in enumerate(batches):
                w.write_epochs("clinic-a", f"w{i}", "s1", e)
            w.flush()
            elapsed = time.perf_counter() - t_start
            written = w.stats().written
            w.close()
    finally:
        _query(port, f'DROP DATABASE "{db}"')
    return elapsed, written, cfg.batch_points


def _plain_run(batches: list[npt.NDArray[np.void]], port: int, batch_points: int) -> float:
    """Seconds to POST the same pre-encoded lines, same batch size and gzip."""
    from postmon.store.http import V1HttpBackend, ensure_database_v1

    db = f"bench_{uuid.uuid4().hex[:10]}"
    admin = V1HttpBackend(InfluxConfig(url=f"http://127.0.0.1:{port}", database=db))
    ensure_database_v1(admin)
    admin.close()
    lines = b"".join(
        lp.encode_epochs("clinic-a", f"w{i}", "s1", e).body for i, e in enumerate(batches)
    ).splitlines(keepends=True)
    bodies = [b"".join(lines[k : k + batch_points]) for k in range(0, len(lines), batch_points)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    qs = urllib.parse.urlencode({"db": db, "rp": "epochs_2y", "precision": "s"})
    try:
        t_start = time.perf_counter()
        for body in bodies:
            conn.request(
                "POST",
                f"/write?{qs}",
                gzip.compress(body, compresslevel=1),
                {"Content-Encoding": "gzip", "Content-Type": "text/plain"},
            )
            resp = conn.getresponse()
            resp.read()
            if resp.status != 204:
                raise RuntimeError(f"baseline write failed: {resp.status}")
        return time.perf_counter() - t_start
    finally:
        conn.close()
        _query(port, f'DROP DATABASE "{db}"')


def bench_writer(quick: bool, port: int) -> Entry:
    n_wearers = 5 if quick else 20
    t0 = (time.time_ns() // HOUR_NS - 3) * HOUR_NS
    batches = [_epochs(3600, t0, seed=i) for i in range(n_wearers)]
    total = 3600 * n_wearers
    ours, theirs = [], []
    # alternate, each into a fresh database, best of the rounds: the shared
    # 2-core machine is noisy and a new database's first writes cost more
    for _ in range(2 if quick else 3):
        t, written, batch_points = _writer_run(batches, port)
        if written != total:
            raise RuntimeError(f"writer stored {written} of {total}")
        ours.append(t)
        theirs.append(_plain_run(batches, port, batch_points))
    ratio = min(theirs) / min(ours)
    return Entry(
        "store.writer_epochs",
        total / min(ours),
        "points/s",
        "http.client POST of pre-encoded body",
        total / min(theirs),
        ratio,
        ">= 0.8x",
        ratio >= 0.8,
        f"{total} epochs (1 h x {n_wearers} wearers), batch {batch_points}, gzip; "
        "ours includes encoding",
    )


def bench_ingest(
    quick: bool, influx_port: int, mqtt_port: int, n_workers: int
) -> tuple[float, int, float]:
    """Epochs/s published -> stored, the epochs, and this process' CPU µs per epoch."""
    from postmon.bus.mqtt import IngestWorker, MqttPublisher
    from postmon.store.writer import Writer

    n_wearers = 5 if quick else 20
    per_msg, n = 60, 3600
    t0 = (time.time_ns() // HOUR_NS - 3) * HOUR_NS
    tag = uuid.uuid4().hex[:8]
    db = f"bench_{tag}"
    total = n_wearers * n
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        mcfg = MqttConfig(
            port=mqtt_port,
            topic_root=f"bench/{tag}/postmon/v1",
            client_id=f"bench{tag}",
            ingest_group=f"g{tag}",
            session_expiry_s=60.0,
            spool_dir=Path(tmp) / "mqtt",
        )
        stack.callback(_query, influx_port, f'DROP DATABASE "{db}"')
        writers = []
        for k in range(n_workers):
            icfg = InfluxConfig(
                url=f"http://127.0.0.1:{influx_port}",
                database=db,
                flush_interval_s=0.2,
                spool_dir=Path(tmp) / f"influx{k}",
            )
            w = Writer(icfg).start()
            stack.callback(w.close)
            writers.append(w)
            iw = IngestWorker(mcfg, w, worker_id=str(k)).start()
            stack.callback(iw.stop)
            iw.wait_subscribed(10)
        pub = MqttPublisher(mcfg, collector_id=f"e{tag}", site="clinic-a").start()
        stack.callback(pub.close)
        pub.wait_connected(10)
        time.sleep(0.3)
        batches = [_epochs(n, t0, seed=i) for i in range(n_wearers)]
        t_start = time.perf_counter()
        cpu_start = time.process_time()
        for k in range(0, n, per_msg):
            for i, e in enumerate(batches):
                pub.publish_epochs("clinic-a", f"w{i}", "s1", e[k : k + per_msg])
        pub.flush(120)
        got = 0
        deadline = time.monotonic() + 120
        while got < total and time.monotonic() < deadline:
            for w in writers:
                w.kick()
            got = _count(influx_port, db, "^w", t0)
            if got < total:
                time.sleep(0.05)
        elapsed = time.perf_counter() - t_start
        cpu_us = (time.process_time() - cpu_start) / total * 1e6
    if got != total:
        raise RuntimeError(f"ingest stored {got} of {total} epochs")
    return total / elapsed, total, cpu_us


def run(quick: bool) -> list[Entry]:
    import os

    influx_port = int(os.environ.get("POSTMON_SERVICES_INFLUX_PORT", DEFAULT_INFLUX_PORT))
    mqtt_port = int(os.environ.get("POSTMON_SERVICES_MQTT_PORT", DEFAULT_MQTT_PORT))
    entries = [bench_encoder(quick), bench_writer(quick, influx_port)]
    one, total, cpu1 = bench_ingest(quick, influx_port, mqtt_port, 1)
    three, _, cpu3 = bench_ingest(quick, influx_port, mqtt_port, 3)
    entries.append(
        Entry(
            "bus.ingest_1_worker",
            one,
            "epochs/s",
            note=f"{total} epochs, 60 per message; publisher + worker + writer in this "
            f"process: {cpu1:.0f} CPU us per epoch",
        )
    )
    entries.append(
        Entry(
            "bus.ingest_3_workers",
            three,
            "epochs/s",
            "bus.ingest_1_worker",
            one,
            three / one,
            "reported (2 cores)",
            None,
            f"{total} epochs, 60 per message, shared subscription; workers are threads "
            f"of one process (one GIL): {cpu3:.0f} CPU us per epoch",
        )
    )
    return entries

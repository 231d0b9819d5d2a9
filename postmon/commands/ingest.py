"""``postmon ingest``: MQTT -> InfluxDB ingest worker (central side)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from types import FrameType

from postmon.config import load_config

log = logging.getLogger("postmon.ingest")

DESCRIPTION = """\
Subscribe to the collectors' MQTT topics with a shared subscription
($share/<group>/<topic_root>/#) and store everything in InfluxDB.

Run as many workers as needed, on one or many hosts, with the same --group:
the broker splits the messages between them. Each message is acknowledged
(QoS 1) only once its data is written to InfluxDB or to the local disk spool,
so a worker that dies loses nothing: the broker delivers its unacknowledged
messages again. While InfluxDB is down, data goes to the spool
([influxdb] spool_dir) and is replayed in order when it is back.

SIGINT/SIGTERM: stop taking messages, flush to InfluxDB (or the spool),
acknowledge, exit 0."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ingest",
        help="MQTT -> InfluxDB ingest worker (shared subscription, durable acks)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (default: built-in defaults)")
    p.add_argument(
        "--group",
        metavar="NAME",
        help="shared-subscription group (default: [mqtt] ingest_group)",
    )
    p.add_argument(
        "--id",
        dest="worker_id",
        default="0",
        metavar="ID",
        help="this worker's id within the group; keep it stable across restarts "
        "(it names the broker session and the spool folder) (default: 0)",
    )
    p.add_argument(
        "--stats-interval",
        type=float,
        default=60.0,
        metavar="S",
        help="log counters every S seconds (default: 60)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from postmon.bus.mqtt import IngestWorker
    from postmon.store.writer import Writer

    cfg = load_config(args.config)
    group = args.group or cfg.mqtt.ingest_group
    # one spool per worker: a spool directory must not be shared by two processes
    spool = Path(cfg.influxdb.spool_dir) / f"{group}-{args.worker_id}"
    influx = dataclasses.replace(cfg.influxdb, spool_dir=spool)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    writer = Writer(influx, name=f"ingest-{group}-{args.worker_id}").start()
    worker = IngestWorker(cfg.mqtt, writer, group=group, worker_id=args.worker_id)
    log.info(
        "ingest worker %s of group %s: MQTT %s:%d -> InfluxDB %s db=%s (spool %s)",
        args.worker_id,
        group,
        cfg.mqtt.host,
        cfg.mqtt.port,
        influx.url,
        influx.database,
        spool,
    )
    worker.start()
    try:
        next_stats = time.monotonic() + args.stats_interval
        while not stop.wait(0.5):
            if time.monotonic() >= next_stats:
                next_stats += args.stats_interval
                log.info("mqtt: %s", worker.stats())
                log.info("influx: %s", writer.stats())
        log.info("%s: stopping: flushing to InfluxDB (or the spool)", received[0])
    finally:
        worker.stop()
        writer.close()
        for s, handler in old.items():
            signal.signal(s, handler)
    ws, ms = writer.stats(), worker.stats()
    print(
        f"ingest: {ms.received} message(s) received, {ms.acked} acknowledged, "
        f"{ms.dead_lettered} refused; points written {ws.written}, spooled {ws.spooled} "
        f"(still on disk {ws.spool_points}), rejected {ws.rejected}, dropped {ws.dropped}"
    )
    return 0

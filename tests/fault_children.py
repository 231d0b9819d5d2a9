"""Child processes of the fault tests (run with ``python -m tests.fault_children ...``).

``disk-full DIR INFLUX_URL DB T0_NS BATCHES``: run inside a mount namespace
where ``DIR`` is a tiny tmpfs (see tests/test_faults_storage.py). A writer
whose InfluxDB is unreachable spools ``BATCHES`` batches of 300 epochs into
``DIR`` until the disk is full several times over; then a second writer on
the same spool, with the real InfluxDB, replays what is left. Prints one
JSON line with both writers' counters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import sys
from pathlib import Path

from postmon.config import InfluxConfig
from postmon.store.writer import Writer
from tests.store_helpers import make_epochs

EPOCHS_PER_BATCH = 300


def _dead_url() -> str:
    """A loopback URL nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def disk_full(spool: Path, influx_url: str, db: str, t0_ns: int, batches: int) -> dict[str, object]:
    cfg = InfluxConfig(
        url=_dead_url(),
        database=db,
        spool_dir=spool,
        spool_after_s=0.0,
        retry_initial_s=0.01,
        retry_max_s=0.02,
        flush_interval_s=0.01,
    )
    w = Writer(cfg, name="offline").start()
    for b in range(batches):
        e = make_epochs(0, t0_ns, EPOCHS_PER_BATCH, start=b * EPOCHS_PER_BATCH)
        w.write_epochs("clinic-a", "p001", "s1", e)
        w.flush(10.0)  # one spool record per batch, in order
    w.close(timeout_s=10.0)
    off = w.stats()
    back = Writer(dataclasses.replace(cfg, url=influx_url), name="replay").start()
    replayed = back.flush(60.0, include_spool=True)
    back.close()
    on = back.stats()
    return {
        "offline": dataclasses.asdict(off),
        "online": dataclasses.asdict(on),
        "replayed_all": replayed,
    }


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    if argv[0] == "disk-full":
        out = disk_full(Path(argv[1]), argv[2], argv[3], int(argv[4]), int(argv[5]))
    else:
        raise SystemExit(f"unknown child {argv[0]!r}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

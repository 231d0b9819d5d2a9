"""End-to-end soak: many wearers' edge pipelines into a real InfluxDB, zero loss checked.

``bench.soak`` measures the edge pipeline's memory without storage; this one
adds what a clinic runs behind it: every wearer's output goes through the
in-process bus into the durable ``Writer`` and a real InfluxDB, and at the
end the epochs and daily summaries stored per wearer are counted with
InfluxQL and compared with what the pipelines produced::

    python -m bench.soak_e2e --wearers 50 --hours 24            # own private servers
    python -m bench.soak_e2e --influx-url http://127.0.0.1:18086 --database soak1

Without ``--influx-url`` it starts a private Mosquitto + InfluxDB on free
ports (``postmon.services.LocalServices``) in a temporary directory and
stops them afterwards, so a long run never loads the shared servers.

Sensor time is accelerated (as fast as the pipelines run). Timestamps start
at 08:00 UTC two days ago, inside every retention policy. Prints one JSON
object; exit status 0 only when nothing was lost.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from analysis.contracts import NS_PER_S
from bench.soak import replayed_rounds, rss_bytes

DAY_NS = 86_400 * NS_PER_S


def recent_start_ns(days_ago: int = 2) -> int:
    """08:00 UTC ``days_ago`` days ago: recent enough for every retention policy."""
    today = time.time_ns() // DAY_NS * DAY_NS
    return today - days_ago * DAY_NS + 8 * 3600 * NS_PER_S


@dataclasses.dataclass(frozen=True)
class SoakResult:
    """Counts per wearer (produced by the pipelines, stored in InfluxDB) and resources."""

    wearers: int
    hours: float
    produced_epochs: dict[str, int]
    stored_epochs: dict[str, int]
    produced_daily: dict[str, int]
    stored_daily: dict[str, int]
    writer: dict[str, int]
    wall_s: float
    cpu_s: float
    rss_after_first_hour_bytes: int
    rss_end_bytes: int
    #: (sensor hours done, RSS bytes) at the end of each sensor hour
    rss_by_hour: tuple[tuple[int, int], ...] = ()

    @property
    def lost_epochs(self) -> int:
        return sum(self.produced_epochs.values()) - sum(self.stored_epochs.values())

    @property
    def ok(self) -> bool:
        return (
            self.produced_epochs == self.stored_epochs and self.produced_daily == self.stored_daily
        )

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lost_epochs"] = self.lost_epochs
        d["ok"] = self.ok
        d["growth_vs_first_hour"] = (
            self.rss_end_bytes - self.rss_after_first_hour_bytes
        ) / self.rss_after_first_hour_bytes
        return d


def run_soak(
    influx_url: str,
    database: str,
    spool_dir: Path,
    *,
    wearers: int,
    hours: float,
    chunk_s: float = 60.0,
    start_ns: int | None = None,
    progress: bool = False,
) -> SoakResult:
    """Drive ``wearers`` edge pipelines over ``hours`` of sensor time into InfluxDB.

    Parameters
    ----------
    influx_url, database:
        The InfluxDB (v1 API) and database to store into (created if missing).
    spool_dir:
        The writer's disk spool (used only if InfluxDB stops answering).
    wearers, hours, chunk_s:
        Cohort size, sensor hours per wearer, sensor seconds per batch.
    start_ns:
        UTC ns of the first sample (default: :func:`recent_start_ns`).
    progress:
        Print the RSS and CPU time after each sensor hour to stderr.
    """
    from postmon.bus.base import InProcessBus
    from postmon.config import InfluxConfig
    from postmon.pipeline import WearerPipeline
    from postmon.store.reader import Reader
    from postmon.store.writer import Writer

    t0 = recent_start_ns() if start_ns is None else start_ns
    names = [f"soak{i:03d}" for i in range(wearers)]
    pipes = [WearerPipeline("soak", w, f"s-{w}") for w in names]
    produced = dict.fromkeys(names, 0)
    daily = dict.fromkeys(names, 0)
    cfg = InfluxConfig(url=influx_url, database=database, spool_dir=spool_dir)
    writer = Writer(cfg).start()
    bus = InProcessBus(writer)

    def emit(w: str, out: Any) -> None:
        if len(out.epochs):
            bus.publish_epochs("soak", w, f"s-{w}", out.epochs)
            produced[w] += len(out.epochs)
        if out.events:
            bus.publish_events("soak", w, out.events)
        if out.daily:
            bus.publish_daily("soak", w, out.daily)
            daily[w] += len(out.daily)

    gc.collect()
    rss_first = rss_end = rss_bytes()
    by_hour: list[tuple[int, int]] = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        hours_done = 0
        for _, batches, hour_done in replayed_rounds(names, hours, chunk_s, t0):
            for w, p, b in zip(names, pipes, batches, strict=True):
                emit(w, p.feed(b))
            if hour_done:
                hours_done += 1
                gc.collect()
                rss_end = rss_bytes()
                by_hour.append((hours_done, rss_end))
                if progress:
                    print(
                        f"[soak] {hours_done} h: RSS {rss_end / 2**20:.1f} MiB, "
                        f"{time.process_time() - cpu0:.0f} CPU s",
                        file=sys.stderr,
                        flush=True,
                    )
                if hours_done == 1:
                    rss_first = rss_end
        for w, p in zip(names, pipes, strict=True):
            emit(w, p.finish())
        if not writer.flush(600.0, include_spool=True):
            raise RuntimeError("the writer did not store everything within 10 minutes")
    finally:
        writer.close()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    gc.collect()
    rss_end = rss_bytes()
    far = t0 + int((hours + 48) * 3600 * NS_PER_S)
    with Reader(cfg) as reader:
        stored = {w: reader.count_epochs(w, t0 - DAY_NS, far) for w in names}
        stored_daily = {w: len(reader.daily(w, t0 - 2 * DAY_NS, far)) for w in names}
    s = writer.stats()
    return SoakResult(
        wearers=wearers,
        hours=hours,
        produced_epochs=produced,
        stored_epochs=stored,
        produced_daily=daily,
        stored_daily=stored_daily,
        writer={
            "accepted": s.accepted,
            "written": s.written,
            "rejected": s.rejected,
            "spooled": s.spooled,
            "dropped": s.dropped,
            "retries": s.retries,
        },
        wall_s=wall,
        cpu_s=cpu,
        rss_after_first_hour_bytes=rss_first,
        rss_end_bytes=rss_end,
        rss_by_hour=tuple(by_hour),
    )


@contextmanager
def private_influx(state_dir: Path) -> Iterator[str]:
    """A private Mosquitto + InfluxDB on free ports for the run; yields the InfluxDB URL."""
    import socket

    from postmon.config import ServicesConfig
    from postmon.services import LocalServices

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    svc = LocalServices(
        ServicesConfig(
            state_dir=state_dir,
            mqtt_port=free_port(),
            influx_port=free_port(),
            influx_rpc_port=free_port(),
        )
    )
    svc.up(log=lambda _m: None)
    try:
        yield f"http://127.0.0.1:{svc.cfg.influx_port}"
    finally:
        svc.down(log=lambda _m: None)


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.soak_e2e", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--wearers", type=int, default=50)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--chunk-s", type=float, default=60.0)
    ap.add_argument("--influx-url", help="an existing InfluxDB (default: a private one)")
    ap.add_argument("--database", default="postmon_soak")
    a = ap.parse_args()
    # stopped with SIGTERM: unwind, so the private servers are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="postmon-soak-") as tmp:
        root = Path(tmp)
        if a.influx_url:
            res = run_soak(
                a.influx_url,
                a.database,
                root / "spool",
                wearers=a.wearers,
                hours=a.hours,
                chunk_s=a.chunk_s,
                progress=True,
            )
        else:
            with private_influx(root / "services") as url:
                res = run_soak(
                    url,
                    a.database,
                    root / "spool",
                    wearers=a.wearers,
                    hours=a.hours,
                    chunk_s=a.chunk_s,
                    progress=True,
                )
    out = res.as_dict()
    # per-wearer maps are long for 50 wearers: totals say it, mismatches name who
    out["mismatched_wearers"] = sorted(
        w for w in res.produced_epochs if res.produced_epochs[w] != res.stored_epochs.get(w)
    )
    for k in ("produced_epochs", "stored_epochs", "produced_daily", "stored_daily"):
        out[k + "_total"] = sum(out.pop(k).values())
    json.dump(out, sys.stdout)
    print()
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())

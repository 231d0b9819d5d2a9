"""The service process killed with SIGKILL mid-run: what survives, what is lost.

A graceful stop (SIGTERM: everything accepted is written or spooled) is
tests/test_service.py::test_run_until_sigterm_loses_nothing. Here
``postmon run --simulate 2`` runs while its InfluxDB is down (so results go
to the fsync'd disk spool), is killed with SIGKILL, InfluxDB comes back, and
a second ``postmon run`` on the same spool replays it at start-up. What the
killed process had only in memory is lost: the samples its analysis had not
decided yet and the results its writer had not yet spooled. The test
measures that loss in sensor seconds against the simulation clock and bounds
it; docs/RELIABILITY.md gives the numbers.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from postmon.config import InfluxConfig
from postmon.store.reader import Reader
from postmon.store.spool import Spool
from tests.conftest import REPO
from tests.store_helpers import S_NS, start_services, stop_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEED = 30.0
SPOOL_AFTER_S = 1.0
FLUSH_S = 0.5
#: the analysis decides an epoch up to this much sensor time after its samples
#: (look-ahead plus one commit block: docs/BENCHMARKS.md, nudge latency)
DECISION_LAG_S = 90.0


def _config(path: Path, site: str, svc: Any, spool: Path) -> Path:
    path.write_text(
        f'site = "{site}"\n'
        f"[influxdb]\n"
        f'url = "http://127.0.0.1:{svc.cfg.influx_port}"\n'
        f'database = "postmon"\n'
        f'spool_dir = "{spool}"\n'
        f"spool_after_s = {SPOOL_AFTER_S}\n"
        f"flush_interval_s = {FLUSH_S}\n"
        f"retry_initial_s = 0.2\nretry_max_s = 0.5\n"
        f"[mqtt]\nport = {svc.cfg.mqtt_port}\n"
        f'spool_dir = "{spool.parent / "mqtt"}"\n'
    )
    return path


def _run(cfg: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child holds its own descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "postmon",
                "run",
                "--config",
                str(cfg),
                "--speed",
                str(SPEED),
                *list(extra),
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )


def _sim_start_ns(log: Path) -> int:
    """UTC ns at which the killed run's simulation clock started (its 'running' log line)."""
    for line in log.read_text().splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*running: \d+ sensor", line)
        if m:
            t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").astimezone(dt.UTC)
            return int(t.timestamp()) * S_NS + int(m.group(2)) * 1_000_000
    raise AssertionError(f"no 'running' line in {log}:\n{log.read_text()[-2000:]}")


def _epoch_times(reader: Reader, site: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in reader.query(
        f'SELECT activity_code FROM "postmon"."epochs_2y"."epoch" WHERE site = \'{site}\' '
        "GROUP BY wearer"
    ):
        out[s.tags["wearer"]] = [int(r[0]) for r in s.values]
    return out


def test_sigkill_mid_run_loses_only_what_was_in_memory_and_the_spool_replays(
    private_services: Any, tmp_path: Path
) -> None:
    svc = private_services
    spool = tmp_path / "spool" / "influx"
    stop_service(svc, "influxdb")  # results can only go to the disk spool
    log1 = tmp_path / "killed.log"
    proc = _run(_config(tmp_path / "killed.toml", "killed", svc, spool), log1, "--simulate", "2")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            p.stat().st_size for p in spool.glob("*.seg")
        ):
            assert proc.poll() is None, log1.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(4.0)  # minutes of sensor time at x30: several spooled batches
        kill_ns = time.time_ns()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    on_disk = Spool(spool, max_bytes=1 << 30)
    spooled_points = on_disk.points
    on_disk.close()
    assert spooled_points > 0

    start_services(svc)
    log2 = tmp_path / "restart.log"
    restart = _run(
        _config(tmp_path / "restart.toml", "restart", svc, spool),
        log2,
        "--simulate",
        "1",
        "--duration",
        "60s",
    )
    assert restart.wait(120) == 0, log2.read_text()[-3000:]
    assert "waiting to be replayed" in log2.read_text()
    left = Spool(spool, max_bytes=1 << 30)
    assert len(left) == 0, "the restart did not replay the whole spool"
    left.close()

    with Reader(InfluxConfig(url=f"http://127.0.0.1:{svc.cfg.influx_port}")) as reader:
        killed = _epoch_times(reader, "killed")
    assert set(killed) == {"sim01", "sim02"}
    sensor_at_kill = _sim_start_ns(log1) + int((kill_ns - _sim_start_ns(log1)) * SPEED)
    for wearer, times in killed.items():
        # what was spooled is all there: one epoch per second, no hole, none twice
        assert times == list(range(times[0], times[-1] + S_NS, S_NS)), wearer
        lost_s = (sensor_at_kill - (times[-1] + S_NS)) / S_NS
        # lost: the analysis' undecided samples + results not yet spooled (wall s x speed)
        bound_s = DECISION_LAG_S + (SPOOL_AFTER_S + FLUSH_S + 1.0) * SPEED
        print(f"{wearer}: {len(times)} epochs kept, {lost_s:.0f} s of sensor time lost")
        assert 0 < lost_s <= bound_s, (wearer, lost_s, bound_s)

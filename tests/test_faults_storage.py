"""Storage faults: the spool's disk fills up, on a real (tiny) filesystem.

InfluxDB unreachable for long is covered by
tests/test_bus_pipeline.py::test_influxdb_outage_mid_run_loses_nothing_and_keeps_order
and a spool bounded by ``spool_max_mb`` by
tests/test_spool.py::test_full_spool_drops_oldest_counted_and_logged. Here the
disk itself runs out first: a 256 KiB tmpfs mounted in a private mount
namespace (``unshare``), so the kernel answers ENOSPC for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from postmon.config import InfluxConfig
from postmon.store.reader import Reader
from tests.conftest import INFLUX_URL, REPO
from tests.fault_children import EPOCHS_PER_BATCH
from tests.store_helpers import S_NS, recent_hour_ns

pytestmark = pytest.mark.integration

BATCHES = 120  # 120 x 300 epochs, ~5.7 KB gzipped each: ~3x the tmpfs


def test_disk_full_spool_drops_oldest_first_counts_and_replays_the_rest(
    influx_db: str, tmp_path: Path
) -> None:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    t0 = recent_hour_ns(12)
    child = (
        f"mount -t tmpfs -o size=256k tmpfs {mnt} && exec {sys.executable} -m "
        f"tests.fault_children disk-full {mnt}/spool {INFLUX_URL} {influx_db} {t0} {BATCHES}"
    )
    proc = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", child],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    off, on = out["offline"], out["online"]
    total = BATCHES * EPOCHS_PER_BATCH
    assert off["accepted"] == total
    # the disk filled up: the oldest data went first, and every point is accounted for
    assert off["dropped"] > 0
    assert off["dropped"] % EPOCHS_PER_BATCH == 0  # whole records, never a torn one
    assert off["dropped"] + off["spool_points"] == total
    assert "SPOOL FULL (disk full (No space left on device)" in proc.stderr
    assert "free disk space" in proc.stderr
    assert "point(s) lost" not in proc.stderr  # nothing fell outside the policy
    # the rest replays once InfluxDB is there, and it is exactly the newest epochs
    assert out["replayed_all"]
    assert on["replayed"] == on["written"] == off["spool_points"]
    kept = off["spool_points"]
    with Reader(InfluxConfig(url=INFLUX_URL, database=influx_db)) as reader:
        assert reader.count_epochs("p001", 0, t0 + total * S_NS) == kept
        first_kept = t0 + (total - kept) * S_NS
        assert reader.count_epochs("p001", first_kept, t0 + total * S_NS) == kept


def test_clock_skewed_epochs_beyond_retention_are_refused_counted_and_kept(
    influx_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An edge host whose clock is years behind: InfluxDB refuses points older than
    the retention policy (a partial write). They are counted as rejected, logged and
    kept in the dead-letter file; the rest of the same batch is stored."""
    import logging

    from postmon.store.writer import Writer
    from tests.store_helpers import make_epochs

    now = recent_hour_ns(1)
    three_years = 3 * 365 * 86_400 * S_NS  # the epoch RP keeps 104 weeks
    skewed = make_epochs(0, now - three_years, 20)
    fine = make_epochs(0, now, 30)
    batch = np.concatenate([skewed, fine])
    cfg = InfluxConfig(url=INFLUX_URL, database=influx_db, spool_dir=tmp_path / "spool")
    with caplog.at_level(logging.ERROR), Writer(cfg) as w:
        assert w.write_epochs("clinic-a", "p001", "s1", batch) == 50
        assert w.flush()
        s = w.stats()
    assert (s.written, s.rejected, s.dropped, s.spooled) == (30, 20, 0, 0)
    assert "refused 20 of 50 point(s)" in caplog.text
    assert (
        "beyond retention policy" in (tmp_path / "spool" / "rejected" / "rejected.lp").read_text()
    )
    with Reader(InfluxConfig(url=INFLUX_URL, database=influx_db)) as reader:
        assert reader.count_epochs("p001", 0, now + 3600 * S_NS) == 30

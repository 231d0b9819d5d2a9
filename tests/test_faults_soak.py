"""Reduced end-to-end soak: edge pipelines -> in-process bus -> Writer -> real InfluxDB.

The full soak (50 wearers, 24 h of accelerated sensor time) is
``python -m bench.soak_e2e``; docs/RELIABILITY.md has its numbers. Here a
few wearers run across a local midnight, so daily summaries are cut and
stored too, and every second of sensor time must come back from InfluxDB
as exactly one epoch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak_e2e import DAY_NS, recent_start_ns, run_soak
from tests.conftest import INFLUX_URL

pytestmark = pytest.mark.integration

WEARERS = 2
HOURS = 1.0


def test_reduced_soak_stores_every_epoch_and_daily_summary(influx_db: str, tmp_path: Path) -> None:
    # 23:30 UTC: the run crosses midnight, so each wearer has two (partial) days
    start = recent_start_ns(days_ago=3) - 8 * 3600 * 10**9 + (23 * 3600 + 30 * 60) * 10**9
    assert start % DAY_NS == (23 * 3600 + 30 * 60) * 10**9
    res = run_soak(
        INFLUX_URL, influx_db, tmp_path / "spool", wearers=WEARERS, hours=HOURS, start_ns=start
    )
    # independent truth: one 1-s epoch per second of sensor time, per wearer
    want = round(HOURS * 3600)
    assert res.produced_epochs == {f"soak{i:03d}": want for i in range(WEARERS)}
    assert res.stored_epochs == res.produced_epochs
    assert res.produced_daily == {f"soak{i:03d}": 2 for i in range(WEARERS)}
    assert res.stored_daily == res.produced_daily
    assert res.lost_epochs == 0
    assert res.writer["dropped"] == res.writer["rejected"] == 0
    assert res.writer["written"] == res.writer["accepted"]

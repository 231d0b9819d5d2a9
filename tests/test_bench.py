"""The benchmark suite's plumbing, so it cannot rot between `make bench` runs.

Not timed tests: these check that the runner, the helpers and a quick run
of one module work and produce well-formed results.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.__main__ import format_table
from bench.common import Entry, best_cpu_of, percentile, sample_batches, simulated_day

REPO = Path(__file__).resolve().parent.parent
ENTRY_KEYS = {
    "name",
    "value",
    "unit",
    "baseline_name",
    "baseline_value",
    "ratio",
    "target",
    "ok",
    "note",
}


def test_sample_batches_cut_the_recording_into_consecutive_stamped_batches() -> None:
    rec = simulated_day(0.05, seed=5)  # 3 minutes
    rate = rec.rate_hz
    start = 1_700_000_000 * 10**9
    batches = sample_batches(rec, start, 7.0, first_s=10.0, last_s=100.0, wearer="p1")
    k0, k1 = round(10.0 * rate), round(100.0 * rate)
    t = np.concatenate([b.t_ns for b in batches])
    # independent truth: sample k is stamped start + k / rate
    want = start + np.round(np.arange(k0, k1) / rate * 1e9).astype(np.int64)
    np.testing.assert_array_equal(t, want)
    np.testing.assert_array_equal(np.concatenate([b.accel_g for b in batches]), rec.accel_g[k0:k1])
    assert all(len(b) == round(7.0 * rate) for b in batches[:-1])
    assert [b.seq for b in batches] == list(range(len(batches)))
    assert {b.wearer_id for b in batches} == {"p1"}


def test_percentile_and_cpu_timer() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert math.isnan(percentile([], 99))
    spent = best_cpu_of(lambda: sum(range(200_000)), repeat=2)
    assert 0 < spent < 5


def test_table_shows_every_entry_with_status_and_notes() -> None:
    entries = [
        Entry("a.fast", 12.5, "x/s", "peer", 2.5, 5.0, ">= 2x", True, "note a"),
        Entry("b.slow", 0.5, "s", target="<= 0.1 s", ok=False),
        Entry("c.info", 3.0, "n"),
    ]
    text = format_table(entries)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["name", "value", "unit"]
    row_a = next(line for line in lines if line.startswith("a.fast"))
    assert row_a.split()[-1] == "ok"
    assert "5x" in row_a
    assert next(line for line in lines if line.startswith("b.slow")).split()[-1] == "GAP"
    assert next(line for line in lines if line.startswith("c.info")).split()[-1] == "-"
    assert "  a.fast: note a" in lines


def test_soak_reports_rss_over_the_run() -> None:
    from bench.soak import soak

    r = soak(wearers=2, hours=0.2, chunk_s=60.0, budget_s=0.0)
    assert r["hours_done"] == pytest.approx(0.2)
    assert not r["stopped_early"]
    assert r["rss_end_bytes"] > 10 * 2**20  # numpy and the analysis are resident
    assert r["encoded_bytes"] > 0  # epochs reached the line-protocol encoder


def test_quick_run_of_one_module_writes_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "decode", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["failed_modules"] == []
    assert doc["machine"]["cores"] >= 1
    assert set(doc["module_wall_s"]) == {"decode"}
    names = [e["name"] for e in doc["entries"]]
    assert names == ["decode_witmotion", "decode_movesense", "decode_metamotion"]
    for e in doc["entries"]:
        assert set(e) == ENTRY_KEYS
        assert e["value"] > 0
        assert isinstance(e["ok"], bool)
        assert e["ratio"] == pytest.approx(e["value"] / e["baseline_value"], rel=1e-6)
    assert "decode_metamotion" in proc.stdout  # the table


def test_unknown_module_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nosuch", "--out", str(tmp_path / "b.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown module(s) ['nosuch']" in proc.stderr
    assert "decode" in proc.stderr  # lists what exists

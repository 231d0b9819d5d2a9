"""Shared helpers for the store and bus tests (deterministic data, service control)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from analysis.contracts import EPOCH_DTYPE, Activity

HOUR_NS = 3_600_000_000_000
S_NS = 1_000_000_000


def recent_hour_ns(hours_ago: int = 6) -> int:
    """A whole hour in the recent past: InfluxDB drops points older than the
    retention policy, so test data must be recent."""
    return (time.time_ns() // HOUR_NS - hours_ago) * HOUR_NS


def make_epochs(wearer_index: int, t0_ns: int, n: int, start: int = 0) -> np.ndarray:
    """Deterministic valid epochs: epoch k of wearer w is fully determined by (w, k).

    Activities change every 5 min, angles follow smooth functions of k, a
    few angles are NaN (as while not worn), so a reader can recompute
    exactly what must be stored.
    """
    k = np.arange(start, start + n, dtype=np.int64)
    e = np.zeros(n, dtype=EPOCH_DTYPE)
    e["time_ns"] = t0_ns + k * S_NS
    e["activity"] = ((k // 300) + wearer_index) % len(Activity)
    e["inclination_deg"] = 10 + 20 * np.sin(k / 97.0 + wearer_index)
    e["inclination_deg"] = np.abs(e["inclination_deg"])
    e["flexion_deg"] = 15 * np.cos(k / 61.0 + wearer_index)
    e["lateral_deg"] = 3 * np.sin(k / 13.0)
    e["static"] = (k // 120) % 2 == 0
    e["intensity_g"] = 0.05 + 0.05 * np.abs(np.sin(k / 7.0))
    nan_rows = (e["activity"] == int(Activity.NONWEAR)) & (k % 2 == 0)
    e["flexion_deg"][nan_rows] = np.nan
    return e


def stop_service(svc: Any, name: str) -> None:
    """Stop one of a private LocalServices' servers (SIGTERM, like `services down`)."""
    pidfile = Path(svc.root) / name / f"{name}.pid"
    pid = int(pidfile.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            if stat == "Z":
                break
        except (ProcessLookupError, FileNotFoundError):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def start_services(svc: Any) -> None:
    svc.up(log=lambda _msg: None)


def parse_schema_doc(path: Path) -> dict[str, dict[str, Any]]:
    """Measurements of docs/SCHEMA.md: {name: {rp, tags, fields: {name: type}}}."""
    text = path.read_text(encoding="utf-8")
    out: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        m = re.match(r"^### `([^`]+)`", line)
        if m:
            current = {"rp": None, "tags": [], "fields": {}}
            out[m.group(1)] = current
            continue
        if current is None:
            continue
        m = re.match(r"^- retention policy: `([^`]+)`", line)
        if m:
            current["rp"] = m.group(1)
        m = re.match(r"^- tags: (.*)$", line)
        if m:
            current["tags"] = re.findall(r"`([^`]+)`", m.group(1))
        m = re.match(r"^\| `([^`]+)` \| (float|integer|string|boolean) \|", line)
        if m:
            current["fields"][m.group(1)] = m.group(2)
    return out

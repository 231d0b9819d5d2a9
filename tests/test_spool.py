"""Disk spool: FIFO across reopen, torn tails, bounded size with counted drops."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from postmon.store.spool import Spool


def _drain(sp: Spool) -> list[tuple[dict, bytes, int]]:
    out = []
    while (rec := sp.peek()) is not None:
        out.append((rec.meta, rec.body, rec.points))
        sp.pop()
    return out


def test_fifo_and_survives_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    for i in range(20):
        sp.append({"i": i}, f"body {i}\n".encode() * (i + 1), i + 1)
    assert len(sp) == 20
    assert sp.points == sum(range(1, 21))
    first = sp.peek()
    assert first is not None
    assert first.meta == {"i": 0}
    for _ in range(7):
        sp.pop()
    sp.close()
    # a restart: the 13 unconsumed records come back, oldest first
    sp2 = Spool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    got = _drain(sp2)
    assert [m["i"] for m, _, _ in got] == list(range(7, 20))
    assert got[0][1] == b"body 7\n" * 8
    assert [p for _, _, p in got] == list(range(8, 21))
    # fully consumed: no segment files left behind
    assert not list(tmp_path.glob("*.seg"))
    sp2.append({"i": 99}, b"x", 1)
    sp2.close()
    assert [m["i"] for m, _, _ in _drain(Spool(tmp_path, max_bytes=10_000_000))] == [99]


def test_torn_tail_is_cut_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sp = Spool(tmp_path, max_bytes=10_000_000)
    for i in range(3):
        sp.append({"i": i}, b"0123456789" * 10, 10)
    sp.close()
    seg = next(tmp_path.glob("*.seg"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-17])  # a crash in the middle of the last append
    with caplog.at_level(logging.ERROR):
        sp2 = Spool(tmp_path, max_bytes=10_000_000)
    assert "damaged" in caplog.text
    assert [m["i"] for m, _, _ in _drain(sp2)] == [0, 1]


def test_full_spool_drops_oldest_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"x" * 1000
    sp = Spool(tmp_path, max_bytes=20_000, segment_bytes=4_000)
    with caplog.at_level(logging.ERROR):
        for i in range(60):
            sp.append({"i": i}, body, 5)
    assert sp.size_bytes <= 20_000
    kept = [m["i"] for m, _, _ in _drain(sp)]
    # the newest records are kept, contiguous, in order; the dropped ones are counted
    assert kept == list(range(60 - len(kept), 60))
    assert sp.dropped_records == 60 - len(kept)
    assert sp.dropped_points == 5 * (60 - len(kept))
    assert "SPOOL FULL" in caplog.text
    assert "raise the spool limit" in caplog.text

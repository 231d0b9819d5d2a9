"""``make eval``'s simulator part, on a short day: what it reports adds up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import eval as eval_script


def test_simulator_scores_are_reported_per_placement(capsys: pytest.CaptureFixture[str]) -> None:
    res = eval_script.eval_sim(300.0, 1, log=False, profiles=("desk_worker",))
    rows = res["recordings"]
    assert isinstance(rows, list)
    assert sorted(r["placement"] for r in rows) == ["lower", "upper"]
    by_pl = res["sitting_error_by_placement"]
    assert isinstance(by_pl, dict)
    for r in rows:
        entry = by_pl[r["placement"]]
        assert entry["recordings"] == 1
        assert entry["mean"] == entry["worst"] == r["sitting_time_error_pct"]
    worst = res["worst"]
    assert isinstance(worst, dict)
    assert worst["sitting_time_error_pct"] == max(r["sitting_time_error_pct"] for r in rows)
    eval_script.print_sim(res)
    out = capsys.readouterr().out
    assert "sitting_time_error_pct by placement" in out
    assert "upper back" in out
    assert "lower back" in out

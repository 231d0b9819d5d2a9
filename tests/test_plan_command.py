"""``postmon plan add|list`` records plan changes where dashboards and report read them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from postmon.cli import main
from tests.conftest import INFLUX_URL, influx_query


def _config(tmp_path: Path, db: str) -> str:
    path = tmp_path / "postmon.toml"
    path.write_text(
        f'site = "clinic-a"\n[influxdb]\nurl = "{INFLUX_URL}"\ndatabase = "{db}"\n'
        f'spool_dir = "{tmp_path / "spool"}"\n',
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.integration
def test_plan_add_then_list(
    influx_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, influx_db)
    rc = main(
        [
            "plan",
            "add",
            "--config",
            cfg,
            "--wearer",
            "w-01",
            "--title",
            "nudge every 30 min",
            "--text",
            "Going well: reminders every 30 minutes now.",
            "--settings",
            '{"static_nudge_min": 30}',
            "--at",
            "2026-11-20T09:00",
            "--timezone",
            "Europe/Berlin",
        ]
    )
    assert rc == 0
    assert "recorded for clinic-a/w-01" in capsys.readouterr().out
    res = influx_query(
        'SELECT "title", "text", "settings_json", "site", "wearer" FROM "forever"."plan_change"',
        db=influx_db,
    )
    series = res["results"][0]["series"][0]
    row = dict(zip(series["columns"], series["values"][0], strict=True))
    expected = dt.datetime(2026, 11, 20, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert dt.datetime.fromisoformat(row["time"].replace("Z", "+00:00")) == expected
    assert row["title"] == "nudge every 30 min"
    assert row["site"] == "clinic-a"
    assert row["wearer"] == "w-01"
    assert json.loads(row["settings_json"]) == {"static_nudge_min": 30}

    assert (
        main(
            [
                "plan",
                "list",
                "--config",
                cfg,
                "--wearer",
                "w-01",
                "--days",
                "3650",
                "--timezone",
                "Europe/Berlin",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2026-11-20 09:00  nudge every 30 min" in out


def test_plan_add_rejects_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["plan", "add", "--wearer", "w-01", "--title", "x", "--settings", "[1, 2]"])
    assert rc == 2
    assert "JSON object" in capsys.readouterr().err

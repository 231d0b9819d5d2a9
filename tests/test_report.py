"""The therapist's report: numbers, wording, and how it renders in a real browser.

Unit tests check the weekly arithmetic and the plain-language summary on
hand-made days; integration tests read demo-like data from the real InfluxDB
through ``postmon report`` and render the page in headless Chromium (Debian's
``chromium``, installed by scripts/ensure-chromium.sh, which ``make test`` runs).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html as html_mod
import math
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.contracts import DailySummary
from dashboards.report import model
from dashboards.report.model import NudgeRow, ReportData
from postmon.cli import main
from tests import dashboard_scenario as sc
from tests.conftest import INFLUX_URL

PLOT_IDS = ("posture", "static", "flexion", "apdf", "eva", "nudges")


def _day(date: str, **values: Any) -> DailySummary:
    base: dict[str, Any] = {}
    for f in dataclasses.fields(DailySummary):
        if f.name == "date":
            base[f.name] = date
        elif f.name == "eva_min":
            base[f.name] = (0.0,) * 24
        elif f.name == "settings":
            base[f.name] = {}
        elif f.type in ("int", int):
            base[f.name] = 0
        else:
            base[f.name] = 0.0
    base.update(values)
    return DailySummary(**base)


def test_hours_minutes() -> None:
    assert model.hours_minutes(45.4) == "45 min"
    assert model.hours_minutes(250.4) == "4 h 10 min"
    assert model.hours_minutes(120) == "2 h"
    assert model.hours_minutes(61) == "1 h 01 min"


def test_weeks_are_means_per_worn_day_max_and_sums() -> None:
    days = [
        # Monday 2 and Wednesday 4 November 2026; Friday 6 not worn
        _day(
            "2026-11-02",
            wear_min=400,
            sitting_min=200,
            longest_static_bout_min=40,
            sitting_bouts_ge30=2,
            breaks_per_h=3.0,
        ),
        _day(
            "2026-11-04",
            wear_min=500,
            sitting_min=300,
            longest_static_bout_min=70,
            sitting_bouts_ge30=1,
            breaks_per_h=5.0,
        ),
        _day("2026-11-06", wear_min=0, sitting_min=0),
        _day(
            "2026-11-09",
            wear_min=450,
            sitting_min=150,
            longest_static_bout_min=20,
            breaks_per_h=4.0,
        ),
    ]
    nudges = [
        NudgeRow(0, "2026-11-03", True, 30.0),
        NudgeRow(0, "2026-11-05", False, None),
        NudgeRow(0, "2026-11-10", True, 12.0),
    ]
    weeks = model.weeks_of(days, nudges)
    assert [w.monday for w in weeks] == [dt.date(2026, 11, 2), dt.date(2026, 11, 9)]
    first, second = weeks
    assert first.days_worn == 2
    assert first.sitting_min == 250
    assert first.wear_min == 450
    assert first.longest_static_bout_min == 70
    assert first.sitting_bouts_ge30 == 3
    assert first.breaks_per_h == 4.0
    assert (first.nudges_sent, first.nudges_answered) == (2, 1)
    assert second.sitting_min == 150
    assert second.response_rate == 1.0
    changes = {c.label: c for c in model.week_over_week(weeks)}
    assert changes["Sitting per day"].delta == -100
    assert changes["Moved after a nudge"].after == 100.0
    assert changes["Moved after a nudge"].before == 50.0


def _report(days: list[DailySummary], nudges: tuple[NudgeRow, ...] = ()) -> ReportData:
    return ReportData(
        site="s",
        wearer="w",
        date_from=dt.date(2026, 11, 2),
        date_to=dt.date(2026, 11, 15),
        timezone="UTC",
        days=tuple(days),
        nudges=nudges,
        weeks=model.weeks_of(days, nudges),
    )


def _words_ok(sentences: list[str]) -> None:
    text = " ".join(sentences).lower()
    bad = [w for w in model.AVOIDED_WORDS if w in text]
    assert not bad, f"summary uses {bad}: {text}"


@pytest.mark.parametrize(
    ("second_week_sitting", "phrase"),
    [(180.0, "less per day"), (320.0, "more per day"), (241.0, "about the same")],
)
def test_summary_is_plain_and_encouraging(second_week_sitting: float, phrase: str) -> None:
    days = [
        _day(
            f"2026-11-{d:02d}",
            wear_min=420,
            sitting_min=s,
            standing_min=60,
            walking_min=30,
            longest_static_bout_min=35 + d,
            breaks_per_h=3.2,
            flexion_lt20_min=300,
        )
        for d, s in [(2, 240), (3, 240), (9, second_week_sitting), (10, second_week_sitting)]
    ]
    nudges = (NudgeRow(0, "2026-11-03", True, 20.0), NudgeRow(0, "2026-11-10", False, None))
    sentences = model.summary_sentences(_report(days, nudges))
    _words_ok(sentences)
    text = " ".join(sentences)
    assert "4 of 14 days" in text
    assert "7 h" in text  # 420 min a day
    assert phrase in text
    assert "1 out of 2 times" in text
    assert "Tuesday 10 November" in text  # the day with the longest still stretch (45 min)
    assert "71%" in text  # 300 of 420 min within 20°


def test_summary_without_data_invites_rather_than_blames() -> None:
    sentences = model.summary_sentences(_report([]))
    _words_ok(sentences)
    assert "no sensor data" in sentences[0]


def test_settings_periods() -> None:
    a, b = {"static_nudge_min": 40}, {"static_nudge_min": 30}
    days = [
        _day("2026-11-02", settings=a),
        _day("2026-11-03", settings=a),
        _day("2026-11-04", settings=b),
    ]
    assert model.settings_periods(days) == [
        ("2026-11-02", "2026-11-03", a),
        ("2026-11-04", "2026-11-04", b),
    ]


# ----------------------------------------------------------- integration


def _make_report(
    scenario: sc.Scenario, tmp_path: Path, extra: tuple[str, ...] = ()
) -> tuple[Path, dt.date, dt.date]:
    config = tmp_path / "postmon.toml"
    config.write_text(
        f'[influxdb]\nurl = "{INFLUX_URL}"\ndatabase = "{scenario.db}"\n', encoding="utf-8"
    )
    w = scenario.wearers[sc.TARGET]
    first, last = w.daily[0].date, w.daily[-1].date
    out = tmp_path / "report.html"
    rc = main(
        [
            "report",
            "--config",
            str(config),
            "--site",
            sc.TARGET[0],
            "--wearer",
            sc.TARGET[1],
            "--from",
            first,
            "--to",
            last,
            "--timezone",
            sc.TZ,
            "--out",
            str(out),
            *extra,
        ]
    )
    assert rc == 0
    return out, dt.date.fromisoformat(first), dt.date.fromisoformat(last)


def _table_after(page: str, heading: str) -> list[list[str]]:
    start = page.index(heading)
    table = page[page.index("<tbody>", start) : page.index("</tbody>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [
        [
            html_mod.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]


@pytest.fixture
def scenario(influx_db: str) -> sc.Scenario:
    return sc.build(influx_db)


@pytest.mark.integration
def test_report_from_influx_matches_inputs(scenario: sc.Scenario, tmp_path: Path) -> None:
    out, first, last = _make_report(scenario, tmp_path)
    page = out.read_text(encoding="utf-8")
    w = scenario.wearers[sc.TARGET]
    for pid in PLOT_IDS:
        m = re.search(rf'<figure id="plot-{pid}"[^>]*>\s*<svg', page)
        assert m, f"plot {pid} missing"
    # self-contained: no scripts, nothing fetched from elsewhere
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only in-page references (clip paths)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "duplicate element ids between the inlined charts"

    # day by day: every worn day, sitting minutes as written
    rows = _table_after(page, "<h2>Day by day</h2>")
    worn = [d for d in w.daily if d.wear_min > 0]
    assert len(rows) == len(worn)
    for row, d in zip(rows, worn, strict=True):
        assert row[0] == f"{dt.date.fromisoformat(d.date):%a %d %b}"
        assert row[2] == f"{d.sitting_min:.0f}"
    # week by week: means per worn day, computed here from the inputs
    weeks: dict[dt.date, list[DailySummary]] = defaultdict(list)
    for d in worn:
        day = dt.date.fromisoformat(d.date)
        weeks[day - dt.timedelta(days=day.weekday())].append(d)
    week_rows = _table_after(page, "<h2>Week by week</h2>")
    assert [r[0] for r in week_rows] == [f"{m:%d %b}" for m in sorted(weeks)]
    for row, monday in zip(week_rows, sorted(weeks), strict=True):
        ds = weeks[monday]
        assert row[1] == str(len(ds))
        assert row[3] == f"{np.mean([d.sitting_min for d in ds]):.0f}"
        assert row[5] == f"{max(d.longest_static_bout_min for d in ds):.0f}"
        sent = [n for n in w.nudges if _local_monday(n.time_ns) == monday]
        expected = f"{sum(bool(n.answered) for n in sent)}/{len(sent)}" if sent else "–"
        assert row[11] == expected
    # plan changes and both settings periods
    for _t, title, text in w.plans:
        assert html_mod.escape(title) in page
        assert html_mod.escape(text) in page
    assert page.count("static_nudge_min") == 2
    summary = page[
        page.index('<div class="summary">') : page.index(
            "</div>", page.index('<div class="summary">')
        )
    ]
    _words_ok([html_mod.unescape(re.sub(r"<[^>]+>", " ", summary))])
    assert f"{len(worn)} of {(last - first).days + 1} days" in summary


def _local_monday(time_ns: int) -> dt.date:
    from zoneinfo import ZoneInfo

    day = dt.datetime.fromtimestamp(time_ns / 1e9, ZoneInfo(sc.TZ)).date()
    return day - dt.timedelta(days=day.weekday())


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: run scripts/ensure-chromium.sh (make test does)")
    return exe


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


CHECKER = """
<script>
(function () {
  var figs = document.querySelectorAll("figure.plot");
  var ok = [];
  figs.forEach(function (f) {
    var svg = f.querySelector("svg");
    if (!svg) return;
    var r = svg.getBoundingClientRect();
    var marks = svg.querySelectorAll("path, rect, use, image").length;
    if (r.width > 300 && r.height > 100 && marks > 20) ok.push(f.id);
  });
  document.body.setAttribute("data-plots-ok", ok.join(","));
})();
</script>
"""


@pytest.mark.integration
def test_report_renders_in_headless_chromium(scenario: sc.Scenario, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    out, _first, _last = _make_report(scenario, tmp_path, ("--pdf", str(pdf)))
    # 0. printed: an A4 PDF of several pages (print CSS: charts are not split)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", data)
    assert 3 <= len(pages) <= 10, len(pages)
    boxes = {
        tuple(round(float(v)) for v in m.split()[2:4])
        for m in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", data)
    }
    assert boxes == {(595, 842)}  # A4 in points
    # 1. the page as written: no console output at all (it has no scripts, so
    #    anything logged is a browser-side error such as a broken resource)
    shot = tmp_path / "report.png"
    proc = _run_chromium(
        ["--window-size=1100,2400", f"--screenshot={shot}", out.as_uri()], tmp_path / "p1"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    # 2. a copy with a checker script: every chart laid out with real marks
    checked = tmp_path / "checked.html"
    checked.write_text(out.read_text(encoding="utf-8").replace("</body>", CHECKER + "</body>"))
    proc = _run_chromium(["--dump-dom", checked.as_uri()], tmp_path / "p2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'data-plots-ok="([^"]*)"', proc.stdout)
    assert m, "checker did not run"
    assert sorted(m.group(1).split(",")) == sorted(f"plot-{p}" for p in PLOT_IDS)
    # 3. the screenshot shows the page: mostly white paper, the sitting orange present
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert img.shape[:2] == (2400, 1100)
    white = np.all(img > 245, axis=2).mean()
    assert 0.4 < white < 0.97, white
    orange = np.all(np.abs(img - np.array([0xE6, 0x9F, 0x00])) < 12, axis=2).sum()
    assert orange > 2000, "the posture chart's sitting bars are not visible"
    assert not math.isnan(float(white))


def test_pdf_without_chromium_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboards.report import pdf as pdf_mod
    from postmon.errors import PostmonError, Reason

    monkeypatch.setattr(pdf_mod.shutil, "which", lambda _name: None)
    page = tmp_path / "r.html"
    page.write_text("<!doctype html><p>x</p>", encoding="utf-8")
    with pytest.raises(PostmonError) as info:
        pdf_mod.html_to_pdf(page, tmp_path / "r.pdf")
    assert info.value.reason is Reason.DEPENDENCY_MISSING
    assert "ensure-chromium.sh" in str(info.value)

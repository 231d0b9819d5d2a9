"""Every panel query of the committed dashboards, run against the real InfluxDB.

No Grafana server exists here, so each query is expanded exactly as Grafana
would (dashboards.grafana_query: time filter, interval, template variables)
and sent to the real InfluxDB 1.6 holding demo-like data
(tests/dashboard_scenario.py). Each must return the columns its panel uses,
with values equal to what the test computes itself from the written inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analysis.contracts import ACTIVITY_LABELS, Activity, EventKind
from dashboards import build
from dashboards import grafana_query as gq
from tests import dashboard_scenario as sc
from tests.conftest import INFLUX_URL

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
PANEL_WIDTH_PX = 1000  # Grafana's maxDataPoints default: the panel's width in pixels
DAY_MS = 86_400_000


@pytest.fixture
def scenario(influx_db: str) -> sc.Scenario:
    return sc.build(influx_db)


def _dashboard(uid: str) -> dict[str, Any]:
    return json.loads((REPO / "dashboards" / build.JSON_DIR / f"{uid}.json").read_text())


def _panels(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in d["panels"]:
        if p["type"] != "row":
            yield p
        yield from p.get("panels", [])


def _ctx(scn: sc.Scenario, t_from: int, variables: dict[str, str]) -> gq.QueryContext:
    return gq.QueryContext(
        time_from_ms=t_from,
        time_to_ms=scn.now_ms,
        variables=gq.variables_from_mapping(variables),
        max_data_points=PANEL_WIDTH_PX,
        datasource_min_interval=build.DATASOURCE_MIN_INTERVAL,
    )


def _run(db: str, q: str) -> list[dict[str, Any]]:
    # POST with epoch=ms, as Grafana's InfluxDB data source sends it
    data = urllib.parse.urlencode({"q": q, "db": db, "epoch": "ms"}).encode()
    with urllib.request.urlopen(f"{INFLUX_URL}/query", data=data, timeout=30) as resp:
        body = json.loads(resp.read())
    result = body["results"][0]
    assert "error" not in result, f"InfluxDB refused {q!r}: {result['error']}"
    return list(result.get("series", []))


Results = dict[tuple[str, str], list[dict[str, Any]]]


def run_dashboard(uid: str, ctx: gq.QueryContext, db: str) -> Results:
    """(panel title, refId) -> InfluxDB series for every target of the dashboard."""
    out: Results = {}
    for panel in _panels(_dashboard(uid)):
        for t in panel["targets"]:
            q = gq.expand(t["query"], ctx, panel.get("interval"))
            leftover = gq.VARIABLE_RE.search(q)
            assert leftover is None, f"unexpanded {leftover.group(0)} in {q!r}"
            out[(panel["title"], t["refId"])] = _run(db, q)
    return out


def _columns_used_by_overrides(panel: dict[str, Any]) -> set[str]:
    return {
        o["matcher"]["options"]
        for o in panel["fieldConfig"].get("overrides", [])
        if o["matcher"]["id"] == "byName"
    }


def check_columns(uid: str, results: Results, spec: dict[str, dict[str, list[str]]]) -> None:
    """Every panel is in the spec; every target returns exactly the spec's columns,
    and the fields the panel's overrides style exist."""
    d = _dashboard(uid)
    titles = {p["title"] for p in _panels(d)}
    assert titles == set(spec), f"panels without a column spec: {titles ^ set(spec)}"
    for panel in _panels(d):
        produced: set[str] = set()
        for ref, cols in spec[panel["title"]].items():
            series = results[(panel["title"], ref)]
            assert series, f"{panel['title']}/{ref}: no series"
            for s in series:
                assert s["columns"] == cols, (panel["title"], ref, s["columns"])
                produced |= set(cols) | set(s.get("tags", {}))
        derived = {t["options"].get("alias") for t in panel.get("transformations", [])}
        missing = _columns_used_by_overrides(panel) - produced - derived
        assert not missing, f"{panel['title']}: overrides name absent fields {missing}"


def _by_time(series: list[dict[str, Any]], column: str) -> dict[int, Any]:
    assert len(series) == 1, series
    s = series[0]
    i = s["columns"].index(column)
    return {row[0]: row[i] for row in s["values"]}


def _single(series: list[dict[str, Any]], column: str) -> Any:
    values = list(_by_time(series, column).values())
    assert len(values) == 1, values
    return values[0]


def _by_tag(series: list[dict[str, Any]], tag: str, column: str) -> dict[str, Any]:
    out = {}
    for s in series:
        i = s["columns"].index(column)
        assert len(s["values"]) == 1
        out[s["tags"][tag]] = s["values"][0][i]
    return out


# ----------------------------------------------------------------- patient

PATIENT_COLUMNS = {
    "Right now": {"A": ["time", "posture"]},
    "Last moved": {"A": ["time", "moved"]},
    "Sitting today": {"A": ["time", "sitting_min"]},
    "Times you stood up": {"A": ["time", "breaks"]},
    "Your day": {"A": ["time", "posture"]},
    "Trunk angle today": {"A": ["time", "lean from upright", "forward bend"]},
    "Reminders to move": {"A": ["time", "reminders"], "B": ["time", "you moved"]},
    "Today's reminders": {
        "A": ["time", "still for (min)", "moved after", "moved after (s)", "sent by"]
    },
}


def test_patient_today_panels(scenario: sc.Scenario) -> None:
    site, wearer = sc.TARGET
    t_from = scenario.epoch_start_ms
    ctx = _ctx(scenario, t_from, {"site": site, "wearer": wearer})
    res = run_dashboard("postmon-patient-today", ctx, scenario.db)
    check_columns("postmon-patient-today", res, PATIENT_COLUMNS)
    w = scenario.wearers[sc.TARGET]
    e = w.epochs
    t_ms = e["time_ns"] // 1_000_000

    assert _single(res[("Right now", "A")], "posture") == ACTIVITY_LABELS[int(e["activity"][-1])]
    moved = np.flatnonzero(~e["static"])
    assert _by_time(res[("Last moved", "A")], "moved") == {
        int(t_ms[moved[-1]]): pytest.approx(float(np.round(e["intensity_g"][moved[-1]], 4)))
    }
    sitting_s = int(np.count_nonzero(e["activity"] == Activity.SITTING))
    assert _single(res[("Sitting today", "A")], "sitting_min") == pytest.approx(sitting_s / 60)
    stood = [
        ev for ev in w.events if ev.kind == EventKind.SIT_TO_STAND and ev.time_ns // 10**6 >= t_from
    ]
    assert _single(res[("Times you stood up", "A")], "breaks") == len(stood)

    # per-minute buckets: the panel's 1-min minimum beats 2 h / 1000 px
    assert gq.calculate_interval_ms(ctx, "1m") == 60_000
    minute = t_ms // 60_000 * 60_000
    timeline = _by_time(res[("Your day", "A")], "posture")
    expected_mode: dict[int, str] = {}
    means: dict[int, tuple[float | None, float | None]] = {}
    for m in np.unique(minute):
        sel = minute == m
        counts = Counter(int(a) for a in e["activity"][sel])
        expected_mode[int(m)] = ACTIVITY_LABELS[counts.most_common(1)[0][0]]
        incl = e["inclination_deg"][sel].astype(np.float64)
        flex = e["flexion_deg"][sel].astype(np.float64)
        means[int(m)] = (
            None if np.all(np.isnan(incl)) else float(np.nanmean(np.round(incl, 2))),
            None if np.all(np.isnan(flex)) else float(np.nanmean(np.round(flex, 2))),
        )
    assert {k: v for k, v in timeline.items() if v is not None} == expected_mode
    series = res[("Trunk angle today", "A")][0]
    got = {row[0]: (row[1], row[2]) for row in series["values"] if row[0] in means}
    assert set(got) == set(means)
    for m, (incl, flex) in means.items():
        assert got[m][0] == (pytest.approx(incl) if incl is not None else None)
        assert got[m][1] == (pytest.approx(flex) if flex is not None else None)
    # buckets after the last epoch (up to now) are empty, not invented
    assert all(row[1] is None for row in series["values"] if row[0] not in means)

    today = [n for n in w.nudges if n.time_ns // 10**6 >= t_from]
    assert today, "scenario must put nudges in the last hours"
    assert _single(res[("Reminders to move", "A")], "reminders") == len(today)
    assert _single(res[("Reminders to move", "B")], "you moved") == sum(
        bool(n.answered) for n in today
    )
    rows = res[("Today's reminders", "A")][0]["values"]
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (n.time_ns // 10**6, n.static_min, n.answered, n.response_delay_s, n.channel) for n in today
    ]


# --------------------------------------------------------------- therapist


def _week_start_ms(t_ms: int) -> int:
    """Local Monday 00:00 (Europe/Berlin) of the week holding ``t_ms``, in UTC ms."""
    zone = ZoneInfo(sc.TZ)
    local = dt.datetime.fromtimestamp(t_ms / 1000, zone)
    monday = local.date() - dt.timedelta(days=local.weekday())
    return int(dt.datetime.combine(monday, dt.time(0), tzinfo=zone).timestamp() * 1000)


def _day_start_ms(t_ms: int) -> int:
    zone = ZoneInfo(sc.TZ)
    d = dt.datetime.fromtimestamp(t_ms / 1000, zone).date()
    return int(dt.datetime.combine(d, dt.time(0), tzinfo=zone).timestamp() * 1000)


def _snap(got: dict[int, Any], starts: set[int]) -> dict[int, Any]:
    """Key each GROUP BY bucket by the local day/week start it stands for.

    InfluxDB 1.6 with ``tz()`` labels a bucket that follows a daylight-saving
    change one hour off local midnight (its contents are right); Grafana only
    draws the bar an hour early. Anything further off fails.
    """
    out = {}
    for t, v in got.items():
        near = [s for s in starts if abs(s - t) <= 3_600_000]
        assert len(near) == 1, f"bucket {t} is not at a local day/week start"
        out[near[0]] = v
    return out


AGG: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda v: float(np.mean(v)),
    "max": lambda v: float(np.max(v)),
    "sum": lambda v: float(np.sum(v)),
}

#: Trend panels: title -> (daily field, label) pairs and the weekly aggregate.
TRENDS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "Time in each posture per day": (
        (
            ("sitting_min", "sitting"),
            ("standing_min", "standing"),
            ("walking_min", "walking"),
            ("lying_min", "lying"),
            ("other_min", "other"),
        ),
        "mean",
    ),
    "Sitting time": ((("sitting_min", "sitting"),), "mean"),
    "Longest static bout": ((("longest_static_bout_min", "longest still period"),), "max"),
    "Bouts of 30 min or more": (
        (
            ("sitting_bouts_ge30", "sitting bouts >= 30 min"),
            ("static_bouts_ge30", "still periods >= 30 min"),
        ),
        "sum",
    ),
    "Breaks per hour of sitting": ((("breaks_per_h", "breaks per hour"),), "mean"),
    "Posture changes per hour worn": (
        (("posture_changes_per_h", "posture changes per hour"),),
        "mean",
    ),
    "Wear time": ((("wear_min", "worn"),), "mean"),
    "Minutes in trunk-flexion bands": (
        (
            ("flexion_lt20_min", "< 20°"),
            ("flexion_20_45_min", "20-45°"),
            ("flexion_45_60_min", "45-60°"),
            ("flexion_gt60_min", "> 60°"),
        ),
        "mean",
    ),
    "Trunk inclination percentiles (APDF)": (
        (("incl_p10_deg", "P10"), ("incl_p50_deg", "P50"), ("incl_p90_deg", "P90")),
        "mean",
    ),
    "Share of time held > 1 min (EVA)": ((("eva_share_gt1min", "held > 1 min"),), "mean"),
}
EVA_ROWS = ("1", "5", "30", "60", "300", "+Inf")
EVA_TITLES = (
    "EVA 0-20°: minutes by duration held",
    "EVA 20-45°: minutes by duration held",
    "EVA 45-60°: minutes by duration held",
    "EVA > 60°: minutes by duration held",
)


def _therapist_columns() -> dict[str, dict[str, list[str]]]:
    spec: dict[str, dict[str, list[str]]] = {}
    for title, (pairs, _agg) in TRENDS.items():
        labels = [label for _f, label in pairs]
        spec[title] = {
            "A": ["time", *labels],
            "B": ["time", *(f"{label} (week)" for label in labels)],
        }
    for title in EVA_TITLES:
        spec[title] = {"A": ["time", *EVA_ROWS]}
    spec["Nudge response rate"] = {"A": ["time", "answered %"], "B": ["time", "answered % (week)"]}
    spec["Nudges sent and answered per day"] = {"A": ["time", "sent"], "C": ["time", "answered"]}
    spec["Plan changes"] = {"A": ["time", "change", "notes"]}
    spec["Settings behind these numbers"] = {"A": ["time", "settings"]}
    return spec


def test_therapist_trend_panels(scenario: sc.Scenario) -> None:
    site, wearer = sc.TARGET
    ctx = _ctx(scenario, scenario.first_day_ms, {"site": site, "wearer": wearer, "tz": sc.TZ})
    res = run_dashboard("postmon-therapist-trends", ctx, scenario.db)
    check_columns("postmon-therapist-trends", res, _therapist_columns())
    w = scenario.wearers[sc.TARGET]
    days = dict(zip(w.daily_time_ms, w.daily, strict=True))
    weeks: dict[int, list[int]] = defaultdict(list)
    for t in days:
        weeks[_week_start_ms(t)].append(t)
    assert len(weeks) >= 5

    for title, (pairs, agg) in TRENDS.items():
        daily_rows = res[(title, "A")][0]
        weekly_rows = res[(title, "B")][0]
        for field_name, label in pairs:
            i = daily_rows["columns"].index(label)
            got = {r[0]: r[i] for r in daily_rows["values"]}
            assert got == {t: pytest.approx(getattr(s, field_name)) for t, s in days.items()}, (
                title,
                label,
            )
            j = weekly_rows["columns"].index(f"{label} (week)")
            got_w = _snap({r[0]: r[j] for r in weekly_rows["values"]}, set(weeks))
            expected_w = {
                wk: pytest.approx(AGG[agg]([getattr(days[t], field_name) for t in ts]))
                for wk, ts in weeks.items()
            }
            assert got_w == expected_w, (title, label)

    for a, title in enumerate(EVA_TITLES):
        rows = res[(title, "A")][0]
        for d, name in enumerate(EVA_ROWS):
            i = rows["columns"].index(name)
            got = {r[0]: r[i] for r in rows["values"]}
            assert got == {t: pytest.approx(s.eva_min[a * 6 + d]) for t, s in days.items()}

    nudges = [n for n in w.nudges if n.time_ns // 10**6 >= scenario.first_day_ms]
    per_day: dict[int, list[bool]] = defaultdict(list)
    per_week: dict[int, list[bool]] = defaultdict(list)
    for n in nudges:
        t = n.time_ns // 10**6
        per_day[_day_start_ms(t)].append(bool(n.answered))
        per_week[_week_start_ms(t)].append(bool(n.answered))
    all_days = {_day_start_ms(scenario.first_day_ms + k * DAY_MS) for k in range(sc.N_DAYS + 1)}
    all_weeks = {_week_start_ms(d) for d in all_days}
    rate = _snap(_by_time(res[("Nudge response rate", "A")], "answered %"), all_days)
    assert rate == {d: pytest.approx(100 * sum(v) / len(v)) for d, v in per_day.items()}
    rate_w = _snap(_by_time(res[("Nudge response rate", "B")], "answered % (week)"), all_weeks)
    assert rate_w == {d: pytest.approx(100 * sum(v) / len(v)) for d, v in per_week.items()}
    sent = _snap(_by_time(res[("Nudges sent and answered per day", "A")], "sent"), all_days)
    answered = _snap(_by_time(res[("Nudges sent and answered per day", "C")], "answered"), all_days)
    assert {k: v for k, v in sent.items() if v} == {d: len(v) for d, v in per_day.items()}
    assert {k: v for k, v in answered.items() if v} == {
        d: sum(v) for d, v in per_day.items() if sum(v)
    }
    assert set(sent) >= {_day_start_ms(scenario.now_ms)}  # fill(0): every day has a bar

    plans = res[("Plan changes", "A")][0]["values"]
    assert [(r[0], r[1], r[2]) for r in plans] == w.plans
    settings = _single(res[("Settings behind these numbers", "A")], "settings")
    assert json.loads(settings) == w.daily[-1].settings

    ann = _dashboard("postmon-therapist-trends")["annotations"]["list"][0]
    series = _run(scenario.db, gq.expand_annotation(ann["query"], ctx))
    cols = series[0]["columns"]
    assert {ann["titleColumn"], ann["textColumn"]} <= set(cols)
    got_ann = [
        (r[0], r[cols.index(ann["titleColumn"])], r[cols.index(ann["textColumn"])])
        for r in series[0]["values"]
    ]
    assert got_ann == w.plans


# ------------------------------------------------------------------ clinic

CLINIC_COLUMNS = {
    "Wearers": {
        "A": ["time", "wear h/day (7 d)"],
        "B": ["time", "sitting min/day (7 d)"],
        "C": ["time", "sitting min/day (7 d before)"],
        "D": ["time", "battery %"],
        "E": ["time", "minutes recorded (last hour)"],
    },
    "Sitting per day, every wearer": {"A": ["time", "sitting"]},
    "Wear time per day, every wearer": {"A": ["time", "worn"]},
    "Sensor battery": {"A": ["time", "battery"]},
}


def test_clinic_overview_panels(scenario: sc.Scenario) -> None:
    site = sc.TARGET[0]
    t_from = scenario.now_ms - 14 * DAY_MS
    ctx = _ctx(scenario, t_from, {"site": site})
    res = run_dashboard("postmon-clinic-overview", ctx, scenario.db)
    check_columns("postmon-clinic-overview", res, CLINIC_COLUMNS)
    in_site = {k: w for k, w in scenario.wearers.items() if k[0] == site}
    to = scenario.now_ms

    def window_mean(w: sc.WearerData, attr: str, lo: int, hi: int, scale: float = 1.0) -> Any:
        v = [
            getattr(s, attr) / scale
            for t, s in zip(w.daily_time_ms, w.daily, strict=True)
            if lo < t <= hi
        ]
        return pytest.approx(float(np.mean(v))) if v else None

    def present(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if v is not None}

    wear = _by_tag(res[("Wearers", "A")], "wearer", "wear h/day (7 d)")
    assert wear == present(
        {k[1]: window_mean(w, "wear_min", to - 7 * DAY_MS, to, 60) for k, w in in_site.items()}
    )
    now7 = _by_tag(res[("Wearers", "B")], "wearer", "sitting min/day (7 d)")
    assert now7 == present(
        {k[1]: window_mean(w, "sitting_min", to - 7 * DAY_MS, to) for k, w in in_site.items()}
    )
    before7 = _by_tag(res[("Wearers", "C")], "wearer", "sitting min/day (7 d before)")
    assert before7 == present(
        {
            k[1]: window_mean(w, "sitting_min", to - 14 * DAY_MS, to - 7 * DAY_MS)
            for k, w in in_site.items()
        }
    )
    battery = _by_tag(res[("Wearers", "D")], "wearer", "battery %")
    assert battery == {k[1]: pytest.approx(w.status[-1].battery_pct) for k, w in in_site.items()}
    assert battery[sc.OTHERS[0][1]] < 20 < battery[sc.TARGET[1]]  # one low, one fine
    recorded = _by_tag(res[("Wearers", "E")], "wearer", "minutes recorded (last hour)")
    expected_rec = {}
    for k, w in in_site.items():
        t = w.epochs["time_ns"] // 1_000_000
        n = int(np.count_nonzero((t > to - 3_600_000) & (t <= to)))
        if n:
            expected_rec[k[1]] = pytest.approx(n / 60)
    assert recorded == expected_rec
    assert sc.SILENT[1] not in recorded  # the silent sensor has no row: shown as "silent"

    sitting = {
        s["tags"]["wearer"]: dict(s["values"]) for s in res[("Sitting per day, every wearer", "A")]
    }
    assert sitting == {
        k[1]: {
            t: pytest.approx(s.sitting_min)
            for t, s in zip(w.daily_time_ms, w.daily, strict=True)
            if t >= t_from
        }
        for k, w in in_site.items()
    }
    worn = {
        s["tags"]["wearer"]: dict(s["values"])
        for s in res[("Wear time per day, every wearer", "A")]
    }
    assert worn == {
        k[1]: {
            t: pytest.approx(s.wear_min / 60)
            for t, s in zip(w.daily_time_ms, w.daily, strict=True)
            if t >= t_from
        }
        for k, w in in_site.items()
    }
    interval = gq.calculate_interval_ms(ctx, "5m")
    assert interval == 1_200_000  # 14 days over 1000 px -> 20 min
    bat = {s["tags"]["wearer"]: dict(s["values"]) for s in res[("Sensor battery", "A")]}
    for k, w in in_site.items():
        buckets: dict[int, list[float]] = defaultdict(list)
        for st in w.status:
            t = st.time_ns // 1_000_000
            if t_from <= t <= to and st.battery_pct is not None:
                buckets[t // interval * interval].append(st.battery_pct)
        assert bat[k[1]] == {b: pytest.approx(float(np.mean(v))) for b, v in buckets.items()}


# --------------------------------------------------------------- variables


def test_template_variable_queries(scenario: sc.Scenario) -> None:
    for uid in ("postmon-patient-today", "postmon-therapist-trends", "postmon-clinic-overview"):
        ctx = _ctx(scenario, scenario.first_day_ms, {"site": sc.TARGET[0]})
        for var in _dashboard(uid)["templating"]["list"]:
            if var["type"] != "query":
                continue
            series = _run(scenario.db, gq.interpolate_variables(var["query"], ctx))
            values = {v[1] for s in series for v in s["values"]}
            if var["name"] == "site":
                assert values == {"clinic-a", "clinic-b"}, uid
            else:
                with_epochs = {
                    k[1]
                    for k, w in scenario.wearers.items()
                    if k[0] == sc.TARGET[0] and len(w.epochs)
                }
                everyone = {k[1] for k in scenario.wearers if k[0] == sc.TARGET[0]}
                assert values == (with_epochs if "epoch" in var["query"] else everyone), uid


def test_other_wearers_do_not_leak(scenario: sc.Scenario) -> None:
    """Same pseudonym at another site, or another wearer: never in w-01's panels."""
    site, wearer = sc.TARGET
    ctx = _ctx(scenario, scenario.first_day_ms, {"site": site, "wearer": wearer, "tz": sc.TZ})
    res = run_dashboard("postmon-therapist-trends", ctx, scenario.db)
    got = _by_time(res[("Sitting time", "A")], "sitting")
    other = scenario.wearers[sc.OTHERS[1]]  # clinic-b/w-01
    mine = scenario.wearers[sc.TARGET]
    assert got == {
        t: pytest.approx(s.sitting_min) for t, s in zip(mine.daily_time_ms, mine.daily, strict=True)
    }
    assert any(
        not math.isclose(a.sitting_min, b.sitting_min)
        for a, b in zip(mine.daily, other.daily, strict=False)
    )

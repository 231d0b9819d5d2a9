"""Dashboards as code: generated files up to date, valid SDK models, one data source.

The query expansion is checked against examples worked out by hand from
Grafana's source (rangeutil.ts, datasource.ts, formatRegistry.ts and the
backend's models/query.go); the queries themselves run against the real
InfluxDB in test_dashboards_queries.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import build
from dashboards import grafana_query as gq
from dashboards.influxql import DATASOURCE_UID, InfluxAnnotationQuery, InfluxQLQuery

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "dashboards"
EXPECTED_UIDS = {"postmon-patient-today", "postmon-therapist-trends", "postmon-clinic-overview"}


def _committed_dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((COMMITTED / build.JSON_DIR).glob("*.json"))
    }


def _panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in d.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def test_generated_files_are_committed_and_up_to_date() -> None:
    fresh = build.render()
    for rel, text in fresh.items():
        path = COMMITTED / rel
        assert path.exists(), f"{rel} missing: run `python -m dashboards.build`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{rel} is stale: run `python -m dashboards.build` and commit the result"
        )
    on_disk = {
        str(p.relative_to(COMMITTED))
        for sub in (build.JSON_DIR, build.PROVISIONING_DIR)
        for p in (COMMITTED / sub).rglob("*")
        if p.is_file()
    }
    assert on_disk == set(fresh), f"unexpected files: {sorted(on_disk - set(fresh))}"


def test_json_has_sorted_keys_and_stable_uids() -> None:
    dashboards = _committed_dashboards()
    assert set(dashboards) == EXPECTED_UIDS
    for uid, d in dashboards.items():
        assert d["uid"] == uid
        text = (COMMITTED / build.JSON_DIR / f"{uid}.json").read_text(encoding="utf-8")
        assert text == json.dumps(d, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        ids = [p["id"] for p in _panels(d)]
        assert ids == list(range(1, len(ids) + 1)), f"{uid}: panel ids not sequential"


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_json_round_trips_through_the_sdk_models(uid: str) -> None:
    """Decoding with the SDK and encoding again gives the same JSON: every key is
    one the SDK's models know (plus the documented InfluxQL annotation keys)."""
    plugins.register_default_plugins()
    data = _committed_dashboards()[uid]
    model = Dashboard.from_json(data)
    back = json.loads(JSONEncoder().encode(model))
    expected = json.loads(json.dumps(data))
    for ann in expected.get("annotations", {}).get("list", []):
        extra = set(ann) & set(InfluxAnnotationQuery.EXTRA_KEYS)
        assert extra == set(InfluxAnnotationQuery.EXTRA_KEYS), ann
        for key in extra:
            del ann[key]
    assert back == expected
    targets = [t for p in (model.panels or []) for t in (getattr(p, "targets", None) or [])]
    assert targets, "no targets decoded"
    assert all(isinstance(t, InfluxQLQuery) for t in targets)


def test_every_panel_and_variable_uses_the_provisioned_datasource() -> None:
    provisioning = (COMMITTED / build.PROVISIONING_DIR / "datasources" / "postmon.yaml").read_text()
    m = re.search(r"^\s+uid: (\S+)$", provisioning, re.M)
    assert m is not None
    assert m.group(1) == DATASOURCE_UID
    assert re.search(r"^\s+type: influxdb$", provisioning, re.M)
    for uid, d in _committed_dashboards().items():
        for panel in _panels(d):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}, panel
            assert panel["targets"], f"{uid}/{panel['title']} has no query"
            for t in panel["targets"]:
                assert t["datasource"]["uid"] == DATASOURCE_UID
                assert t["rawQuery"] is True
        for var in d["templating"]["list"]:
            if var["type"] == "query":
                assert var["datasource"]["uid"] == DATASOURCE_UID
        for ann in d.get("annotations", {}).get("list", []):
            assert ann["datasource"]["uid"] == DATASOURCE_UID


def test_provider_points_at_a_folder_and_path() -> None:
    text = build.provider_yaml(build.ExportSettings(dashboards_path="/srv/dash"))
    assert "type: file" in text
    assert "path: /srv/dash" in text
    assert "apiVersion: 1" in text


def test_export_settings_reach_the_files() -> None:
    files = build.render(
        build.ExportSettings(influx_url="http://db.example:8086", timezone="Europe/Berlin")
    )
    assert "url: http://db.example:8086" in files["provisioning/datasources/postmon.yaml"]
    trends = json.loads(files["json/postmon-therapist-trends.json"])
    tz = next(v for v in trends["templating"]["list"] if v["name"] == "tz")
    assert tz["query"] == "Europe/Berlin"
    # the password is only ever a reference to Grafana's environment
    assert re.findall(r"password: (\S+)", files["provisioning/datasources/postmon.yaml"]) == [
        "${POSTMON_INFLUX_PASSWORD}"
    ]


# ------------------------------------------------------- Grafana's expansion


@pytest.mark.parametrize(
    ("raw_ms", "rounded_ms"),
    [
        (5, 1),
        (7200, 5000),  # 2 h over 1000 px
        (86_400, 60_000),  # 1 day over 1000 px
        (2_592_000, 1_800_000),  # 30 days over 1000 px
        (3_628_800, 3_600_000),  # 42 days over 1000 px
        (700_000_000, 604_800_000),
        (5e10, 31_536_000_000),
    ],
)
def test_round_interval_table(raw_ms: float, rounded_ms: int) -> None:
    assert gq.round_interval(raw_ms) == rounded_ms


def test_interval_respects_panel_then_datasource_minimum() -> None:
    two_hours = gq.QueryContext(0, 7_200_000, max_data_points=1000, datasource_min_interval="1s")
    assert gq.calculate_interval_ms(two_hours) == 5000
    assert gq.calculate_interval_ms(two_hours, "1m") == 60_000
    tiny = gq.QueryContext(0, 100_000, max_data_points=1000, datasource_min_interval="1s")
    assert gq.calculate_interval_ms(tiny) == 1000  # 100 ms rounded, raised to 1 s


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1, "1ms"),
        (500, "500ms"),
        (1000, "1s"),
        (60_000, "1m"),
        (5_400_000, "1h"),
        (86_400_000, "1d"),
        (604_800_000, "7d"),
        (31_536_000_000, "1y"),
    ],
)
def test_format_interval_like_gtime(ms: int, text: str) -> None:
    assert gq.format_interval(ms) == text


def test_backend_macros() -> None:
    ctx = gq.QueryContext(1_700_000_000_000, 1_700_003_600_000, max_data_points=600)
    q = "SELECT mean(x) FROM m WHERE $timeFilter GROUP BY time($__interval) LIMIT $__interval_ms"
    assert gq.expand(q, ctx) == (
        "SELECT mean(x) FROM m WHERE time >= 1700000000000ms and time <= 1700003600000ms "
        "GROUP BY time(5s) LIMIT 5000"
    )


def test_single_value_variables_are_regex_escaped_unless_numeric() -> None:
    ctx = gq.QueryContext(
        0,
        1,
        variables=(
            gq.TemplateVariable("wearer", "w.01/a"),
            gq.TemplateVariable("n", "42"),
            gq.TemplateVariable("tz", "Europe/Berlin"),
        ),
    )
    q = "\"wearer\" =~ /^$wearer$/ AND x = $n AND tz('${tz:raw}') [[wearer]] ${wearer:regex}"
    assert gq.interpolate_variables(q, ctx) == (
        "\"wearer\" =~ /^w\\.01\\/a$/ AND x = 42 AND tz('Europe/Berlin') w\\.01\\/a w\\.01\\/a"
    )


def test_multi_value_and_all() -> None:
    multi = gq.TemplateVariable("w", ("a", "b.c"), multi=True)
    all_ = gq.TemplateVariable("s", gq.ALL_VALUE, include_all=True, options=("x", "y"))
    ctx = gq.QueryContext(0, 1, variables=(multi, all_))
    assert gq.interpolate_variables("/^$w$/ /^$s$/", ctx) == "/^a|b\\\\.c$/ /^x|y$/"
    assert gq.interpolate_variables("${w:regex}", ctx) == "(a|b\\.c)"


def test_unknown_and_backend_variables_are_left_alone() -> None:
    ctx = gq.QueryContext(10, 20, variables=(gq.TemplateVariable("site", "s"),))
    q = "$timeFilter $__interval $__interval_ms $nope ${__from} ${__to}ms"
    assert (
        gq.interpolate_variables(q, ctx) == "$timeFilter $__interval $__interval_ms $nope 10 20ms"
    )

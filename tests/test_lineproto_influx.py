"""The encoder's escaping and types, checked by what the real InfluxDB stores."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from analysis.contracts import EPOCH_DTYPE, Event
from postmon.store import lineproto as lp
from tests.conftest import INFLUX_URL, influx_query

pytestmark = pytest.mark.integration

HOUR_NS = 3_600_000_000_000
# recent, whole hour: points older than a retention policy's duration are dropped
T0 = (time.time_ns() // HOUR_NS - 24) * HOUR_NS


def _post(db: str, enc: lp.Encoded) -> None:
    qs = urllib.parse.urlencode({"db": db, "rp": enc.rp, "precision": enc.precision})
    req = urllib.request.Request(f"{INFLUX_URL}/write?{qs}", data=enc.body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def _create_rps(db: str) -> None:
    for rp, dur in (("epochs_2y", "104w"), ("forever", "INF")):
        influx_query(
            f'CREATE RETENTION POLICY "{rp}" ON "{db}" DURATION {dur} REPLICATION 1', method="POST"
        )


def test_special_characters_round_trip(influx_db: str) -> None:
    _create_rps(influx_db)
    site = "Clinic A, Zürich=1 €"
    wearer = r"p\17"
    note = 'a "quoted" \\ back\\slash, ünï 😀 = x'
    enc = lp.encode_events(
        site, wearer, [Event(T0, "bout", 3.0, {"note": note, "activity": "lying"})]
    )
    _post(influx_db, enc)
    res = influx_query(
        'SELECT "duration_s", "activity", "attrs_json", "site", "wearer" FROM "forever"."event"',
        db=influx_db,
    )
    cols = res["results"][0]["series"][0]["columns"]
    row = dict(zip(cols, res["results"][0]["series"][0]["values"][0], strict=True))
    assert row["site"] == site
    assert row["wearer"] == wearer
    assert row["activity"] == "lying"
    assert row["duration_s"] == 3.0
    import json

    assert json.loads(row["attrs_json"]) == {"note": note}


def test_epoch_values_and_types_round_trip(influx_db: str) -> None:
    _create_rps(influx_db)
    rng = np.random.default_rng(3)
    ep = np.zeros(50, EPOCH_DTYPE)
    ep["time_ns"] = T0 + np.arange(50) * 1_000_000_000
    ep["activity"] = rng.integers(0, 6, 50)
    ep["inclination_deg"] = rng.uniform(0, 90, 50)
    ep["flexion_deg"] = rng.uniform(-30, 90, 50)
    ep["flexion_deg"][::5] = np.nan
    ep["lateral_deg"] = rng.uniform(-20, 20, 50)
    ep["static"] = rng.random(50) < 0.5
    ep["intensity_g"] = rng.uniform(0, 1, 50)
    _post(influx_db, lp.encode_epochs("s", "w", "x", ep))
    res = influx_query(
        'SELECT "activity_code", "flexion_deg", "static", "intensity_g" FROM "epochs_2y"."epoch"',
        db=influx_db,
    )
    values = res["results"][0]["series"][0]["values"]
    assert len(values) == 50
    got_code = np.array([v[1] for v in values])
    assert np.array_equal(got_code, ep["activity"])
    flex = np.array([np.nan if v[2] is None else v[2] for v in values])
    assert np.array_equal(np.isnan(flex), np.isnan(ep["flexion_deg"]))
    ok = ~np.isnan(flex)
    assert np.allclose(flex[ok], ep["flexion_deg"][ok], atol=0.005 + 1e-9)
    assert [v[3] for v in values] == ep["static"].tolist()
    assert np.allclose([v[4] for v in values], ep["intensity_g"], atol=0.00005 + 1e-9)

"""Writer + Reader against the real InfluxDB: schema, round trips, rejects, spool."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from analysis.contracts import Activity, Event, SampleBatch
from postmon.config import InfluxConfig
from postmon.store import lineproto as lp
from postmon.store import schema
from postmon.store.http import V1HttpBackend, ensure_database_v1
from postmon.store.reader import Reader
from postmon.store.records import DeviceStatus, NudgeRecord, PlanChange
from postmon.store.writer import BatchInfo, Outcome, Writer
from tests.conftest import INFLUX_URL, free_port, influx_query
from tests.influx_v2_proxy import V2WriteProxy
from tests.store_helpers import HOUR_NS, S_NS, make_epochs, parse_schema_doc, recent_hour_ns
from tests.test_lineproto import make_summary

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[1] / "docs" / "SCHEMA.md"


def _cfg(db: str, tmp_path: Path, **kw) -> InfluxConfig:
    base = {
        "url": INFLUX_URL,
        "database": db,
        "spool_dir": tmp_path / "spool",
        "flush_interval_s": 0.2,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.5,
        "spool_after_s": 0.3,
    }
    base.update(kw)
    return InfluxConfig(**base)


def _one_of_everything(w: Writer, t0: int) -> dict:
    ep = make_epochs(0, t0, 2 * 3600)  # two hours: every activity, static, angles
    w.write_epochs("clinic-a", "p001", "AA:BB:CC:00:00:01", ep)
    events = [
        Event(t0 + 5 * S_NS, "bout", 300.0, {"activity": "sitting", "n_epochs": 300}),
        Event(t0 + 9 * S_NS, "sustained_flexion", 75.5, {"mean_flexion_deg": 31.25, "value": 2.5}),
        Event(t0 + 11 * S_NS, "sit_to_stand"),
    ]
    nudges = [
        NudgeRecord(
            t0 + 60 * S_NS, "n-1", "static", "haptic", 1, 30.5, True, True, 42.25, True, -3.0
        )
    ]
    daily = make_summary(date="2024-03-05")
    status = [
        DeviceStatus(t0 + 3 * S_NS, "AA:BB:CC:00:00:01", "metamotion", True, 87.5, 50.0, 3, 1, 2)
    ]
    raw = SampleBatch(
        "AA:BB:CC:00:00:01",
        "p001",
        50.0,
        t0 + np.arange(10, dtype=np.int64) * 20_000_000,
        np.tile([0.0, 0.125, -1.0], (10, 1)),
        np.tile([1.5, -2.0, 0.25], (10, 1)),
    )
    w.write_events("clinic-a", "p001", events)
    w.write_nudges("clinic-a", "p001", nudges)
    w.write_daily("clinic-a", "p001", daily, tz="Europe/Paris")
    w.write_status("clinic-a", "p001", status)
    w.write_raw("clinic-a", "p001", raw)
    plan = PlanChange(
        t0 + 7 * S_NS, "Nudge after 40 min", "Longer sitting allowed", {"nudge_min": 40}
    )
    w.write_plan_changes("clinic-a", "p001", plan)
    return {
        "epochs": ep,
        "events": events,
        "nudges": nudges,
        "daily": daily,
        "status": status,
        "plan": plan,
    }


def _show(q: str, db: str) -> list[dict]:
    return influx_query(q, db=db)["results"][0].get("series", [])


def test_schema_document_matches_what_influxdb_holds(influx_db: str, tmp_path: Path) -> None:
    t0 = recent_hour_ns(6)
    with Writer(_cfg(influx_db, tmp_path)) as w:
        _one_of_everything(w, t0)
        assert w.flush()
        assert w.downsample_now()
        assert w.stats().written > 7200
    doc = parse_schema_doc(DOC)
    assert set(doc) == {m.name for m in schema.MEASUREMENTS}
    got_meas = {row[0] for s in _show("SHOW MEASUREMENTS", influx_db) for row in s["values"]}
    assert got_meas == set(doc)
    tag_keys = {
        s["name"]: {row[0] for row in s["values"]} for s in _show("SHOW TAG KEYS", influx_db)
    }
    rps = {row[0] for s in _show("SHOW RETENTION POLICIES", influx_db) for row in s["values"]}
    assert {"raw_7d", "epochs_2y", "forever"} <= rps
    for name, spec in doc.items():
        assert tag_keys[name] == set(spec["tags"]), name
        series = _show(f'SHOW FIELD KEYS FROM "{spec["rp"]}"."{name}"', influx_db)
        assert len(series) == 1, f"{name} not stored in retention policy {spec['rp']}"
        fields = {row[0]: row[1] for row in series[0]["values"]}
        assert fields == spec["fields"], name


def test_reader_returns_what_was_written(influx_db: str, tmp_path: Path) -> None:
    t0 = recent_hour_ns(6)
    with Writer(_cfg(influx_db, tmp_path)) as w:
        sent = _one_of_everything(w, t0)
        assert w.flush()
        w.downsample_now()
    with Reader(_cfg(influx_db, tmp_path)) as r:
        ep = r.epochs("p001", t0, t0 + 3 * HOUR_NS)
        want = sent["epochs"]
        assert np.array_equal(ep["time_ns"], want["time_ns"])
        assert np.array_equal(ep["activity"], want["activity"])
        assert np.array_equal(ep["static"], want["static"])
        assert np.array_equal(np.isnan(ep["flexion_deg"]), np.isnan(want["flexion_deg"]))
        ok = ~np.isnan(want["flexion_deg"])
        assert np.allclose(ep["flexion_deg"][ok], want["flexion_deg"][ok], atol=0.0051)
        assert np.allclose(ep["intensity_g"], want["intensity_g"], atol=0.000051)
        assert r.count_epochs("p001", t0, t0 + 3 * HOUR_NS) == len(want)
        assert r.count_epochs("p001", t0, t0 + 3 * HOUR_NS, site="elsewhere") == 0
        # events: ms precision; stored optional fields come back as attrs
        ev = r.events("p001", t0, t0 + HOUR_NS)
        assert [(e.time_ns, e.kind, e.duration_s) for e in ev] == [
            (e.time_ns, e.kind, e.duration_s) for e in sent["events"]
        ]
        assert ev[0].attrs == {"activity": "sitting", "n_epochs": 300}
        assert ev[1].attrs == {"mean_flexion_deg": 31.25, "value": 2.5}
        assert r.events("p001", t0, t0 + HOUR_NS, kinds=["sit_to_stand"])[0].kind == "sit_to_stand"
        assert r.nudges("p001", t0, t0 + HOUR_NS) == sent["nudges"]
        assert r.status("p001", t0, t0 + HOUR_NS) == sent["status"]
        assert r.plan_changes("p001", t0, t0 + HOUR_NS) == [sent["plan"]]
        day_ns = lp.local_midnight_ns("2024-03-05", "Europe/Paris")
        daily = r.daily("p001", day_ns, day_ns + 1)
        assert daily == [sent["daily"]]
        # roll-ups: minutes per activity per hour equal counts of the epochs sent
        hourly = r.activity_minutes("p001", t0, t0 + 3 * HOUR_NS, every="1h")
        assert len(hourly) == 2
        for h in range(2):
            sl = want[h * 3600 : (h + 1) * 3600]
            for a in Activity:
                expected = np.count_nonzero(sl["activity"] == int(a)) / 60
                assert hourly[f"{a.label}_min"][h] == pytest.approx(expected), (h, a)
            assert hourly["static_min"][h] == pytest.approx(np.count_nonzero(sl["static"]) / 60)


def test_bad_data_is_rejected_not_retried_and_kept(influx_db: str, tmp_path: Path) -> None:
    t0 = recent_hour_ns(6)
    cfg = _cfg(influx_db, tmp_path)
    # someone wrote activity_code as a float first: our integers now conflict
    bad = lp.Encoded(
        "epoch",
        "epochs_2y",
        "s",
        f"epoch,site=x,wearer=y activity_code=1.5 {t0 // S_NS}\n".encode(),
        1,
    )
    outcomes: list[Outcome] = []
    with Writer(cfg) as w:
        w.write_encoded([bad])
        assert w.flush()
        w.write_epochs("x", "y", "s", make_epochs(0, t0, 10), on_done=outcomes.append)
        assert w.flush()
        s = w.stats()
    assert outcomes == [Outcome.REJECTED]
    assert (s.written, s.rejected, s.retries, s.spooled) == (1, 10, 0, 0)
    dead = (tmp_path / "spool" / "rejected" / "rejected.lp").read_text()
    assert "field type conflict" in dead
    assert dead.count("\nepoch,sensor=s,site=x,wearer=y ") == 10


def test_unreachable_influx_spools_and_replays_in_order_on_restart(
    influx_db: str, tmp_path: Path
) -> None:
    t0 = recent_hour_ns(6)
    n_batches, per = 30, 60
    down = _cfg(influx_db, tmp_path, url=f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    outcomes: list[Outcome] = []
    with Writer(down) as w:
        for b in range(n_batches):
            w.write_epochs(
                "s", "w", "x", make_epochs(1, t0, per, start=b * per), on_done=outcomes.append
            )
        assert w.flush(timeout_s=20)
        s = w.stats()
    assert outcomes == [Outcome.SPOOLED] * n_batches
    assert (s.spooled, s.written, s.spool_points) == (n_batches * per, 0, n_batches * per)
    assert s.retries >= 1
    # "restart" against the reachable server with the same spool directory
    batches: list[BatchInfo] = []
    lock = threading.Lock()

    def seen(b: BatchInfo) -> None:
        with lock:
            batches.append(b)

    with Writer(dataclasses.replace(down, url=INFLUX_URL), on_batch=seen) as w2:
        assert w2.flush(timeout_s=30, include_spool=True)
        s2 = w2.stats()
    assert (s2.replayed, s2.written, s2.spool_points) == (n_batches * per, n_batches * per, 0)
    seqs = [(b.first_seq, b.last_seq) for b in batches]
    assert all(b.replayed for b in batches)
    assert seqs == sorted(seqs)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(seqs))
    with Reader(dataclasses.replace(down, url=INFLUX_URL)) as r:
        assert r.count_epochs("w", t0, t0 + HOUR_NS) == n_batches * per
    assert not list((tmp_path / "spool").glob("*.seg"))


def test_influxdb_client_backend_lands_in_real_database(influx_db: str, tmp_path: Path) -> None:
    t0 = recent_hour_ns(6)
    admin = V1HttpBackend(_cfg(influx_db, tmp_path))
    ensure_database_v1(admin)
    admin.close()
    port = int(INFLUX_URL.rsplit(":", 1)[1])
    with V2WriteProxy(port) as proxy:
        cfg = _cfg(influx_db, tmp_path, url=proxy.url, backend="v2", token="tok-123", org="clinic")
        with Writer(cfg) as w:
            w.write_epochs("s", "w", "x", make_epochs(2, t0, 500))
            w.write_events("s", "w", [Event(t0, "sit_to_stand")])
            assert w.flush()
            s = w.stats()
        assert (s.written, s.rejected) == (501, 0)
        assert proxy.requests, "influxdb-client sent nothing"
        req = proxy.requests[0]
        assert req["path"] == "/api/v2/write"
        assert req["query"]["org"] == "clinic"
        assert req["query"]["bucket"] in {f"{influx_db}/epochs_2y", f"{influx_db}/forever"}
        assert req["auth"] == "Token tok-123"
        assert req["encoding"] == "gzip"
        assert "influxdb-client" in req["agent"].lower() or "python" in req["agent"].lower()
    with Reader(_cfg(influx_db, tmp_path)) as r:
        assert r.count_epochs("w", t0, t0 + HOUR_NS) == 500
        assert [e.kind for e in r.events("w", t0, t0 + HOUR_NS)] == ["sit_to_stand"]


def test_batches_are_filled_to_batch_points_and_each_write_completes_once(
    influx_db: str, tmp_path: Path
) -> None:
    t0 = recent_hour_ns(6)
    batches: list[BatchInfo] = []
    outcomes: list[Outcome] = []
    cfg = _cfg(influx_db, tmp_path, batch_points=100, max_buffer_points=1000, flush_interval_s=5.0)
    with Writer(cfg, on_batch=batches.append) as w:
        for b in range(7):  # 7 writes of 250 points: 1750 = 17 full batches + 50
            w.write_epochs(
                "s", "w", "x", make_epochs(3, t0, 250, start=b * 250), on_done=outcomes.append
            )
        assert w.flush()
    assert outcomes == [Outcome.WRITTEN] * 7
    assert [b.points for b in batches] == [100] * 17 + [50]
    seqs = [(b.first_seq, b.last_seq) for b in batches]
    # a write split across two requests keeps its sequence number; order is kept
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(seqs))
    with Reader(cfg) as r:
        assert r.count_epochs("w", t0, t0 + HOUR_NS) == 1750


def test_retention_policies_are_created_idempotently_and_repaired(
    influx_db: str, tmp_path: Path
) -> None:
    backend = V1HttpBackend(_cfg(influx_db, tmp_path))
    try:
        ensure_database_v1(backend)
        ensure_database_v1(backend)  # a second start changes nothing
        # someone shortened a policy by hand: the next start restores it
        influx_query(
            f'ALTER RETENTION POLICY "forever" ON "{influx_db}" DURATION 30d', method="POST"
        )
        ensure_database_v1(backend)
    finally:
        backend.close()
    rows = {
        r[0]: r
        for s in _show(f'SHOW RETENTION POLICIES ON "{influx_db}"', influx_db)
        for r in s["values"]
    }
    # columns: name, duration, shardGroupDuration, replicaN, default
    assert rows["raw_7d"][1] == "168h0m0s"
    assert rows["epochs_2y"][1] == f"{104 * 7 * 24}h0m0s"
    assert rows["forever"][1] == "0s"
    assert [name for name, r in rows.items() if r[4]] == ["epochs_2y"]

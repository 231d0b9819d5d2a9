"""Demo-like data for the dashboard and report tests, written to a real InfluxDB.

Three wearers: ``clinic-a/w-01`` (the one the tests look at), ``clinic-a/w-02``
and ``clinic-b/w-01`` (same pseudonym, other site: filters must keep them
apart), plus ``clinic-a/w-03`` who has daily summaries but a silent sensor.
Everything is relative to "now" so that no point falls outside a retention
policy. The arrays kept on the scenario are the truth the tests compute
expected values from, independently of any query.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from analysis.contracts import (
    ACTIVITY_LABELS,
    EPOCH_DTYPE,
    Activity,
    DailySummary,
    Event,
    EventKind,
)
from postmon.store import lineproto as lp
from postmon.store import schema
from postmon.store.records import DeviceStatus, NudgeRecord, PlanChange
from tests.conftest import INFLUX_URL, influx_query

TZ = "Europe/Berlin"
TARGET = ("clinic-a", "w-01")
OTHERS = (("clinic-a", "w-02"), ("clinic-b", "w-01"))
SILENT = ("clinic-a", "w-03")
N_DAYS = 35
EPOCH_HOURS = 2
NS = 1_000_000_000


@dataclass
class WearerData:
    epochs: npt.NDArray[Any]
    events: list[Event]
    nudges: list[NudgeRecord]
    daily: list[DailySummary]
    daily_time_ms: list[int]
    status: list[DeviceStatus]
    plans: list[tuple[int, str, str]] = field(default_factory=list)  # (time_ms, title, text)


@dataclass
class Scenario:
    db: str
    now_ms: int
    epoch_start_ms: int
    first_day_ms: int
    wearers: dict[tuple[str, str], WearerData]


def post(db: str, enc: lp.Encoded) -> None:
    if not enc.points:
        return
    qs = urllib.parse.urlencode({"db": db, "rp": enc.rp, "precision": enc.precision})
    req = urllib.request.Request(f"{INFLUX_URL}/write?{qs}", data=enc.body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204


def create_retention_policies(db: str) -> None:
    for rp in schema.RETENTION_POLICIES:
        stmt = schema.retention_policy_statement(db, rp, exists=False)
        influx_query(stmt, method="POST")


def _epochs(rng: np.random.Generator, start_s: int, n: int) -> npt.NDArray[Any]:
    """Minute-aligned posture blocks (so a per-minute mode is unambiguous)."""
    e = np.zeros(n, dtype=EPOCH_DTYPE)
    e["time_ns"] = (start_s + np.arange(n, dtype=np.int64)) * NS
    choices = np.array(
        [
            Activity.SITTING,
            Activity.SITTING,
            Activity.STANDING,
            Activity.WALKING,
            Activity.LYING,
            Activity.NONWEAR,
        ],
        dtype=np.int8,
    )
    acts = np.empty(n, dtype=np.int8)
    i = 0
    prev = -1
    while i < n:
        length = int(rng.integers(1, 9)) * 60
        a = prev
        while a == prev:
            a = int(rng.choice(choices))
        acts[i : i + length] = a
        prev = a
        i += length
    e["activity"] = acts
    e["inclination_deg"] = np.round(rng.uniform(0, 70, n), 2)
    e["flexion_deg"] = np.round(rng.uniform(-15, 60, n), 2)
    e["lateral_deg"] = np.round(rng.uniform(-10, 10, n), 2)
    e["intensity_g"] = np.round(rng.uniform(0, 0.3, n), 4)
    nonwear = acts == Activity.NONWEAR
    for f in ("inclination_deg", "flexion_deg", "lateral_deg"):
        e[f][nonwear] = np.nan
    still = np.isin(acts, (Activity.SITTING, Activity.LYING)) & (rng.random(n) < 0.97)
    e["static"] = still
    return e


def _transitions(epochs: npt.NDArray[Any]) -> list[Event]:
    acts = epochs["activity"]
    change = np.flatnonzero(acts[1:] != acts[:-1]) + 1
    out = []
    for i in change:
        before, after = int(acts[i - 1]), int(acts[i])
        t = int(epochs["time_ns"][i])
        if before == Activity.SITTING and after == Activity.STANDING:
            out.append(Event(t, EventKind.SIT_TO_STAND))
        elif before == Activity.STANDING and after == Activity.SITTING:
            out.append(Event(t, EventKind.STAND_TO_SIT))
        out.append(Event(t, EventKind.BOUT, 60.0, {"activity": ACTIVITY_LABELS[after]}))
    return out


def _daily(rng: np.random.Generator, date: dt.date, nudge_min: int) -> DailySummary:
    """A plausible office day: parts add up to the worn time, percentiles ordered."""
    u = rng.uniform
    wear = u(360, 540)
    sitting, standing, walking, lying = (
        wear * u(0.45, 0.7),
        wear * u(0.12, 0.25),
        wear * u(0.05, 0.12),
        wear * u(0, 0.03),
    )
    other = max(0.0, wear - sitting - standing - walking - lying)
    wear = sitting + standing + walking + lying + other
    lt20, b20, b45 = wear * u(0.6, 0.75), wear * u(0.12, 0.22), wear * u(0.02, 0.06)
    gt60 = max(0.0, wear - lt20 - b20 - b45)
    bands = np.array([lt20, b20, b45, gt60])
    # EVA: each angle class's minutes spread over the six duration classes
    eva = np.concatenate([b * rng.dirichlet(np.ones(6) * 2) for b in bands])
    ge30 = int(rng.integers(0, 4))
    values: dict[str, Any] = {
        "date": date.isoformat(),
        "wear_min": wear,
        "lying_min": lying,
        "sitting_min": sitting,
        "standing_min": standing,
        "walking_min": walking,
        "other_min": other,
        "nonwear_min": 1440 - wear,
        "sitting_bouts": int(rng.integers(8, 20)),
        "sitting_bouts_brief": int(rng.integers(3, 9)),
        "sitting_bouts_moderate": int(rng.integers(2, 7)),
        "sitting_bouts_prolonged": ge30 + int(rng.integers(0, 2)),
        "sitting_bouts_ge30": ge30,
        "sitting_bouts_ge60": int(rng.integers(0, ge30 + 1)),
        "longest_sitting_bout_min": u(25, 95),
        "sitting_bout_p10_min": u(1, 3),
        "sitting_bout_p50_min": u(5, 12),
        "sitting_bout_p90_min": u(20, 45),
        "breaks_per_h": u(1.5, 5.0),
        "posture_changes_per_h": u(4, 12),
        "static_min": wear * 0.4,
        "static_share": 0.4,
        "longest_static_bout_min": u(20, 80),
        "static_bouts_ge30": int(rng.integers(0, 4)),
        "flexion_lt20_min": lt20,
        "flexion_20_45_min": b20,
        "flexion_45_60_min": b45,
        "flexion_gt60_min": gt60,
        "flexion_gt30_min": b20 / 2 + b45 + gt60,
        "flexion_gt90_min": gt60 / 4,
        "sustained_flexion_events": int(rng.integers(0, 10)),
        "sustained_flexion_min": u(0, 30),
        "flexion_load_degmin_per_h": u(50, 400),
        "incl_p10_deg": u(3, 8),
        "incl_p50_deg": u(10, 20),
        "incl_p90_deg": u(25, 45),
        "flex_p10_deg": u(-5, 3),
        "flex_p50_deg": u(5, 15),
        "flex_p90_deg": u(20, 40),
        "angle_sd_deg": u(5, 15),
        "eva_share_gt1min": float(eva.reshape(4, 6)[:, 4:].sum() / wear),
        "eva_entropy_bits": u(2, 4),
        "eva_min": tuple(float(x) for x in np.round(eva, 4)),
        "settings": {"min_bout_s": 10, "static_nudge_min": nudge_min},
    }
    for k, v in values.items():
        if isinstance(v, float):
            values[k] = round(v, 4)
    return DailySummary(**values)


def build(db: str, seed: int = 7) -> Scenario:
    rng = np.random.default_rng(seed)
    create_retention_policies(db)
    now_s = int(time.time())
    start_s = (now_s - EPOCH_HOURS * 3600) // 60 * 60
    n_epochs = (now_s - 60 - start_s) // 60 * 60  # whole minutes, ending before now
    zone = ZoneInfo(TZ)
    today = dt.datetime.fromtimestamp(now_s, zone).date()
    days = [today - dt.timedelta(days=N_DAYS - 1 - k) for k in range(N_DAYS)]
    first_day_ms = int(dt.datetime.combine(days[0], dt.time(0), tzinfo=zone).timestamp()) * 1000
    wearers: dict[tuple[str, str], WearerData] = {}
    for key in (TARGET, *OTHERS, SILENT):
        site, wearer = key
        epochs = _epochs(rng, start_s, n_epochs) if key != SILENT else np.zeros(0, EPOCH_DTYPE)
        events = _transitions(epochs)
        worn = [d for d in days if rng.random() > 0.1 or d == today]
        # the plan (see below) moves the nudge from every 40 to every 30 min on day 24
        daily = [_daily(rng, d, 40 if d < days[24] else 30) for d in worn]
        daily_ms = [lp.local_midnight_ns(s.date, TZ) // 1_000_000 for s in daily]
        # nudges: a few per day over the whole period, some in the last hours
        nudges = []
        nudge_times = sorted(
            {int(t) for t in rng.uniform(first_day_ms, now_s * 1000 - 60_000, 40)}
            | {int(t) for t in rng.uniform(start_s * 1000, now_s * 1000 - 60_000, 5)}
        )
        for k, t_ms in enumerate(nudge_times):
            answered = bool(rng.random() < 0.6)
            nudges.append(
                NudgeRecord(
                    time_ns=t_ms * 1_000_000,
                    nudge_id=f"{wearer}-{k}",
                    reason="static",
                    channel=str(rng.choice(["haptic", "desktop"])),
                    level=int(rng.integers(1, 3)),
                    static_min=float(np.round(rng.uniform(30, 60), 3)),
                    delivered=True,
                    answered=answered,
                    response_delay_s=float(np.round(rng.uniform(10, 280), 3)) if answered else None,
                )
            )
        status = [
            DeviceStatus(
                time_ns=(now_s - 2 * 86400 + k * 600) * NS,
                sensor=f"sensor-{wearer}",
                device_type="sim",
                connected=True,
                battery_pct=float(np.round(90 - k * (0.1 if key != OTHERS[0] else 0.27), 1)),
                rate_hz=50.0,
            )
            for k in range(2 * 144)
        ]
        wearers[key] = WearerData(epochs, events, nudges, daily, daily_ms, status)
        post(db, lp.encode_epochs(site, wearer, f"sensor-{wearer}", epochs))
        post(db, lp.encode_events(site, wearer, events))
        post(db, lp.encode_nudges(site, wearer, nudges))
        post(db, lp.encode_daily(site, wearer, daily, tz=TZ))
        post(db, lp.encode_status(site, wearer, status))
    plans = {
        TARGET: [
            (10, "nudge every 40 min", "Start with a reminder every 40 minutes."),
            (24, "nudge every 30 min", "Going well: reminders every 30 minutes now."),
        ],
        OTHERS[0]: [(12, "standing desk", "Standing desk in the mornings.")],
    }
    for key, items in plans.items():
        changes = []
        for day_index, title, text in items:
            t_ms = first_day_ms + day_index * 86_400_000 + 9 * 3_600_000
            wearers[key].plans.append((t_ms, title, text))
            changes.append(PlanChange(t_ms * 1_000_000, title, text, {}))
        post(db, lp.encode_plan_changes(key[0], key[1], changes))
    return Scenario(db, now_s * 1000, start_s * 1000, first_day_ms, wearers)

"""The InfluxDB schema: one place that names measurements, tags and fields.

Documented for people in ``docs/SCHEMA.md`` (its tables are generated from
this module by ``python -m postmon.store.schema``); a test compares both with
what a real InfluxDB holds after a write. Dashboards and the report build
their InfluxQL from these names, never from string literals of their own.

Tags identify *who and where* (site, wearer pseudonym, sensor): never names
of people. Fields carry units in their names. Timestamps are UTC.

Every field has one InfluxDB type (``float``, ``integer``, ``string``,
``boolean``) that the encoder enforces: InfluxDB rejects a point whose field
type differs from what a shard already holds, so an integer-valued float must
still be written as a float.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Literal

from analysis.contracts import (
    ACTIVITY_LABELS,
    EVA_ANGLE_EDGES_DEG,
    EVA_DURATION_EDGES_S,
    DailySummary,
)

FieldType = Literal["float", "integer", "string", "boolean"]
Precision = Literal["s", "ms", "us", "ns"]

#: nanoseconds per unit of each line-protocol precision
PRECISION_NS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


@dataclass(frozen=True)
class RetentionPolicy:
    name: str
    duration: str  # InfluxQL duration literal; "INF" keeps forever
    default: bool = False


RP_RAW = RetentionPolicy("raw_7d", "7d")
RP_EPOCHS = RetentionPolicy("epochs_2y", "104w", default=True)
RP_FOREVER = RetentionPolicy("forever", "INF")
RETENTION_POLICIES = (RP_RAW, RP_EPOCHS, RP_FOREVER)


@dataclass(frozen=True)
class FieldSpec:
    """One field: name (unit in the name), InfluxDB type, resolution, meaning.

    ``decimals`` is the resolution floats are written with (fixed point,
    trailing zeros dropped): it is chosen well below each quantity's
    measurement uncertainty, and keeps the line protocol short and exact.
    """

    name: str
    type: FieldType
    unit: str
    doc: str
    decimals: int = 4


@dataclass(frozen=True)
class Measurement:
    name: str
    rp: RetentionPolicy
    tags: tuple[str, ...]
    specs: tuple[FieldSpec, ...]
    precision: Precision  # line-protocol precision the writer uses
    doc: str

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names, in the order the encoder writes them."""
        return tuple(s.name for s in self.specs)

    def field_types(self) -> dict[str, FieldType]:
        return {s.name: s.type for s in self.specs}

    def spec(self, name: str) -> FieldSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no field {name!r}; fields: {', '.join(self.fields)}")

    def qualified(self) -> str:
        """``"rp"."measurement"`` for InfluxQL FROM clauses."""
        return f'"{self.rp.name}"."{self.name}"'


#: What each tag holds (all measurements use the same meaning).
TAG_DOCS: dict[str, str] = {
    "site": "clinic, ward or office the data was collected for (config `site`)",
    "wearer": "the wearer's pseudonym from the pairing table (never a name)",
    "sensor": "sensor address or serial",
    "kind": "event kind (analysis.contracts.EventKind)",
    "reason": "why the nudge was sent (e.g. static, slouch)",
    "channel": "how it was delivered (e.g. haptic, phone, desktop, none)",
    "device_type": "witmotion | movesense | metamotion | sim",
}

EPOCH = Measurement(
    "epoch",
    RP_EPOCHS,
    tags=("site", "wearer", "sensor"),
    specs=(
        FieldSpec("activity", "string", "", "lying|sitting|standing|walking|other|nonwear"),
        FieldSpec("activity_code", "integer", "", "analysis.contracts.Activity code"),
        FieldSpec("static", "boolean", "", "no meaningful trunk movement in this second"),
        FieldSpec("inclination_deg", "float", "deg", "angle from calibrated upright, >= 0", 2),
        FieldSpec(
            "flexion_deg",
            "float",
            "deg",
            "sagittal component, + forward; absent until the forward direction is known",
            2,
        ),
        FieldSpec(
            "lateral_deg", "float", "deg", "lateral component, + to the right; as flexion", 2
        ),
        FieldSpec("intensity_g", "float", "g", "mean |body acceleration| in the second", 4),
    ),
    precision="s",
    doc="One point per wearer per 1-s epoch; time = epoch start (floored to the second). "
    "Angle fields are omitted when undefined (NaN), e.g. while not worn.",
)

EVENT = Measurement(
    "event",
    RP_FOREVER,
    tags=("site", "wearer", "kind"),
    specs=(
        FieldSpec("duration_s", "float", "s", "0 for instantaneous events", 3),
        FieldSpec("activity", "string", "", "posture of a bout (bouts only)"),
        FieldSpec("mean_flexion_deg", "float", "deg", "sustained-flexion events only", 2),
        FieldSpec("value", "float", "", "kind-specific number (see analysis)", 4),
        FieldSpec("attrs_json", "string", "", "any other attributes, JSON object, sorted keys"),
    ),
    precision="ms",
    doc="Transitions, posture bouts, static periods, sustained flexion; time = start. "
    "Events of kind `nudge` are stored in `nudge`, not here.",
)

NUDGE = Measurement(
    "nudge",
    RP_FOREVER,
    tags=("site", "wearer", "reason", "channel"),
    specs=(
        FieldSpec("nudge_id", "string", "", "unique id, stable across rewrites"),
        FieldSpec("level", "integer", "", "escalation level, 1 = first nudge of a static period"),
        FieldSpec("static_min", "float", "min", "how long the wearer had been static", 3),
        FieldSpec("delivered", "boolean", "", "the channel confirmed delivery"),
        FieldSpec("answered", "boolean", "", "the wearer broke the static period in time"),
        FieldSpec("response_delay_s", "float", "s", "sent to the break (answered only)", 3),
        FieldSpec(
            "confirmed",
            "boolean",
            "",
            "the smoothed analysis (decided epochs, seconds later) would have sent it too",
        ),
        FieldSpec(
            "confirm_offset_s", "float", "s", "smoothed minus live decision time (confirmed)", 1
        ),
    ),
    precision="ms",
    doc="One point per nudge; rewritten (same series + time) as delivery/answer arrive.",
)


def eva_field_name(angle_class: int, duration_class: int) -> str:
    """``eva_a{i}_d{j}_min``: minutes in EVA angle class i × duration class j."""
    return f"eva_a{angle_class}_d{duration_class}_min"


N_EVA_ANGLE = len(EVA_ANGLE_EDGES_DEG) + 1
N_EVA_DURATION = len(EVA_DURATION_EDGES_S) + 1


def _daily_specs() -> tuple[FieldSpec, ...]:
    """Every scalar field of DailySummary (in declaration order), then
    ``eva_a{i}_d{j}_min`` (row-major, as ``eva_min``), then ``settings_json``."""
    hints = typing.get_type_hints(DailySummary)
    specs = [FieldSpec("date", "string", "", "the wearer's local day, YYYY-MM-DD")]
    for f in dataclasses.fields(DailySummary):
        if f.name in ("date", "eva_min", "settings"):
            continue
        tp = hints[f.name]
        if tp is int:
            specs.append(FieldSpec(f.name, "integer", "", f"`DailySummary.{f.name}`"))
        elif tp is float:
            unit = (
                "min"
                if f.name.endswith("_min")
                else "deg"
                if f.name.endswith("_deg")
                else "1/h"
                if f.name.endswith("_per_h")
                else ""
            )
            specs.append(FieldSpec(f.name, "float", unit, f"`DailySummary.{f.name}`", 4))
        else:  # pragma: no cover - guards a contract change
            raise TypeError(f"DailySummary.{f.name}: unsupported type {tp!r} for the schema")
    for i in range(N_EVA_ANGLE):
        for j in range(N_EVA_DURATION):
            specs.append(
                FieldSpec(
                    eva_field_name(i, j), "float", "min", "EVA cell (angle i × duration j)", 4
                )
            )
    specs.append(FieldSpec("settings_json", "string", "", "thresholds that made these numbers"))
    return tuple(specs)


DAILY = Measurement(
    "daily",
    RP_FOREVER,
    tags=("site", "wearer"),
    specs=_daily_specs(),
    precision="s",
    doc="One point per wearer per local day; time = local midnight (UTC instant).",
)

DEVICE = Measurement(
    "device",
    RP_EPOCHS,
    tags=("site", "wearer", "sensor", "device_type"),
    specs=(
        FieldSpec("connected", "boolean", "", "BLE link up at the time of the report"),
        FieldSpec("battery_pct", "float", "%", "battery level (omitted when unknown)", 1),
        FieldSpec("rate_hz", "float", "Hz", "measured sample rate", 3),
        FieldSpec("lost_samples", "integer", "", "samples lost since the stream started"),
        FieldSpec("gaps", "integer", "", "gaps (runs of lost samples) since start"),
        FieldSpec("reconnects", "integer", "", "reconnections since start"),
    ),
    precision="s",
    doc="Sensor link health and battery, every status interval.",
)

IMU_RAW = Measurement(
    "imu_raw",
    RP_RAW,
    tags=("site", "wearer", "sensor"),
    specs=(
        FieldSpec("ax_g", "float", "g", "acceleration, sensor x", 5),
        FieldSpec("ay_g", "float", "g", "acceleration, sensor y", 5),
        FieldSpec("az_g", "float", "g", "acceleration, sensor z", 5),
        FieldSpec("gx_dps", "float", "deg/s", "angular rate, sensor x (if streamed)", 3),
        FieldSpec("gy_dps", "float", "deg/s", "angular rate, sensor y (if streamed)", 3),
        FieldSpec("gz_dps", "float", "deg/s", "angular rate, sensor z (if streamed)", 3),
    ),
    precision="ns",
    doc="Optional raw samples (off by default), kept 7 days.",
)


def _activity_specs(what: str) -> tuple[FieldSpec, ...]:
    per_activity = tuple(
        FieldSpec(f"{label}_min", "float", "min", f"minutes {label} in the {what}", 4)
        for label in ACTIVITY_LABELS
    )
    return (
        *per_activity,
        FieldSpec("static_min", "float", "min", f"minutes static in the {what}", 4),
        FieldSpec("flexion_mean_deg", "float", "deg", "mean flexion over worn epochs", 2),
    )


#: Downsampled from ``epoch`` by the service (``postmon.store.downsample``):
#: long-range dashboards read these instead of millions of epochs.
ACTIVITY_1M = Measurement(
    "activity_1m",
    RP_FOREVER,
    tags=("site", "wearer", "sensor"),
    specs=_activity_specs("minute"),
    precision="s",
    doc="Per-minute activity minutes from `epoch` (service-side downsampling); "
    "an activity with no epoch in the minute has no field (read as 0).",
)

ACTIVITY_1H = Measurement(
    "activity_1h",
    RP_FOREVER,
    tags=("site", "wearer", "sensor"),
    specs=_activity_specs("hour"),
    precision="s",
    doc="Per-hour sums of `activity_1m` (flexion: mean of the minute means).",
)

PLAN_CHANGE = Measurement(
    "plan_change",
    RP_FOREVER,
    tags=("site", "wearer"),
    specs=(
        FieldSpec("title", "string", "", "short label shown on trend charts"),
        FieldSpec("text", "string", "", "what changed and why, in plain words (no diagnosis)"),
        FieldSpec("settings_json", "string", "", "the new nudge/analysis settings, JSON object"),
    ),
    precision="s",
    doc="A change of a wearer's care plan; time = when it takes effect. Trend dashboards "
    "mark it as an annotation; the report lists it (before/after comparisons).",
)

MEASUREMENTS = (
    EPOCH,
    EVENT,
    NUDGE,
    DAILY,
    DEVICE,
    IMU_RAW,
    ACTIVITY_1M,
    ACTIVITY_1H,
    PLAN_CHANGE,
)
BY_NAME: dict[str, Measurement] = {m.name: m for m in MEASUREMENTS}


# ------------------------------------------------------------- InfluxQL DDL


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def retention_policy_statement(db: str, rp: RetentionPolicy, *, exists: bool) -> str:
    """``CREATE`` (or ``ALTER`` when it exists) one retention policy.

    InfluxDB 1.x refuses ``CREATE RETENTION POLICY`` for an existing policy
    whose attributes differ, so the caller reads ``SHOW RETENTION POLICIES``
    first and alters instead: running it twice is a no-op.
    """
    verb = "ALTER" if exists else "CREATE"
    repl = "" if exists else " REPLICATION 1"
    stmt = f"{verb} RETENTION POLICY {quote_ident(rp.name)} ON {quote_ident(db)} "
    stmt += f"DURATION {rp.duration}{repl}"
    if rp.default:
        stmt += " DEFAULT"
    return stmt


def downsample_statements(db: str, start_ns: int, end_ns: int) -> list[str]:
    """``SELECT ... INTO`` statements that (re)compute the activity roll-ups.

    Recomputes whole hours covering ``[start_ns, end_ns)``: the caller passes
    the time range of epochs just written (possibly late, e.g. replayed from
    a spool), so this is idempotent and late data is never missed, which
    InfluxDB's continuous queries (they only look at the latest interval)
    would do.
    """
    hour_ns = 3_600 * 1_000_000_000
    lo = (start_ns // hour_ns) * hour_ns
    hi = -(-end_ns // hour_ns) * hour_ns
    where_t = f"time >= {lo} AND time < {hi}"
    src = f"{quote_ident(db)}.{EPOCH.qualified()}"
    m1 = f"{quote_ident(db)}.{ACTIVITY_1M.qualified()}"
    h1 = f"{quote_ident(db)}.{ACTIVITY_1H.qualified()}"
    stmts = [
        f"SELECT count(activity_code) / 60 AS {label}_min INTO {m1} FROM {src} "
        f"WHERE \"activity\" = '{label}' AND {where_t} GROUP BY time(1m), *"
        for label in ACTIVITY_LABELS
    ]
    stmts.append(
        f"SELECT count(activity_code) / 60 AS static_min INTO {m1} FROM {src} "
        f'WHERE "static" = true AND {where_t} GROUP BY time(1m), *'
    )
    stmts.append(
        f"SELECT mean(flexion_deg) AS flexion_mean_deg INTO {m1} FROM {src} "
        f"WHERE \"activity\" != 'nonwear' AND {where_t} GROUP BY time(1m), *"
    )
    sums = ", ".join(
        f"sum({s.name}) AS {s.name}" for s in ACTIVITY_1M.specs if s.name.endswith("_min")
    )
    stmts.append(
        f"SELECT {sums}, mean(flexion_mean_deg) AS flexion_mean_deg INTO {h1} FROM {m1} "
        f"WHERE {where_t} GROUP BY time(1h), *"
    )
    return stmts


# ------------------------------------------------------------ documentation


def render_markdown() -> str:
    """The measurement tables of docs/SCHEMA.md (between its markers)."""
    out: list[str] = []
    out.append("| retention policy | duration | default |")
    out.append("|---|---|---|")
    for rp in RETENTION_POLICIES:
        out.append(f"| `{rp.name}` | {rp.duration} | {'yes' if rp.default else ''} |")
    out.append("")
    out.append("| tag | meaning |")
    out.append("|---|---|")
    for tag, doc in TAG_DOCS.items():
        out.append(f"| `{tag}` | {doc.replace('|', chr(92) + '|')} |")
    for m in MEASUREMENTS:
        out.append("")
        out.append(f"### `{m.name}`")
        out.append("")
        out.append(m.doc.replace("|", "\\|"))
        out.append("")
        out.append(f"- retention policy: `{m.rp.name}`; write precision: `{m.precision}`")
        out.append(f"- tags: {', '.join(f'`{t}`' for t in m.tags)}")
        out.append("")
        out.append("| field | type | unit | resolution | meaning |")
        out.append("|---|---|---|---|---|")
        for s in m.specs:
            res = f"{10.0**-s.decimals:g}" if s.type == "float" else ""
            doc = s.doc.replace("|", "\\|")
            out.append(f"| `{s.name}` | {s.type} | {s.unit} | {res} | {doc} |")
    return "\n".join(out) + "\n"


DOC_BEGIN = "<!-- schema:begin (generated by `python -m postmon.store.schema`) -->"
DOC_END = "<!-- schema:end -->"


if __name__ == "__main__":  # pragma: no cover - a developer tool
    import sys
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "SCHEMA.md"
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    doc.write_text(f"{head}{DOC_BEGIN}\n{render_markdown()}{DOC_END}{tail}", encoding="utf-8")
    print(f"updated {doc}", file=sys.stderr)

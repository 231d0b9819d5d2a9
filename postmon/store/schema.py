"""The InfluxDB schema: one place that names measurements, tags and fields.

Documented for people in ``docs/SCHEMA.md``; a test compares both with what
a real InfluxDB holds after a write. Dashboards and the report build their
InfluxQL from these names, never from string literals of their own.

Tags identify *who and where* (site, wearer pseudonym, sensor): never names
of people. Fields carry units in their names. Timestamps are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass


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
class Measurement:
    name: str
    rp: RetentionPolicy
    tags: tuple[str, ...]
    fields: tuple[str, ...]  # for `daily`, the DailySummary scalar fields (see below)
    precision: str  # line-protocol precision the writer uses: s | ms | ns
    doc: str

    def qualified(self) -> str:
        """``"rp"."measurement"`` for InfluxQL FROM clauses."""
        return f'"{self.rp.name}"."{self.name}"'


EPOCH = Measurement(
    "epoch",
    RP_EPOCHS,
    tags=("site", "wearer", "sensor"),
    fields=(
        "activity",  # string: lying|sitting|standing|walking|other|nonwear
        "activity_code",  # integer: analysis.contracts.Activity
        "inclination_deg",
        "flexion_deg",
        "lateral_deg",
        "static",  # boolean
        "intensity_g",
    ),
    precision="s",
    doc="One point per wearer per 1-s epoch; time = epoch start.",
)

EVENT = Measurement(
    "event",
    RP_FOREVER,
    tags=("site", "wearer", "kind"),
    fields=("duration_s", "activity", "mean_flexion_deg", "value"),
    precision="ms",
    doc="Transitions, posture bouts, static periods, sustained flexion; time = start.",
)

NUDGE = Measurement(
    "nudge",
    RP_FOREVER,
    tags=("site", "wearer", "reason", "channel"),
    fields=(
        "nudge_id",
        "level",  # escalation level, 1 = first nudge of a static period
        "static_min",  # how long the wearer had been static when it was sent
        "delivered",  # boolean: the channel confirmed delivery
        "answered",  # boolean: the wearer broke the static period in time
        "response_delay_s",  # seconds from sent to the break (answered only)
    ),
    precision="ms",
    doc="One point per nudge; rewritten (same series + time) as delivery/answer arrive.",
)

DAILY = Measurement(
    "daily",
    RP_FOREVER,
    tags=("site", "wearer"),
    # every scalar field of analysis.contracts.DailySummary, eva_a{i}_d{j}_min, settings_json
    fields=(),
    precision="s",
    doc="One point per wearer per local day; time = local midnight (UTC instant).",
)

DEVICE = Measurement(
    "device",
    RP_EPOCHS,
    tags=("site", "wearer", "sensor", "device_type"),
    fields=("battery_pct", "connected", "lost_samples", "gaps", "rate_hz", "reconnects"),
    precision="s",
    doc="Sensor link health and battery, every status interval.",
)

IMU_RAW = Measurement(
    "imu_raw",
    RP_RAW,
    tags=("site", "wearer", "sensor"),
    fields=("ax_g", "ay_g", "az_g", "gx_dps", "gy_dps", "gz_dps"),
    precision="ns",
    doc="Optional raw samples (off by default), kept 7 days.",
)

MEASUREMENTS = (EPOCH, EVENT, NUDGE, DAILY, DEVICE, IMU_RAW)

"""Typed records the store writes besides epochs, events and daily summaries.

``NudgeRecord`` is one nudge (sent, then possibly delivered and answered);
``DeviceStatus`` is one report of a sensor link's health. Both are plain
frozen dataclasses so the collector, the nudge policy, the bus and the store
share one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from analysis.contracts import Event, EventKind


@dataclass(frozen=True, slots=True)
class NudgeRecord:
    """One nudge. ``time_ns`` is when it was sent (UTC ns) and, with the
    tags, identifies the point: a later record with the same time, reason and
    channel (e.g. now ``answered=True``) overwrites the earlier one.

    ``None`` means "not known yet" and is not written (the stored value, if
    any, stays).
    """

    time_ns: int
    nudge_id: str
    reason: str = "static"
    channel: str = "none"
    level: int = 1
    static_min: float | None = None
    delivered: bool | None = None
    answered: bool | None = None
    response_delay_s: float | None = None
    #: the smoothed (decided-epoch) analysis would have sent it too
    confirmed: bool | None = None
    #: smoothed minus live decision time, s (confirmed only)
    confirm_offset_s: float | None = None

    @classmethod
    def from_event(cls, event: Event) -> NudgeRecord:
        """A nudge from an analysis ``Event`` of kind ``nudge`` (attrs by name)."""
        if event.kind != EventKind.NUDGE:
            raise ValueError(f"event kind {event.kind!r} is not {EventKind.NUDGE!r}")
        a: dict[str, Any] = dict(event.attrs)

        def opt_float(key: str) -> float | None:
            v = a.get(key)
            if v is None:
                return None
            f = float(v)
            return None if math.isnan(f) else f

        def opt_bool(key: str) -> bool | None:
            v = a.get(key)
            return None if v is None else bool(v)

        return cls(
            time_ns=int(event.time_ns),
            nudge_id=str(a.get("nudge_id") or f"n{int(event.time_ns)}"),
            reason=str(a.get("reason") or "static"),
            channel=str(a.get("channel") or "none"),
            level=int(a.get("level", 1)),
            static_min=opt_float("static_min"),
            delivered=opt_bool("delivered"),
            answered=opt_bool("answered"),
            response_delay_s=opt_float("response_delay_s"),
            confirmed=opt_bool("confirmed"),
            confirm_offset_s=opt_float("confirm_offset_s"),
        )


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """Health of one sensor link at ``time_ns`` (UTC ns).

    Counters (``lost_samples``, ``gaps``, ``reconnects``) count since the
    stream started; ``battery_pct`` / ``rate_hz`` are ``None`` when unknown.
    """

    time_ns: int
    sensor: str
    device_type: str
    connected: bool
    battery_pct: float | None = None
    rate_hz: float | None = None
    lost_samples: int = 0
    gaps: int = 0
    reconnects: int = 0


@dataclass(frozen=True, slots=True)
class PlanChange:
    """A change of a wearer's care plan, effective at ``time_ns`` (UTC ns).

    ``settings`` holds the new nudge/analysis settings (stored as JSON).
    """

    time_ns: int
    title: str
    text: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

"""Nudges on the sensor itself: vibration patterns and the ``HapticSink`` interface.

Only MetaMotion has a motor; for every other sensor :meth:`HapticSink.vibrate`
answers ``HapticResult(delivered=False, reason=NO_MOTOR)`` at once, so the
nudge router sends the nudge another way (phone, desktop). The result is
truthy only when the sensor accepted every pulse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from collector.errors import CollectorReason


@dataclass(frozen=True, slots=True)
class Pulse:
    """One motor pulse and the pause after it."""

    on_ms: int
    off_ms: int = 0
    duty_percent: float = 100.0

    def __post_init__(self) -> None:
        if not 1 <= self.on_ms <= 5000:
            raise ValueError(f"on_ms={self.on_ms} must be 1..5000 (a nudge, not an alarm)")
        if not 0 <= self.off_ms <= 5000:
            raise ValueError(f"off_ms={self.off_ms} must be 0..5000")
        if not 0 < self.duty_percent <= 100:
            raise ValueError(f"duty_percent={self.duty_percent} must be in (0, 100]")


@dataclass(frozen=True, slots=True)
class VibrationPattern:
    """A short, recognisable sequence of pulses."""

    pulses: tuple[Pulse, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        if not 1 <= len(self.pulses) <= 8:
            raise ValueError(f"a pattern has 1..8 pulses, got {len(self.pulses)}")

    @property
    def duration_s(self) -> float:
        return sum(p.on_ms + p.off_ms for p in self.pulses) / 1000.0


#: The default "time to move" nudge: two firm pulses, distinct from a phone's single buzz.
MOVE_NUDGE = VibrationPattern(
    (Pulse(on_ms=300, off_ms=250, duty_percent=100.0), Pulse(on_ms=300, duty_percent=100.0)),
    name="move",
)


@dataclass(frozen=True, slots=True)
class HapticResult:
    """Outcome of one vibration request.

    ``reason`` is None when delivered; otherwise why not (``NO_MOTOR``: this
    sensor cannot vibrate at all; ``NOT_CONNECTED``: try later or another
    way; ``WRITE_FAILED``: the link failed mid-pattern).
    """

    delivered: bool
    sensor_id: str
    reason: CollectorReason | None = None
    detail: str = ""
    pulses_sent: int = 0

    def __bool__(self) -> bool:
        return self.delivered


def as_vibration(pattern: Any) -> VibrationPattern:
    """A :class:`VibrationPattern` from any pattern with ``pulses`` and a ``name``.

    Accepts this module's patterns and those of ``postmon.nudges``
    (``HapticPulse(duty_pct, pulse_ms, pause_ms)``) without importing them.
    """
    if isinstance(pattern, VibrationPattern):
        return pattern
    pulses = tuple(
        Pulse(on_ms=int(p.pulse_ms), off_ms=int(p.pause_ms), duty_percent=float(p.duty_pct))
        for p in pattern.pulses
    )
    return VibrationPattern(pulses, name=str(getattr(pattern, "name", "custom")))


@runtime_checkable
class HapticSink(Protocol):
    """What the nudge router calls to vibrate a wearer's sensor."""

    @property
    def can_vibrate(self) -> bool:
        """The sensor has a motor (known once its type is known)."""
        ...

    async def vibrate(self, pattern: VibrationPattern = MOVE_NUDGE) -> HapticResult:
        """Play ``pattern`` on the sensor; never raises for link problems."""
        ...

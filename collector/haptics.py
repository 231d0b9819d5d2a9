r"""Nudges on the sensor itself: the one vibration-pattern model and the ``HapticSink``.

A :class:`VibrationPattern` is a few :class:`Pulse`\ s; the nudge delivery
(``postmon.nudges``) picks one (:data:`PATTERN_GENTLE` for a first nudge,
:data:`PATTERN_STRONGER` for an escalation) and the collector plays it on
the wearer's sensor. :func:`metamotion_frames` is the same mapping to the
MetaMotion's ``08 01 <duty> <pulse_ms> 00`` commands as a pure function
(what the session writes, and what the tests check the bytes against);
:func:`play_frames` writes such frames with their spacing.

Only MetaMotion has a motor; for every other sensor :meth:`HapticSink.vibrate`
answers ``HapticResult(delivered=False, reason=NO_MOTOR)`` at once, so the
nudge router sends the nudge another way (phone, desktop). The result is
truthy only when the sensor accepted every pulse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
#: A first nudge: two short, gentle pulses, distinct from a phone buzz (one
#: long pulse) yet easy to ignore in a meeting.
PATTERN_GENTLE = VibrationPattern(
    (Pulse(on_ms=200, off_ms=250, duty_percent=60.0), Pulse(on_ms=200, duty_percent=60.0)),
    name="gentle",
)
#: An escalation: three longer pulses at full power.
PATTERN_STRONGER = VibrationPattern(
    (
        Pulse(on_ms=400, off_ms=250, duty_percent=100.0),
        Pulse(on_ms=400, off_ms=250, duty_percent=100.0),
        Pulse(on_ms=400, duty_percent=100.0),
    ),
    name="stronger",
)


@dataclass(frozen=True, slots=True)
class HapticFrame:
    """A device command and when to write it, ms after the pattern starts."""

    at_ms: int
    data: bytes


def metamotion_frames(pattern: VibrationPattern) -> tuple[HapticFrame, ...]:
    """MetaMotion ``08 01 <duty> <pulse_ms> 00`` commands for ``pattern``.

    The device runs one pulse per command, so the pulses are written one
    after another, each when the previous pulse and its pause are over.
    """
    from collector.protocols.metamotion import cmd_haptic

    frames = []
    at = 0
    for p in pattern.pulses:
        frames.append(HapticFrame(at, cmd_haptic(p.duty_percent, p.on_ms, buzzer=False)))
        at += p.on_ms + p.off_ms
    return tuple(frames)


async def play_frames(
    write: Callable[[bytes], Awaitable[object]],
    frames: Sequence[HapticFrame],
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Write each frame at its time (``write`` raises if the device refuses).

    The first write happens at once: it is the one the latency target
    (threshold crossed -> motor on, p99 <= 2 s) is about.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    for f in frames:
        delay = start + f.at_ms / 1000.0 - loop.time()
        if delay > 0:
            await sleep(delay)
        await write(f.data)


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

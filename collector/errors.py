"""The collector's one exception root, with structured reasons.

Like ``bleak.exc.BleakError``, callers branch on ``reason`` (an enum), never
on message text; messages say what was wrong and what to do (``hint``).
"""

from __future__ import annotations

from enum import Enum


class CollectorReason(Enum):
    DEVICE_NOT_FOUND = "device_not_found"  # not advertising / out of range
    UNKNOWN_DEVICE_TYPE = "unknown_device_type"  # neither configured nor detectable
    CONNECT_FAILED = "connect_failed"
    START_FAILED = "start_failed"  # the device refused its start sequence
    SILENT = "silent"  # connected, but no data for longer than the watchdog allows
    DISCONNECTED = "disconnected"
    NO_MOTOR = "no_motor"  # the sensor cannot vibrate: deliver the nudge another way
    NOT_CONNECTED = "not_connected"
    WRITE_FAILED = "write_failed"
    CONFIG_INVALID = "config_invalid"


class CollectorError(Exception):
    """Root of every error the collector raises on purpose."""

    def __init__(self, message: str, reason: CollectorReason, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  hint: {self.hint}" if self.hint else base

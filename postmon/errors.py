"""One exception root for the service, with structured reasons.

Messages say what was wrong and what to do; ``reason`` lets callers branch
without parsing text (as ``bleak.exc.BleakError`` does with its enums).
"""

from __future__ import annotations

from enum import Enum


class Reason(Enum):
    CONFIG_INVALID = "config_invalid"
    CONFIG_MISSING = "config_missing"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INPUT_MALFORMED = "input_malformed"
    INPUT_UNITS = "input_units"
    DEPENDENCY_MISSING = "dependency_missing"
    AUTH_FAILED = "auth_failed"
    STORAGE_FULL = "storage_full"


class PostmonError(Exception):
    """Root of every error postmon raises on purpose.

    ``exit_code`` is what the CLI exits with when this escapes a command.
    """

    exit_code = 1

    def __init__(self, message: str, reason: Reason, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  hint: {self.hint}" if self.hint else base


class ConfigError(PostmonError):
    exit_code = 2  # usage/config errors, like argparse

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.CONFIG_INVALID, hint=hint)


class ServiceUnavailable(PostmonError):
    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.SERVICE_UNAVAILABLE, hint=hint)


class InputError(PostmonError):
    exit_code = 4

    def __init__(
        self, message: str, *, reason: Reason = Reason.INPUT_MALFORMED, hint: str | None = None
    ) -> None:
        super().__init__(message, reason, hint=hint)

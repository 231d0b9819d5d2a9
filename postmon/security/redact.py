"""Keep secrets out of logs: redact InfluxQL passwords and known secret values.

Two layers. Code that logs statements which may carry a password (InfluxQL
``CREATE USER ... WITH PASSWORD '...'``) redacts them itself with
``redact_influxql``. As a safety net, ``install_log_redaction`` adds a filter
to the root logger's handlers that replaces every known secret value (and
its HTTP Basic/base64 forms) in any record, whatever library logged it.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# PASSWORD, then (up to) the next single-quoted InfluxQL string, backslash escapes
# allowed: covers "WITH PASSWORD '...'" and "SET PASSWORD FOR "u" = '...'"
_INFLUXQL_PASSWORD = re.compile(r"(?i)(\bPASSWORD\b[^']*)'(?:[^'\\]|\\.)*'")


def redact_influxql(statement: str) -> str:
    """``CREATE USER u WITH PASSWORD 'x'`` -> ``... WITH PASSWORD [REDACTED]``,
    ``SET PASSWORD FOR u = 'x'`` -> ``SET PASSWORD FOR u = [REDACTED]``."""
    return _INFLUXQL_PASSWORD.sub(lambda m: m.group(1) + REDACTED, statement)


def secret_forms(secret: str, usernames: Iterable[str] = ()) -> set[str]:
    """The strings under which ``secret`` could leak: itself, and the base64
    of ``user:secret`` that an HTTP Basic Authorization header carries."""
    forms = {secret}
    for user in usernames:
        forms.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return forms


class SecretFilter(logging.Filter):
    """Replace known secret values in log records with ``[REDACTED]``."""

    def __init__(self) -> None:
        super().__init__("postmon.redact")
        self._secrets: set[str] = set()  # everything to redact
        self._raw: set[str] = set()  # the secrets themselves (not derived forms)

    def add(self, *values: str) -> None:
        # very short values would redact ordinary words; real secrets are long
        new = {v for v in values if v and len(v) >= 6}
        self._raw.update(new)
        self._secrets.update(new)

    def add_basic_forms(self, usernames: Iterable[str]) -> None:
        """Also redact ``base64(user:secret)`` for every raw secret known."""
        for raw in list(self._raw):
            self._secrets.update(secret_forms(raw, usernames))

    def __repr__(self) -> str:
        return f"SecretFilter({len(self._secrets)} secrets)"

    def _clean(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # the formatted traceback could hold a secret in an exception message
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_FILTER = SecretFilter()


def register_secret(secret: str, usernames: Iterable[str] = ()) -> None:
    """Remember ``secret`` so the log filter redacts it (called by every
    place postmon reads or writes a secret)."""
    if secret:
        _FILTER.add(secret)
        _FILTER.add_basic_forms(usernames)


def install_log_redaction(
    secrets: Iterable[str] = (), usernames: Iterable[str] = ()
) -> SecretFilter:
    """Redact ``secrets`` (and their Basic-auth forms for ``usernames``) and
    every registered secret from all root handlers' output."""
    names = [u for u in usernames if u]
    for s in secrets:
        register_secret(s, names)
    if names:
        # Basic-auth forms of the secrets registered before the user names were known
        _FILTER.add_basic_forms(names)
    root = logging.getLogger()
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER

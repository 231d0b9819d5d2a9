"""What may appear as a wearer or site in telemetry: pseudonyms, never names.

Wearer IDs and sites become MQTT topic levels (``<root>/<site>/<wearer>/...``)
and InfluxDB tag values, so they are copied into every message, series key,
backup and dashboard. Keeping them to a narrow alphabet does two jobs:

* privacy: a code such as ``p017`` carries no identity; a first name or an
  e-mail address would. A wearer ID must therefore contain a digit (codes do,
  names do not), so ``alice`` or ``JohnSmith`` is refused at configuration
  time rather than discovered later in a year of stored data;
* safety: no ``/``, ``+``, ``#`` (MQTT topic syntax), no spaces, commas, ``=``
  or quotes (line-protocol syntax), no dots (``john.smith``) and no ``@``.
  A pseudonym needs no escaping anywhere and cannot widen an ACL pattern.

This module is pure (no I/O) so configuration, the bus and the store can all
call it.
"""

from __future__ import annotations

import re

MAX_LEN = 64
_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_DIGIT = re.compile(r"[0-9]")

WEARER_HINT = (
    "use the clinic's or study's code for the wearer, such as p017 or w-0042: "
    f"letters, digits, - and _ only, at least one digit, at most {MAX_LEN} characters "
    "(never a person's name)"
)
SITE_HINT = (
    f"use a short code such as clinic-a or ward3: letters, digits, - and _ only, "
    f"starting with a letter or digit, at most {MAX_LEN} characters"
)


def _shaped(value: str) -> bool:
    return 0 < len(value) <= MAX_LEN and _SHAPE.fullmatch(value) is not None


def pseudonym_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable wearer pseudonym, or None if it is."""
    if not isinstance(value, str) or not _shaped(value):
        return f"wearer={value!r} is not a pseudonym; {WEARER_HINT}"
    if _DIGIT.search(value) is None:
        return f"wearer={value!r} looks like a name, not a pseudonym (no digit); {WEARER_HINT}"
    return None


def site_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable site code, or None if it is."""
    if not isinstance(value, str) or not _shaped(value):
        return f"site={value!r} is not a valid site code; {SITE_HINT}"
    return None


def check_pseudonym(value: str) -> str:
    """Return ``value`` if it is a wearer pseudonym; raise ValueError otherwise."""
    problem = pseudonym_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_site(value: str) -> str:
    """Return ``value`` if it is a site code; raise ValueError otherwise."""
    problem = site_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def is_pseudonym(value: str) -> bool:
    return pseudonym_problem(value) is None

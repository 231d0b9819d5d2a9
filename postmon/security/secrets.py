"""Secret files: written owner-only, atomically; passwords generated strong.

Reading secrets lives in ``postmon.config.read_secret`` (environment, or a
file that group and others cannot read). This module is the writing side,
used by the provisioning commands that create accounts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from postmon.errors import ConfigError
from postmon.security.redact import register_secret

#: 32 random bytes -> 43 URL-safe characters: no quoting needed in InfluxQL,
#: MQTT, shell or TOML, and far beyond brute force over a network.
PASSWORD_BYTES = 32


def generate_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def write_secret_file(path: Path, value: str, *, multiline: bool = False) -> None:
    """Write ``value`` to ``path`` with mode 0600, atomically (no moment where
    the file exists with wider permissions or half-written).

    Passwords must be one line (``multiline=False``); PEM keys are several.
    """
    if not value.strip() or (not multiline and "\n" in value):
        raise ValueError("a secret must be one non-empty line")
    register_secret(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_secret_file(path: Path) -> str:
    """Read a secret written by ``write_secret_file``, refusing unsafe modes."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path} ({exc})") from exc
    if mode & 0o077:
        raise ConfigError(
            f"secret file {path} is readable by others (mode {oct(mode & 0o777)})",
            hint=f"chmod 600 {path}",
        )
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigError(f"secret file {path} is empty", hint="write the secret into it")
    register_secret(value)
    return value


def secret_dir(out: Path) -> Path:
    """``OUT/secrets``, created owner-only."""
    d = out / "secrets"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d

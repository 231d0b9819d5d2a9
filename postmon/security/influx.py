"""InfluxDB v1 HTTP with authentication: users, grants, and errors that say what to do.

A small client for the administrative side (provisioning users, erasure)
over ``/query`` and ``/write``. Credentials travel in an HTTP Basic
``Authorization`` header, never in the URL (URLs end up in access logs and in
exception messages), and statements go in the POST body. Statements that
carry a password are redacted before they are logged.

InfluxDB 1.x privileges (per database: READ, WRITE, ALL; plus cluster admin)
are coarse: WRITE also allows ``DROP SERIES``/``DELETE``. That is why
credentials are per role: ingest workers get the writer account, Grafana
the reader account, and only operators hold the admin account.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from postmon.config import InfluxConfig
from postmon.errors import PostmonError, Reason, ServiceUnavailable
from postmon.security.redact import redact_influxql
from postmon.security.secrets import (
    generate_password,
    read_secret_file,
    secret_dir,
    write_secret_file,
)

log = logging.getLogger(__name__)

PASSWORD_ENV = "POSTMON_INFLUX_PASSWORD"
ADMIN_USER = "postmon_admin"
WRITER_USER = "postmon_writer"
READER_USER = "postmon_reader"


class InfluxAccessDenied(PostmonError):
    """InfluxDB refused the credentials (401) or the privilege (403)."""

    exit_code = 2  # fixing it means fixing configuration/secrets, like a config error

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.AUTH_FAILED, hint=hint)


class InfluxRequestError(PostmonError):
    """InfluxDB answered, but refused the request itself (bad statement, ...)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.INPUT_MALFORMED, hint=hint)


def quote_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def explain_http_error(
    status: int, body: str, *, url: str, username: str, action: str
) -> PostmonError:
    """The postmon error for a non-2xx InfluxDB answer: what went wrong and what to do.

    Shared by every InfluxDB client in postmon so 401/403 always read the same.
    """
    detail = body.strip()
    with contextlib.suppress(ValueError, AttributeError):
        detail = str(json.loads(body).get("error", detail))
    if status == 401 and not username:
        return InfluxAccessDenied(
            f"InfluxDB at {url} requires authentication for {action}, and no user is configured "
            f"(InfluxDB said: {detail})",
            hint="set [influxdb] username in the config and the password in $POSTMON_INFLUX_"
            "PASSWORD or $POSTMON_INFLUX_PASSWORD_FILE (a chmod-600 file); accounts are made by "
            "`postmon security influx-users` (see docs/SECURITY.md)",
        )
    if status == 401:
        return InfluxAccessDenied(
            f"InfluxDB at {url} refused user {username!r} for {action}: wrong password or unknown "
            f"user (InfluxDB said: {detail})",
            hint="check that $POSTMON_INFLUX_PASSWORD / $POSTMON_INFLUX_PASSWORD_FILE holds this "
            "user's current password (the file written by `postmon security influx-users`); "
            "to reset it run that command with --rotate",
        )
    if status == 403:
        return InfluxAccessDenied(
            f"InfluxDB at {url}: user {username!r} lacks the privilege for {action} "
            f"(InfluxDB said: {detail})",
            hint="use the account meant for this job (writer for ingest, reader for dashboards, "
            "admin for provisioning and erasure), or GRANT the privilege as admin",
        )
    return InfluxRequestError(f"InfluxDB at {url} refused {action}: HTTP {status}: {detail}")


@dataclass(frozen=True)
class InfluxHttp:
    """Authenticated InfluxDB v1 HTTP calls (``/ping``, ``/query``, ``/write``)."""

    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_s: float = 10.0
    #: CA file for https:// (default: the system store, or $SSL_CERT_FILE)
    ca_file: str = ""

    @classmethod
    def from_config(cls, cfg: InfluxConfig) -> InfluxHttp:
        return cls(cfg.url.rstrip("/"), cfg.username, cfg.password, cfg.timeout_s)

    def _headers(self) -> dict[str, str]:
        if not self.username:
            return {}
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _send(self, path: str, params: dict[str, str], body: bytes, action: str) -> bytes:
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=body, method="POST", headers=self._headers())
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=ctx) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            raise explain_http_error(
                exc.code, text, url=self.url, username=self.username, action=action
            ) from None  # the HTTPError carries the request, headers included: do not chain it
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLError):
                raise PostmonError(
                    f"TLS to InfluxDB at {self.url} failed: {reason}",
                    Reason.AUTH_FAILED,
                    hint="the server's certificate must be signed by a CA this host trusts: "
                    "set SSL_CERT_FILE to the deployment's ca.crt (see docs/SECURITY.md)",
                ) from None
            raise ServiceUnavailable(
                f"InfluxDB at {self.url} is not reachable ({getattr(exc, 'reason', exc)})",
                hint="check [influxdb] url; for the local services run `postmon services up`",
            ) from None

    def query(self, statement: str, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; return the ``results`` list. Statement errors raise."""
        log.debug("influxql: %s", redact_influxql(statement))
        form = {"q": statement}
        if db:
            form["db"] = db
        raw = self._send(
            "/query", {}, urllib.parse.urlencode(form).encode(), f"query {_verb(statement)}"
        )
        results: list[dict[str, Any]] = json.loads(raw).get("results", [])
        for r in results:
            if "error" in r:
                raise InfluxRequestError(
                    f"InfluxDB refused {redact_influxql(statement)!r}: {r['error']}"
                )
        return results

    def write(self, lines: str, db: str, *, rp: str | None = None, precision: str = "ns") -> None:
        params = {"db": db, "precision": precision}
        if rp:
            params["rp"] = rp
        self._send("/write", params, lines.encode(), f"writing to database {db!r}")


def _verb(statement: str) -> str:
    words = statement.split()
    return " ".join(words[:2]).upper() if words else "(empty)"


def series_values(results: list[dict[str, Any]]) -> list[list[Any]]:
    """All ``values`` rows of all series of the first result."""
    if not results:
        return []
    rows: list[list[Any]] = []
    for s in results[0].get("series", []) or []:
        rows.extend(s.get("values", []) or [])
    return rows


# ------------------------------------------------------------------ provisioning


@dataclass(frozen=True)
class InfluxUser:
    username: str
    #: ADMIN: cluster admin; ALL: read and write on the database (not admin)
    privilege: Literal["ADMIN", "ALL", "WRITE", "READ"]
    secret_file: Path


def existing_users(http: InfluxHttp) -> dict[str, bool]:
    """``{username: is_admin}``."""
    return {str(u): bool(a) for u, a in series_values(http.query("SHOW USERS"))}


def bootstrap_admin(http_noauth: InfluxHttp, username: str, password: str) -> None:
    """Create the first (admin) user of a server with ``auth-enabled = true``.

    InfluxDB 1.x accepts exactly this statement without credentials while it
    has no users at all; afterwards every request must authenticate.
    """
    http_noauth.query(
        f"CREATE USER {quote_ident(username)} WITH PASSWORD {quote_string(password)} "
        "WITH ALL PRIVILEGES"
    )


def provision_users(
    admin: InfluxHttp,
    database: str,
    out: Path,
    *,
    users: Iterable[tuple[str, Literal["ALL", "WRITE", "READ"]]] = (
        # the writer also READs: its activity roll-ups are SELECT ... INTO
        # (postmon.store.writer.downsample_now), which InfluxDB 1.x allows
        # only with read and write on the database; it is still not an admin
        (WRITER_USER, "ALL"),
        (READER_USER, "READ"),
    ),
    rotate: bool = False,
) -> list[InfluxUser]:
    """Create (or update) least-privilege users on ``database``: by default
    ``postmon_writer`` (read and write, for ingest) and ``postmon_reader``
    (read only, for Grafana and reports); neither is an admin.

    Each user's password lives in ``OUT/secrets/influx-<user>.password``
    (0600) and that file is the source of truth: the server's password is set
    from it on every run (so an interrupted run heals on the next), and a new
    one is generated only when the file is missing or ``rotate``. Grants are
    set exactly: a user meant to READ loses any WRITE it had.
    """
    sdir = secret_dir(out)
    admin.query(f"CREATE DATABASE {quote_ident(database)}")  # no-op when it exists
    have = existing_users(admin)
    made: list[InfluxUser] = []
    for username, privilege in users:
        if have.get(username):
            raise InfluxRequestError(
                f"InfluxDB user {username!r} exists and is an admin; refusing to reuse it as a "
                f"least-privilege {privilege} account",
                hint=f"as admin: DROP USER {quote_ident(username)}, then run this again",
            )
        path = sdir / f"influx-{username}.password"
        if rotate or not path.exists():
            write_secret_file(path, generate_password())
        password = read_secret_file(path)
        user = quote_ident(username)
        if username in have:
            admin.query(f"SET PASSWORD FOR {user} = {quote_string(password)}")
        else:
            admin.query(f"CREATE USER {user} WITH PASSWORD {quote_string(password)}")
        db = quote_ident(database)
        admin.query(f"REVOKE ALL PRIVILEGES ON {db} FROM {user}")
        admin.query(f"GRANT {privilege} ON {db} TO {user}")
        made.append(InfluxUser(username, privilege, path))
        log.info("influx user %s: %s on %s", username, privilege, database)
    return made


def bootstrap_admin_with_file(http_noauth: InfluxHttp, out: Path) -> InfluxUser:
    """Create ``postmon_admin`` on a server that has no users yet; its
    password goes to ``OUT/secrets/influx-postmon_admin.password``."""
    path = secret_dir(out) / f"influx-{ADMIN_USER}.password"
    if not path.exists():
        write_secret_file(path, generate_password())
    try:
        bootstrap_admin(http_noauth, ADMIN_USER, read_secret_file(path))
    except InfluxAccessDenied as exc:
        raise InfluxAccessDenied(
            f"InfluxDB at {http_noauth.url} already has users, so an admin cannot be created "
            "without credentials",
            hint="set [influxdb] username to an admin user and its password in "
            "$POSTMON_INFLUX_PASSWORD or $POSTMON_INFLUX_PASSWORD_FILE, then run again",
        ) from exc
    return InfluxUser(ADMIN_USER, "ADMIN", path)

"""InfluxDB transports behind one small interface, and the retry policy.

``V1HttpBackend`` speaks InfluxDB's v1 HTTP API (``/write``, ``/query``):
InfluxDB 1.x with user/password, 2.x/3.x through their v1 compatibility API
with a token (``Authorization: Token ...``). ``ClientV2Backend`` writes with
``influxdb-client`` (``/api/v2/write``: org, bucket, token) for people who
run 2.x/3.x the native way; it reads through the same v1 ``/query``.

The v1 transport uses the standard library's ``http.client`` rather than
urllib3: the writer has exactly one sender thread with one keep-alive
connection (no pool needed), retries are decided by our own policy table
(urllib3's Retry would hide them from the counters), and in this
environment ``import urllib3`` may resolve to the ``urllib3-future`` fork
that another dependency installs over it, so the stdlib keeps the write
path's behaviour independent of which one is present.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, cast

from postmon.config import InfluxConfig
from postmon.errors import PostmonError, Reason, ServiceUnavailable


class Action(Enum):
    """What the writer does with a batch after one attempt."""

    DONE = "done"  # stored (possibly partly: see WriteResult.rejected)
    RETRY = "retry"  # transient: back off, keep the data (spool if it lasts)
    REJECT = "reject"  # the data itself is bad: retrying cannot help; log and count
    SPLIT = "split"  # too large for the server: halve and resend


#: The retry policy: HTTP status -> action. Connection errors and timeouts
#: (status None) retry. Anything not listed: 4xx reject, others retry.
RETRY_POLICY: Mapping[int | None, Action] = {
    None: Action.RETRY,  # refused, reset, timeout, DNS: the server is away
    200: Action.DONE,
    204: Action.DONE,
    400: Action.REJECT,  # unparsable or type conflict (partial writes: rejected=N)
    401: Action.RETRY,  # bad credentials: a config problem, keep the data until fixed
    403: Action.RETRY,  # token lacks write permission: same
    404: Action.RETRY,  # database/bucket missing: the writer re-creates it, keep the data
    408: Action.RETRY,
    413: Action.SPLIT,  # body larger than the server's max-body-size
    422: Action.REJECT,  # 2.x: points outside the retention period / unprocessable
    429: Action.RETRY,  # throttled (2.x/Cloud): honour Retry-After
    500: Action.RETRY,
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
}

_DROPPED = re.compile(r"dropped=(\d+)")


def classify(status: int | None) -> Action:
    if status in RETRY_POLICY:
        return RETRY_POLICY[status]
    assert status is not None
    return Action.REJECT if 400 <= status < 500 else Action.RETRY


@dataclass(frozen=True, slots=True)
class WriteResult:
    """One attempt's outcome. ``rejected`` points were refused by the server
    (partial write); the others of a DONE batch are stored."""

    action: Action
    status: int | None
    message: str = ""
    rejected: int = 0
    retry_after_s: float | None = None


def result_from_status(status: int | None, message: str, points: int) -> WriteResult:
    action = classify(status)
    rejected = 0
    if status == 400:
        m = _DROPPED.search(message)
        if "partial write" in message and m:
            # InfluxDB stored the others: the batch is done, N points refused
            rejected = min(points, int(m.group(1)))
            action = Action.DONE
        else:
            rejected = points
    elif action is Action.REJECT:
        rejected = points
    return WriteResult(action, status, message, rejected)


class StoreError(PostmonError):
    """A query failed in a way the caller must know about (message says why)."""


class Backend(Protocol):
    """What the writer and reader need from a transport."""

    def write(self, body: bytes, *, rp: str, precision: str, points: int) -> WriteResult: ...

    def query(self, q: str, *, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]: ...

    def ensure_database(self) -> None: ...

    def close(self) -> None: ...


def _auth_header(cfg: InfluxConfig) -> str | None:
    if cfg.token:
        return f"Token {cfg.token}"
    if cfg.username:
        raw = f"{cfg.username}:{cfg.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()
    return None


class V1HttpBackend:
    """InfluxDB v1 HTTP API over one keep-alive connection (thread-safe)."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        u = urllib.parse.urlsplit(cfg.url)
        self._https = u.scheme == "https"
        self._host = u.hostname or "127.0.0.1"
        self._port = u.port or (443 if self._https else 80)
        self._base = u.path.rstrip("/")
        self._auth = _auth_header(cfg)
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ plumbing
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.cfg.timeout_s)
        return self._conn

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes, dict[str, str]]:
        """One request; raises OSError/HTTPException on transport failure."""
        url = f"{self._base}{path}?{urllib.parse.urlencode(params)}"
        if self._auth:
            headers["Authorization"] = self._auth
        with self._lock:
            for attempt in (0, 1):
                conn = self._connection()
                try:
                    conn.request(method, url, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    hdrs = {k.lower(): v for k, v in resp.getheaders()}
                    if hdrs.get("connection", "").lower() == "close":
                        self._drop()
                    return resp.status, data, hdrs
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # a keep-alive connection the server closed meanwhile: one fresh try
                    self._drop()
                    if attempt:
                        raise
                except (OSError, http.client.HTTPException):
                    self._drop()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -------------------------------------------------------------- public
    def write(self, body: bytes, *, rp: str, precision: str, points: int) -> WriteResult:
        params = {"db": self.cfg.database, "rp": rp, "precision": precision}
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.cfg.gzip:
            # level 1: line protocol shrinks ~8x already; higher levels cost CPU for ~10 % more
            body = gzip.compress(body, compresslevel=1, mtime=0)
            headers["Content-Encoding"] = "gzip"
        try:
            status, data, hdrs = self._request("POST", "/write", params, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            return WriteResult(Action.RETRY, None, f"{type(exc).__name__}: {exc}")
        message = data.decode("utf-8", "replace").strip()
        res = result_from_status(status, message, points)
        retry_after = hdrs.get("retry-after")
        if retry_after and retry_after.isdigit():
            return WriteResult(
                res.action, res.status, res.message, res.rejected, float(retry_after)
            )
        return res

    def query(self, q: str, *, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; returns the ``results`` list. Raises ServiceUnavailable
        when the server cannot be reached and StoreError when it says no."""
        p = {"db": self.cfg.database, "q": q, "epoch": "ns", **(params or {})}
        body = urllib.parse.urlencode(p).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            status, data, _ = self._request("POST", "/query", {}, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise ServiceUnavailable(
                f"InfluxDB at {self.cfg.url} did not answer: {exc}",
                hint="is InfluxDB running? (`postmon services status`)",
            ) from exc
        text = data.decode("utf-8", "replace")
        if status in (401, 403):
            # one wording for 401 (who are you?) vs 403 (not allowed) across postmon
            from postmon.security.influx import explain_http_error

            raise explain_http_error(
                status, text, url=self.cfg.url, username=self.cfg.username, action="queries"
            )
        results: list[dict[str, Any]] = []
        # chunked answers are one JSON document per line
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StoreError(
                    f"InfluxDB answered {status} with non-JSON: {line[:200]!r}",
                    Reason.SERVICE_UNAVAILABLE,
                ) from exc
            if "error" in doc:
                raise StoreError(f"InfluxDB query failed: {doc['error']}", Reason.INPUT_MALFORMED)
            for r in doc.get("results", []):
                if "error" in r:
                    raise StoreError(
                        f"InfluxDB query failed: {r['error']} (query: {q[:300]})",
                        Reason.INPUT_MALFORMED,
                    )
                results.append(r)
        if status >= 400 and not results:
            raise StoreError(
                f"InfluxDB answered {status}: {text[:300]}", Reason.SERVICE_UNAVAILABLE
            )
        return results

    def ensure_database(self) -> None:
        ensure_database_v1(self)

    def close(self) -> None:
        with self._lock:
            self._drop()


def ensure_database_v1(backend: Backend) -> None:
    """CREATE DATABASE and the retention policies, idempotently."""
    from postmon.store.schema import RETENTION_POLICIES, quote_ident, retention_policy_statement

    db = backend_db(backend)
    backend.query(f"CREATE DATABASE {quote_ident(db)}")
    res = backend.query(f"SHOW RETENTION POLICIES ON {quote_ident(db)}")
    existing = set()
    for series in res[0].get("series", []) if res else []:
        existing |= {row[0] for row in series.get("values", [])}
    stmts = [
        retention_policy_statement(db, rp, exists=rp.name in existing) for rp in RETENTION_POLICIES
    ]
    backend.query("; ".join(stmts))


def backend_db(backend: Backend) -> str:
    cfg = getattr(backend, "cfg", None)
    assert isinstance(cfg, InfluxConfig)
    return cfg.database


class ClientV2Backend:
    """Writes through ``influxdb-client`` (``/api/v2/write``), reads via v1 ``/query``.

    Each retention policy maps to a bucket named by
    ``InfluxConfig.bucket_template`` (default ``{database}/{rp}``, the name
    InfluxDB 2.x's DBRP mapping and 1.8+'s v2 compatibility use).
    """

    def __init__(self, cfg: InfluxConfig) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.cfg = cfg
        # retries=False: the writer's policy table decides, and counts, retries
        self._client = InfluxDBClient(
            url=cfg.url,
            token=cfg.token or f"{cfg.username}:{cfg.password}",
            org=cfg.org or "-",
            timeout=int(cfg.timeout_s * 1000),
            enable_gzip=cfg.gzip,
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._v1 = V1HttpBackend(cfg)

    def bucket(self, rp: str) -> str:
        return self.cfg.bucket_template.format(database=self.cfg.database, rp=rp)

    def write(self, body: bytes, *, rp: str, precision: str, points: int) -> WriteResult:
        from influxdb_client.rest import ApiException

        try:
            self._write_api.write(
                bucket=self.bucket(rp),
                org=self.cfg.org or "-",
                record=body,
                # WritePrecision's values are these very strings ("s", "ms", "ns")
                write_precision=cast(Any, precision),
            )
        except ApiException as exc:
            raw: Any = exc.body or exc.reason or ""
            message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            res = result_from_status(int(exc.status), message, points)
            headers: Any = exc.headers or {}
            ra = headers.get("Retry-After")
            if ra and str(ra).isdigit():
                return WriteResult(res.action, res.status, res.message, res.rejected, float(ra))
            return res
        except Exception as exc:  # urllib3 (or its fork) connection errors, timeouts
            return WriteResult(Action.RETRY, None, f"{type(exc).__name__}: {exc}")
        return WriteResult(Action.DONE, 204)

    def query(self, q: str, *, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        return self._v1.query(q, params=params)

    def ensure_database(self) -> None:
        # 2.x/3.x: buckets are created by an administrator (they carry the retention)
        return None

    def close(self) -> None:
        self._write_api.close()
        self._client.close()
        self._v1.close()


def make_backend(cfg: InfluxConfig) -> Backend:
    if cfg.backend == "v2":
        return ClientV2Backend(cfg)
    return V1HttpBackend(cfg)

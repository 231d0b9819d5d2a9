"""Right to erasure: delete everything postmon holds about one wearer.

A wearer's data lives in four places, and ``erase_wearer`` clears each:

1. **InfluxDB**: every series tagged ``wearer=<id>``, in every measurement
   and every retention policy. ``DROP SERIES WHERE "wearer" = '<id>'``
   without ``FROM`` does exactly that on InfluxDB 1.x: series are indexed per
   database, and dropping one removes its points from the shards of all
   retention policies (verified against InfluxDB 1.6.7 with raw, 2-year and
   forever policies). Counts are taken before and checked to be zero after.
2. **Retained MQTT messages** under ``<root>/+/<id>/#``: found by
   subscribing (the broker replays retained messages to a new subscription)
   and cleared by publishing an empty retained message to each topic, which
   is how MQTT deletes a retained message.
3. **Local disk spools and dead-letter files** of this host (data waiting
   for an unreachable InfluxDB or broker, data a server refused): the
   wearer's lines and messages are removed (``erase_local``); run it on
   every collector and ingest host (``postmon erase --local-only``).
4. Nothing else: analysis state is in memory and rebuilt from the stream.

What this cannot reach, and the procedure in ``docs/SECURITY.md`` covers:
backups and exports made earlier, Grafana's own caches, QoS 1 messages
queued by the broker for an ingest worker that is down (they reach InfluxDB
when it returns: erase again after the workers have drained), and data
InfluxDB has tombstoned but not yet compacted away on disk.

The wearer must be out of the pairing table first, otherwise a running
collector would write new data right after the erasure.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postmon.config import Config
from postmon.errors import ConfigError, PostmonError, Reason
from postmon.security.influx import InfluxHttp, quote_ident, quote_string, series_values
from postmon.security.pseudonym import check_pseudonym
from postmon.store.spool import Spool, SpoolRecord

log = logging.getLogger(__name__)

WEARER_TAG = "wearer"  # the tag every measurement carries (postmon.store.schema)
RETAINED_SCAN_TIMEOUT_S = 10.0


class ErasureIncomplete(PostmonError):
    """Data of the wearer was still found after the erasure."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.SERVICE_UNAVAILABLE, hint=hint)


@dataclass(frozen=True)
class InfluxHoldings:
    """What InfluxDB holds about one wearer."""

    series: tuple[str, ...]  # series keys ("epoch,site=a,wearer=p017,...")
    points: dict[str, int]  # '"rp"."measurement"' -> number of points

    @property
    def total_points(self) -> int:
        return sum(self.points.values())


@dataclass(frozen=True)
class ErasureReport:
    wearer: str
    database: str
    dry_run: bool
    influx_before: InfluxHoldings | None  # None: InfluxDB was not asked
    influx_after: InfluxHoldings | None
    retained_topics: tuple[str, ...] | None  # found (and unless dry_run cleared); None: skipped
    #: spool directory or dead-letter file -> points (lines) of the wearer removed
    local_files: dict[str, int] = field(default_factory=dict)
    #: where local spools were looked for (absolute), when they were
    local_roots: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        verb = "would erase" if self.dry_run else "erased"
        out = [f"wearer {self.wearer}: {verb}:"]
        if self.influx_before is not None:
            out.append(
                f"  InfluxDB database {self.database!r}: {len(self.influx_before.series)} series, "
                f"{self.influx_before.total_points} points"
            )
            out.extend(
                f"    {where}: {n} points" for where, n in sorted(self.influx_before.points.items())
            )
        if self.retained_topics is not None:
            out.append(f"  retained MQTT messages: {len(self.retained_topics)}")
            out.extend(f"    {t}" for t in self.retained_topics)
        if self.local_roots:
            out.append(f"  local spools looked for under: {', '.join(self.local_roots)}")
        out.append(f"  local spools and dead-letter files holding data: {len(self.local_files)}")
        out.extend(f"    {p}: {n} point(s)/line(s)" for p, n in sorted(self.local_files.items()))
        if self.influx_after is not None:
            out.append(
                f"  InfluxDB after: {len(self.influx_after.series)} series, "
                f"{self.influx_after.total_points} points remain"
            )
        return out


# ------------------------------------------------------------------ InfluxDB


def _where(wearer: str) -> str:
    return f"{quote_ident(WEARER_TAG)} = {quote_string(wearer)}"


def influx_holdings(http: InfluxHttp, db: str, wearer: str) -> InfluxHoldings:
    """Series and point counts of ``wearer`` in every retention policy of ``db``."""
    where = _where(wearer)
    series = tuple(str(r[0]) for r in series_values(http.query(f"SHOW SERIES WHERE {where}", db)))
    points: dict[str, int] = {}
    if series:
        rps = [str(r[0]) for r in series_values(http.query("SHOW RETENTION POLICIES", db))]
        for rp in rps:
            # count(*) gives one column per field; a point has at least one field,
            # so the largest column is the number of points of that measurement
            res = http.query(f"SELECT count(*) FROM {quote_ident(rp)}./.*/ WHERE {where}", db)
            for s in (res[0].get("series") or []) if res else []:
                counts = [int(v) for v in s["values"][0][1:] if v is not None]
                if counts and max(counts) > 0:
                    points[f"{quote_ident(rp)}.{quote_ident(s['name'])}"] = max(counts)
    return InfluxHoldings(series, points)


def erase_influx(http: InfluxHttp, db: str, wearer: str) -> InfluxHoldings:
    """Drop every series of ``wearer``; return what remains (should be nothing)."""
    http.query(f"DROP SERIES WHERE {_where(wearer)}", db)
    return influx_holdings(http, db, wearer)


# ---------------------------------------------------------------------- MQTT


def wearer_topic_filter(topic_root: str, wearer: str) -> str:
    """Every topic of ``wearer`` at any site: ``<root>/+/<wearer>/#``
    (``#`` also matches the parent level itself)."""
    return f"{topic_root}/+/{check_pseudonym(wearer)}/#"


def _scan_retained(session: Any, topic_filter: str, root: str) -> list[str]:
    """Topics under ``topic_filter`` holding a (non-empty) retained message.

    The broker sends retained messages right after the SUBACK, from the
    client's queue, in order. A marker published to this client afterwards
    therefore arrives after all of them: no guessing with quiet periods.
    """
    # "_erase" cannot be a site (sites start with a letter or digit)
    marker = f"{root}/_erase/{uuid.uuid4().hex}"
    retained: dict[str, bool] = {}
    seen_marker = []

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if msg.topic == marker:
            seen_marker.append(True)
        elif msg.retain:
            retained[msg.topic] = bool(msg.payload)

    session.client.on_message = on_message
    for t in (marker, topic_filter):
        code = session.subscribe(t)
        if code.is_failure:
            raise _mqtt_denied(session, f"subscribe {t!r}", code)
    code = session.publish(marker, b"", qos=1)
    if code.is_failure:
        raise _mqtt_denied(session, f"publish to {marker!r}", code)
    deadline = time.monotonic() + RETAINED_SCAN_TIMEOUT_S
    while not seen_marker and time.monotonic() < deadline:
        time.sleep(0.01)
    if not seen_marker:
        raise ErasureIncomplete(
            "the MQTT broker did not deliver the scan marker within "
            f"{RETAINED_SCAN_TIMEOUT_S:.0f} s",
            hint="the erase account needs read and write on the whole topic tree "
            "(the `admin` account of `postmon security mqtt-acl`)",
        )
    for t in (marker, topic_filter):
        session.client.unsubscribe(t)
    return sorted(t for t, nonempty in retained.items() if nonempty)


def _mqtt_denied(session: Any, what: str, code: Any) -> PostmonError:
    from postmon.security.mqtt import MqttAccessDenied

    return MqttAccessDenied(
        f"MQTT broker refused {what} for user {session.cfg.username!r}: {code.getName()}",
        hint="run erasure with the MQTT `admin` account (readwrite on the whole topic tree): "
        'set [mqtt] username = "admin" and POSTMON_MQTT_PASSWORD_FILE to its password file',
    )


def clear_retained(cfg: Config, wearer: str, *, dry_run: bool = False) -> tuple[str, ...]:
    """Find (and unless ``dry_run`` clear) retained messages of ``wearer``."""
    from postmon.security.mqtt import session as mqtt_session

    root = cfg.mqtt.topic_root
    flt = wearer_topic_filter(root, wearer)
    with mqtt_session(cfg.mqtt, f"postmon-erase-{uuid.uuid4().hex[:8]}") as s:
        topics = _scan_retained(s, flt, root)
        if dry_run:
            return tuple(topics)
        for t in topics:
            code = s.publish(t, b"", qos=1, retain=True)  # empty + retained = delete
            if code.is_failure:
                raise _mqtt_denied(s, f"clearing retained {t!r}", code)
        left = _scan_retained(s, flt, root)
    if left:
        raise ErasureIncomplete(
            f"retained MQTT messages of {wearer} remain after clearing: {left}",
            hint="a collector may still publish for this wearer: stop it and erase again",
        )
    return tuple(topics)


# ------------------------------------------------------------- local files

_ERASE_TMP = ".erase-"  # prefix of this module's work directories beside a spool
_KEY_END = re.compile(rb"(?<!\\) ")  # the series key ends at the first unescaped space


def lp_line_is_wearer(line: bytes, wearer: str) -> bool:
    """Whether a line-protocol line belongs to ``wearer`` (its ``wearer`` tag).

    Only the series key (before the first unescaped space) is looked at, so
    a string field that happens to contain ``wearer=...`` does not match.
    Pseudonyms need no escaping, so the tag appears literally.
    """
    m = _KEY_END.search(line)
    key = line[: m.start()] if m else line
    tag = b",wearer=" + wearer.encode()
    i = key.find(tag)
    while i >= 0:
        end = i + len(tag)
        if (i == 0 or key[i - 1 : i] != b"\\") and (end == len(key) or key[end : end + 1] == b","):
            return True
        i = key.find(tag, i + 1)
    return False


def topic_is_wearer(topic: str, wearer: str) -> bool:
    """Whether an MQTT topic is one of ``wearer``'s (``.../<site>/<wearer>/<stream>``)."""
    levels = topic.split("/")
    # levels starting with "_" are reserved (e.g. <site>/_collector/<id>/status)
    return len(levels) >= 3 and levels[-2] == wearer and not levels[-3].startswith("_")


def _filter_lp(body: bytes, wearer: str) -> tuple[bytes, int]:
    """``body`` without ``wearer``'s lines; the number of lines removed."""
    kept, removed = [], 0
    for line in body.splitlines(keepends=True):
        if lp_line_is_wearer(line, wearer):
            removed += 1
        else:
            kept.append(line)
    return b"".join(kept), removed


def _filter_record(rec: SpoolRecord, wearer: str) -> tuple[SpoolRecord | None, int]:
    """The record without ``wearer``'s data (None if nothing is left), points removed."""
    topic = rec.meta.get("topic")
    if isinstance(topic, str):  # an MQTT publisher's spool: one message per record
        return (None, rec.points) if topic_is_wearer(topic, wearer) else (rec, 0)
    gz = bool(rec.meta.get("gz"))
    body = gzip.decompress(rec.body) if gz else rec.body
    kept, removed = _filter_lp(body, wearer)
    if not removed:
        return rec, 0
    if not kept.strip():
        return None, removed
    out = gzip.compress(kept, compresslevel=1, mtime=0) if gz else kept
    return SpoolRecord(rec.meta, out, max(0, rec.points - removed)), removed


def _filter_spool_in_place(directory: Path, wearer: str) -> int:
    """Cycle every record of one spool through a filter; return points removed.

    Uses only the spool's public FIFO API: each of the ``n`` records present
    is peeked, its filtered version appended at the end, then it is popped,
    so afterwards the spool holds the filtered records in their old order.
    Append comes before pop: a crash in between duplicates one record
    (harmless: InfluxDB and MQTT QoS 1 consumers are idempotent, and running
    the erasure again removes any of the wearer's data left) and never loses
    one.
    """
    spool = Spool(directory, max_bytes=1 << 62, name=f"erase {directory}")
    removed = 0
    try:
        for _ in range(len(spool)):
            rec = spool.peek()
            if rec is None:
                break
            kept, n = _filter_record(rec, wearer)
            removed += n
            if kept is not None:
                spool.append(kept.meta, kept.body, kept.points)
            spool.pop()
    finally:
        spool.close()
    return removed


def _erase_spool(directory: Path, wearer: str, *, dry_run: bool) -> int:
    """Remove ``wearer``'s data from one spool; return the points removed.

    A dry run filters a copy (deleted afterwards; a copy left by a crash is
    removed by the next run, since it may hold the wearer's data).
    """
    if not dry_run:
        return _filter_spool_in_place(directory, wearer)
    copy = directory.with_name(f"{_ERASE_TMP}dry-{directory.name}")
    shutil.rmtree(copy, ignore_errors=True)
    try:
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("rejected"))
        return _filter_spool_in_place(copy, wearer)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _erase_text_file(path: Path, wearer: str, *, dry_run: bool) -> int:
    """Remove ``wearer``'s lines from a dead-letter file; return how many went.

    ``rejected.lp`` holds line protocol (with ``# HTTP ...`` notes);
    ``mqtt-*.log`` holds ``<ns> <topic> <reason> <payload hex>`` lines.
    """
    raw = path.read_bytes()
    mqtt_log = path.name.startswith("mqtt-")
    kept, removed = [], 0
    for line in raw.splitlines(keepends=True):
        if mqtt_log:
            parts = line.split(b" ", 2)
            hit = len(parts) >= 2 and topic_is_wearer(parts[1].decode("utf-8", "replace"), wearer)
        else:
            hit = not line.startswith(b"#") and lp_line_is_wearer(line, wearer)
        if hit:
            removed += 1
        else:
            kept.append(line)
    if removed and not dry_run:
        tmp = path.with_name(f"{_ERASE_TMP}{path.name}")
        tmp.write_bytes(b"".join(kept))
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    return removed


def _local_targets(roots: list[Path]) -> tuple[list[Path], list[Path]]:
    """Spool directories and dead-letter files under ``roots``."""
    spools: set[Path] = set()
    files: set[Path] = set()
    for root in roots:
        if not root.exists():
            continue
        for p in [root, *root.rglob("*")]:
            if any(part.startswith(_ERASE_TMP) for part in p.relative_to(root.parent).parts):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                continue
            if p.is_dir() and (any(p.glob("*.seg")) or (p / "cursor").exists()):
                spools.add(p)
            elif p.is_file() and p.name.startswith(("rejected.lp", "mqtt-")):
                files.add(p)
    return sorted(spools), sorted(files)


def erase_local(cfg: Config, wearer: str, *, dry_run: bool = False) -> dict[str, int]:
    """Remove ``wearer``'s data from this host's spools and dead-letter files.

    Looks under ``[influxdb] spool_dir`` and ``[mqtt] spool_dir``. The
    postmon processes using them (collector, ingest, run) must be stopped:
    a spool belongs to one live process. Returns ``{path: points/lines removed}``
    for every place that held some.
    """
    check_pseudonym(wearer)
    roots = [Path(cfg.influxdb.spool_dir), Path(cfg.mqtt.spool_dir)]
    spools, files = _local_targets(roots)
    found: dict[str, int] = {}
    for d in spools:
        n = _erase_spool(d, wearer, dry_run=dry_run)
        if n:
            found[str(d)] = n
    for f in files:
        n = _erase_text_file(f, wearer, dry_run=dry_run)
        if n:
            found[str(f)] = n
    return found


# ------------------------------------------------------------------ together


def erase_wearer(
    cfg: Config,
    wearer: str,
    *,
    dry_run: bool = False,
    mqtt: bool = True,
    influx: bool = True,
    local: bool = True,
) -> ErasureReport:
    """Erase ``wearer`` from InfluxDB, retained MQTT messages and the spools.

    Raises ConfigError when the wearer is still in the pairing table (new
    data would follow), and ErasureIncomplete when anything is found after.
    """
    try:
        check_pseudonym(wearer)
    except ValueError as exc:
        # also what keeps wildcards (+, #) and InfluxQL quoting out of the statements
        raise ConfigError(str(exc)) from None
    paired = [s.address for s in cfg.sensors if s.wearer == wearer]
    if paired and not dry_run:
        raise ConfigError(
            f"wearer {wearer} is still in the pairing table (sensor {', '.join(paired)}): "
            "a running collector would keep writing their data",
            hint="remove their [[sensors]] entry, restart the collectors, then erase",
        )
    http = InfluxHttp.from_config(cfg.influxdb)
    db = cfg.influxdb.database
    before = influx_holdings(http, db, wearer) if influx else None
    spooled = erase_local(cfg, wearer, dry_run=dry_run) if local else {}
    retained = clear_retained(cfg, wearer, dry_run=dry_run) if mqtt else None
    after = None
    if before is not None and not dry_run:
        log.info("erasing %s: %d series in %s", wearer, len(before.series), db)
        after = erase_influx(http, db, wearer)
        if after.series or after.total_points:
            raise ErasureIncomplete(
                f"InfluxDB still holds {len(after.series)} series / {after.total_points} points "
                f"of {wearer} after DROP SERIES",
                hint="is a writer still sending their data? stop it and erase again",
            )
    roots = (
        tuple(str(Path(d).resolve()) for d in (cfg.influxdb.spool_dir, cfg.mqtt.spool_dir))
        if local
        else ()
    )
    return ErasureReport(wearer, db, dry_run, before, after, retained, spooled, roots)

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
3. **Local disk spools** (data waiting for an unreachable InfluxDB or
   broker): records of the wearer are removed (see ``postmon.store.spool``).
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

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from postmon.config import Config
from postmon.errors import ConfigError, PostmonError, Reason
from postmon.security.influx import InfluxHttp, quote_ident, quote_string, series_values
from postmon.security.pseudonym import check_pseudonym

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
    influx_before: InfluxHoldings
    influx_after: InfluxHoldings | None
    retained_topics: tuple[str, ...]  # found (and, unless dry_run, cleared)
    spool_records: dict[str, int] = field(default_factory=dict)  # spool dir -> records removed

    def lines(self) -> list[str]:
        verb = "would erase" if self.dry_run else "erased"
        out = [
            f"wearer {self.wearer}: {verb} {len(self.influx_before.series)} series, "
            f"{self.influx_before.total_points} points in InfluxDB database {self.database!r}"
        ]
        out.extend(
            f"  {where}: {n} points" for where, n in sorted(self.influx_before.points.items())
        )
        out.append(f"  retained MQTT messages: {len(self.retained_topics)}")
        out.extend(f"    {t}" for t in self.retained_topics)
        for d, n in sorted(self.spool_records.items()):
            out.append(f"  spool {d}: {n} record(s)")
        if self.influx_after is not None:
            out.append(
                f"  after: {len(self.influx_after.series)} series, "
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


# ------------------------------------------------------------------ together


def erase_wearer(
    cfg: Config,
    wearer: str,
    *,
    dry_run: bool = False,
    mqtt: bool = True,
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
    before = influx_holdings(http, db, wearer)
    retained = clear_retained(cfg, wearer, dry_run=dry_run) if mqtt else ()
    after = None
    if not dry_run:
        log.info("erasing %s: %d series in %s", wearer, len(before.series), db)
        after = erase_influx(http, db, wearer)
        if after.series or after.total_points:
            raise ErasureIncomplete(
                f"InfluxDB still holds {len(after.series)} series / {after.total_points} points "
                f"of {wearer} after DROP SERIES",
                hint="is a writer still sending their data? stop it and erase again",
            )
    return ErasureReport(wearer, db, dry_run, before, after, retained)

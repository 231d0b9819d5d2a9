"""MQTT transport (paho-mqtt >= 2, callback API v2, MQTT v5): publisher and ingest worker.

``MqttPublisher`` (edge) implements ``Bus``: every accepted message is kept
until the broker acknowledges it (QoS 1). While the broker is reachable
messages wait in a bounded in-memory queue; while it is not (or the queue is
full) they go to an fsync'd disk spool (``postmon.store.spool``) that is
replayed, oldest first, on reconnect and on restart. A retained presence
message per collector says ``online``; the broker publishes the last will
(``online: false``) if the collector vanishes.

``IngestWorker`` (central) subscribes with a shared subscription
``$share/<group>/<root>/#`` so any number of workers split the load, decodes
each message and hands it to a ``Sink`` (the InfluxDB ``Writer``), and sends
the QoS 1 acknowledgement only once the sink reports the data durable
(written or spooled). Until then the broker keeps the message in the
worker's persistent session (``clean_start=False`` + session expiry) and
delivers it again after a reconnect. Redelivered duplicates are harmless:
InfluxDB overwrites the same series + timestamp.

Lock order: paho calls ``on_publish`` while holding its own message lock, so
these classes never call into paho while holding their own lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy.typing as npt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from analysis.contracts import DailySummary, Event, SampleBatch
from postmon.bus import codec
from postmon.bus.base import Sink, deliver
from postmon.config import MqttConfig
from postmon.errors import InputError, PostmonError, Reason
from postmon.security.mqtt import TlsSafeClient
from postmon.store.records import DeviceStatus, NudgeRecord
from postmon.store.spool import Spool, SpoolError
from postmon.store.writer import Outcome

log = logging.getLogger(__name__)

_DEAD_LETTER_MAX_BYTES = 64 << 20
_NO_MATCHING_SUBSCRIBERS = 16  # MQTT v5 PUBACK reason code


def make_client(cfg: MqttConfig, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    """A paho v5 client with the config's credentials, TLS and flow limits.

    A failed TLS handshake closes its socket at once (``TlsSafeClient``)
    rather than leaving it to the garbage collector while paho reconnects.
    """
    c = TlsSafeClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if cfg.username:
        c.username_pw_set(cfg.username, cfg.password or None)
    if cfg.tls_ca_file:
        c.tls_set(
            ca_certs=cfg.tls_ca_file,
            certfile=cfg.tls_cert_file or None,
            keyfile=cfg.tls_key_file or None,
        )
        if cfg.tls_insecure:
            c.tls_insecure_set(True)
    c.reconnect_delay_set(1, max(1, int(cfg.reconnect_max_s)))
    c.max_inflight_messages_set(cfg.max_inflight)
    c.max_queued_messages_set(0)  # our own queue and spool bound memory
    return c


def connect_properties(cfg: MqttConfig) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = int(cfg.session_expiry_s)
    # the broker sends at most this many unacknowledged QoS 1 messages
    props.ReceiveMaximum = cfg.max_inflight
    return props


def default_client_id(cfg: MqttConfig, role: str, suffix: str) -> str:
    """A stable client id (persistent sessions need one) for ``role`` on this host.

    Without ``cfg.client_id`` it names the topic root too (a short hash):
    two deployments on one host and broker (a demo beside a clinic service,
    two test runs) would otherwise share a session id, take each other's
    connections over, and acknowledge (dead-letter) each other's messages.
    """
    if cfg.client_id:
        return f"{cfg.client_id}-{suffix}"
    root = hashlib.sha256(cfg.topic_root.encode()).hexdigest()[:8]
    return f"postmon-{role}-{socket.gethostname()}-{root}-{suffix}"


# ================================================================ publisher


@dataclass(frozen=True, slots=True)
class PublisherStats:
    accepted: int  # messages accepted from producers
    acked: int  # acknowledged by the broker (incl. replayed)
    spooled: int  # went through the disk spool
    replayed: int  # spooled messages acknowledged after replay
    dropped: int  # lost: spool full (oldest dropped) or unwritable (logged as errors)
    unheard: int  # PUBACKs saying "no matching subscribers" (kept and sent again)
    queued: int  # in memory, not yet sent
    inflight: int  # sent, not yet acknowledged
    spool_messages: int  # on disk now
    connected: bool


class MqttPublisher:
    """Edge side of the bus (implements ``postmon.bus.base.Bus``).

    Parameters
    ----------
    cfg:
        ``[mqtt]`` settings.
    collector_id:
        Names this collector (presence topic, client id, spool folder).
    site:
        Site of the presence topic.
    spool_dir:
        Default ``cfg.spool_dir / collector_id``.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        collector_id: str = "collector",
        site: str = "default",
        spool_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.collector_id = collector_id
        self.site = site
        self._spool = Spool(
            spool_dir or Path(cfg.spool_dir) / collector_id,
            max_bytes=int(cfg.spool_max_mb * 1e6),
            name=f"mqtt spool {collector_id}",
        )
        self._presence = codec.presence_topic(cfg.topic_root, site, collector_id)
        self._client = make_client(cfg, default_client_id(cfg, "collect", collector_id))
        self._client.will_set(
            self._presence, codec.encode_presence(collector_id, False, 0), qos=1, retain=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._inflight: dict[int, tuple[str, bytes]] = {}
        self._early_acks: dict[int, bool] = {}  # mid -> "no matching subscribers"
        self._own_mids: set[int] = set()  # presence messages: not ours to count
        # messages the broker accepted with "no matching subscribers" (MQTT v5
        # reason 16): no ingest worker would ever see them (e.g. Mosquitto 2.0
        # does not restore shared subscriptions after a restart, so until the
        # workers resubscribe nobody listens). They are kept and sent again.
        self._returned: list[tuple[str, bytes]] = []
        self._hold_until = 0.0
        self._hold_s = 0.0
        self._replay_mid: int | None = None
        self._connected = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._seq = itertools.count(1)
        self._c = dict.fromkeys(("accepted", "acked", "spooled", "replayed", "unheard", "lost"), 0)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> MqttPublisher:
        if self._thread is not None:
            return self
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=int(self.cfg.keepalive_s),
            clean_start=False,
            properties=connect_properties(self.cfg),
        )
        self._client.loop_start()
        self._thread = threading.Thread(
            target=self._run, name=f"postmon-mqtt-pub-{self.collector_id}", daemon=True
        )
        self._thread.start()
        return self

    def __enter__(self) -> MqttPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._connected, timeout_s)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until every accepted message is acknowledged by the broker."""
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: not self._queue and not self._inflight and not len(self._spool), timeout_s
            )

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush (bounded), keep anything unacknowledged in the spool for the
        next start, publish ``offline`` presence, disconnect."""
        if self._closing:
            return
        if self._thread is None:
            self._spool.close()
            return
        self.flush(timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        with self._cond:
            replay_mid = self._replay_mid
            leftovers = [v for mid, v in self._inflight.items() if mid != replay_mid]
            leftovers += list(self._queue)
            self._queue.clear()
            self._inflight.clear()
            connected = self._connected
        if leftovers:
            # not acknowledged yet: keep them for the next start (duplicates are harmless)
            for topic, payload in leftovers:
                self._spool_one(topic, payload)
            log.warning(
                "%s: %d unacknowledged message(s) kept in the spool for the next start",
                self.collector_id,
                len(leftovers),
            )
        if connected:
            info = self._client.publish(
                self._presence,
                codec.encode_presence(self.collector_id, False, time.time_ns()),
                qos=1,
                retain=True,
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._spool.close()
        log.info("%s: publisher closed: %s", self.collector_id, self.stats())

    def stats(self) -> PublisherStats:
        with self._cond:
            return PublisherStats(
                accepted=self._c["accepted"],
                acked=self._c["acked"],
                spooled=self._c["spooled"],
                replayed=self._c["replayed"],
                dropped=self._spool.dropped_records + self._c["lost"],
                unheard=self._c["unheard"],
                queued=len(self._queue),
                inflight=len(self._inflight),
                spool_messages=len(self._spool),
                connected=self._connected,
            )

    # ---------------------------------------------------------------- Bus
    def publish_epochs(self, site: str, wearer: str, sensor: str, epochs: npt.NDArray[Any]) -> None:
        topic = codec.data_topic(self.cfg.topic_root, site, wearer, "epochs")
        self._accept(topic, codec.encode_epochs(sensor, epochs, next(self._seq)))

    def publish_events(self, site: str, wearer: str, events: Sequence[Event]) -> None:
        topic = codec.data_topic(self.cfg.topic_root, site, wearer, "events")
        self._accept(topic, codec.encode_events(events))

    def publish_nudges(self, site: str, wearer: str, nudges: Sequence[NudgeRecord]) -> None:
        topic = codec.data_topic(self.cfg.topic_root, site, wearer, "nudges")
        self._accept(topic, codec.encode_nudges(nudges))

    def publish_status(self, site: str, wearer: str, statuses: Sequence[DeviceStatus]) -> None:
        topic = codec.data_topic(self.cfg.topic_root, site, wearer, "status")
        self._accept(topic, codec.encode_status(statuses))

    def publish_raw(self, site: str, wearer: str, batch: SampleBatch) -> None:
        topic = codec.data_topic(self.cfg.topic_root, site, wearer, "raw")
        self._accept(topic, codec.encode_raw(batch))

    def publish_daily(
        self, site: str, wearer: str, summaries: Sequence[DailySummary], *, tz: str = "UTC"
    ) -> None:
        topic = codec.data_topic(self.cfg.topic_root, site, wearer, "daily")
        self._accept(topic, codec.encode_daily(summaries, tz))

    # ------------------------------------------------------------ internal
    def _accept(self, topic: str, payload: bytes) -> None:
        if self._thread is None:
            self.start()
        with self._cond:
            if self._closing:
                raise PostmonError(
                    f"{self.collector_id}: publish after close()", Reason.SERVICE_UNAVAILABLE
                )
            self._c["accepted"] += 1
            # while anything is spooled, everything goes behind it: order is kept
            to_spool = (
                not self._connected
                or len(self._spool) > 0
                or len(self._queue) >= self.cfg.max_queue_msgs
            )
            if not to_spool:
                self._queue.append((topic, payload))
                self._cond.notify_all()
                return
        self._spool_one(topic, payload)
        with self._cond:
            self._cond.notify_all()

    def _spool_one(self, topic: str, payload: bytes) -> None:
        try:
            self._spool.append({"topic": topic}, payload, 1)
        except SpoolError as exc:
            with self._cond:
                self._c["lost"] += 1
            log.error("%s: message to %s lost: %s", self.collector_id, topic, exc)
            return
        with self._cond:
            self._c["spooled"] += 1

    def _run(self) -> None:
        while True:
            with self._cond:

                def ready() -> bool:
                    if self._closing or self._returned:
                        return True
                    if not self._connected:
                        return bool(self._queue)
                    if time.monotonic() < self._hold_until:
                        return False
                    if len(self._spool):
                        return self._replay_mid is None
                    return bool(self._queue) and len(self._inflight) < self.cfg.max_inflight

                hold = self._hold_until - time.monotonic()
                self._cond.wait_for(ready, max(0.01, min(1.0, hold)) if hold > 0 else 1.0)
                if self._closing:
                    return
                moved = self._returned
                self._returned = []
                if (not self._connected or moved) and self._queue:
                    # broker away (memory is not durable) or messages came back
                    # unheard: the queue goes to disk behind them, in order
                    moved += list(self._queue)
                    self._queue.clear()
                job: tuple[str, bytes, bool] | None = None
                holding = time.monotonic() < self._hold_until
                if holding or moved:
                    pass
                elif self._connected and len(self._spool) and self._replay_mid is None:
                    rec = self._spool.peek()
                    if rec is not None:
                        job = (str(rec.meta["topic"]), rec.body, True)
                        self._replay_mid = -1  # reserved until paho gives the mid
                elif (
                    self._connected
                    and not len(self._spool)
                    and self._queue
                    and len(self._inflight) < self.cfg.max_inflight
                ):
                    topic, payload = self._queue.popleft()
                    job = (topic, payload, False)
            for topic, payload in moved:
                self._spool_one(topic, payload)
            if moved:
                log.info(
                    "%s: %d message(s) moved to the disk spool (broker away or no subscriber)",
                    self.collector_id,
                    len(moved),
                )
            if job is not None:
                self._send(*job)

    def _send(self, topic: str, payload: bytes, from_spool: bool) -> None:
        info = self._client.publish(topic, payload, qos=1)
        with self._cond:
            mid = info.mid
            if from_spool:
                self._replay_mid = mid
            self._inflight[mid] = (topic, payload)
            if mid in self._early_acks:  # PUBACK raced ahead of this bookkeeping
                self._acked(mid, self._early_acks.pop(mid))

    def _acked(self, mid: int, unheard: bool = False) -> None:
        """Under the lock: a PUBACK for ``mid``; ``unheard``: no matching subscribers."""
        entry = self._inflight.pop(mid, None)
        if unheard:
            self._c["unheard"] += 1
            now = time.monotonic()
            if now >= self._hold_until:  # one backoff step per attempt, not per message
                self._hold_s = min(self.cfg.reconnect_max_s, max(0.5, self._hold_s * 2))
                self._hold_until = now + self._hold_s
            if self._hold_s <= 0.5:
                log.warning(
                    "%s: the broker has no subscriber for %s (no ingest worker yet?): "
                    "keeping messages and retrying",
                    self.collector_id,
                    entry[0] if entry else "a spooled message",
                )
            if mid == self._replay_mid:
                self._replay_mid = None  # stays first in the spool, sent again later
            elif entry is not None:
                self._returned.append(entry)
            self._cond.notify_all()
            return
        self._hold_s = 0.0
        self._c["acked"] += 1
        if mid == self._replay_mid:
            self._spool.pop()
            self._replay_mid = None
            self._c["replayed"] += 1
            if not len(self._spool):
                log.info("%s: spool replayed to the broker", self.collector_id)
        self._cond.notify_all()

    # ----------------------------------------------------- paho callbacks
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused the connection: %s", self.collector_id, reason)
            return
        info = client.publish(
            self._presence,
            codec.encode_presence(self.collector_id, True, time.time_ns()),
            qos=1,
            retain=True,
        )
        with self._cond:
            self._own_mids.add(info.mid)
            self._connected = True
            pending = len(self._spool)
            self._cond.notify_all()
        log.info(
            "%s: connected to %s:%d (session present: %s)%s",
            self.collector_id,
            self.cfg.host,
            self.cfg.port,
            getattr(flags, "session_present", "?"),
            f"; replaying {pending} spooled message(s)" if pending else "",
        )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
            self._cond.notify_all()
        if was and not self._closing:
            log.warning(
                "%s: lost the broker (%s); spooling until it is back", self.collector_id, reason
            )

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        unheard = getattr(reason, "value", 0) == _NO_MATCHING_SUBSCRIBERS
        with self._cond:
            if mid in self._own_mids:
                self._own_mids.discard(mid)
            elif mid in self._inflight:
                self._acked(mid, unheard)
            else:
                self._early_acks[mid] = unheard


# ============================================================ ingest worker


@dataclass(frozen=True, slots=True)
class IngestStats:
    received: int
    acked: int
    dead_lettered: int  # malformed or unstorable messages (acked, kept on disk)
    pending_acks: int  # handed to the sink, not yet durable
    stale_acks: int  # durable after a reconnect: left for the broker to redeliver
    connected: bool
    empty_ignored: int = 0  # zero-length payloads (retained-message clears): acked, no data


class IngestWorker:
    """Central side: shared subscription -> ``Sink``, ack when durable.

    Parameters
    ----------
    cfg:
        ``[mqtt]`` settings.
    sink:
        Usually a started ``Writer``.
    group:
        Shared-subscription group (default ``cfg.ingest_group``).
    worker_id:
        Distinguishes workers of a group; with the client id base it forms
        the persistent session's client id, so keep it stable.
    dead_letter_dir:
        Where malformed messages are kept (default ``cfg.spool_dir``).
    """

    def __init__(
        self,
        cfg: MqttConfig,
        sink: Sink,
        *,
        group: str | None = None,
        worker_id: str = "0",
        dead_letter_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self.group = group or cfg.ingest_group
        if not self.group or any(c in self.group for c in "/#+"):
            raise ValueError(f"group={self.group!r} must be a name without / # +")
        self.worker_id = worker_id
        self.subscription = f"$share/{self.group}/{cfg.topic_root}/#"
        self._dead_dir = dead_letter_dir or Path(cfg.spool_dir)
        self._client = make_client(
            cfg, default_client_id(cfg, "ingest", f"{self.group}-{worker_id}"), manual_ack=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._gen = 0
        self._c = dict.fromkeys(("received", "acked", "dead", "pending", "stale", "empty"), 0)
        self._kick = getattr(sink, "kick", None)
        self._stopping = False

    def start(self) -> IngestWorker:
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=int(self.cfg.keepalive_s),
            clean_start=False,
            properties=connect_properties(self.cfg),
        )
        self._client.loop_start()
        return self

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        return self._subscribed.wait(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages, make what was taken durable and acknowledged,
        disconnect (the session stays on the broker for the next start)."""
        self._stopping = True
        self.sink.flush(timeout_s)
        deadline = time.monotonic() + min(5.0, timeout_s)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._c["pending"]:
                    break
            time.sleep(0.02)
        time.sleep(0.1)  # let paho's network thread send the last PUBACKs
        self._client.disconnect()
        self._client.loop_stop()
        log.info("ingest %s/%s stopped: %s", self.group, self.worker_id, self.stats())

    def stats(self) -> IngestStats:
        with self._lock:
            return IngestStats(
                received=self._c["received"],
                acked=self._c["acked"],
                dead_lettered=self._c["dead"],
                pending_acks=self._c["pending"],
                stale_acks=self._c["stale"],
                connected=self._connected.is_set(),
                empty_ignored=self._c["empty"],
            )

    # ----------------------------------------------------- paho callbacks
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("ingest %s: broker refused the connection: %s", self.worker_id, reason)
            return
        with self._lock:
            self._gen += 1
        self._connected.set()
        client.subscribe(self.subscription, qos=1)
        self._subscribed.set()
        log.info(
            "ingest %s/%s connected to %s:%d (session present: %s), subscribed to %s",
            self.group,
            self.worker_id,
            self.cfg.host,
            self.cfg.port,
            getattr(flags, "session_present", "?"),
            self.subscription,
        )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        if not self._stopping:
            log.warning("ingest %s: lost the broker (%s); reconnecting", self.worker_id, reason)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._c["received"] += 1
            gen = self._gen
        if not msg.payload:
            # publishing an empty retained message is how MQTT clears a retained
            # topic (e.g. an old collector's presence): no data, nothing to store
            # or dead-letter; acknowledged and counted
            with self._lock:
                self._c["empty"] += 1
            log.debug("ingest %s: empty message on %s ignored", self.worker_id, msg.topic)
            self._ack_now(client, msg)
            return
        try:
            topic = codec.parse_topic(self.cfg.topic_root, msg.topic)
            if topic.stream == "presence":
                doc = codec.decode_presence(bytes(msg.payload))
                log.info(
                    "collector %s at site %s is %s",
                    topic.wearer,
                    topic.site,
                    "online" if doc.get("online") else "OFFLINE",
                )
                self._ack_now(client, msg)
                return
            with self._lock:
                self._c["pending"] += 1
                pending = self._c["pending"]
            mid, qos = msg.mid, msg.qos
            try:
                deliver(
                    self.sink, topic, bytes(msg.payload), lambda o: self._done(gen, mid, qos, o)
                )
            except BaseException:
                with self._lock:
                    self._c["pending"] -= 1
                raise
            if self._kick is not None and pending >= self.cfg.max_inflight // 2:
                # acks wait for the writer: do not let the broker's window run dry
                self._kick()
        except (InputError, ValueError) as exc:
            self._dead_letter(msg, exc)
            self._ack_now(client, msg)
        except Exception:
            # e.g. the writer is closing: not acknowledged, so the broker redelivers it
            log.exception("ingest %s: cannot take the message on %s now", self.worker_id, msg.topic)

    def _ack_now(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        if msg.qos:
            client.ack(msg.mid, msg.qos)
        with self._lock:
            self._c["acked"] += 1

    def _done(self, gen: int, mid: int, qos: int, outcome: Outcome) -> None:
        with self._lock:
            self._c["pending"] -= 1
            stale = gen != self._gen
            if outcome is Outcome.DROPPED:
                # not durable: leave it unacknowledged, the broker redelivers after a reconnect
                return
            if stale:
                # a message id of an earlier connection could now name another message
                self._c["stale"] += 1
                return
            self._c["acked"] += 1
        if qos:
            self._client.ack(mid, qos)

    def _dead_letter(self, msg: mqtt.MQTTMessage, exc: Exception) -> None:
        with self._lock:
            self._c["dead"] += 1
        path = self._dead_dir / "rejected" / f"mqtt-{self.group}-{self.worker_id}.log"
        log.error("ingest: message on %s refused (%s); kept in %s", msg.topic, exc, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > _DEAD_LETTER_MAX_BYTES:
                path.replace(path.with_suffix(".log.1"))
            with path.open("a", encoding="utf-8") as fh:
                fh.write(f"{time.time_ns()} {msg.topic} {exc!s:.300} {bytes(msg.payload).hex()}\n")
        except OSError as err:
            log.error("ingest: cannot write %s: %s", path, err)

"""Delivering nudges to the wearer, and recording what happened to them.

The policy (:mod:`analysis.nudge`, pure) decides *when*; this module does the
wiring (documented for app authors in ``docs/NUDGES.md``):

* **Haptic**: where the wearer's sensor has a motor (MbientLab MetaMotion), a
  short recognisable vibration: two gentle pulses for a first nudge, three
  stronger ones for an escalation (``collector.haptics.PATTERN_GENTLE`` /
  ``PATTERN_STRONGER``: the collector's pattern model, the one that speaks to
  devices). The collector owns the BLE link and implements
  :class:`HapticSink` (routed by wearer).
* **MQTT**: for every sensor, one message per nudge on the bus's nudge topic
  ``{topic_root}/{site}/{wearer}/nudges`` so a phone or desktop app can show
  it. The payload is the bus's nudge envelope (``docs/MQTT.md``: the ingest
  workers store its record) plus a ``notify`` object for apps (versioned
  schema ``postmon.nudge``). Published with QoS 1; the broker's PUBACK
  (with a matching subscriber) is the delivery confirmation.
* **Record**: one :class:`~postmon.store.records.NudgeRecord` per nudge
  (``schema.NUDGE``), given to a :class:`NudgeStore` (the bus or the store's
  writer) when the delivery attempt ends (``delivered``) and again, same series and time,
  when the outcome is known (``answered``, ``response_delay_s``), so
  therapists see response rates.

Texts are plain and encouraging (the clinic's stance: capacity over fear;
posture is variability): they invite movement and never scold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analysis.contracts import NS_PER_S
from analysis.live import NudgeCheck
from analysis.nudge import (
    NUDGE_REASONS,
    Nudge,
    NudgeOutcome,
    NudgeSettings,
)
from collector.haptics import PATTERN_GENTLE, PATTERN_STRONGER, VibrationPattern
from postmon.bus import codec
from postmon.config import MqttConfig, from_table
from postmon.errors import ConfigError, InputError, ServiceUnavailable
from postmon.store.records import NudgeRecord

log = logging.getLogger(__name__)

#: Version of the app-facing ``notify`` object (``docs/NUDGES.md``). Readers
#: must ignore keys they do not know; a change that breaks them bumps it.
NUDGE_SCHEMA = "postmon.nudge"
NUDGE_SCHEMA_VERSION = 1
CHANNEL_HAPTIC = "haptic"
CHANNEL_MQTT = "mqtt"
_NO_MATCHING_SUBSCRIBERS = 16  # MQTT v5 PUBACK reason: accepted, but nobody listens


# ------------------------------------------------------------------ messages


def message_text(nudge: Nudge) -> str:
    """The words shown to the wearer: plain, encouraging, never alarming."""
    if nudge.reason == "flexion":
        return (
            "You've been leaning forward for a while. A change of position helps: "
            "sit back, stretch, or stand for a moment."
        )
    minutes = max(1, round(nudge.static_min))
    if nudge.level <= 1:
        return (
            f"You've been still for {minutes} minutes. Time for a short break: "
            "stand up, stretch, or walk for a minute or two."
        )
    return (
        f"Still for {minutes} minutes now. When you can, a minute or two on your "
        "feet will do your back good."
    )


def nudge_topic(topic_root: str, site: str, wearer: str) -> str:
    """``{topic_root}/{site}/{wearer}/nudges`` (the bus's nudge stream)."""
    try:
        return codec.data_topic(topic_root, site, wearer, "nudges")
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def _iso_utc(time_ns: int) -> str:
    t = dt.datetime.fromtimestamp(time_ns // NS_PER_S, dt.UTC).replace(
        microsecond=(time_ns % NS_PER_S) // 1000
    )
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class NudgeMessage:
    """One nudge as published for apps (``notify``, schema ``postmon.nudge`` v1).

    ``expires_ns`` is when the app should stop showing it (the end of the
    response window): a nudge read an hour late is noise, not help.
    """

    nudge_id: str
    site: str
    wearer: str
    time_ns: int
    reason: str
    level: int
    static_min: float
    message: str
    channels: tuple[str, ...]
    expires_ns: int

    @classmethod
    def of(
        cls, nudge: Nudge, site: str, channels: Sequence[str], response_window_s: float
    ) -> NudgeMessage:
        return cls(
            nudge_id=nudge.nudge_id,
            site=site,
            wearer=nudge.wearer_id,
            time_ns=nudge.time_ns,
            reason=nudge.reason,
            level=nudge.level,
            static_min=round(nudge.static_min, 1),
            message=message_text(nudge),
            channels=tuple(channels),
            expires_ns=nudge.time_ns + round(response_window_s * NS_PER_S),
        )

    def notify(self) -> dict[str, Any]:
        """The app-facing object (every key documented in ``docs/NUDGES.md``)."""
        return {
            "schema": NUDGE_SCHEMA,
            "version": NUDGE_SCHEMA_VERSION,
            "nudge_id": self.nudge_id,
            "site": self.site,
            "wearer": self.wearer,
            "time": _iso_utc(self.time_ns),
            "time_ns": self.time_ns,
            "reason": self.reason,
            "level": self.level,
            "static_min": self.static_min,
            "message": self.message,
            "channels": list(self.channels),
            "expires": _iso_utc(self.expires_ns),
            "expires_ns": self.expires_ns,
        }

    def record(self) -> NudgeRecord:
        """The storage record this message carries (sent; delivery not known yet)."""
        return NudgeRecord(
            time_ns=self.time_ns,
            nudge_id=self.nudge_id,
            reason=self.reason,
            channel="+".join(self.channels) if self.channels else "none",
            level=self.level,
            static_min=self.static_min,
        )

    def to_json(self) -> bytes:
        """The MQTT payload: the bus's nudge envelope (``{"v":1,"nudges":[record]}``,
        encoded by the bus codec, so ingest stores it) plus ``"notify"`` for apps.
        Keys sorted, compact UTF-8: the same nudge always gives the same bytes."""
        doc = json.loads(codec.encode_nudges([self.record()]))
        doc["notify"] = self.notify()
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> NudgeMessage:
        """Parse and validate a payload as an app does; unknown keys are ignored.

        Raises ``InputError`` for a message without ``notify`` (a record
        update, e.g. "answered", which apps may ignore) or of another version.
        """
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"nudge message is not JSON: {exc}") from exc
        note = doc.get("notify") if isinstance(doc, dict) else None
        if not isinstance(note, dict) or note.get("schema") != NUDGE_SCHEMA:
            raise InputError(f"no {NUDGE_SCHEMA} 'notify' object in this message")
        if note.get("version") != NUDGE_SCHEMA_VERSION:
            raise InputError(
                f"nudge message version {note.get('version')!r} is not supported "
                f"(this reader knows version {NUDGE_SCHEMA_VERSION})",
                hint="upgrade the reader",
            )
        try:
            msg = cls(
                nudge_id=str(note["nudge_id"]),
                site=str(note["site"]),
                wearer=str(note["wearer"]),
                time_ns=int(note["time_ns"]),
                reason=str(note["reason"]),
                level=int(note["level"]),
                static_min=float(note["static_min"]),
                message=str(note["message"]),
                channels=tuple(str(c) for c in note["channels"]),
                expires_ns=int(note["expires_ns"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"nudge message lacks or mistypes a field: {exc!r}") from exc
        if msg.reason not in NUDGE_REASONS:
            raise InputError(f"nudge message reason {msg.reason!r} is unknown")
        return msg


# -------------------------------------------------------------------- haptic


def pattern_for(nudge: Nudge) -> VibrationPattern:
    """Gentle for a first nudge (and flexion), stronger for an escalation."""
    return PATTERN_GENTLE if nudge.level <= 1 else PATTERN_STRONGER


class HapticSink(Protocol):
    """What the collector offers for vibrating a wearer's sensor."""

    def haptic_capable(self, wearer_id: str) -> bool:
        """True when the wearer's connected sensor has a vibration motor."""
        ...

    async def play(self, wearer_id: str, pattern: VibrationPattern) -> bool:
        """Vibrate ``pattern``; True once the device acknowledged the writes.

        False (or an exception) when the sensor is not connected or the write
        failed; the nudge still goes out over MQTT.
        """
        ...


# ---------------------------------------------------------------------- MQTT


class NudgePublisher(Protocol):
    """Publishes one message and says whether the broker confirmed it."""

    async def publish(self, topic: str, payload: bytes, *, expiry_s: float, key: str = "") -> bool:
        """True once the broker confirmed; ``key`` names the message in late confirmations."""
        ...


class PahoNudgePublisher:
    """QoS 1 publisher for app messages, with PUBACK confirmation (MQTT v5).

    Unlike the bus publisher (durable, fire and forget), a nudge needs to
    know *whether* it went out, and a nudge spooled for an hour is no longer
    worth showing. ``publish`` waits for the broker's PUBACK up to
    ``confirm_timeout_s``; a PUBACK saying "no matching subscribers" is not a
    delivery. While the broker is away paho keeps the message (up to
    ``max_queue_msgs``) and sends it after the reconnect;
    ``on_late_puback(key)`` is then called on the publishing event loop, so
    the record can be corrected. Messages expire (MQTT v5 message expiry)
    at the end of the response window.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        client_id: str = "",
        confirm_timeout_s: float = 5.0,
        on_late_puback: Callable[[str], None] | None = None,
    ) -> None:
        from postmon.bus.mqtt import default_client_id, make_client

        self.cfg = cfg
        self.confirm_timeout_s = confirm_timeout_s
        self.on_late_puback = on_late_puback
        self._lock = threading.Lock()
        self._waiting: OrderedDict[
            int, tuple[asyncio.AbstractEventLoop, asyncio.Future[bool], str]
        ] = OrderedDict()
        self._early: dict[int, bool] = {}
        self._connected = threading.Event()
        cid = client_id or default_client_id(cfg, "nudge", format(id(self), "x"))
        self._client = make_client(cfg, cid)
        # nudges are small and short-lived: paho's own queue is enough, bounded
        self._client.max_queued_messages_set(cfg.max_queue_msgs)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    def start(self, timeout_s: float = 10.0) -> PahoNudgePublisher:
        """Connect (in paho's network thread); raise if the broker never answers."""
        try:
            self._client.connect_async(self.cfg.host, self.cfg.port, int(self.cfg.keepalive_s))
        except OSError as exc:
            raise ServiceUnavailable(
                f"MQTT broker {self.cfg.host}:{self.cfg.port}: {exc}",
                hint="start it with `postmon services up` or fix [mqtt] host/port",
            ) from exc
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self.stop()
            raise ServiceUnavailable(
                f"MQTT broker {self.cfg.host}:{self.cfg.port} did not accept a connection "
                f"within {timeout_s:g} s",
                hint="start it with `postmon services up` or fix [mqtt] host/port",
            )
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> PahoNudgePublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # paho callbacks (network thread)
    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            self._connected.set()
        else:
            log.warning("MQTT connection refused: %s", rc)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._connected.clear()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        ok = not rc.is_failure and getattr(rc, "value", 0) != _NO_MATCHING_SUBSCRIBERS
        with self._lock:
            entry = self._waiting.pop(mid, None)
            if entry is None:
                # PUBACK before publish() returned its mid (loopback is fast)
                self._early[mid] = ok
                return
        loop, fut, key = entry
        if loop.is_closed():
            return
        if fut.done():  # the waiter gave up: a late confirmation
            if ok and self.on_late_puback is not None:
                loop.call_soon_threadsafe(self.on_late_puback, key)
            return
        loop.call_soon_threadsafe(_set_if_pending, fut, ok)

    async def publish(self, topic: str, payload: bytes, *, expiry_s: float, key: str = "") -> bool:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        # the broker drops it for apps that connect after it has expired
        props.MessageExpiryInterval = max(1, round(expiry_s))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            info = self._client.publish(topic, payload, qos=1, retain=False, properties=props)
            early = self._early.pop(info.mid, None)
            if early is None:
                self._waiting[info.mid] = (loop, fut, key or topic)
                while len(self._waiting) > self.cfg.max_queue_msgs:  # bounded memory
                    self._waiting.popitem(last=False)
        if early is not None:
            return early
        if info.rc not in (0, 4):  # 4 = NO_CONN: queued, sent after the reconnect
            with self._lock:
                self._waiting.pop(info.mid, None)
            log.warning("MQTT publish to %s failed at once: rc=%s", topic, info.rc)
            return False
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.confirm_timeout_s)
        except TimeoutError:
            # the mid stays registered: a late PUBACK reports through on_late_puback
            fut.cancel()
            return False


def _set_if_pending(fut: asyncio.Future[bool], ok: bool) -> None:
    if not fut.done():
        fut.set_result(ok)


# ------------------------------------------------------------------ delivery


class NudgeStore(Protocol):
    """Where nudge records go (``postmon.store.writer.Writer`` fits)."""

    def write_nudges(self, site: str, wearer: str, nudges: Sequence[NudgeRecord]) -> int: ...


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What happened when one nudge was sent.

    ``haptic`` / ``mqtt``: True = confirmed, False = attempted, not
    confirmed, None = channel not used for this wearer. ``*_latency_s``:
    monotonic seconds from ``deliver()`` being called to the confirmation.
    """

    nudge: Nudge
    channels: tuple[str, ...]
    haptic: bool | None
    mqtt: bool | None
    haptic_latency_s: float | None = None
    mqtt_latency_s: float | None = None

    @property
    def delivered(self) -> bool:
        return bool(self.haptic) or bool(self.mqtt)

    @property
    def channel_label(self) -> str:
        """The ``channel`` tag of the stored record: the channels used, ``+``-joined."""
        return "+".join(self.channels) if self.channels else "none"


class NudgeDelivery:
    """Routes nudges to the wearer's channels and records them for storage.

    Parameters
    ----------
    site:
        Site of the wearers this host serves (topic level and store tag).
    topic_root:
        MQTT topic root (``[mqtt] topic_root``).
    publisher:
        MQTT publisher, or None for no MQTT channel.
    haptic:
        The collector's :class:`HapticSink`, or None.
    store:
        Where :class:`NudgeRecord` rows go, or None.
    response_window_s:
        How long a nudge is worth showing (MQTT message expiry).
    haptic_timeout_s:
        Give up waiting for the device to acknowledge after this long.
    """

    def __init__(
        self,
        *,
        site: str,
        topic_root: str,
        publisher: NudgePublisher | None = None,
        haptic: HapticSink | None = None,
        store: NudgeStore | None = None,
        response_window_s: float = 300.0,
        haptic_timeout_s: float = 5.0,
    ) -> None:
        nudge_topic(topic_root, site, "check")  # a bad site fails here, not at the first nudge
        self.site = site
        self.topic_root = topic_root
        self.publisher = publisher
        self.haptic = haptic
        self.store = store
        self.response_window_s = response_window_s
        self.haptic_timeout_s = haptic_timeout_s
        # nudge id -> its stored record, until the outcome rewrites it (bounded)
        self._sent: OrderedDict[str, tuple[str, NudgeRecord]] = OrderedDict()
        self._sent_max = 4096
        self.reports: list[DeliveryReport] = []
        self._reports_max = 1024

    def channels_for(self, wearer_id: str) -> tuple[str, ...]:
        chans = []
        if self.haptic is not None and self.haptic.haptic_capable(wearer_id):
            chans.append(CHANNEL_HAPTIC)
        if self.publisher is not None:
            chans.append(CHANNEL_MQTT)
        return tuple(chans)

    async def deliver(self, nudge: Nudge) -> DeliveryReport:
        """Send ``nudge`` on every channel at once; wait for confirmations."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        channels = self.channels_for(nudge.wearer_id)
        latencies: dict[str, float] = {}

        async def via_haptic() -> bool | None:
            if CHANNEL_HAPTIC not in channels or self.haptic is None:
                return None
            try:
                ok = await asyncio.wait_for(
                    self.haptic.play(nudge.wearer_id, pattern_for(nudge)), self.haptic_timeout_s
                )
            except Exception as exc:  # any link failure: MQTT and the record still go out
                log.warning("haptic nudge %s not delivered: %r", nudge.nudge_id, exc)
                return False
            if ok:
                latencies[CHANNEL_HAPTIC] = loop.time() - t0
            return bool(ok)

        async def via_mqtt() -> bool | None:
            if CHANNEL_MQTT not in channels or self.publisher is None:
                return None
            topic = nudge_topic(self.topic_root, self.site, nudge.wearer_id)
            msg = NudgeMessage.of(nudge, self.site, channels, self.response_window_s)
            try:
                ok = await self.publisher.publish(
                    topic, msg.to_json(), expiry_s=self.response_window_s, key=nudge.nudge_id
                )
            except Exception as exc:  # the haptic channel and the record still go out
                log.warning("MQTT nudge %s not published: %r", nudge.nudge_id, exc)
                return False
            if ok:
                latencies[CHANNEL_MQTT] = loop.time() - t0
            return ok

        haptic_ok, mqtt_ok = await asyncio.gather(via_haptic(), via_mqtt())
        report = DeliveryReport(
            nudge,
            channels,
            haptic_ok,
            mqtt_ok,
            latencies.get(CHANNEL_HAPTIC),
            latencies.get(CHANNEL_MQTT),
        )
        if not report.delivered:
            log.warning("nudge %s: no channel confirmed delivery (%s)", nudge.nudge_id, channels)
        self.reports.append(report)
        del self.reports[: -self._reports_max]
        rec = NudgeRecord(
            time_ns=nudge.time_ns,
            nudge_id=nudge.nudge_id,
            reason=nudge.reason,
            channel=report.channel_label,
            level=nudge.level,
            static_min=nudge.static_min,
            delivered=report.delivered,
        )
        self._sent[nudge.nudge_id] = (nudge.wearer_id, rec)
        while len(self._sent) > self._sent_max:
            self._sent.popitem(last=False)
        self._write(nudge.wearer_id, rec)
        return report

    def confirm_late(self, nudge_id: str) -> None:
        """A confirmation that came after :meth:`deliver` gave up waiting
        (e.g. the broker was away): the record says delivered after all.

        Pass it as the publisher's ``on_late_puback``.
        """
        entry = self._sent.get(nudge_id)
        if entry is not None and not entry[1].delivered:
            wearer_id, rec = entry
            rec = replace(rec, delivered=True)
            self._sent[nudge_id] = (wearer_id, rec)
            self._write(wearer_id, rec)

    def record_check(self, wearer_id: str, check: NudgeCheck) -> NudgeRecord | None:
        """Rewrite a sent nudge's record with the smoothed analysis' verdict.

        ``confirmed`` checks set ``confirmed=True`` (with the offset),
        ``live_only`` ones ``confirmed=False``. A ``smoothed_only`` check has
        no sent nudge to annotate (it is counted and logged by the caller);
        neither has a check for a nudge this host no longer remembers.
        """
        if check.kind == "smoothed_only":
            return None
        sent = self._sent.get(check.nudge_id)
        if sent is None:
            return None
        confirmed = check.kind == "confirmed"
        rec = replace(
            sent[1],
            confirmed=confirmed,
            confirm_offset_s=check.offset_s if confirmed else None,
        )
        self._sent[check.nudge_id] = (sent[0], rec)
        self._write(wearer_id, rec)
        return rec

    def record_outcome(self, outcome: NudgeOutcome) -> NudgeRecord:
        """Rewrite the nudge's record with whether (and how fast) the wearer moved."""
        # kept (bounded) after the outcome: the smoothed analysis' check may come later
        sent = self._sent.get(outcome.nudge_id)
        channel = sent[1].channel if sent is not None else self._label(outcome.wearer_id)
        rec = NudgeRecord(
            time_ns=outcome.time_ns,
            nudge_id=outcome.nudge_id,
            reason=outcome.reason,
            channel=channel,
            level=outcome.level,
            answered=outcome.answered,
            response_delay_s=outcome.response_delay_s,
        )
        self._write(outcome.wearer_id, rec)
        return rec

    def _label(self, wearer_id: str) -> str:
        chans = self.channels_for(wearer_id)
        return "+".join(chans) if chans else "none"

    def _write(self, wearer_id: str, rec: NudgeRecord) -> None:
        if self.store is not None:
            self.store.write_nudges(self.site, wearer_id, [rec])


# ------------------------------------------------------------- configuration


@dataclass(frozen=True)
class NudgeConfig:
    """The ``[nudges]`` table: clinic defaults, per-wearer plans, local time.

    ``defaults`` holds :class:`~analysis.nudge.NudgeSettings` keys; each
    ``[nudges.wearers.<pseudonym>]`` table overrides some of them for one
    wearer (a plan is per patient). ``timezone`` is an IANA name
    (``Europe/Oslo``) for working and quiet hours.
    """

    timezone: str = "UTC"
    enabled: bool = True
    haptic: bool = True  # vibrate sensors that have a motor
    mqtt: bool = True  # publish every nudge for apps
    confirm_timeout_s: float = 5.0
    defaults: NudgeSettings = field(default_factory=NudgeSettings)
    wearers: Mapping[str, NudgeSettings] = field(default_factory=dict)

    @property
    def tzinfo(self) -> dt.tzinfo:
        return _zone(self.timezone)

    def settings_for(self, wearer_id: str) -> NudgeSettings:
        return self.wearers.get(wearer_id, self.defaults)


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"nudges.timezone={name!r} is not a known time zone",
            hint="use an IANA name such as 'Europe/Oslo' or 'UTC'",
        ) from exc


_TOP_KEYS = ("timezone", "enabled", "haptic", "mqtt", "confirm_timeout_s")


def load_nudge_config(table: Mapping[str, Any]) -> NudgeConfig:
    """Validate the ``[nudges]`` TOML table (``Config.nudges``).

    Keys: ``timezone``, ``enabled``, ``haptic``, ``mqtt``,
    ``confirm_timeout_s``, any :class:`NudgeSettings` field (clinic
    defaults), and ``wearers`` (a table per pseudonym of overrides).
    """
    allowed = {*_TOP_KEYS, "wearers", *(f.name for f in dataclasses.fields(NudgeSettings))}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"nudges: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    wearers_raw = table.get("wearers", {})
    if not isinstance(wearers_raw, Mapping):
        raise ConfigError("nudges.wearers must be a table of [nudges.wearers.<pseudonym>]")
    defaults_raw = {k: v for k, v in table.items() if k not in (*_TOP_KEYS, "wearers")}
    defaults = from_table(NudgeSettings, defaults_raw, "nudges")
    wearers = {}
    for wearer, overrides in wearers_raw.items():
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"nudges.wearers.{wearer} must be a table")
        merged = {**defaults_raw, **overrides}
        wearers[wearer] = from_table(NudgeSettings, merged, f"nudges.wearers.{wearer}")
    top = {k: v for k, v in table.items() if k in _TOP_KEYS}
    cfg = replace(from_table(NudgeConfig, top, "nudges"), defaults=defaults, wearers=wearers)
    if cfg.confirm_timeout_s <= 0:
        raise ConfigError(f"nudges.confirm_timeout_s={cfg.confirm_timeout_s} must be > 0")
    _zone(cfg.timezone)
    return cfg


__all__ = [
    "CHANNEL_HAPTIC",
    "CHANNEL_MQTT",
    "NUDGE_SCHEMA",
    "NUDGE_SCHEMA_VERSION",
    "PATTERN_GENTLE",
    "PATTERN_STRONGER",
    "DeliveryReport",
    "HapticSink",
    "NudgeConfig",
    "NudgeDelivery",
    "NudgeMessage",
    "NudgePublisher",
    "NudgeStore",
    "PahoNudgePublisher",
    "load_nudge_config",
    "message_text",
    "nudge_topic",
    "pattern_for",
]

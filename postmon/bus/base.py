"""The bus interface, the sink it delivers to, and the in-process bus.

Producers (the per-wearer analysis on a collector host) talk to a ``Bus``;
the same calls work with ``InProcessBus`` (one host: straight into the
writer) and ``postmon.bus.mqtt.MqttPublisher`` (edge -> broker -> ingest
workers -> writer). A ``Sink`` is what finally stores the data:
``postmon.store.writer.Writer`` is one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy.typing as npt

from analysis.contracts import DailySummary, Event, SampleBatch
from postmon.bus import codec
from postmon.store.records import DeviceStatus, NudgeRecord
from postmon.store.writer import Callback, Outcome

log = logging.getLogger(__name__)


class Bus(Protocol):
    """What a producer publishes to (MQTT or in-process)."""

    def publish_epochs(
        self, site: str, wearer: str, sensor: str, epochs: npt.NDArray[Any]
    ) -> None: ...

    def publish_events(self, site: str, wearer: str, events: Sequence[Event]) -> None: ...

    def publish_nudges(self, site: str, wearer: str, nudges: Sequence[NudgeRecord]) -> None: ...

    def publish_status(self, site: str, wearer: str, statuses: Sequence[DeviceStatus]) -> None: ...

    def publish_raw(self, site: str, wearer: str, batch: SampleBatch) -> None: ...

    def publish_daily(
        self, site: str, wearer: str, summaries: Sequence[DailySummary], *, tz: str = "UTC"
    ) -> None: ...

    def flush(self, timeout_s: float | None = 30.0) -> bool: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Where delivered data goes (``Writer`` implements it). ``on_done`` is
    called once the data is durable (written or spooled) or refused."""

    def write_epochs(
        self,
        site: str,
        wearer: str,
        sensor: str,
        epochs: npt.NDArray[Any],
        *,
        on_done: Callback | None = None,
    ) -> int: ...

    def write_events(
        self, site: str, wearer: str, events: Sequence[Event], *, on_done: Callback | None = None
    ) -> int: ...

    def write_nudges(
        self,
        site: str,
        wearer: str,
        nudges: Sequence[NudgeRecord | Event],
        *,
        on_done: Callback | None = None,
    ) -> int: ...

    def write_status(
        self,
        site: str,
        wearer: str,
        statuses: Sequence[DeviceStatus] | DeviceStatus,
        *,
        on_done: Callback | None = None,
    ) -> int: ...

    def write_raw(
        self, site: str, wearer: str, batch: SampleBatch, *, on_done: Callback | None = None
    ) -> int: ...

    def write_daily(
        self,
        site: str,
        wearer: str,
        summaries: Sequence[DailySummary] | DailySummary,
        *,
        tz: str = "UTC",
        on_done: Callback | None = None,
    ) -> int: ...

    def flush(self, timeout_s: float | None = 30.0, *, include_spool: bool = False) -> bool: ...


def deliver(sink: Sink, topic: codec.Topic, payload: bytes, on_done: Callback | None) -> None:
    """Decode one MQTT message and hand it to ``sink``.

    Raises ``codec.BusDecodeError`` (malformed message) or the encoder's
    ``EncodeError`` (well-formed but unstorable values): the caller keeps
    such messages in its dead-letter file.
    """
    try:
        _deliver(sink, topic, payload, on_done)
    except (TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        # JSON that parses but holds values of the wrong type (a null time, a
        # list where a number belongs) fails deep in decoding or encoding. It is
        # bad input like any other: refused so that the ingest worker keeps it
        # in its dead-letter file and acknowledges it, instead of leaving it
        # unacknowledged for the broker to deliver again forever.
        raise codec.BusDecodeError(
            f"{topic.stream} payload holds a value of the wrong type: {type(exc).__name__}: {exc}"
        ) from exc


def _deliver(sink: Sink, topic: codec.Topic, payload: bytes, on_done: Callback | None) -> None:
    s = topic.stream
    if s == "epochs":
        b = codec.decode_epochs(payload)
        sink.write_epochs(topic.site, topic.wearer, b.sensor, b.epochs, on_done=on_done)
    elif s == "events":
        sink.write_events(topic.site, topic.wearer, codec.decode_events(payload), on_done=on_done)
    elif s == "nudges":
        sink.write_nudges(topic.site, topic.wearer, codec.decode_nudges(payload), on_done=on_done)
    elif s == "status":
        sink.write_status(topic.site, topic.wearer, codec.decode_status(payload), on_done=on_done)
    elif s == "raw":
        sink.write_raw(
            topic.site, topic.wearer, codec.decode_raw(payload, topic.wearer), on_done=on_done
        )
    elif s == "daily":
        summaries, tz = codec.decode_daily(payload)
        sink.write_daily(topic.site, topic.wearer, summaries, tz=tz, on_done=on_done)
    else:  # pragma: no cover - parse_topic only yields the above
        raise codec.BusDecodeError(f"no handler for stream {s!r}")


Subscriber = Callable[[str, str, str, Any], None]


class InProcessBus:
    """One-host mode: the ``Bus`` calls go straight to the sink (no copy, no
    encoding); extra in-process subscribers (e.g. a live view) get
    ``(stream, site, wearer, obj)`` after the sink has accepted the data.

    ``flush()`` flushes the sink, so "published" really means "stored".
    """

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self.published = dict.fromkeys(codec.STREAMS, 0)

    def subscribe(self, fn: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def _fanout(self, stream: str, site: str, wearer: str, obj: Any) -> None:
        with self._lock:
            self.published[stream] += 1
            subs = list(self._subscribers)
        for fn in subs:
            try:
                fn(stream, site, wearer, obj)
            except Exception:  # a viewer must never break storage
                log.exception("in-process subscriber %r failed on %s", fn, stream)

    def publish_epochs(self, site: str, wearer: str, sensor: str, epochs: npt.NDArray[Any]) -> None:
        self.sink.write_epochs(site, wearer, sensor, epochs)
        self._fanout("epochs", site, wearer, epochs)

    def publish_events(self, site: str, wearer: str, events: Sequence[Event]) -> None:
        self.sink.write_events(site, wearer, events)
        self._fanout("events", site, wearer, events)

    def publish_nudges(self, site: str, wearer: str, nudges: Sequence[NudgeRecord]) -> None:
        self.sink.write_nudges(site, wearer, nudges)
        self._fanout("nudges", site, wearer, nudges)

    def publish_status(self, site: str, wearer: str, statuses: Sequence[DeviceStatus]) -> None:
        self.sink.write_status(site, wearer, statuses)
        self._fanout("status", site, wearer, statuses)

    def publish_raw(self, site: str, wearer: str, batch: SampleBatch) -> None:
        self.sink.write_raw(site, wearer, batch)
        self._fanout("raw", site, wearer, batch)

    def publish_daily(
        self, site: str, wearer: str, summaries: Sequence[DailySummary], *, tz: str = "UTC"
    ) -> None:
        self.sink.write_daily(site, wearer, summaries, tz=tz)
        self._fanout("daily", site, wearer, summaries)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        return self.sink.flush(timeout_s)

    def close(self) -> None:
        self.flush()


__all__ = ["Bus", "InProcessBus", "Outcome", "Sink", "deliver"]

"""Bad input on the bus: every MQTT payload decoder, fuzzed, and empty messages on a real broker.

An ingest worker acknowledges and dead-letters a message whose decoding or
encoding raises ``InputError``/``ValueError``; any other exception leaves the
message unacknowledged, so the broker would deliver it again and again (a
poison message). The fuzz below holds every decoder, and the line-protocol
encoding the writer does right after it, to that contract.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.contracts import DailySummary, Event, SampleBatch
from postmon.bus import codec
from postmon.bus.base import deliver
from postmon.bus.mqtt import IngestWorker
from postmon.config import InfluxConfig, MqttConfig
from postmon.errors import InputError
from postmon.store import lineproto as lp
from postmon.store.records import DeviceStatus, NudgeRecord
from postmon.store.writer import Outcome, Writer
from tests.store_helpers import make_epochs, recent_hour_ns

ROOT = "postmon/v1"


class EncodeOnlyWriter(Writer):
    """The real Writer's write_* calls (decoding -> line protocol encoding), kept in memory."""

    def write_encoded(self, encs: Sequence[lp.Encoded], on_done: Any = None) -> int:
        return sum(e.points for e in encs)


def _valid_payloads() -> dict[str, bytes]:
    t = recent_hour_ns(3)
    ev = [Event(t, "sit_to_stand", 0.0, {"wearer_side": "x"}), Event(t + 5, "bout", 12.5, {})]
    daily = DailySummary(
        **{
            f.name: (
                "2026-01-05"
                if f.name == "date"
                else (1.0,) * 24
                if f.name == "eva_min"
                else 1.0
                if f.type in ("float", float)
                else 1
            )
            for f in dataclasses.fields(DailySummary)
        }
    )
    raw = SampleBatch(
        "s1", "p001", 50.0, t + np.arange(4, dtype=np.int64) * 20_000_000, np.ones((4, 3))
    )
    return {
        "epochs": codec.encode_epochs("s1", make_epochs(0, t, 5), 3),
        "events": codec.encode_events(ev),
        "nudges": codec.encode_nudges([NudgeRecord(t, "n1", level=2, static_min=40.0)]),
        "status": codec.encode_status([DeviceStatus(t, "s1", "witmotion", True, 80.0, 50.0)]),
        "raw": codec.encode_raw(raw),
        "daily": codec.encode_daily([daily], "Europe/Paris"),
    }


VALID = _valid_payloads()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)


def _json_mutations(stream: str) -> st.SearchStrategy[bytes]:
    """Valid JSON documents with fields replaced, removed or added at random."""
    if stream in ("epochs", "raw"):
        return st.nothing()
    doc = json.loads(VALID[stream])
    key = next(k for k in doc if isinstance(doc[k], list))
    item = doc[key][0]

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        d = dict(item)
        for name in draw(st.lists(st.sampled_from(sorted(d)), max_size=3)):
            if draw(st.booleans()):
                d[name] = draw(json_values)
            else:
                d.pop(name, None)
        if draw(st.booleans()):
            d[draw(st.text(max_size=6))] = draw(json_values)
        top = {**doc, key: [d] if draw(st.booleans()) else draw(json_values)}
        return json.dumps(top).encode()

    return mutate()


def _byte_mutations(stream: str) -> st.SearchStrategy[bytes]:
    base = VALID[stream]

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        b = bytearray(base)
        for _ in range(draw(st.integers(0, 6))):
            if not b:
                break
            i = draw(st.integers(0, len(b) - 1))
            b[i] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(b)))
        return bytes(b[:cut]) + draw(st.binary(max_size=8))

    return mutate()


@pytest.mark.parametrize("stream", codec.STREAMS)
def test_fuzz_every_bus_decoder_refuses_cleanly_or_stores(stream: str, tmp_path: Path) -> None:
    sink = EncodeOnlyWriter(
        InfluxConfig(url="http://127.0.0.1:9", spool_dir=tmp_path / "spool", create_schema=False)
    )
    topic = codec.parse_topic(ROOT, codec.data_topic(ROOT, "clinic-a", "p001", stream))
    # the valid payload goes through: the fuzz starts from something that works
    deliver(sink, topic, VALID[stream], None)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.one_of(st.binary(max_size=64), _byte_mutations(stream), _json_mutations(stream)))
    def run(payload: bytes) -> None:
        # refused = dead-lettered and acknowledged by the ingest worker; anything
        # else escaping would leave the message unacknowledged for ever
        with contextlib.suppress(InputError, ValueError):
            deliver(sink, topic, payload, None)

    run()


def test_presence_decoder_refuses_cleanly() -> None:
    @settings(max_examples=100, deadline=None)
    @given(st.one_of(st.binary(max_size=40), json_values.map(lambda v: json.dumps(v).encode())))
    def run(payload: bytes) -> None:
        try:
            doc = codec.decode_presence(payload)
        except InputError:
            return
        assert isinstance(doc, dict)
        assert "online" in doc

    run()


@pytest.mark.integration
def test_empty_retained_clear_is_ignored_counted_and_data_after_it_still_stored(
    mqtt_broker: tuple[str, int], mqtt_prefix: str, tmp_path: Path
) -> None:
    """An empty retained message clears a topic (MQTT's only way to): not data, not an error."""
    host, port = mqtt_broker
    cfg = MqttConfig(port=port, topic_root=mqtt_prefix, spool_dir=tmp_path / "mq")
    stored: list[int] = []

    class CountingSink(EncodeOnlyWriter):
        def write_encoded(self, encs: Sequence[lp.Encoded], on_done: Any = None) -> int:
            n = super().write_encoded(encs)
            stored.append(n)
            if on_done:
                on_done(Outcome.WRITTEN)
            return n

    sink = CountingSink(
        InfluxConfig(url="http://127.0.0.1:9", spool_dir=tmp_path / "spool", create_schema=False)
    )
    worker = IngestWorker(cfg, sink, group=f"g{time.monotonic_ns()}", dead_letter_dir=tmp_path)
    worker.start()
    assert worker.wait_subscribed(10)
    time.sleep(0.3)  # the SUBACK: the broker routes to the shared subscription from now on
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(host, port)
    pub.loop_start()
    try:
        presence = codec.presence_topic(mqtt_prefix, "clinic-a", "edge-1")
        data = codec.data_topic(mqtt_prefix, "clinic-a", "p001", "epochs")
        pub.publish(presence, b"", qos=1, retain=True).wait_for_publish(5)
        pub.publish(data, b"", qos=1).wait_for_publish(5)
        pub.publish(data, VALID["epochs"], qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and worker.stats().acked < 3:
            time.sleep(0.05)
    finally:
        pub.loop_stop()
        pub.disconnect()
        worker.stop(timeout_s=5)
    st_ = worker.stats()
    assert st_.empty_ignored == 2
    assert st_.dead_lettered == 0
    assert st_.acked == 3
    assert stored == [5]  # the epoch batch after the empty ones: 5 epochs
    assert not (tmp_path / "rejected").exists()

"""Nudge delivery: message schema and wording, MetaMotion haptic frames,
routing to MQTT (real Mosquitto) and records in the real InfluxDB."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import queue
import re
import uuid
from pathlib import Path

import pytest

from analysis.contracts import NS_PER_S
from analysis.live import NudgeCheck
from analysis.nudge import Nudge, NudgeOutcome, NudgePolicy, NudgeSettings
from collector.haptics import (
    PATTERN_GENTLE,
    PATTERN_STRONGER,
    HapticFrame,
    VibrationPattern,
    metamotion_frames,
    play_frames,
)
from collector.protocols.metamotion import Haptic, parse_command
from postmon.bus import codec
from postmon.config import InfluxConfig, MqttConfig
from postmon.errors import ConfigError, InputError
from postmon.nudges import (
    NudgeDelivery,
    NudgeMessage,
    PahoNudgePublisher,
    load_nudge_config,
    message_text,
    nudge_topic,
)
from postmon.store.reader import Reader
from postmon.store.records import NudgeRecord
from postmon.store.writer import Writer
from tests.conftest import INFLUX_URL, MQTT_PORT
from tests.test_nudge_policy import MIN, T0, WALK, epochs, still

S = NS_PER_S
DOCS = Path(__file__).resolve().parents[1] / "docs" / "NUDGES.md"


def nudge(level: int = 1, reason: str = "static", static_min: float = 30.0) -> Nudge:
    t = T0 + 30 * MIN
    return Nudge(f"p017:{reason}:{t}", "p017", t, reason, level, static_min)  # type: ignore[arg-type]


# ------------------------------------------------------------------ wording


ALARMING = re.compile(
    r"\b(bad|poor|wrong|warning|danger|risk|slouch|posture|must|straight|pain|injur)\w*", re.I
)


@pytest.mark.parametrize(
    "n", [nudge(1), nudge(2, static_min=50.2), nudge(3), nudge(1, "flexion", 3.0)]
)
def test_texts_are_plain_and_encouraging(n: Nudge) -> None:
    text = message_text(n)
    assert not ALARMING.search(text), text
    assert "!" not in text
    assert len(text) < 160  # fits a phone notification
    if n.reason == "static":
        assert f"{round(n.static_min)} minutes" in text
        assert re.search(r"\b(stand|walk|move|feet)\b", text)


def test_escalation_text_differs_from_the_first() -> None:
    assert message_text(nudge(1)) != message_text(nudge(2))


# ------------------------------------------------------------------ message


def test_message_json_exact_bytes_and_round_trip() -> None:
    n = nudge(2, static_min=50.04)
    msg = NudgeMessage.of(n, "clinic-a", ("haptic", "mqtt"), 300.0)
    t = T0 + 30 * MIN
    expected = (
        '{"notify":{"channels":["haptic","mqtt"],"expires":"2026-01-05T09:35:00.000Z",'
        f'"expires_ns":{T0 + 35 * MIN},"level":2,"message":{json.dumps(message_text(n))},'
        f'"nudge_id":"p017:static:{t}","reason":"static","schema":"postmon.nudge",'
        f'"site":"clinic-a","static_min":50.0,"time":"2026-01-05T09:30:00.000Z",'
        f'"time_ns":{t},"version":1,"wearer":"p017"}},'
        f'"nudges":[{{"answered":null,"channel":"haptic+mqtt","confirm_offset_s":null,'
        f'"confirmed":null,"delivered":null,"level":2,'
        f'"nudge_id":"p017:static:{t}","reason":"static","response_delay_s":null,'
        f'"static_min":50.0,"time_ns":{t}}}],"v":1}}'
    )
    assert msg.to_json().decode() == expected
    assert NudgeMessage.from_json(msg.to_json()) == msg
    # the bus's own decoder (ingest workers) reads the record it carries
    assert codec.decode_nudges(msg.to_json()) == [
        NudgeRecord(t, n.nudge_id, "static", "haptic+mqtt", 2, 50.0, None, None, None)
    ]
    # an app ignores keys it does not know (forward compatible)
    doc = json.loads(expected)
    doc["notify"]["colour"] = "green"
    doc["extra"] = 1
    assert NudgeMessage.from_json(json.dumps(doc)) == msg


def test_message_time_keeps_milliseconds() -> None:
    n = Nudge("x", "p017", T0 + 1_234_567_890, "static", 1, 30.0)
    doc = json.loads(NudgeMessage.of(n, "s", ("mqtt",), 60).to_json())["notify"]
    assert doc["time"] == "2026-01-05T09:00:01.234Z"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not json", "not JSON"),
        (b'{"v":1,"nudges":[]}', "no postmon.nudge 'notify'"),  # a record update
        (b'{"notify":{"schema":"postmon.nudge","version":2}}', "version 2 is not supported"),
        (b'{"notify":{"schema":"postmon.nudge","version":1,"nudge_id":"x"}}', "lacks or mistypes"),
    ],
)
def test_bad_messages_are_rejected_clearly(payload: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match):
        NudgeMessage.from_json(payload)


def test_topic_is_versioned_and_levels_are_checked() -> None:
    assert nudge_topic("postmon/v1", "clinic-a", "p017") == "postmon/v1/clinic-a/p017/nudges"
    for bad in ("a/b", "+", "#", "", "_p", "$p"):
        with pytest.raises(InputError, match="topic level"):
            nudge_topic("postmon/v1", "clinic-a", bad)


def test_the_schema_document_lists_every_key() -> None:
    text = DOCS.read_text(encoding="utf-8")
    keys = json.loads(NudgeMessage.of(nudge(), "s", ("mqtt",), 300).to_json())["notify"]
    for key in keys:
        assert f"`{key}`" in text, f"docs/NUDGES.md does not document {key!r}"
    assert "{topic_root}/{site}/{wearer}/nudges" in text
    # the example in the document is what the code sends
    example = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert example is not None
    sent = NudgeMessage.of(nudge(1), "clinic-a", ("haptic", "mqtt"), 300).to_json()
    assert example.group(1).encode() == sent


# ------------------------------------------------------------------- haptic


def test_metamotion_frames_exact_bytes() -> None:
    # duty byte = percent * 248 / 100 (MetaWear SDK haptic.cpp); pulse u16 LE; 0 = motor
    assert metamotion_frames(PATTERN_GENTLE) == (
        HapticFrame(0, bytes.fromhex("08 01 95 c8 00 00")),  # 60 % -> 149, 200 ms
        HapticFrame(450, bytes.fromhex("08 01 95 c8 00 00")),
    )
    assert metamotion_frames(PATTERN_STRONGER) == (
        HapticFrame(0, bytes.fromhex("08 01 f8 90 01 00")),  # 100 % -> 248, 400 ms
        HapticFrame(650, bytes.fromhex("08 01 f8 90 01 00")),
        HapticFrame(1300, bytes.fromhex("08 01 f8 90 01 00")),
    )
    # the device side's own parser reads them back as motor pulses
    assert parse_command(metamotion_frames(PATTERN_GENTLE)[0].data) == Haptic(149, 200, False)


def test_escalation_pattern_is_stronger() -> None:
    def energy(p: VibrationPattern) -> float:
        return sum(x.duty_percent * x.on_ms for x in p.pulses)

    assert energy(PATTERN_STRONGER) > 2 * energy(PATTERN_GENTLE)
    assert len(PATTERN_STRONGER.pulses) > len(PATTERN_GENTLE.pulses)


async def test_play_frames_spaces_the_writes() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    at: list[tuple[float, bytes]] = []

    async def write(data: bytes) -> None:
        at.append((loop.time() - t0, data))

    frames = metamotion_frames(PATTERN_GENTLE)
    await play_frames(write, frames)
    assert [d for _, d in at] == [f.data for f in frames]
    assert at[0][0] < 0.05  # the first pulse starts at once
    assert 0.44 <= at[1][0] < 0.6


# ----------------------------------------------------------- configuration


def test_config_defaults_and_per_wearer_plans() -> None:
    cfg = load_nudge_config(
        {
            "timezone": "Europe/Oslo",
            "static_timer_min": 40,
            "quiet_hours_local": ["12:00-12:30"],
            "wearers": {"p017": {"static_timer_min": 20, "flexion_nudge": True}},
        }
    )
    assert cfg.defaults == NudgeSettings(static_timer_min=40, quiet_hours_local=("12:00-12:30",))
    assert cfg.settings_for("p017") == NudgeSettings(
        static_timer_min=20, quiet_hours_local=("12:00-12:30",), flexion_nudge=True
    )
    assert cfg.settings_for("other") == cfg.defaults
    noon = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
    assert noon.astimezone(cfg.tzinfo).utcoffset() == dt.timedelta(hours=1)
    assert load_nudge_config({}).defaults == NudgeSettings()


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"static_timer_min": 5}, r"nudges: static_timer_min=5.0 is outside .*10–90"),
        ({"statc_timer_min": 30}, r"unknown key\(s\) statc_timer_min"),
        ({"timezone": "Mars/Olympus"}, "not a known time zone"),
        ({"wearers": {"p1": {"snooze_min": 500}}}, r"nudges.wearers.p1: snooze_min=500"),
        ({"flexion_nudge": "yes"}, "expected true or false"),
    ],
)
def test_config_errors_name_the_key(table: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_nudge_config(table)


# ------------------------------------------------------------- with servers


class FakeMotor:
    """A stand-in for the collector's haptic sink (the real one drives BLE)."""

    def __init__(self, wearers: set[str], fail: bool = False) -> None:
        self.wearers = wearers
        self.fail = fail
        self.played: list[tuple[str, VibrationPattern]] = []

    def haptic_capable(self, wearer_id: str) -> bool:
        return wearer_id in self.wearers

    async def play(self, wearer_id: str, pattern: VibrationPattern) -> bool:
        if self.fail:
            raise OSError("link lost")
        self.played.append((wearer_id, pattern))
        return True


def _mqtt_cfg(prefix: str) -> MqttConfig:
    return MqttConfig(port=MQTT_PORT, topic_root=prefix)


@pytest.mark.integration
async def test_delivery_to_motor_mqtt_and_store(
    mqtt_prefix: str, inbox: queue.Queue, influx_db: str, tmp_path: Path
) -> None:
    motor = FakeMotor({"p017"})
    cfg = InfluxConfig(url=INFLUX_URL, database=influx_db, spool_dir=tmp_path / "spool")
    with (
        PahoNudgePublisher(_mqtt_cfg(mqtt_prefix), client_id=f"t-{uuid.uuid4().hex}") as pub,
        Writer(cfg) as store,
    ):
        d = NudgeDelivery(
            site="clinic-a", topic_root=mqtt_prefix, publisher=pub, haptic=motor, store=store
        )
        n1 = nudge(1)
        rep = await d.deliver(n1)
        assert (rep.haptic, rep.mqtt, rep.delivered) == (True, True, True)
        assert rep.channels == ("haptic", "mqtt")
        assert motor.played == [("p017", PATTERN_GENTLE)]
        m = inbox.get(timeout=5)
        assert m.topic == f"{mqtt_prefix}/clinic-a/p017/nudges"
        assert m.qos == 1
        got = NudgeMessage.from_json(m.payload)
        assert (got.nudge_id, got.level, got.channels) == (n1.nudge_id, 1, ("haptic", "mqtt"))
        assert got.message == message_text(n1)

        # a wearer whose sensor has no motor gets the MQTT message only
        n2 = Nudge("p020:static:1", "p020", T0 + 31 * MIN, "static", 2, 50.0)
        rep2 = await d.deliver(n2)
        assert (rep2.haptic, rep2.mqtt, rep2.channels) == (None, True, ("mqtt",))
        assert inbox.get(timeout=5).topic == f"{mqtt_prefix}/clinic-a/p020/nudges"

        # the wearer moved 95 s after the first nudge
        d.record_outcome(
            NudgeOutcome(n1.nudge_id, "p017", n1.time_ns, "static", 1, True, 95.0, n1.time_ns)
        )
        # the smoothed analysis agreed with the first (after its outcome), not the second
        d.record_check("p017", NudgeCheck("confirmed", n1.nudge_id, n1.time_ns, "static", 1, 12.0))
        d.record_check("p020", NudgeCheck("live_only", n2.nudge_id, n2.time_ns, "static", 2))
        # a nudge only the smoothed analysis would have sent is not a sent nudge
        assert d.record_check("p017", NudgeCheck("smoothed_only", "x", T0, "static", 1)) is None
        assert store.flush()
    with Reader(cfg) as r:
        recs = r.nudges("p017", T0, T0 + 3600 * S)
        assert recs == [
            NudgeRecord(
                n1.time_ns,
                n1.nudge_id,
                "static",
                "haptic+mqtt",
                1,
                30.0,
                True,
                True,
                95.0,
                True,
                12.0,
            )
        ]
        assert r.nudges("p020", T0, T0 + 3600 * S) == [
            NudgeRecord(n2.time_ns, n2.nudge_id, "static", "mqtt", 2, 50.0, True, None, None, False)
        ]


@pytest.mark.integration
async def test_a_failing_motor_does_not_stop_the_message(
    mqtt_prefix: str, inbox: queue.Queue
) -> None:
    motor = FakeMotor({"p017"}, fail=True)
    with PahoNudgePublisher(_mqtt_cfg(mqtt_prefix)) as pub:
        d = NudgeDelivery(site="s", topic_root=mqtt_prefix, publisher=pub, haptic=motor)
        rep = await d.deliver(nudge(1))
    assert (rep.haptic, rep.mqtt, rep.delivered) == (False, True, True)
    assert inbox.get(timeout=5).topic.endswith("/s/p017/nudges")


@pytest.mark.integration
async def test_unconfirmed_delivery_is_recorded_as_such() -> None:
    # nothing listens on this port: the connection never comes up
    from tests.conftest import free_port

    with pytest.raises(Exception, match="did not accept a connection"):
        PahoNudgePublisher(MqttConfig(port=free_port()), confirm_timeout_s=0.2).start(0.5)

    class Silent:
        async def publish(
            self, topic: str, payload: bytes, *, expiry_s: float, key: str = ""
        ) -> bool:
            return False

    written: list[NudgeRecord] = []

    class Store:
        def write_nudges(self, site: str, wearer: str, nudges: list[NudgeRecord]) -> int:
            written.extend(nudges)
            return len(nudges)

    d = NudgeDelivery(site="s", topic_root="r", publisher=Silent(), store=Store())
    rep = await d.deliver(nudge(1))
    assert rep.delivered is False
    assert written[-1].delivered is False
    d.confirm_late(nudge(1).nudge_id)  # the broker confirmed after all
    assert written[-1].delivered is True
    assert written[-1].channel == "mqtt"


@pytest.mark.integration
async def test_policy_to_mqtt_and_store_end_to_end(
    mqtt_prefix: str, inbox: queue.Queue, influx_db: str, tmp_path: Path
) -> None:
    cfg = load_nudge_config({"timezone": "UTC"})
    icfg = InfluxConfig(url=INFLUX_URL, database=influx_db, spool_dir=tmp_path / "spool")
    with PahoNudgePublisher(_mqtt_cfg(mqtt_prefix)) as pub, Writer(icfg) as store:
        # the policy decides from epochs; the delivery sends and records
        policy = NudgePolicy("p017", cfg.settings_for("p017"), cfg.tzinfo)
        delivery = NudgeDelivery(
            site="clinic-a", topic_root=mqtt_prefix, publisher=pub, store=store
        )
        day = epochs(still(33), (120, WALK, False))  # sits 33 min, then walks
        for k in range(0, day.shape[0], 60):  # a minute at a time
            out = policy.feed(day[k : k + 60])
            for n in out.nudges:
                await delivery.deliver(n)
            for outcome in out.outcomes:
                delivery.record_outcome(outcome)
        assert store.flush()
    msg = NudgeMessage.from_json(inbox.get(timeout=5).payload)
    assert (msg.time_ns, msg.level, msg.static_min) == (T0 + 30 * MIN, 1, 30.0)
    assert inbox.empty()
    with Reader(icfg) as r:
        (rec,) = r.nudges("p017", T0, T0 + 3600 * S)
    assert (rec.delivered, rec.answered, rec.response_delay_s) == (True, True, 180.0)


@pytest.mark.integration
async def test_no_subscriber_is_not_a_delivery(mqtt_prefix: str) -> None:
    # nobody subscribes under this test's prefix: the broker says so in its PUBACK
    with PahoNudgePublisher(_mqtt_cfg(mqtt_prefix)) as pub:
        d = NudgeDelivery(site="s", topic_root=mqtt_prefix, publisher=pub)
        rep = await d.deliver(nudge(1))
    assert (rep.mqtt, rep.delivered) == (False, False)

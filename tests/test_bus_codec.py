"""MQTT topics and payloads: exact layouts, round trips, refusals."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from analysis.contracts import EPOCH_DTYPE, Event, SampleBatch
from postmon.bus import codec
from postmon.store.records import DeviceStatus, NudgeRecord
from tests.store_helpers import make_epochs
from tests.test_lineproto import make_summary

ROOT = "postmon/v1"


def test_topics_round_trip_and_refuse_bad_levels() -> None:
    t = codec.data_topic(ROOT, "clinic-a", "p017", "epochs")
    assert t == "postmon/v1/clinic-a/p017/epochs"
    assert codec.parse_topic(ROOT, t) == codec.Topic("clinic-a", "p017", "epochs")
    p = codec.presence_topic(ROOT, "clinic-a", "edge-1")
    assert p == "postmon/v1/clinic-a/_collector/edge-1/status"
    assert codec.parse_topic(ROOT, p) == codec.Topic("clinic-a", "edge-1", "presence")
    for bad in ("a/b", "a+", "#", "", "_x", "$sys"):
        with pytest.raises(ValueError, match="topic level"):
            codec.data_topic(ROOT, "s", bad, "epochs")
    with pytest.raises(ValueError, match="unknown stream"):
        codec.data_topic(ROOT, "s", "w", "video")
    for bad in ("other/v1/s/w/epochs", f"{ROOT}/s/w/video", f"{ROOT}/s/w", f"{ROOT}/s//epochs"):
        with pytest.raises(codec.BusDecodeError):
            codec.parse_topic(ROOT, bad)


def test_epoch_batch_exact_layout() -> None:
    e = np.zeros(1, EPOCH_DTYPE)
    e[0] = (1_700_000_000_000_000_000, 1, 12.5, -3.25, 0.5, True, 0.125)
    payload = codec.encode_epochs("AB", e, seq=7)
    expected = (
        struct.pack("<BBH", 1, 1, 2)
        + b"AB"
        + struct.pack("<QI", 7, 1)
        + struct.pack("<q", 1_700_000_000_000_000_000)
        + struct.pack("<b", 1)
        + struct.pack("<fff", 12.5, -3.25, 0.5)
        + struct.pack("<B", 1)
        + struct.pack("<f", 0.125)
    )
    assert payload == expected
    assert len(payload) == 4 + 2 + 12 + codec.EPOCH_WIRE_BYTES


def test_epoch_batch_round_trip_keeps_nan_and_every_column() -> None:
    e = make_epochs(3, 1_700_000_000_000_000_000, 600)
    b = codec.decode_epochs(codec.encode_epochs("sensør 1", e, seq=42))
    assert (b.sensor, b.seq) == ("sensør 1", 42)
    for name in EPOCH_DTYPE.names or ():
        assert np.array_equal(b.epochs[name], e[name], equal_nan=name.endswith(("deg", "_g"))), name


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda p: p[:-1], "must be"),
        (lambda p: p + b"\x00", "must be"),
        (lambda p: b"\x02" + p[1:], "version 2"),
        (lambda p: p[:1] + b"\x02" + p[2:], "kind 2"),
        (lambda p: p[:3], "too short"),
    ],
)
def test_malformed_epoch_batches_are_refused(mutate, match) -> None:
    p = codec.encode_epochs("s", make_epochs(0, 0, 5))
    with pytest.raises(codec.BusDecodeError, match=match):
        codec.decode_epochs(mutate(p))


def test_raw_batch_round_trip_with_and_without_gyro() -> None:
    t = np.arange(5, dtype=np.int64) * 20_000_000 + 10**18
    acc = np.array([[0.5, -0.25, 1.0]] * 5)
    for gyro in (None, acc * 8):
        b = SampleBatch("s1", "w1", 50.0, t, acc, gyro, lost_before=3, seq=9)
        got = codec.decode_raw(codec.encode_raw(b), "w1")
        assert (got.sensor_id, got.rate_hz, got.lost_before, got.seq) == ("s1", 50.0, 3, 9)
        assert np.array_equal(got.t_ns, t)
        assert np.array_equal(got.accel_g, acc)
        assert (got.gyro_dps is None) == (gyro is None)


def test_json_payloads_round_trip() -> None:
    ev = [Event(5, "bout", 60.0, {"activity": "sitting", "x": float("nan")})]
    doc = json.loads(codec.encode_events(ev))
    assert doc == {
        "v": 1,
        "events": [
            {
                "t_ns": 5,
                "kind": "bout",
                "duration_s": 60.0,
                "attrs": {"activity": "sitting", "x": None},
            }
        ],
    }
    assert codec.decode_events(codec.encode_events(ev))[0].attrs == {
        "activity": "sitting",
        "x": None,
    }
    nudges = [NudgeRecord(1, "n1", "static", "phone", 2, 31.0, True, None, None)]
    assert codec.decode_nudges(codec.encode_nudges(nudges)) == nudges
    st = [DeviceStatus(1, "s", "witmotion", False, None, 50.0, 1, 2, 3)]
    assert codec.decode_status(codec.encode_status(st)) == st
    s = make_summary(wear_min=float("nan"))
    got, tz = codec.decode_daily(codec.encode_daily([s], "Europe/Oslo"))
    assert tz == "Europe/Oslo"
    assert math.isnan(got[0].wear_min)
    assert got[0].eva_min == s.eva_min
    assert got[0].settings == s.settings
    with pytest.raises(codec.BusDecodeError, match="version"):
        codec.decode_events(b'{"v": 9, "events": []}')
    with pytest.raises(codec.BusDecodeError, match="not JSON"):
        codec.decode_nudges(b"\xff")
    with pytest.raises(codec.BusDecodeError, match="bad nudge"):
        codec.decode_nudges(b'{"v": 1, "nudges": [{"who": 1}]}')

"""Every decoder survives arbitrary input and accounts for every byte and frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.protocols import PROTOCOLS, detect, get_protocol, metamotion, movesense, witmotion
from tests.protocol_helpers import bytes_balance, frames_balance

rng = np.random.default_rng(7)
# Valid frames of every device mixed into the fuzz input so that the decoders'
# interesting paths (headers, known frame types) are reached, not only garbage.
VALID = {
    "witmotion": [
        witmotion.encode_data_frames(
            rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), np.zeros((2, 3))
        ),
        witmotion.encode_battery_reply(3.9),
        b"\x55\x61",
        b"\x55",
    ],
    "movesense": [
        movesense.encode_imu6_packets(
            1, [5], rng.normal(size=(1, 2, 3)), rng.normal(size=(1, 2, 3))
        ),
        movesense.encode_command_result(1, 200),
        b"\x02\x01",
    ],
    "metamotion": [
        metamotion.encode_sensor_frames(metamotion.MODULE_ACC, rng.normal(size=(3, 3)), 4096, True),
        metamotion.encode_sensor_frames(
            metamotion.MODULE_GYRO, rng.normal(size=(1, 3)), 16.4, False
        ),
        metamotion.encode_battery(50, 3900),
        b"\x11\x8c",
    ],
}


def chunk_lists(kind: str) -> st.SearchStrategy[list[bytes]]:
    piece = st.one_of(st.binary(max_size=40), st.sampled_from(VALID[kind]))
    return st.lists(st.lists(piece, max_size=4).map(b"".join), max_size=12)


@pytest.mark.parametrize("kind", sorted(PROTOCOLS))
def test_fuzz_feed_never_raises_and_balances(kind: str) -> None:
    @settings(
        max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.lists(chunk_lists(kind), max_size=4))
    def run(calls: list[list[bytes]]) -> None:
        d = PROTOCOLS[kind].make_decoder()
        total_samples = 0
        total_msgs = 0
        for chunks in calls:
            got = d.feed_many(chunks) if len(chunks) != 1 else d.feed(chunks[0])
            n = len(got)
            total_samples += n
            total_msgs += len(got.messages)
            assert got.accel_g.shape == (n, 3)
            assert got.chunk_index.shape == (n,)
            assert np.all((got.chunk_index >= 0) & (got.chunk_index < max(1, len(chunks))))
            assert np.all(np.diff(got.chunk_index) >= 0)
            assert np.isfinite(got.accel_g).all()
        s = d.stats
        assert bytes_balance(s) == 0
        assert s.samples == total_samples
        assert s.frames_control == total_msgs
        if kind != "witmotion":  # notification-framed: one frame per notification
            assert frames_balance(s) == 0
        d.reset()
        assert bytes_balance(d.stats) == 0
        assert d.stats.bytes_pending == 0

    run()


def test_registry_and_detection() -> None:
    assert set(PROTOCOLS) == {"witmotion", "movesense", "metamotion"}
    assert detect("WT901BLE67") is witmotion.PROTOCOL
    assert detect("Movesense 174630000192") is movesense.PROTOCOL
    assert detect("MetaWear") is metamotion.PROTOCOL
    assert detect(None, [metamotion.SERVICE_UUID.upper()]) is metamotion.PROTOCOL
    assert detect("Headphones") is None
    assert get_protocol("movesense").has_device_timestamps
    with pytest.raises(ValueError, match="known types: metamotion, movesense, witmotion"):
        get_protocol("thingy")
    assert movesense.PROTOCOL.nearest_rate_hz(50) == 52
    assert witmotion.PROTOCOL.nearest_rate_hz(60) == 50
    assert metamotion.PROTOCOL.nearest_rate_hz(75) == 100  # tie -> the higher rate

"""Helpers shared by the wire-format tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from collector.protocols.base import Decoded, DecoderStats


def assert_decoded_equal(got: Decoded, want: Decoded) -> None:
    """Compare two Decoded objects field by field (arrays exactly)."""
    np.testing.assert_array_equal(got.accel_g, want.accel_g)
    if want.gyro_dps is None:
        assert got.gyro_dps is None
    else:
        assert got.gyro_dps is not None
        np.testing.assert_array_equal(got.gyro_dps, want.gyro_dps)
    np.testing.assert_array_equal(got.chunk_index, want.chunk_index)
    if want.angle_deg is None:
        assert got.angle_deg is None
    else:
        assert got.angle_deg is not None
        np.testing.assert_array_equal(got.angle_deg, want.angle_deg)
    if want.device_time is None:
        assert got.device_time is None
    else:
        assert got.device_time is not None
        np.testing.assert_array_equal(got.device_time.sample_index, want.device_time.sample_index)
        np.testing.assert_array_equal(got.device_time.time_ms, want.device_time.time_ms)
    assert got.messages == want.messages


def concat(parts: list[Decoded]) -> tuple[np.ndarray, np.ndarray | None, list]:
    """Accel, gyro and messages of several Decoded results, in order."""
    acc = np.concatenate([p.accel_g for p in parts]) if parts else np.zeros((0, 3))
    gyros = [p.gyro_dps for p in parts if p.gyro_dps is not None]
    gyro = np.concatenate(gyros) if gyros else None
    msgs = [m for p in parts for m in p.messages]
    return acc, gyro, msgs


def bytes_balance(s: DecoderStats) -> int:
    """bytes_in minus every byte accounted for (0 when the books balance)."""
    return s.bytes_in - s.bytes_decoded - s.bytes_skipped - s.bytes_pending


def frames_balance(s: DecoderStats) -> int:
    """notifications minus every frame class (0 for notification-framed devices)."""
    return s.notifications - s.frames_data - s.frames_control - s.frames_corrupt - s.frames_unknown


def vectors(n_max: int, bound: float) -> st.SearchStrategy[np.ndarray]:
    """(n, 3) float64 arrays with finite values in [-bound, bound]."""
    return st.integers(1, n_max).flatmap(
        lambda n: st.lists(
            st.floats(-bound, bound, allow_nan=False, allow_infinity=False),
            min_size=3 * n,
            max_size=3 * n,
        ).map(lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 3))
    )


def array3(n: int, bound: float) -> st.SearchStrategy[np.ndarray]:
    """(n, 3) float64 arrays with finite values in [-bound, bound]."""
    return hnp.arrays(
        np.float64, (n, 3), elements=st.floats(-bound, bound, allow_nan=False, allow_infinity=False)
    )

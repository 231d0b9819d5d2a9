"""Decoded notifications -> SampleBatches, with the real encoders and decoders (no BLE).

Each test builds a device's notifications from known samples with the
protocol's own encoder, gives them arrival times (latency, gaps), feeds them
through the protocol's decoder into a StreamAssembler, and compares the
batches with the samples after the device's quantisation, the true sample
times and the true losses.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.contracts import SampleBatch
from collector.protocols import metamotion as mm
from collector.protocols import movesense as ms
from collector.protocols import witmotion as wm
from collector.stream import StreamAssembler
from collector.timing import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S
RATE = 50.0
PERIOD = NS_PER_S / RATE


def signals(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) smooth accelerations (g) and angular rates (deg/s)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    acc = np.stack([0.1 * np.sin(t), 0.2 * np.cos(0.7 * t), 1.0 + 0.05 * np.sin(3 * t)], axis=1)
    acc += rng.normal(0, 0.01, acc.shape)
    gyro = np.stack([20 * np.sin(0.5 * t), 5 * np.cos(t), -10 * np.sin(2 * t)], axis=1)
    return acc, gyro


def feed(
    asm: StreamAssembler,
    decoder: object,
    notes: list[bytes],
    arrivals: np.ndarray,
    *,
    reset_before: set[int] = frozenset(),  # type: ignore[assignment]
    tick_s: float = 0.25,
) -> list[SampleBatch]:
    """Deliver notifications in ticks as a session does; flush at the end."""
    out: list[SampleBatch] = []
    i = 0
    now = int(arrivals[0])
    while i < len(notes):
        now += int(tick_s * NS_PER_S)
        j = int(np.searchsorted(arrivals, now, side="right"))
        # a reconnect inside this tick: the session flushes, resets the decoder
        cut = next((r for r in sorted(reset_before) if i < r <= j), None)
        if cut is not None:
            j = cut
        if j > i:
            asm.add(arrivals[i:j], decoder.feed_many(notes[i:j]))  # type: ignore[attr-defined]
        if cut is not None:
            out += asm.release(now, flush=True)
            decoder.reset()  # type: ignore[attr-defined]
        out += asm.release(now)
        i = j
    out += asm.release(now + 10 * NS_PER_S, flush=True)
    return out


def joined(batches: list[SampleBatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = np.concatenate([b.t_ns for b in batches])
    acc = np.concatenate([b.accel_g for b in batches])
    gyros = [b.gyro_dps for b in batches if b.gyro_dps is not None]
    return t, acc, (np.concatenate(gyros) if gyros else None)


def check_batches(batches: list[SampleBatch], rate: float = RATE) -> None:
    assert [b.seq for b in batches] == list(range(len(batches)))
    for b in batches:
        assert len(b) <= round(rate)  # one second at most
        assert b.sensor_id == "AA:BB"
        assert b.wearer_id == "w01"
    t = np.concatenate([b.t_ns for b in batches])
    assert np.all(np.diff(t) > 0)


def make(kind: str, **kw: object) -> StreamAssembler:
    return StreamAssembler(
        sensor_id="AA:BB",
        wearer_id="w01",
        rate_hz=kw.pop("rate", RATE),  # type: ignore[arg-type]
        has_gyro=True,
        device_timestamps=kind == "movesense",
        **kw,  # type: ignore[arg-type]
    )


def latency(rng: np.random.Generator, n: int) -> np.ndarray:
    return (5e6 + rng.uniform(0, 8e6, n)).astype(np.int64)


# ------------------------------------------------------------------ WitMotion


def test_witmotion_stream_with_split_frames_and_a_reconnect() -> None:
    rng = np.random.default_rng(1)
    n = int(120 * RATE)
    acc, gyro = signals(n)
    true_t = T0 + np.rint(np.arange(n) * PERIOD).astype(np.int64)
    frames = wm.encode_data_frames(acc, gyro, np.zeros((n, 3)))
    # one frame per notification, except every 7th frame straddles two notifications
    notes: list[bytes] = []
    done_at: list[int] = []  # sample index completed by each notification
    for k in range(n):
        f = frames[20 * k : 20 * k + 20]
        if k % 7 == 3:
            notes += [f[:9], f[9:]]
            done_at += [k - 1, k]  # the first half completes nothing new
        else:
            notes.append(f)
            done_at.append(k)
    done = np.asarray(done_at)
    arrivals = true_t[done] + latency(rng, len(notes))
    arrivals = np.maximum.accumulate(arrivals)
    # disconnected from 50.0 s to 53.5 s: those notifications never arrive
    lost_mask = (true_t[done] >= T0 + 50 * NS_PER_S) & (true_t[done] < T0 + int(53.5 * NS_PER_S))
    keep = ~lost_mask
    # a straddling frame cut by the disconnect loses its second half: the whole sample is lost
    kept_notes = [b for b, k in zip(notes, keep, strict=True) if k]
    reconnect_at = int(np.argmax(lost_mask)) + 0  # index, among kept, of the first note after
    asm = make("witmotion")
    dec = wm.WitMotionDecoder()
    batches = feed(asm, dec, kept_notes, arrivals[keep], reset_before={reconnect_at})
    check_batches(batches)
    got_t, got_acc, got_gyro = joined(batches)
    # which samples arrived: completed by a kept notification, and not a half-frame orphan
    lost_samples = np.unique(done[lost_mask])
    kept_samples = np.setdiff1d(np.arange(n), lost_samples)
    assert got_acc.shape[0] == kept_samples.shape[0]
    q_acc = wm.quantize(acc, wm.ACC_SCALE_G) * wm.ACC_SCALE_G
    q_gyro = wm.quantize(gyro, wm.GYRO_SCALE_DPS) * wm.GYRO_SCALE_DPS
    np.testing.assert_array_equal(got_acc, q_acc[kept_samples])
    assert got_gyro is not None
    np.testing.assert_array_equal(got_gyro, q_gyro[kept_samples])
    assert np.abs(got_t - true_t[kept_samples]).max() < PERIOD
    gaps = [b.lost_before for b in batches if b.lost_before]
    assert gaps == [lost_samples.shape[0]]
    assert asm.counts.lost_samples == lost_samples.shape[0]
    assert asm.counts.gaps == 1


def test_witmotion_corrupt_and_garbage_bytes_are_skipped_and_the_stream_goes_on() -> None:
    rng = np.random.default_rng(2)
    n = int(30 * RATE)
    acc, gyro = signals(n, seed=2)
    true_t = T0 + np.rint(np.arange(n) * PERIOD).astype(np.int64)
    frames = wm.encode_data_frames(acc, gyro, np.zeros((n, 3)))
    notes = [frames[20 * k : 20 * k + 20] for k in range(n)]
    bad = {300, 301, 900}  # truncated to 11 bytes (the frame is lost)
    garbage = {500, 1200}  # preceded by junk without a header
    for k in bad:
        notes[k] = notes[k][:11]
    for k in garbage:
        notes[k] = b"\x13\x37\x00\x42" + notes[k]
    arrivals = np.maximum.accumulate(true_t + latency(rng, n))
    dec = wm.WitMotionDecoder()
    asm = make("witmotion")
    batches = feed(asm, dec, notes, arrivals)
    check_batches(batches)
    kept = np.setdiff1d(np.arange(n), sorted(bad))
    got_t, got_acc, _ = joined(batches)
    np.testing.assert_array_equal(
        got_acc, (wm.quantize(acc, wm.ACC_SCALE_G) * wm.ACC_SCALE_G)[kept]
    )
    assert np.abs(got_t - true_t[kept]).max() < PERIOD
    assert dec.stats.frames_corrupt == len(bad)
    assert dec.stats.bytes_skipped == 11 * len(bad) + 4 * len(garbage)
    assert sorted(b.lost_before for b in batches if b.lost_before) == [1, 2]


# ------------------------------------------------------------------ Movesense


def movesense_notes(
    n: int, per: int, t0_ms: int, seed: int = 3
) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    acc, gyro = signals(n, seed)
    p = n // per
    times = t0_ms + np.floor(np.arange(p) * per * 1000 / 52.0).astype(np.int64)
    blob = ms.encode_imu6_packets(
        0x63, times, acc[: p * per].reshape(p, per, 3), gyro[: p * per].reshape(p, per, 3)
    )
    size = 6 + 24 * per
    notes = [blob[i * size : (i + 1) * size] for i in range(p)]
    return notes, acc[: p * per], gyro[: p * per], times


def test_movesense_counter_gaps_are_exact_and_values_float32() -> None:
    rng = np.random.default_rng(4)
    per, rate = 4, 52.0
    n = int(90 * rate) // per * per
    notes, acc, gyro, _ = movesense_notes(n, per, t0_ms=(1 << 32) - 20_000)  # wraps at 20 s
    true_t = T0 + np.rint(np.arange(n) * NS_PER_S / rate).astype(np.int64)
    pk_last = np.arange(per - 1, n, per)
    arrivals = np.maximum.accumulate(true_t[pk_last] + latency(rng, len(notes)))
    keep = np.ones(len(notes), dtype=bool)
    keep[[100, 101, 102]] = False  # three notifications lost
    keep[500:560] = False  # a 4.6-s disconnect
    # corrupt: a truncated data message and an unknown message type replace packets
    notes = list(notes)
    notes[700] = notes[700][:50]
    notes[701] = b"\x07\x63" + notes[701][2:]
    idx = np.flatnonzero(keep)
    kept_notes = [notes[i] for i in idx]
    dec = ms.MovesenseDecoder()
    asm = StreamAssembler(
        sensor_id="AA:BB", wearer_id="w01", rate_hz=rate, has_gyro=True, device_timestamps=True
    )
    reconnect = int(np.searchsorted(idx, 560))
    batches = feed(asm, dec, kept_notes, arrivals[idx], reset_before={reconnect})
    check_batches(batches, rate)
    got_t, got_acc, got_gyro = joined(batches)
    arrived = np.setdiff1d(idx, [700, 701])
    samples = (arrived[:, None] * per + np.arange(per)).ravel()
    np.testing.assert_array_equal(got_acc, ms.quantize_accel(acc[samples]))
    assert got_gyro is not None
    np.testing.assert_array_equal(got_gyro, ms.quantize_gyro(gyro[samples]))
    assert np.abs(got_t - true_t[samples]).max() < NS_PER_S / rate
    assert [b.lost_before for b in batches if b.lost_before] == [3 * per, 60 * per, 2 * per]
    assert (dec.stats.frames_corrupt, dec.stats.frames_unknown) == (1, 1)
    assert asm.counts.restarts == 0


# ------------------------------------------------------------------ MetaMotion


def test_metamotion_packed_accel_and_gyro_pair_into_batches() -> None:
    rng = np.random.default_rng(5)
    n = int(60 * RATE) // 3 * 3
    acc, gyro = signals(n, seed=5)
    true_t = T0 + np.rint(np.arange(n) * PERIOD).astype(np.int64)
    a_lsb, g_lsb = mm.acc_lsb_per_g(8.0), mm.gyro_lsb_per_dps(2000.0)
    acc_frames = mm.encode_sensor_frames(mm.MODULE_ACC, acc, a_lsb, packed=True)
    gyro_frames = mm.encode_sensor_frames(mm.MODULE_GYRO, gyro, g_lsb, packed=True)
    notes: list[bytes] = []
    done: list[int] = []
    for p in range(n // 3):
        notes += [acc_frames[20 * p : 20 * p + 20], gyro_frames[20 * p : 20 * p + 20]]
        done += [3 * p + 2, 3 * p + 2]
        if p == 400:
            notes.append(bytes.fromhex("2a01ff"))  # an unknown module: counted, skipped
            done.append(3 * p + 2)
    arrivals = np.maximum.accumulate(true_t[np.asarray(done)] + latency(rng, len(notes)))
    dec = mm.MetaMotionDecoder(acc_range_g=8.0, gyro_range_dps=2000.0)
    asm = make("metamotion")
    batches = feed(asm, dec, notes, arrivals)
    check_batches(batches)
    got_t, got_acc, got_gyro = joined(batches)
    np.testing.assert_array_equal(got_acc, mm.quantize(acc, a_lsb) / a_lsb)
    assert got_gyro is not None
    np.testing.assert_array_equal(got_gyro, mm.quantize(gyro, g_lsb) / g_lsb)
    assert np.abs(got_t - true_t).max() < PERIOD
    assert all(b.lost_before == 0 for b in batches)
    assert dec.stats.frames_unknown == 1


def test_assembler_rejects_mismatched_decoder_output() -> None:
    asm = make("movesense")
    dec = wm.WitMotionDecoder()
    acc, gyro = signals(3)
    decoded = dec.feed(wm.encode_data_frames(acc, gyro, np.zeros((3, 3))))
    with pytest.raises(ValueError, match="stamps"):
        asm.add([T0], decoded)
    with pytest.raises(ValueError, match="batch_s"):
        make("witmotion", batch_s=0.0)

"""Decoder throughput: vectorised decoders vs a per-frame ``struct.unpack`` loop.

Both sides decode the same buffered notifications (as a collector holding a
batch of notifications would) to physical units. Target: >= 5 M samples/s and
>= 10x the per-frame loop. Times are CPU seconds of this process, one core
(on a shared machine wall time also counts waiting for a core).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from bench.common import Entry, best_cpu_of
from collector.protocols import metamotion as mm
from collector.protocols import movesense as ms
from collector.protocols import witmotion as wm

G = 9.80665


def _witmotion(n: int, rng: np.random.Generator) -> tuple[list[bytes], Callable[[], object]]:
    raw = wm.encode_data_frames(
        rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) * 50, rng.normal(size=(n, 3)) * 30
    )
    per = 12 * wm.FRAME_LEN  # 12 frames per notification at ATT MTU 247
    chunks = [raw[i : i + per] for i in range(0, len(raw), per)]
    frame = struct.Struct("<BB9h")
    a, g, r = wm.ACC_SCALE_G, wm.GYRO_SCALE_DPS, wm.ANGLE_SCALE_DEG

    def baseline() -> object:
        out = []
        for c in chunks:
            for off in range(0, len(c), 20):
                _, _, ax, ay, az, gx, gy, gz, ro, pi, ya = frame.unpack_from(c, off)
                out.append((ax * a, ay * a, az * a, gx * g, gy * g, gz * g, ro * r, pi * r, ya * r))
        return out

    return chunks, baseline


def _movesense(n: int, rng: np.random.Generator) -> tuple[list[bytes], Callable[[], object]]:
    k = 6  # samples per notification at the firmware's MTU 161
    p = n // k
    raw = ms.encode_imu6_packets(
        1, np.arange(p) * 100, rng.normal(size=(p, k, 3)), rng.normal(size=(p, k, 3))
    )
    size = 6 + 24 * k
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
    head = struct.Struct("<BBI")
    body = struct.Struct(f"<{6 * k}f")

    def baseline() -> object:
        out = []
        for c in chunks:
            _, _, t = head.unpack_from(c, 0)
            v = body.unpack_from(c, 6)
            for i in range(k):
                gx, gy, gz = v[3 * k + 3 * i : 3 * k + 3 * i + 3]
                out.append((t, v[3 * i] / G, v[3 * i + 1] / G, v[3 * i + 2] / G, gx, gy, gz))
        return out

    return chunks, baseline


def _metamotion(n: int, rng: np.random.Generator) -> tuple[list[bytes], Callable[[], object]]:
    n -= n % 3
    acc = mm.encode_sensor_frames(mm.MODULE_ACC, rng.normal(size=(n, 3)), 4096, True)
    gyro = mm.encode_sensor_frames(mm.MODULE_GYRO, rng.normal(size=(n, 3)) * 50, 16.4, True)
    chunks = []
    for i in range(0, len(acc), 20):
        chunks += [acc[i : i + 20], gyro[i : i + 20]]
    frame = struct.Struct("<BB9h")

    def baseline() -> object:
        accs: list[tuple[float, ...]] = []
        gyros: list[tuple[float, ...]] = []
        for c in chunks:
            m, _, *v = frame.unpack(c)
            if m == mm.MODULE_ACC:
                for i in range(3):
                    accs.append((v[3 * i] / 4096, v[3 * i + 1] / 4096, v[3 * i + 2] / 4096))
            else:
                for i in range(3):
                    gyros.append((v[3 * i] / 16.4, v[3 * i + 1] / 16.4, v[3 * i + 2] / 16.4))
        return list(zip(accs, gyros, strict=False))

    return chunks, baseline


def run(quick: bool) -> list[Entry]:
    n = 60_000 if quick else 300_000
    rng = np.random.default_rng(0)
    entries = []
    cases = {
        "witmotion": (_witmotion, wm.WitMotionDecoder),
        "movesense": (_movesense, ms.MovesenseDecoder),
        "metamotion": (_metamotion, lambda: mm.MetaMotionDecoder(8, 2000)),
    }
    for name, (make, decoder) in cases.items():
        chunks, baseline = make(n, rng)
        samples = len(decoder().feed_many(chunks))
        assert samples == len(baseline())  # both sides decode the same samples
        t_vec = best_cpu_of(lambda d=decoder, c=chunks: d().feed_many(c), repeat=5)
        t_loop = best_cpu_of(baseline, repeat=2)
        rate = samples / t_vec
        ratio = t_loop / t_vec
        entries.append(
            Entry(
                name=f"decode_{name}",
                value=rate,
                unit="samples/CPU s",
                baseline_name="per-frame struct.unpack loop",
                baseline_value=samples / t_loop,
                ratio=ratio,
                target=">= 5e6/s, >= 10x",
                ok=rate >= 5e6 and ratio >= 10,
                note=f"{samples} samples in {len(chunks)} buffered notifications",
            )
        )
    return entries

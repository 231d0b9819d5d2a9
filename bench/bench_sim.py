"""Simulator speed: an 8-hour day at 50 Hz (accelerometer + gyroscope), and
the live stream a simulated BLE device reads sample by sample.

Baseline, measured side by side in the same run: the noise-free physics
alone (``ideal=True``), so the ratio shows what the device error model
costs. Writing the simulated day as CSV is measured by ``bench_recording``.
"""

from __future__ import annotations

import time

from bench.common import Entry, best_of


def run(quick: bool) -> list[Entry]:
    from firmware_sim.simulator import WearerStream, simulate

    hours = 1.0 if quick else 8.0
    duration = hours * 3600.0
    repeat = 1
    full = best_of(lambda: simulate("desk_worker", duration, seed=1), repeat)
    ideal = best_of(lambda: simulate("desk_worker", duration, seed=1, ideal=True), repeat)
    n = int(duration * 50)
    realtime = duration / full
    # A simulated BLE device reads a few samples per notification.
    stream = WearerStream("nurse", 1)
    reads = 1000 if quick else 5000
    t0 = time.perf_counter()
    for _ in range(reads):
        stream.read(1)
    per_sample = (time.perf_counter() - t0) / reads
    wearers = 1.0 / (per_sample * 50.0)
    return [
        Entry(
            name="stream_read_1_sample_wearers_per_core",
            value=wearers,
            unit="wearers at 50 Hz",
            baseline_name="one wearer in real time",
            baseline_value=1.0,
            ratio=wearers,
            target=">= 20 wearers",
            ok=wearers >= 20,
            note=f"{1.0 / per_sample:.0f} samples/s through WearerStream.read(1)",
        ),
        Entry(
            name=f"sim_{hours:g}h_50hz_samples_per_s",
            value=n / full,
            unit="samples/s",
            baseline_name="same day, physics only (ideal=True)",
            baseline_value=n / ideal,
            ratio=(n / full) / (n / ideal),
            target="8 h in < 15 s",
            ok=full * 8.0 / hours < 15.0,
            note=f"{full:.2f} s for {hours:g} h ({realtime:.0f}x real time)",
        ),
    ]

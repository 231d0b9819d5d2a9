"""Nudge policy and delivery: cost and latency, each beside a baseline.

The real-time sensor-to-skin latency is ``bench_nudge``.

1. Policy throughput on a simulated working day of epochs (one batch per
   wearer-day): the vectorised ``NudgePolicy`` vs the plain per-epoch reading
   of the same rules (``tests/nudge_reference.py``), which gives the same
   decisions (checked here too).
2. Real-time cost: one ``feed`` per epoch, as a collector host runs it
   (p50/p99 microseconds per call) and the wearers one core could serve.
3. Delivery latency over the real Mosquitto: from ``deliver()`` to the
   broker's PUBACK for the app message (p50/p99 ms), beside a bare paho
   QoS 1 publish/PUBACK round trip on the same broker.
The sensor-to-skin latency (threshold-crossing sample -> motor) is
measured in real time by ``bench_nudge`` and, in simulated sensor time, by
``tests/test_nudge_e2e.py`` (bound: 2 s).

Needs the local services (``make services-up``) for 3; uses a throw-away
topic root.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid

import numpy as np
import numpy.typing as npt

from analysis.contracts import EPOCH_DTYPE, NS_PER_S, Activity
from analysis.nudge import Nudge, NudgePolicy, NudgeSettings
from bench.common import Entry, best_of
from postmon.config import DEFAULT_MQTT_PORT, MqttConfig

T0 = 1_767_603_600 * NS_PER_S  # Monday 2026-01-05 09:00 UTC


def working_day(hours: float = 8.0, seed: int = 0) -> npt.NDArray[np.void]:
    """Epochs of a desk day: sitting bouts of 10-70 min (mostly still),
    short stands and walks, a lunch walk, some flexed minutes."""
    rng = np.random.default_rng(seed)
    parts = []
    t = T0
    end = T0 + int(hours * 3600) * NS_PER_S
    while t < end:
        sit = int(rng.uniform(10, 70) * 60)
        up = int(rng.choice([20, 45, 90, 180, 600]))
        for dur, act, p_static in ((sit, Activity.SITTING, 0.9), (up, Activity.WALKING, 0.05)):
            e = np.zeros(dur, EPOCH_DTYPE)
            e["time_ns"] = t + np.arange(dur, dtype=np.int64) * NS_PER_S
            e["activity"] = int(act)
            e["static"] = rng.random(dur) < p_static
            e["flexion_deg"] = np.where(rng.random(dur) < 0.2, 30.0, 8.0)
            parts.append(e)
            t += dur * NS_PER_S
    day = np.concatenate(parts)
    return day[day["time_ns"] < end]


def _policy_entries(quick: bool) -> list[Entry]:
    from tests.nudge_reference import reference_policy

    settings = NudgeSettings(flexion_nudge=True, flexion_hold_s=60)
    day = working_day(2.0 if quick else 8.0)
    n = day.shape[0]

    def ours() -> tuple[list[Nudge], list[object]]:
        out = NudgePolicy("w", settings).feed(day)
        return list(out.nudges), list(out.outcomes)

    same = ours() == reference_policy(day, settings)
    t_ours = best_of(ours, 3 if quick else 5)
    t_ref = best_of(lambda: reference_policy(day, settings), 1 if quick else 2)
    rate = n / t_ours
    out = [
        Entry(
            "policy_batch_epochs_per_s",
            rate,
            "epochs/s",
            baseline_name="per-epoch reference (same rules)",
            baseline_value=n / t_ref,
            ratio=t_ref / t_ours,
            target=">= 20x the per-epoch loop; identical decisions",
            ok=same and t_ref / t_ours >= 20,
            note=f"{n} epochs ({n / 3600:.0f} h); decisions identical: {same}",
        )
    ]

    # real time: one feed per epoch
    p = NudgePolicy("w", settings)
    k = min(n, 1800 if quick else 7200)
    per_call = np.empty(k)
    for i in range(k):
        t0 = time.perf_counter()
        p.feed(day[i : i + 1])
        per_call[i] = time.perf_counter() - t0
    p50, p99 = (float(np.percentile(per_call, q)) * 1e6 for q in (50, 99))
    out.append(
        Entry(
            "policy_realtime_call_p50_us",
            p50,
            "us",
            target="p50 < 2 ms: 50 wearers at 1 epoch/s use < 10 % of a core",
            ok=p50 < 2000,
            note=f"p99 {p99:.0f} us; one core serves ~{1e6 / p50:,.0f} wearers at 1 epoch/s",
        )
    )
    out.append(
        Entry(
            "policy_realtime_call_p99_us",
            p99,
            "us",
            target="p99 < 1 s (the epoch period)",
            ok=p99 < 1e6,
        )
    )
    return out


def _bare_paho_rtt_ms(cfg: MqttConfig, topic: str, n: int) -> list[float]:
    import paho.mqtt.client as mqtt

    done = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_publish = lambda *_a: done.set()
    c.connect(cfg.host, cfg.port)
    c.loop_start()
    out = []
    try:
        for _ in range(n):
            done.clear()
            t0 = time.perf_counter()
            c.publish(topic, b"x" * 600, qos=1)
            done.wait(5)
            out.append((time.perf_counter() - t0) * 1e3)
    finally:
        c.disconnect()
        c.loop_stop()
    return out


def _delivery_entries(quick: bool) -> list[Entry]:
    import paho.mqtt.client as mqtt

    from postmon.nudges import NudgeDelivery, PahoNudgePublisher

    root = f"bench/{uuid.uuid4().hex[:8]}/postmon/v1"
    cfg = MqttConfig(port=DEFAULT_MQTT_PORT, topic_root=root)
    n = 50 if quick else 300
    # a subscriber, as an app would be (without one the broker says "no subscribers")
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    ready = threading.Event()
    sub.on_subscribe = lambda *_a: ready.set()
    sub.connect(cfg.host, cfg.port)
    sub.loop_start()
    sub.subscribe(f"{root}/#", qos=1)
    ready.wait(5)
    try:

        async def run() -> list[float]:
            lat = []
            with PahoNudgePublisher(cfg) as pub:
                d = NudgeDelivery(site="bench", topic_root=root, publisher=pub)
                for i in range(n):
                    t = T0 + i * NS_PER_S
                    nudge = Nudge(f"w:static:{t}", "w", t, "static", 1, 30.0)
                    t0 = time.perf_counter()
                    rep = await d.deliver(nudge)
                    if rep.mqtt:
                        lat.append((time.perf_counter() - t0) * 1e3)
            return lat

        lat = asyncio.run(run())
        base = _bare_paho_rtt_ms(cfg, f"{root}/bench/w/x", n)
    finally:
        sub.disconnect()
        sub.loop_stop()
    p50, p99 = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
    b50 = statistics.median(base)
    return [
        Entry(
            "nudge_mqtt_confirm_p50_ms",
            p50,
            "ms",
            baseline_name="bare paho QoS 1 publish -> PUBACK",
            baseline_value=b50,
            ratio=b50 / p50 if p50 else None,
            target="p99 <= 2000 ms (the nudge latency budget)",
            ok=p99 <= 2000 and len(lat) == n,
            note=f"{len(lat)}/{n} confirmed",
        ),
        Entry("nudge_mqtt_confirm_p99_ms", p99, "ms", ok=p99 <= 2000),
    ]


def run(quick: bool = False) -> list[Entry]:
    return _policy_entries(quick) + _delivery_entries(quick)

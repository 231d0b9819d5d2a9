"""The simulated waist (lower-back) sensor against real waist-worn recordings.

HAPT (smartphone on a belt, 50 Hz, g) gives the real spread of walking
accelerations and sit-to-stand dynamics; the simulated lower-back wearer's
typical values must fall inside the real 10th-90th percentile range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.contracts import Activity
from firmware_sim.simulator import simulate

WALKING, SIT_TO_STAND = 1, 8


def _walk_stats(acc: np.ndarray) -> tuple[float, float, float, float]:
    """Step frequency (Hz) and vertical/AP/ML RMS (g) of a walking window."""
    up = acc.mean(axis=0)
    up /= np.linalg.norm(up)
    v = acc @ up
    v = v - v.mean()
    spec = np.abs(np.fft.rfft(v * np.hanning(v.size)))
    f = np.fft.rfftfreq(v.size, 1 / 50)
    band = (f > 0.5) & (f < 4)
    step = float(f[band][np.argmax(spec[band])])
    h = acc - np.outer(acc @ up, up)
    h -= h.mean(axis=0)
    ev = np.linalg.eigvalsh(np.cov(h.T))  # ascending: ~0, ML, AP
    return step, float(v.std()), float(np.sqrt(ev[2])), float(np.sqrt(ev[1]))


@pytest.fixture(scope="module")
def hapt_stats(hapt_dir: Path) -> dict[str, np.ndarray]:
    raw = hapt_dir / "RawData"
    labels = np.loadtxt(raw / "labels.txt", dtype=int)
    out: dict[str, list[float]] = {k: [] for k in ("step", "vert", "ap", "ml", "sts_a", "sts_g")}
    experiments = sorted({(int(e), int(u)) for e, u, *_ in labels})[:16]
    for exp, user in experiments:
        acc = np.loadtxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt")
        gyr = np.degrees(np.loadtxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt"))
        rows = labels[(labels[:, 0] == exp) & (labels[:, 1] == user)]
        for _, _, act, s, e in rows:
            seg = slice(s - 1, e)
            if act == WALKING and e - s > 500:
                for name, val in zip(
                    ("step", "vert", "ap", "ml"), _walk_stats(acc[seg]), strict=True
                ):
                    out[name].append(val)
            if act == SIT_TO_STAND:
                out["sts_a"].append(np.linalg.norm(acc[seg], axis=1).max() - 1.0)
                out["sts_g"].append(np.linalg.norm(gyr[seg], axis=1).max())
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def sim_stats() -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {k: [] for k in ("step", "vert", "ap", "ml", "sts_a", "sts_g")}
    for seed in range(8):  # eight wearers: traits vary between people
        rec = simulate("nurse", 1500, seed=seed, placement="lower", mounting="random")
        walking = rec.truth.activity == Activity.WALKING
        run = np.convolve(walking.astype(int), np.ones(10, int), "valid") == 10
        for s0 in np.flatnonzero(run)[::10][:10]:
            stats = _walk_stats(rec.accel_g[s0 * 50 : (s0 + 10) * 50])
            for name, val in zip(("step", "vert", "ap", "ml"), stats, strict=True):
                out[name].append(val)
        for t in rec.transitions:
            if t.kind == "sit_to_stand":
                k = slice(int(t.t_start_s * 50), int((t.t_start_s + t.duration_s) * 50))
                out["sts_a"].append(np.linalg.norm(rec.accel_g[k], axis=1).max() - 1.0)
                out["sts_g"].append(np.linalg.norm(rec.gyro_dps[k], axis=1).max())
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("step", "walking step frequency (Hz)"),
        ("vert", "walking vertical acceleration RMS (g)"),
        ("ap", "walking antero-posterior acceleration RMS (g)"),
        ("ml", "walking medio-lateral acceleration RMS (g)"),
        ("sts_a", "sit-to-stand peak |a| - 1 (g)"),
        ("sts_g", "sit-to-stand peak angular speed (deg/s)"),
    ],
)
def test_lower_back_sensor_looks_like_a_real_waist_sensor(
    hapt_stats: dict[str, np.ndarray], sim_stats: dict[str, np.ndarray], name: str, what: str
) -> None:
    real, sim = hapt_stats[name], sim_stats[name]
    assert real.size >= 10
    assert sim.size >= 10
    lo, hi = np.percentile(real, [10, 90])
    med = float(np.median(sim))
    assert lo <= med <= hi, f"{what}: simulated median {med:.3f}, real P10-P90 {lo:.3f}-{hi:.3f}"

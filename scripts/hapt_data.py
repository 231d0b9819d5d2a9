"""HAPT development recordings: loading, ground truth per second, scoring.

Shared by ``scripts/train_activity.py`` and ``scripts/eval.py``. See
``../shared/data/hapt-dev/README.md`` for the data set (acc in g, gyro in
rad/s, 50 Hz, labels as 1-based inclusive sample ranges).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE_HZ = 50.0
REPO = Path(__file__).resolve().parent.parent
HAPT_DIR = REPO.parent / "shared" / "data" / "hapt-dev"

#: HAPT activity id -> our activity label (None: a transition)
ACTIVITY_OF = {1: "walking", 2: "walking", 3: "walking", 4: "sitting", 5: "standing", 6: "lying"}
TRANSITION_OF = {
    7: "stand_to_sit",
    8: "sit_to_stand",
    9: "sit_to_lie",
    10: "lie_to_sit",
    11: "stand_to_lie",
    12: "lie_to_stand",
}
CLASSES = ("lying", "sitting", "standing", "walking")


@dataclass(frozen=True)
class Experiment:
    exp: int
    user: int
    acc_g: npt.NDArray[np.float64]
    gyro_dps: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]  # rows: activity, start, end (1-based inclusive)

    @property
    def n_epochs(self) -> int:
        return int(np.ceil(self.acc_g.shape[0] / RATE_HZ))

    def epoch_truth(self) -> npt.NDArray[np.str_]:
        """Label of each 1-s epoch fully inside one labelled activity segment, else ''."""
        out = np.full(self.n_epochs, "", dtype=object)
        for act, s, e in self.labels.tolist():
            lab = ACTIVITY_OF.get(act)
            if lab is None:
                continue
            t0, t1 = (s - 1) / RATE_HZ, e / RATE_HZ
            k0, k1 = int(np.ceil(t0 - 1e-9)), int(np.floor(t1 + 1e-9))
            out[k0:k1] = lab
        return out.astype(str)

    def labelled_span(self) -> tuple[float, float]:
        """(start_s, end_s) from the first label's start to the last label's end."""
        return (
            float(self.labels[:, 1].min() - 1) / RATE_HZ,
            float(self.labels[:, 2].max()) / RATE_HZ,
        )

    def transitions(self) -> list[tuple[str, float, float]]:
        """(kind, start_s, end_s) of each labelled transition."""
        return [
            (TRANSITION_OF[a], (s - 1) / RATE_HZ, e / RATE_HZ)
            for a, s, e in self.labels.tolist()
            if a in TRANSITION_OF
        ]


def list_experiments(hapt_dir: Path = HAPT_DIR) -> list[tuple[int, int]]:
    out = []
    for p in sorted((hapt_dir / "RawData").glob("acc_exp*_user*.txt")):
        m = re.match(r"acc_exp(\d+)_user(\d+)\.txt", p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2))))
    return out


def load_experiment(exp: int, user: int, hapt_dir: Path = HAPT_DIR) -> Experiment:
    raw = hapt_dir / "RawData"
    acc = np.loadtxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt")
    gyro = np.loadtxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt") * (180.0 / np.pi)
    lab = np.loadtxt(raw / "labels.txt", dtype=np.int64)
    lab = lab[lab[:, 0] == exp][:, 2:5]
    return Experiment(exp, user, acc, gyro, lab)


def random_rotation(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A uniformly random 3-D rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass
class Scores:
    """Accumulates per-epoch confusion and transition matches over experiments."""

    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    trans_labels: dict[str, int] = field(default_factory=dict)
    trans_found: dict[str, int] = field(default_factory=dict)  # labels matched
    trans_events: dict[str, int] = field(default_factory=dict)
    trans_correct: dict[str, int] = field(default_factory=dict)  # events matched
    #: events within the labelled span of their recording (first label start to
    #: last label end): outside it nobody recorded what the wearer did
    trans_events_span: dict[str, int] = field(default_factory=dict)
    trans_correct_span: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        truth: Sequence[str],
        pred: Sequence[str],
        transitions: Iterable[tuple[str, float, float]],
        events: Iterable[tuple[float, str]],
        tol_s: float = 2.0,
        labelled_span: tuple[float, float] | None = None,
    ) -> None:
        n = min(len(truth), len(pred))
        for t, p in zip(truth[:n], pred[:n], strict=True):
            if t:
                self.confusion[(t, p)] = self.confusion.get((t, p), 0) + 1
        trans = list(transitions)
        evs = list(events)
        span = labelled_span
        for kind in {k for k, _, _ in trans} | {k for _, k in evs}:
            labs = sorted((s, e) for k, s, e in trans if k == kind)
            times = sorted(t for t, k in evs if k == kind)
            used = [False] * len(times)
            found = 0
            for s, e in labs:
                mid = 0.5 * (s + e)
                best, bi = None, -1
                for i, t in enumerate(times):
                    if not used[i] and s - tol_s <= t <= e + tol_s:
                        d = abs(t - mid)
                        if best is None or d < best:
                            best, bi = d, i
                if bi >= 0:
                    used[bi] = True
                    found += 1
            self.trans_labels[kind] = self.trans_labels.get(kind, 0) + len(labs)
            self.trans_found[kind] = self.trans_found.get(kind, 0) + found
            self.trans_events[kind] = self.trans_events.get(kind, 0) + len(times)
            self.trans_correct[kind] = self.trans_correct.get(kind, 0) + sum(used)
            if span is not None:
                inside = [span[0] - tol_s <= t <= span[1] + tol_s for t in times]
                n_in = sum(inside)
                ok_in = sum(u and i for u, i in zip(used, inside, strict=True))
                self.trans_events_span[kind] = self.trans_events_span.get(kind, 0) + n_in
                self.trans_correct_span[kind] = self.trans_correct_span.get(kind, 0) + ok_in

    def f1(self, cls: str) -> float:
        tp = self.confusion.get((cls, cls), 0)
        fn = sum(v for (t, p), v in self.confusion.items() if t == cls and p != cls)
        fp = sum(v for (t, p), v in self.confusion.items() if p == cls and t != cls)
        return 2 * tp / (2 * tp + fn + fp) if tp else 0.0

    def recall(self, cls: str) -> float:
        tot = sum(v for (t, _), v in self.confusion.items() if t == cls)
        return self.confusion.get((cls, cls), 0) / tot if tot else float("nan")

    def summary(self) -> dict[str, float]:
        f1 = {c: self.f1(c) for c in CLASSES}
        out: dict[str, float] = {
            "macro_f1": float(np.mean(list(f1.values()))),
            **{f"f1_{c}": v for c, v in f1.items()},
            "sit_stand_balanced_accuracy": 0.5 * (self.recall("sitting") + self.recall("standing")),
            "epochs_scored": float(sum(self.confusion.values())),
        }
        for kind in TRANSITION_OF.values():
            n = self.trans_labels.get(kind, 0)
            m = self.trans_events.get(kind, 0)
            out[f"{kind}_sensitivity"] = self.trans_found.get(kind, 0) / n if n else float("nan")
            out[f"{kind}_precision"] = self.trans_correct.get(kind, 0) / m if m else float("nan")
            if kind in ("stand_to_sit", "sit_to_stand") and self.trans_events_span:
                ms = self.trans_events_span.get(kind, 0)
                ok = self.trans_correct_span.get(kind, 0)
                out[f"{kind}_precision_in_labelled_span"] = ok / ms if ms else float("nan")
        return out


def baseline_classify(
    acc_g: npt.NDArray[np.float64], rate_hz: float = RATE_HZ
) -> tuple[list[str], list[tuple[float, str]]]:
    """A fixed-angle baseline (what a simple inclinometer algorithm does).

    Walking = SD of |acc| over the second > 0.08 g; upright reference = mean
    acceleration direction over walking; then lying > 60°, sitting > 15°,
    else standing; transitions = sitting/standing changes.
    """
    r = int(rate_hz)
    n = acc_g.shape[0] // r
    ep = acc_g[: n * r].reshape(n, r, 3)
    m = ep.mean(axis=1)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    walking = np.linalg.norm(ep, axis=2).std(axis=1) > 0.08
    ref = m[walking].mean(axis=0) if walking.any() else np.array([1.0, 0.0, 0.0])
    ref /= np.linalg.norm(ref)
    incl = np.degrees(np.arccos(np.clip(m @ ref, -1, 1)))
    act = np.where(
        walking, "walking", np.where(incl > 60, "lying", np.where(incl > 15, "sitting", "standing"))
    )
    events: list[tuple[float, str]] = []
    for k in range(1, n):
        if act[k - 1] == "standing" and act[k] == "sitting":
            events.append((k + 0.0, "stand_to_sit"))
        elif act[k - 1] == "sitting" and act[k] == "standing":
            events.append((k + 0.0, "sit_to_stand"))
    return act.tolist(), events

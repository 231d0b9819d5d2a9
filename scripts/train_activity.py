"""Train the activity model shipped in ``analysis/model_params.py``.

Deterministic (no random state): logistic models fitted by L-BFGS on the
HAPT development wearers, with mounting-free features only. Usage::

    python scripts/train_activity.py            # fit on all dev wearers, write the module
    python scripts/train_activity.py --check    # fit and print, write nothing

``scripts/eval.py`` calls ``fit_model`` per fold (leave wearers out) so that
no wearer's data trains the model that is scored on that wearer.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hapt_data import RATE_HZ, Experiment, list_experiments, load_experiment

from analysis.activity import (
    N_TRANS_CLASSES,
    TRANS_FEATURES,
    TRANSITIONS,
    WALK_FEATURES,
    WINDOW_EPOCHS,
    ActivityModel,
    window_features,
)
from analysis.contracts import NS_PER_S, SampleBatch
from analysis.settings import AnalysisSettings
from analysis.stream import _nan_features, extract_features

F64 = npt.NDArray[np.float64]
MODULE = Path(__file__).resolve().parent.parent / "analysis" / "model_params.py"
#: L2 penalty of the logistic models (standardised features)
L2 = 1.0
#: training epochs this close (s) to a labelled transition are neither
#: "no transition" nor the transition itself
EXCLUDE_S = 3.0
_CLASS_OF = {name: i for i, (name, _, _) in enumerate(TRANSITIONS, start=1)}
_POSTURE_INDEX = {"lying": 0, "sitting": 1, "standing": 2, "walking": 3}


def experiment_rows(ex: Experiment, settings: AnalysisSettings) -> dict[str, F64]:
    """Per-second model inputs and targets of one experiment."""
    n = ex.acc_g.shape[0]
    t = (np.arange(n) * (NS_PER_S / RATE_HZ)).astype(np.int64)
    feat = extract_features(
        SampleBatch("hapt", "hapt", RATE_HZ, t, ex.acc_g, ex.gyro_dps), settings
    )
    w = WINDOW_EPOCHS
    ne = feat.size
    fp = np.concatenate((_nan_features(w, -w * NS_PER_S), feat, _nan_features(w, ne * NS_PER_S)))
    walk_x, trans_x, _, _, _ = window_features(fp, w, w + ne)
    truth = ex.epoch_truth()[:ne]
    truth = np.concatenate((truth, np.full(ne - truth.size, "")))
    walk_y = np.where(truth == "walking", 1.0, np.where(truth == "", -1.0, 0.0))
    trans_y = np.where(truth == "", -1, 0)
    centre = np.arange(ne) + 0.5
    for _kind, s, e in ex.transitions():
        near = (centre > s - EXCLUDE_S) & (centre < e + EXCLUDE_S)
        trans_y[near] = -1
    for kind, s, e in ex.transitions():
        mid = int(0.5 * (s + e))
        if mid < ne:
            trans_y[mid] = _CLASS_OF[kind]
            # transition seconds count as "not walking" for the gait model
        inside = (centre > s) & (centre < e)
        walk_y[inside] = 0.0
    g = feat["g"]
    wk = (truth == "walking") & np.isfinite(g).all(axis=1)
    incl = np.full(ne, np.nan)
    if wk.sum() >= 5:
        up = g[wk].mean(axis=0)
        up /= np.linalg.norm(up)
        incl = np.degrees(np.arccos(np.clip(g @ up, -1.0, 1.0)))
    post = np.array([_POSTURE_INDEX.get(x, -1) for x in truth])
    return {
        "walk_x": walk_x,
        "walk_y": walk_y,
        "trans_x": trans_x,
        "trans_y": trans_y.astype(np.float64),
        "incl": incl,
        "posture": post.astype(np.float64),
    }


def _fit_softmax(x: F64, y: npt.NDArray[np.int64], k: int, l2: float) -> F64:
    """Multinomial logistic regression; x includes a bias column 0 (not penalised)."""
    n, d = x.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    pen = np.ones((k, d))
    pen[:, 0] = 0.0

    def fg(wflat: F64) -> tuple[float, F64]:
        wm = wflat.reshape(k, d)
        z = x @ wm.T
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        logp = z - lse[:, None]
        loss = -(onehot * logp).sum() / n + 0.5 * l2 * (pen * wm**2).sum() / n
        p = np.exp(logp)
        grad = (p - onehot).T @ x / n + l2 * pen * wm / n
        return float(loss), grad.ravel()

    res = minimize(fg, np.zeros(k * d), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    return np.asarray(res.x).reshape(k, d)


def fit_model(rows: Sequence[dict[str, F64]]) -> ActivityModel:
    """Fit the activity model on the rows of some experiments (deterministic)."""
    wx = np.concatenate([r["walk_x"] for r in rows])
    wy = np.concatenate([r["walk_y"] for r in rows])
    keep = wy >= 0
    w2 = _fit_softmax(wx[keep], wy[keep].astype(np.int64), 2, L2)
    walk_w = w2[1] - w2[0]

    tx = np.concatenate([r["trans_x"] for r in rows])
    ty = np.concatenate([r["trans_y"] for r in rows])
    keep = ty >= 0
    tx, ty = tx[keep], ty[keep].astype(np.int64)
    mu = tx.mean(axis=0)
    sc = tx.std(axis=0)
    mu[0], sc[0] = 0.0, 1.0
    sc[sc < 1e-9] = 1.0
    xs = (tx - mu) / sc
    xs[:, 0] = 1.0
    tw = _fit_softmax(xs, ty, N_TRANS_CLASSES, L2)

    prior = np.bincount(ty, minlength=N_TRANS_CLASSES) / ty.size
    incl = np.concatenate([r["incl"] for r in rows])
    post = np.concatenate([r["posture"] for r in rows])
    means, sds = [], []
    for p in range(4):
        v = incl[(post == p) & np.isfinite(incl)]
        means.append(float(np.median(v)))
        # robust SD, floored: a few degrees of reference error are always there
        sds.append(max(4.0, float(1.4826 * np.median(np.abs(v - np.median(v))))))
    return ActivityModel(
        walk_w=tuple(float(x) for x in walk_w),
        trans_w=tuple(tuple(float(x) for x in row) for row in tw),
        feat_mean=tuple(float(x) for x in mu),
        feat_scale=tuple(float(x) for x in sc),
        incl_mean_deg=(means[0], means[1], means[2], means[3]),
        incl_sd_deg=(sds[0], sds[1], sds[2], sds[3]),
        trans_prior=tuple(float(x) for x in prior),
    )


def all_rows(
    experiments: Sequence[tuple[int, int]], settings: AnalysisSettings
) -> dict[tuple[int, int], dict[str, F64]]:
    return {(e, u): experiment_rows(load_experiment(e, u), settings) for e, u in experiments}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return repr(round(v, 6))
    if isinstance(v, tuple):
        inner = ", ".join(_fmt(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def write_module(model: ActivityModel, n_wearers: int, path: Path = MODULE) -> None:
    lines = [
        '"""Shipped activity-model parameters.',
        "",
        "GENERATED by scripts/train_activity.py; do not edit.",
        "",
        f"Fitted on {n_wearers} HAPT development wearers (waist-worn phone, 50 Hz).",
        f"Walking features: {', '.join(WALK_FEATURES)}.",
        "Transition features:",
        *textwrap.wrap(f"{', '.join(TRANS_FEATURES)}.", 79),
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from analysis.activity import ActivityModel",
        "",
        "MODEL = ActivityModel(",
    ]
    for f in model.__dataclass_fields__:
        v = getattr(model, f)
        if f == "trans_w":
            lines.append("    trans_w=(")
            lines.extend(f"        {_fmt(row)}," for row in v)
            lines.append("    ),")
        else:
            lines.append(f"    {f}={_fmt(v)},")
    lines.append(")")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fit and print; do not write")
    args = ap.parse_args(argv)
    exps = list_experiments()
    rows = all_rows(exps, AnalysisSettings())
    model = fit_model(list(rows.values()))
    users = {u for _, u in exps}
    if args.check:
        print(model)
    else:
        write_module(model, len(users))
        print(f"wrote {MODULE} ({len(users)} wearers, {len(exps)} recordings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

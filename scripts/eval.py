"""``make eval``: accuracy on real recordings and simulator ground truth.

HAPT development set (../shared/data/hapt-dev): every experiment is converted
to the recording CSV layout in a temporary directory and analysed by the same
code as ``postmon analyze`` (``postmon.commands.analyze.analyze_file``), with
an activity model trained **without that wearer** (leave-wearers-out folds,
``scripts/train_activity.py``). Each recording is scored as recorded and
under random sensor rotations (the algorithm must not rely on how the phone
was mounted). A fixed-angle baseline is scored side by side.

Writes out/eval.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hapt_data import (
    RATE_HZ,
    Scores,
    baseline_classify,
    list_experiments,
    load_experiment,
    random_rotation,
)
from train_activity import all_rows, fit_model

from analysis.settings import AnalysisSettings
from postmon.commands.analyze import analyze_file
from postmon.recording import read_epoch_table, write_recording

REPO = Path(__file__).resolve().parent.parent
TARGETS = {
    "macro_f1": 0.96,
    "sit_stand_balanced_accuracy": 0.92,
    "f1_lying": 0.98,
    "f1_walking": 0.98,
    "stand_to_sit_sensitivity": 0.90,
    "stand_to_sit_precision": 0.90,
    "sit_to_stand_sensitivity": 0.90,
    "sit_to_stand_precision": 0.90,
}


def _read_events(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split(",")
        out.append((float(parts[0]), parts[1]))
    return out


def eval_hapt(n_folds: int, rotations: int, seed: int, log: bool = True) -> dict[str, object]:
    exps = list_experiments()
    users = sorted({u for _, u in exps})
    settings = AnalysisSettings.offline()
    t0 = time.monotonic()
    rows = all_rows(exps, settings)
    folds = [users[i::n_folds] for i in range(n_folds)]
    rng = np.random.default_rng(seed)
    ours = {"as_recorded": Scores(), "rotated": Scores()}
    base = {"as_recorded": Scores(), "rotated": Scores()}
    per_exp = []
    with tempfile.TemporaryDirectory(prefix="postmon-eval-") as tmp:
        tmpd = Path(tmp)
        for fi, test_users in enumerate(folds):
            train = [r for (e, u), r in rows.items() if u not in test_users]
            model = fit_model(train)
            model_path = tmpd / f"model_fold{fi}.json"
            model_path.write_text(json.dumps(model.to_dict()))
            for e, u in exps:
                if u not in test_users:
                    continue
                ex = load_experiment(e, u)
                truth = ex.epoch_truth().tolist()
                trans = ex.transitions()
                variants = [("as_recorded", np.eye(3))]
                variants += [("rotated", random_rotation(rng)) for _ in range(rotations)]
                for name, rot in variants:
                    acc = ex.acc_g @ rot.T
                    gyro = ex.gyro_dps @ rot.T
                    t = np.arange(acc.shape[0]) / RATE_HZ
                    csv = tmpd / f"exp{e:02d}.csv"
                    write_recording(csv, t, acc, gyro)
                    out = tmpd / f"out{e:02d}"
                    analyze_file(csv, out, settings=settings, model=_load(model_path))
                    tab = read_epoch_table(out / "epochs.csv")
                    evs = _read_events(out / "events.csv")
                    ours[name].add(truth, tab.activity.tolist(), trans, evs)
                    bact, bev = baseline_classify(acc)
                    base[name].add(truth, bact, trans, bev)
                    if name == "as_recorded":
                        one = Scores()
                        one.add(truth, tab.activity.tolist(), trans, evs)
                        sm = one.summary()
                        per_exp.append(
                            {
                                "exp": e,
                                "user": u,
                                "macro_f1": round(sm["macro_f1"], 4),
                                "sit_stand_ba": round(sm["sit_stand_balanced_accuracy"], 4),
                            }
                        )
            if log:
                print(
                    f"[eval] fold {fi + 1}/{n_folds} done ({time.monotonic() - t0:.0f} s)",
                    file=sys.stderr,
                )
    return {
        "ours": {k: v.summary() for k, v in ours.items()},
        "baseline": {k: v.summary() for k, v in base.items()},
        "per_experiment": per_exp,
        "folds": n_folds,
        "rotations_per_recording": rotations,
        "wearers": len(users),
        "recordings": len(exps),
    }


def _load(path: Path) -> object:
    from postmon.commands.analyze import load_model

    return load_model(path)


def print_hapt(res: dict[str, object]) -> None:
    ours = res["ours"]
    base = res["baseline"]
    assert isinstance(ours, dict)
    assert isinstance(base, dict)
    keys = list(ours["as_recorded"].keys())
    print(
        f"\nHAPT dev ({res['wearers']} wearers, {res['recordings']} recordings, "
        f"{res['folds']}-fold leave-wearers-out; rotated = {res['rotations_per_recording']} "
        "random mountings per recording)"
    )
    print(f"{'metric':36s} {'ours':>8s} {'ours rot':>9s} {'baseline':>9s} {'base rot':>9s}  target")
    for k in keys:
        tgt = TARGETS.get(k)
        vals = [
            ours["as_recorded"][k],
            ours["rotated"][k],
            base["as_recorded"][k],
            base["rotated"][k],
        ]
        flag = ""
        if tgt is not None:
            flag = f">= {tgt:.2f} " + ("ok" if min(vals[:2]) >= tgt else "MISS")
        print(f"{k:36s} " + " ".join(f"{v:9.4f}" for v in vals) + f"  {flag}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="postmon accuracy evaluation")
    ap.add_argument("--folds", type=int, default=7, help="leave-wearers-out folds")
    ap.add_argument("--rotations", type=int, default=1, help="random mountings per recording")
    ap.add_argument("--seed", type=int, default=20240301)
    ap.add_argument("--out", default=str(REPO / "out" / "eval.json"))
    args = ap.parse_args(argv)
    result: dict[str, object] = {"hapt": eval_hapt(args.folds, args.rotations, args.seed)}
    print_hapt(result["hapt"])  # type: ignore[arg-type]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True, default=float) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

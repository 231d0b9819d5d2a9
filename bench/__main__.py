"""Run every benchmark module and write the results as JSON plus a table."""

from __future__ import annotations

import os

# One core unless a benchmark says otherwise: numpy's BLAS would otherwise
# start a helper thread per core (set before numpy is imported).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import pkgutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import bench  # noqa: E402
from bench.common import Entry, machine_info, run_module  # noqa: E402


def _run_isolated(mod: str, quick: bool) -> list[Entry]:
    """One module in a fresh interpreter: what a module leaves behind (a heap
    of survivors the garbage collector keeps walking, threads, imports) must
    not tax the next one's CPU times (memory -> pipeline measured +24 %)."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_module, mod, quick).result()


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--out", default="out/bench.json", help="where to write the JSON results")
    ap.add_argument("--only", default="", help="comma-separated module names (e.g. decode,store)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    entries: list[Entry] = []
    failed = []
    durations: dict[str, float] = {}
    machine_before = machine_info()
    modules = [
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_")
    ]
    unknown = only - set(modules)
    if unknown:
        ap.error(f"unknown module(s) {sorted(unknown)}; known: {', '.join(sorted(modules))}")
    t_all = time.perf_counter()
    for short in sorted(modules):
        mod = f"bench_{short}"
        if only and short not in only:
            continue
        print(f"[bench] {short} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            got = _run_isolated(mod, args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(short)
            continue
        entries.extend(got)
        durations[short] = time.perf_counter() - t0
        print(f"[bench] {short} done in {durations[short]:.1f} s", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": machine_before,
        "loadavg_after": machine_info().get("loadavg_1_5_15"),
        "module_wall_s": {k: round(v, 1) for k, v in durations.items()},
        "total_wall_s": round(time.perf_counter() - t_all, 1),
        "entries": [e.as_dict() for e in entries],
        "failed_modules": failed,
    }
    out.write_text(json.dumps(doc, indent=2, sort_keys=True))
    print(format_table(entries))
    print(f"wrote {out} ({doc['total_wall_s']:.0f} s)", file=sys.stderr)
    return 1 if failed else 0


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def format_table(entries: list[Entry]) -> str:
    """A plain-text table of the entries (name, value, baseline, ratio, target, status)."""
    rows = [("name", "value", "unit", "baseline", "ratio", "target", "status")]
    for e in entries:
        rows.append(
            (
                e.name,
                _num(e.value),
                e.unit,
                _num(e.baseline_value),
                "-" if e.ratio is None else f"{e.ratio:.3g}x",
                e.target or "-",
                {True: "ok", False: "GAP", None: "-"}[e.ok],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", "notes:"] + [f"  {e.name}: {e.note}" for e in entries if e.note]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

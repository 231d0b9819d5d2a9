"""Run every benchmark module and write the results as JSON plus a table."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path

import bench
from bench.common import Entry


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--out", default="out/bench.json", help="where to write the JSON results")
    ap.add_argument("--only", default="", help="comma-separated module names (e.g. decode,store)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    entries: list[Entry] = []
    failed = []
    for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if not mod.startswith("bench_"):
            continue
        short = mod.removeprefix("bench_")
        if only and short not in only:
            continue
        print(f"[bench] {short} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            got = importlib.import_module(f"bench.{mod}").run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(short)
            continue
        entries.extend(got)
        print(f"[bench] {short} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "entries": [e.as_dict() for e in entries],
        "failed_modules": failed,
    }
    out.write_text(json.dumps(doc, indent=2, sort_keys=True))
    print(json.dumps([e.as_dict() for e in entries], indent=1))
    w = max((len(e.name) for e in entries), default=10)
    for e in entries:
        ratio = f"{e.ratio:8.2f}x" if e.ratio is not None else "        -"
        flag = {True: "ok", False: "GAP", None: "-"}[e.ok]
        print(f"{e.name:<{w}}  {e.value:14.4g} {e.unit:<14} {ratio}  {e.target:<18} {flag}")
    print(f"wrote {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""``postmon analyze INPUT --out DIR``: offline analysis of a recording.

Reads a recording CSV (``postmon.recording``: any constant rate >= 20 Hz, any
mounting), runs the same per-wearer analysis as the live service (fed in
bounded chunks, so a 24-hour file needs little more memory than the file's
samples), and writes::

    DIR/epochs.csv    time_s,activity,inclination_deg,flexion_deg,lateral_deg,static
    DIR/events.csv    time_s,kind,duration_s,detail
    DIR/summary.json  the therapist's numbers (DailySummary) + how they were made
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.settings import PLACEMENTS
from postmon.errors import ConfigError, InputError
from postmon.progress import ProgressBar, add_progress_argument, progress_enabled

#: Samples per analysis chunk: an hour at 50 Hz. Bounds the working memory
#: of the signal processing whatever the recording length.
CHUNK_SAMPLES = 180_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse a recording CSV offline (no servers needed)",
        description=(
            "Recognise lying/sitting/standing/walking per second, find posture "
            "transitions, measure trunk angles relative to the wearer's upright posture, "
            "and compute the therapist's summary. INPUT is a recording CSV "
            "(time_s,ax,ay,az[,gx,gy,gz]; seconds, g, deg/s; any constant rate >= 20 Hz; "
            "any sensor mounting)."
        ),
        epilog="writes DIR/epochs.csv, DIR/events.csv and DIR/summary.json",
    )
    p.add_argument("input", help="recording CSV file")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--config", help="TOML config file; its [analysis] table sets thresholds")
    p.add_argument(
        "--placement",
        choices=PLACEMENTS,
        help="where the sensor was worn (default: the config's [analysis] placement, "
        "else lower_back). On the upper back an upright sitter reads like a stander, "
        "so sitting and standing near upright are told apart by the movements alone.",
    )
    p.add_argument(
        "--calibrate",
        metavar="START:END",
        action="append",
        default=[],
        help="seconds (from the recording start) where the wearer stood tall, "
        "e.g. 0:5; repeatable. Without it the upright reference comes from walking.",
    )
    p.add_argument(
        "--start",
        help="UTC start time of the recording (ISO 8601, e.g. 2024-03-01T08:00:00Z); "
        "sets the summary's date (default: 1970-01-01, i.e. relative time)",
    )
    p.add_argument(
        "--model",
        help="activity model JSON (default: the shipped model; used by evaluation)",
    )
    p.add_argument(
        "--one-pass",
        action="store_true",
        help="analyse in one pass, as the live service does. By default a first pass "
        "learns how the wearer wears the sensor, sits and stands (upright, forward "
        "direction, their own sitting and standing postures) and the second starts "
        "from it, so the minutes before the first sit-down or forward lean are judged "
        "as well as the rest (twice the time).",
    )
    add_progress_argument(p)
    p.set_defaults(func=run)


def _parse_calibration(items: Sequence[str]) -> list[tuple[float, float]]:
    out = []
    for item in items:
        try:
            a, b = (float(x) for x in item.split(":"))
        except ValueError as exc:
            raise ConfigError(
                f"--calibrate {item!r}: expected START:END in seconds, e.g. 0:5"
            ) from exc
        if not (math.isfinite(a) and math.isfinite(b)) or b - a < 1.0:
            raise ConfigError(f"--calibrate {item!r}: END must be at least 1 s after START")
        out.append((a, b))
    return out


def _parse_start(text: str | None) -> datetime:
    if not text:
        return datetime(1970, 1, 1, tzinfo=UTC)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"--start {text!r}: not an ISO 8601 time", hint="e.g. 2024-03-01T08:00:00Z"
        ) from exc
    if dt.tzinfo is None:
        raise ConfigError(f"--start {text!r}: give a time zone, e.g. a trailing Z for UTC")
    return dt.astimezone(UTC)


def load_model(path: str | Path) -> Any:
    """Read an activity model JSON written by ``scripts/train_activity.py``."""
    from analysis.activity import ActivityModel

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return ActivityModel.from_dict(doc)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"--model {path}: not a readable activity model ({exc})") from exc


def analysis_settings(config_path: str | None) -> Any:
    """AnalysisSettings from the config file's [analysis] table (defaults without one)."""
    from analysis.settings import AnalysisSettings
    from postmon.config import from_table, load_config

    table = load_config(config_path).analysis if config_path else {}
    # whole recordings default to the offline look-ahead (AnalysisSettings.offline)
    offline = AnalysisSettings.offline()
    merged = {
        "decision_lag_s": offline.decision_lag_s,
        "commit_block_s": offline.commit_block_s,
        **table,
    }
    return from_table(AnalysisSettings, merged, "analysis")


@dataclasses.dataclass(frozen=True)
class AnalyzeResult:
    n_epochs: int
    n_events: int
    out_dir: Path


def analyze_file(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    settings: Any = None,
    model: Any = None,
    calibration_s: Sequence[tuple[float, float]] = (),
    start: datetime | None = None,
    progress: bool = False,
    log: Callable[[str], object] | None = None,
    learn_first: bool = True,
) -> AnalyzeResult:
    """The whole ``postmon analyze`` pipeline (also used by ``scripts/eval.py``).

    ``learn_first``: two passes, the second starting each wear period with
    what the first learnt about the wearer (``analysis.stream.WearerKnowledge``);
    False analyses in one pass, as a live stream is.
    """
    import numpy as np

    from analysis.contracts import NS_PER_S, Activity, SampleBatch
    from analysis.metrics import daily_summary
    from analysis.settings import AnalysisSettings
    from analysis.stream import AnalysisOutput, WearerAnalyzer
    from postmon.recording import read_recording, write_epoch_table

    settings = settings or AnalysisSettings.offline()
    start = start or datetime(1970, 1, 1, tzinfo=UTC)
    start_ns = int(start.timestamp()) * NS_PER_S + start.microsecond * 1000
    rec = read_recording(input_path, progress=ProgressBar("reading", progress))
    calib_ns = [
        (start_ns + round(a * NS_PER_S), start_ns + round(b * NS_PER_S)) for a, b in calibration_s
    ]
    t_ns = start_ns + np.round(rec.time_s * NS_PER_S).astype(np.int64)
    n = t_ns.size

    def run_pass(an: WearerAnalyzer, label: str) -> AnalysisOutput:
        bar = ProgressBar(label, progress)
        parts: list[AnalysisOutput] = []
        for i in range(0, n, CHUNK_SAMPLES):
            j = min(n, i + CHUNK_SAMPLES)
            gyro = None if rec.gyro_dps is None else rec.gyro_dps[i:j]
            batch = SampleBatch(
                "recording", "recording", rec.rate_hz, t_ns[i:j], rec.accel_g[i:j], gyro
            )
            parts.append(an.feed(batch))
            bar(j, n)
        parts.append(an.finish())
        return AnalysisOutput.concat(parts)

    knowledge: tuple[Any, ...] = ()
    if learn_first:
        # first pass: learn how this wearer wears the sensor, sits and stands
        first = WearerAnalyzer(settings, model=model, calibration_ns=calib_ns, keep_knowledge=True)
        run_pass(first, "learning the wearer")
        knowledge = first.learned()
    an = WearerAnalyzer(settings, model=model, calibration_ns=calib_ns, knowledge=knowledge)
    out = run_pass(an, "analysing")
    ep = out.epochs
    events = sorted(out.events, key=lambda e: (e.time_ns, e.kind))
    od = Path(out_dir)
    try:
        od.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {od}: {exc.strerror or exc}") from exc
    rel_s = (ep["time_ns"] - start_ns) / NS_PER_S
    labels = np.array([a.label for a in Activity])[ep["activity"].astype(np.int64)]
    write_epoch_table(
        od / "epochs.csv",
        rel_s,
        labels.tolist(),
        ep["inclination_deg"],
        ep["flexion_deg"],
        ep["lateral_deg"],
        ep["static"],
    )
    _write_events(od / "events.csv", events, start_ns)
    date = start.date().isoformat()
    summary = daily_summary(ep, events, date, settings)
    ref = an.reference
    doc = {
        "summary": dataclasses.asdict(summary),
        "recording": {
            "source": str(input_path),
            "start_utc": start.isoformat(),
            "samples": n,
            "rate_hz": rec.rate_hz,
            "gyroscope": rec.gyro_dps is not None,
            "gaps": rec.gaps,
            "duration_s": float(rec.time_s[-1] - rec.time_s[0]),
            "epochs": int(ep.size),
            "dropped_samples": an.dropped_samples,
            # 2: a first pass learnt the wearer, the second wrote these files
            "passes": 2 if learn_first else 1,
        },
        "reference": None
        if ref is None
        else {
            "up_sensor_frame": [round(float(x), 5) for x in ref.up],
            "forward_sensor_frame": None
            if ref.fwd is None
            else [round(float(x), 5) for x in ref.fwd],
            "source": ref.source,
            "forward_source": ref.fwd_source,
        },
    }
    (od / "summary.json").write_text(
        json.dumps(_clean(doc), indent=2, sort_keys=True, default=_json_default, allow_nan=False)
        + "\n",
        encoding="utf-8",
    )
    if log:
        log(f"{input_path}: {ep.size} epochs, {len(events)} events -> {od}")
    return AnalyzeResult(int(ep.size), len(events), od)


def _json_default(obj: object) -> object:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """NaN -> None so the JSON is standard (allow_nan=False)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _write_events(path: Path, events: Sequence[Any], start_ns: int) -> None:
    from analysis.contracts import NS_PER_S

    tmp = path.with_suffix(".csv.part")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("time_s,kind,duration_s,detail\n")
        for e in events:
            detail = ";".join(f"{k}={v}" for k, v in sorted(e.attrs.items()))
            fh.write(
                f"{(e.time_ns - start_ns) / NS_PER_S:.2f},{e.kind},{e.duration_s:g},{detail}\n"
            )
    tmp.replace(path)


def run(args: argparse.Namespace) -> int:
    settings = analysis_settings(args.config)
    if args.placement:
        settings = dataclasses.replace(settings, placement=args.placement)
    model = load_model(args.model) if args.model else None
    calib = _parse_calibration(args.calibrate)
    start = _parse_start(args.start)
    src = Path(args.input)
    if not src.is_file():
        raise InputError(f"{src}: no such file", hint="give the path of a recording CSV")
    progress = progress_enabled(args.progress)
    res = analyze_file(
        src,
        args.out,
        settings=settings,
        model=model,
        calibration_s=calib,
        start=start,
        progress=progress,
        learn_first=not args.one_pass,
    )
    print(f"{src}: {res.n_epochs} epochs, {res.n_events} events -> {res.out_dir}")
    return 0

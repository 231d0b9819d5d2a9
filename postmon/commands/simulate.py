"""``postmon simulate``: a simulated wearer's day as a recording plus its ground truth."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from postmon.errors import ConfigError, InputError
from postmon.progress import ProgressBar, add_progress_argument, progress_enabled

DEVICES = ("witmotion", "movesense", "metamotion")
PLACEMENTS = ("upper", "lower")
MOUNTINGS = ("identity", "typical", "random")


def _profiles_help() -> str:
    from firmware_sim.profiles import PROFILES

    lines = ["profiles:"]
    for name, prof in PROFILES.items():
        lines.append(f"  {name:<18} {prof.description}")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from firmware_sim.profiles import PROFILES

    p = sub.add_parser(
        "simulate",
        help="simulate a wearer's day: IMU recording + ground truth (CSV)",
        description=(
            "Simulate a working day of a wearer with a trunk-worn IMU and write "
            "DIR/imu.csv (time_s, accel in g, gyro in deg/s, sensor frame, quantised as the "
            "device reports it), DIR/truth.csv (per second: activity, inclination, flexion, "
            "lateral bend relative to the neutral standing posture, static flag), "
            "DIR/meta.json (settings, calibration interval, mounting rotation) and "
            "DIR/transitions.json (sit-to-stand etc.: start, duration, kind). The same "
            "arguments always give the same files. The wearer stands tall for the explicit "
            "calibration during the first ~10 s (see meta.json)."
        ),
        epilog=_profiles_help()
        + "\n\nexample:\n  postmon simulate --device witmotion --profile desk_worker "
        "--duration 8h --seed 1 --out out/sim",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", required=True, choices=DEVICES, help="sensor model (ranges, noise)")
    p.add_argument(
        "--profile", required=True, choices=sorted(PROFILES), metavar="NAME", help="see below"
    )
    p.add_argument(
        "--duration",
        required=True,
        metavar="SECONDS",
        help="length of the recording: seconds, or with a unit (90s, 30m, 8h)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed, >= 0 (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="upper",
        help="upper back (T2-T4) or lower back (L3-L5); default upper",
    )
    p.add_argument(
        "--mounting",
        choices=MOUNTINGS,
        default="random",
        help="sensor rotation on the back: identity (sensor axes = body axes), typical "
        "(flat on the skin, y up the spine), random (any rotation); default random",
    )
    p.add_argument(
        "--rate-hz",
        type=float,
        default=None,
        help="sample rate; one the device offers (default: the device's default, "
        "50 Hz for witmotion/metamotion, 52 Hz for movesense)",
    )
    p.add_argument(
        "--ideal",
        action="store_true",
        help="no sensor noise, bias, scale error or quantisation (physics only)",
    )
    add_progress_argument(p)
    p.set_defaults(func=run)


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*$")
MAX_DURATION_S = 7 * 24 * 3600.0


def parse_duration(text: str) -> float:
    """Seconds from '28800', '90s', '30m' or '8h'; ConfigError otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(
            f"--duration {text!r} is not a duration",
            hint="give seconds (e.g. 28800) or a number with s, m or h (e.g. 8h)",
        )
    value = (
        float(m.group(1)) * {"s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}[m.group(2)]
    )
    if not 1.0 <= value <= MAX_DURATION_S:
        raise ConfigError(
            f"--duration {text!r} is {value:g} s; it must be between 1 s and 7 days",
        )
    return value


def run(args: argparse.Namespace) -> int:
    from firmware_sim.imu import get_device
    from firmware_sim.simulator import simulate
    from postmon.recording import write_epoch_table, write_recording

    duration_s = parse_duration(args.duration)
    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed} must be >= 0")
    dev = get_device(args.device)
    rate = dev.default_rate_hz if args.rate_hz is None else args.rate_hz
    try:
        dev.check_rate(rate)
    except ValueError as exc:
        raise ConfigError(f"--rate-hz: {exc}") from exc
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    show = progress_enabled(args.progress)
    t0 = time.perf_counter()
    rec = simulate(
        args.profile,
        duration_s,
        seed=args.seed,
        placement=args.placement,
        mounting=args.mounting,
        rate_hz=rate,
        device=args.device,
        ideal=args.ideal,
        progress=ProgressBar("simulating", show),
    )
    t_sim = time.perf_counter() - t0
    try:
        out.mkdir(parents=True, exist_ok=True)
        if show:
            sys.stderr.write(f"writing    {out / 'imu.csv'} ({len(rec.time_s)} samples)\n")
        write_recording(out / "imu.csv", rec.time_s, rec.accel_g, rec.gyro_dps)
        tr = rec.truth
        write_epoch_table(
            out / "truth.csv",
            tr.time_s,
            tr.activity_labels,
            tr.inclination_deg,
            tr.flexion_deg,
            tr.lateral_deg,
            tr.static,
        )
        meta = {
            "profile": rec.profile,
            "device": rec.device,
            "placement": rec.placement,
            "mounting": args.mounting,
            "mounting_quat_xyzw": rec.mounting_quat_xyzw,
            "seed": rec.seed,
            "rate_hz": rec.rate_hz,
            "duration_s": duration_s,
            "samples": len(rec.time_s),
            "calibration_s": list(rec.calibration_s),
            "ideal": bool(args.ideal),
            "angles": "relative to neutral standing; see firmware_sim/wearer.py",
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        events = [
            {"time_s": round(t.t_start_s, 3), "duration_s": round(t.duration_s, 3), "kind": t.kind}
            for t in rec.transitions
        ]
        (out / "transitions.json").write_text(json.dumps(events, indent=1) + "\n")
    except OSError as exc:
        raise InputError(
            f"cannot write to {out}: {exc.strerror or exc}",
            hint="choose a writable --out directory",
        ) from exc
    t_all = time.perf_counter() - t0
    rate_txt = f"{len(rec.time_s) / t_sim / 1e6:.2f} M samples/s" if t_sim > 0 else ""
    print(
        f"wrote {out}/imu.csv ({len(rec.time_s)} samples at {rec.rate_hz:g} Hz), truth.csv "
        f"({len(tr)} s), meta.json, transitions.json; simulated in {t_sim:.1f} s ({rate_txt}), "
        f"total {t_all:.1f} s; calibration {rec.calibration_s[0]:g}-"
        f"{rec.calibration_s[1]:.1f} s"
    )
    return 0

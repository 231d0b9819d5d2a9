"""``postmon config check FILE``: validate a configuration file."""

from __future__ import annotations

import argparse
import dataclasses

from postmon.config import load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config",
        help="validate a config file and print the effective settings",
        description="Load a TOML config file, validate every key, and print the effective "
        "settings (secrets masked). Exit code 2 with the key, bad value and what is "
        "allowed when something is wrong.",
    )
    p.add_argument("action", choices=("check",))
    p.add_argument("file", help="TOML config file (see postmon.example.toml)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.file)
    shown = dataclasses.asdict(cfg)
    for section in ("influxdb", "mqtt"):
        for secret in ("password", "token"):
            if shown[section].get(secret):
                shown[section][secret] = "***"
    for key, value in shown.items():
        print(f"{key} = {value}")
    print(f"{args.file}: ok")
    return 0

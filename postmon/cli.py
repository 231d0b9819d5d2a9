"""The ``postmon`` command line.

Each subcommand lives in its own module under ``postmon.commands`` and
exposes ``register(subparsers)``; the module list below is the only place
that names them. Imports of heavy dependencies happen inside the commands so
``postmon --help`` stays instant.

Exit codes: 0 ok, 1 failure, 2 bad usage or config, 3 a service is
unavailable, 4 malformed input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from postmon.errors import PostmonError

COMMAND_MODULES: tuple[str, ...] = (
    "postmon.commands.services",
    "postmon.commands.config",
    "postmon.commands.run",
    "postmon.commands.demo",
    "postmon.commands.dashboards",
    "postmon.commands.report",
    "postmon.commands.simulate",
    "postmon.commands.ingest",
    "postmon.commands.plan",
    "postmon.commands.analyze",
    "postmon.commands.security",
    "postmon.commands.collect",
)

EPILOG = """\
exit codes: 0 ok, 1 failure, 2 bad usage/config, 3 service unavailable,
            4 malformed input, 130 interrupted
docs: README.md (start here), docs/ for schema, benchmarks and reliability"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postmon",
        description=(
            "Posture care at work: stream a trunk-worn BLE IMU, recognise sitting, "
            "standing, lying and walking, measure trunk flexion, nudge after long "
            "static periods, and store results in InfluxDB for Grafana."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO if verbose < 2 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except PostmonError as exc:
        print(f"postmon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("postmon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""A one-line text progress bar on stderr, for the long-running commands.

No dependency (tqdm would do, but one line of ``\\r`` output is all the
commands need, and it must stay quiet when stderr is not a terminal).
"""

from __future__ import annotations

import argparse
import sys
import time


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """The ``--progress auto|always|never`` option shared by the long commands."""
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )


def progress_enabled(choice: str) -> bool:
    """Whether ``--progress`` *choice* shows a bar here (auto: stderr is a terminal)."""
    return choice == "always" or (choice == "auto" and sys.stderr.isatty())


class ProgressBar:
    """Callable ``(done, total)`` that redraws the bar every 1 % and ends with a newline."""

    def __init__(self, label: str, enabled: bool, width: int = 30) -> None:
        self.label = label
        self.enabled = enabled
        self.width = width
        self._last = -1.0
        self._t0 = time.monotonic()

    def __call__(self, done: float, total: float) -> None:
        if not self.enabled or total <= 0:
            return
        frac = min(1.0, done / total)
        if frac - self._last < 0.01 and frac < 1.0:
            return
        self._last = frac
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        el = time.monotonic() - self._t0
        sys.stderr.write(f"\r{self.label:<10} [{bar}] {frac * 100:5.1f}% {el:6.1f} s")
        if frac >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

"""Print the HTML report to PDF with headless Chromium (optional).

The HTML page is the report; the PDF is what the browser's print dialog
would make of it (A4, the page's print CSS, no header or footer), made by
Debian's ``chromium`` when it is installed (``scripts/ensure-chromium.sh``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from postmon.errors import PostmonError, Reason

#: Chromium starts in ~1-2 s; a report prints in a few more. Generous for slow disks.
PRINT_TIMEOUT_S = 120.0


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    raise PostmonError(
        "printing to PDF needs Chromium, which is not installed",
        Reason.DEPENDENCY_MISSING,
        hint="run `bash scripts/ensure-chromium.sh` (Debian/Ubuntu) or install Chromium; "
        "or open the HTML report in any browser and print it",
    )


def html_to_pdf(html: Path, pdf: Path, *, timeout_s: float = PRINT_TIMEOUT_S) -> Path:
    """Print ``html`` to ``pdf`` (A4, as the page's print CSS lays it out)."""
    exe = chromium_path()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="postmon-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",  # runs as root in containers; the page is our own, script-free
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf.resolve()}",
            html.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise PostmonError(
                f"Chromium did not finish printing {html} within {timeout_s:.0f} s",
                Reason.SERVICE_UNAVAILABLE,
                hint="retry; print the HTML from a browser if it keeps failing",
            ) from exc
    if proc.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        raise PostmonError(
            f"Chromium could not print {html} to PDF (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-500:]}",
            Reason.DEPENDENCY_MISSING,
            hint="open the HTML report in a browser and print it to PDF instead",
        )
    return pdf

"""The architecture rules that keep the pipeline testable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# analysis/ is pure: numpy/scipy and the standard library's pure modules only.
FORBIDDEN_IN_ANALYSIS = {
    "bleak",
    "bumble",
    "paho",
    "requests",
    "urllib",
    "urllib3",
    "http",
    "httpx",
    "aiohttp",
    "socket",
    "ssl",
    "asyncio",
    "subprocess",
    "influxdb_client",
    "grafana_client",
    "sqlite3",
    "logging",
    "time",
    "os",
    "pathlib",
    "io",
    "shutil",
    "postmon",
    "collector",
    "firmware_sim",
    "dashboards",
    "matplotlib",
    "csv",
    "json",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            names.add("<dynamic import>")
    return names


def _analysis_files() -> list[Path]:
    return sorted((REPO / "analysis").rglob("*.py"))


def test_analysis_has_modules() -> None:
    assert _analysis_files(), "analysis/ must exist"


@pytest.mark.parametrize("path", _analysis_files(), ids=lambda p: p.name)
def test_analysis_is_pure(path: Path) -> None:
    bad = _imports(path) & (FORBIDDEN_IN_ANALYSIS | {"<dynamic import>"})
    assert not bad, f"{path.relative_to(REPO)} imports I/O or wiring modules: {sorted(bad)}"


def test_checker_catches_violation(tmp_path: Path) -> None:
    p = tmp_path / "x.py"
    p.write_text("import numpy\nfrom paho.mqtt import client\nimport os.path\n")
    assert _imports(p) & FORBIDDEN_IN_ANALYSIS == {"paho", "os"}

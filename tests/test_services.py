"""The local services answer, and a stopped one gives a failure that says how to start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from postmon.services import influx_ping, mqtt_roundtrip

pytestmark = pytest.mark.integration


def test_influx_answers(influx_url: str, influx_db: str) -> None:
    from tests.conftest import influx_query

    res = influx_query("SHOW DATABASES")
    names = [v[0] for v in res["results"][0]["series"][0]["values"]]
    assert influx_db in names


def test_mqtt_routes(mqtt_broker: tuple[str, int]) -> None:
    assert mqtt_roundtrip(mqtt_broker[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probes_say_no_when_nothing_listens() -> None:
    port = _free_port()
    assert not influx_ping(port)
    assert not mqtt_roundtrip(port, timeout_s=0.5)


def test_unreachable_influx_fails_with_how_to_start() -> None:
    """Run one integration test against a port where nothing answers."""
    port = _free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/test_services.py::test_influx_answers",
        ],
        env={**os.environ, "POSTMON_SERVICES_INFLUX_PORT": str(port)},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout
    assert "make services-up" in proc.stdout
    assert "skipped" not in proc.stdout


def test_private_services_start_stop_restart(private_services) -> None:  # type: ignore[no-untyped-def]
    port = private_services.cfg.influx_port
    assert influx_ping(port)
    private_services.down(log=lambda _m: None)
    assert not influx_ping(port)
    private_services.up(log=lambda _m: None)
    assert influx_ping(port)
    assert mqtt_roundtrip(private_services.cfg.mqtt_port)

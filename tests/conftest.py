"""Fixtures for the real local services (see `make services-up`).

Integration tests talk to the project-local Mosquitto and InfluxDB started
by ``postmon services up``. If a service is down they FAIL with the command
that starts it: an integration test never skips silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from postmon.config import DEFAULT_INFLUX_PORT, DEFAULT_MQTT_PORT
from postmon.services import influx_ping, mqtt_roundtrip

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
HAPT_DIR = SHARED / "data" / "hapt-dev"

# Same overrides as `postmon services up` (postmon.config.SERVICE_PORT_ENV).
INFLUX_PORT = int(os.environ.get("POSTMON_SERVICES_INFLUX_PORT", DEFAULT_INFLUX_PORT))
MQTT_PORT = int(os.environ.get("POSTMON_SERVICES_MQTT_PORT", DEFAULT_MQTT_PORT))
INFLUX_URL = f"http://127.0.0.1:{INFLUX_PORT}"

HOW_TO_START = "start the local services with `make services-up` (or `postmon services up`)"


def influx_query(q: str, db: str | None = None, method: str = "GET") -> dict:
    """Run InfluxQL against the test InfluxDB; return the decoded JSON."""
    params = {"q": q}
    if db:
        params["db"] = db
    data = None
    url = f"{INFLUX_URL}/query"
    if method == "POST":
        data = urllib.parse.urlencode(params).encode()
    else:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def influx_url() -> str:
    if not influx_ping(INFLUX_PORT):
        pytest.fail(f"InfluxDB is not answering on {INFLUX_URL}/ping: {HOW_TO_START}")
    return INFLUX_URL


@pytest.fixture
def influx_db(influx_url: str) -> Iterator[str]:
    """A fresh InfluxDB database for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influx_query(f'CREATE DATABASE "{name}"', method="POST")
    try:
        yield name
    finally:
        # the test may have stopped the server on purpose
        with contextlib.suppress(urllib.error.URLError, OSError):
            influx_query(f'DROP DATABASE "{name}"', method="POST")


@pytest.fixture(scope="session")
def mqtt_broker() -> tuple[str, int]:
    if not mqtt_roundtrip(MQTT_PORT):
        pytest.fail(f"Mosquitto is not routing messages on 127.0.0.1:{MQTT_PORT}: {HOW_TO_START}")
    return ("127.0.0.1", MQTT_PORT)


@pytest.fixture
def mqtt_prefix(mqtt_broker: tuple[str, int]) -> str:
    """A unique topic root for one test, so tests never see each other's messages."""
    return f"test/{uuid.uuid4().hex[:12]}/postmon/v1"


@pytest.fixture(scope="session")
def hapt_dir() -> Path:
    if not (HAPT_DIR / "RawData" / "labels.txt").exists():
        pytest.fail(f"real recordings not found at {HAPT_DIR}: clone with shared/ beside the repo")
    return HAPT_DIR


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_services(tmp_path: Path) -> Iterator[object]:
    """A Mosquitto + InfluxDB of this test's own, on free ports, that the test
    may stop and restart (fault tests) without disturbing other tests."""
    from postmon.config import ServicesConfig
    from postmon.services import LocalServices

    svc = LocalServices(
        ServicesConfig(
            state_dir=tmp_path / "services",
            mqtt_port=free_port(),
            influx_port=free_port(),
            influx_rpc_port=free_port(),
        )
    )
    svc.up(log=lambda _msg: None)
    try:
        yield svc
    finally:
        svc.down(log=lambda _msg: None)


@pytest.fixture
def inbox(mqtt_prefix: str) -> Iterator[queue.Queue[mqtt.MQTTMessage]]:
    """What a phone app subscribed to every wearer's nudges under the test's prefix receives."""
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda _c, _u, m: got.put(m)
    c.on_subscribe = lambda *_a: ready.put(1)
    c.on_connect = lambda cl, *_a: cl.subscribe(f"{mqtt_prefix}/+/+/nudges", qos=1)
    c.connect("127.0.0.1", MQTT_PORT)
    c.loop_start()
    ready.get(timeout=10)
    yield got
    c.disconnect()
    c.loop_stop()

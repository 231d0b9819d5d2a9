"""A secured Mosquitto + InfluxDB of the security tests' own (auth, ACL, TLS on).

Built with the code under test (``postmon security`` provisioning), on free
loopback ports, under a state directory the broker's unprivileged user can
reach. The shared development services are never touched.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from postmon.config import Config, InfluxConfig, MqttConfig, SensorPairing, ServicesConfig
from postmon.security.influx import (
    InfluxHttp,
    bootstrap_admin_with_file,
    provision_users,
)
from postmon.security.local import BrokerSecurity, SecureLocalServices
from postmon.security.mqtt_acl import ADMIN_USER, INGEST_USER, collector_user, provision
from postmon.security.pki import make_ca_and_server
from postmon.security.secrets import read_secret_file
from tests.conftest import free_port

SITE_A = "clinic-a"
SITE_B = "clinic-b"
ROOT = "postmon/v1"


@dataclass(frozen=True)
class SecureStack:
    cfg: Config  # the deployment's config (sites, topic root, database)
    out: Path  # what `postmon security ...` wrote
    services: SecureLocalServices
    mqtt_port: int
    tls_port: int
    ca_file: Path
    influx_url: str
    database: str

    def mqtt(
        self, username: str = "", *, tls: bool = False, password: str | None = None
    ) -> MqttConfig:
        """MqttConfig for one account (its generated password unless given)."""
        if password is None:
            password = (
                read_secret_file(self.out / "secrets" / f"mqtt-{username}.password")
                if username
                else ""
            )
        return dataclasses.replace(
            self.cfg.mqtt,
            port=self.tls_port if tls else self.mqtt_port,
            username=username,
            password=password,
            tls_ca_file=str(self.ca_file) if tls else "",
        )

    def influx(self, username: str = "", password: str | None = None) -> InfluxConfig:
        if password is None:
            password = (
                read_secret_file(self.out / "secrets" / f"influx-{username}.password")
                if username
                else ""
            )
        return InfluxConfig(
            url=self.influx_url, database=self.database, username=username, password=password
        )

    def http(self, username: str = "", password: str | None = None) -> InfluxHttp:
        return InfluxHttp.from_config(self.influx(username, password))


def _config() -> Config:
    return Config(
        site=SITE_A,
        mqtt=MqttConfig(topic_root=ROOT),
        influxdb=InfluxConfig(database="postmon_sec"),
        sensors=(
            SensorPairing(address="AA:00", wearer="p001", site=SITE_A),
            SensorPairing(address="AA:01", wearer="p002", site=SITE_A),
            SensorPairing(address="BB:00", wearer="p101", site=SITE_B),
        ),
    )


@pytest.fixture(scope="module", name="secure_stack")
def secure_stack_fixture() -> Iterator[SecureStack]:
    # not pytest's tmp_path: its parents are mode 0700, and Mosquitto drops to
    # its own user before it reads the password file, ACL and key
    base = Path(tempfile.mkdtemp(prefix="postmon-sec-"))
    services: SecureLocalServices | None = None
    try:
        os.chmod(base, 0o711)
        cfg = _config()
        out = base / "provisioned"
        _accounts, files = provision(cfg, out, wearer_apps=True)
        certs = make_ca_and_server(out / "tls")
        mqtt_port, tls_port = free_port(), free_port()
        probe = dataclasses.replace(
            cfg.mqtt,
            port=mqtt_port,
            username=ADMIN_USER,
            password=read_secret_file(files.secrets[ADMIN_USER]),
        )
        services = SecureLocalServices(
            ServicesConfig(
                state_dir=base / "services",
                mqtt_port=mqtt_port,
                influx_port=free_port(),
                influx_rpc_port=free_port(),
            ),
            broker=BrokerSecurity(
                password_file=files.password_file,
                acl_file=files.acl_file,
                probe=probe,
                tls_port=tls_port,
                certfile=certs.server_cert,
                keyfile=certs.server_key,
            ),
            influx_auth=True,
        )
        services.up(log=lambda _m: None)
        influx_url = f"http://127.0.0.1:{services.cfg.influx_port}"
        stack = SecureStack(
            cfg, out, services, mqtt_port, tls_port, certs.ca_cert, influx_url, "postmon_sec"
        )
        admin = bootstrap_admin_with_file(InfluxHttp(influx_url), out)
        provision_users(stack.http(admin.username), stack.database, out)
        yield stack
    finally:
        if services is not None:
            services.down(log=lambda _m: None)
        shutil.rmtree(base, ignore_errors=True)


__all__ = [
    "INGEST_USER",
    "ROOT",
    "SITE_A",
    "SITE_B",
    "SecureStack",
    "collector_user",
    "secure_stack_fixture",
]

"""Local Mosquitto/InfluxDB with authentication, ACLs and TLS switched on.

The same project-local services as ``postmon.services.LocalServices`` (on
loopback, state under a directory of their own), plus: Mosquitto with
``allow_anonymous false``, a password file and an ACL file (as written by
``postmon security mqtt-acl``) and an optional TLS listener; InfluxDB with
``auth-enabled = true``. Tests of the security features run against these,
never against the shared development services.

Mosquitto 2.0 started as root drops privileges to the ``mosquitto`` user as
soon as it has read its configuration, *before* it opens the password/ACL
files, certificates and keys. Those files are therefore copied into the
broker's own state directory and handed to that user (mode 0600 kept), and
every directory above it must be traversable by it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from postmon.config import MqttConfig, ServicesConfig
from postmon.errors import PostmonError, Reason, ServiceUnavailable
from postmon.security.mqtt import connect
from postmon.services import (
    START_TIMEOUT_S,
    LocalServices,
    Log,
    influx_ping,
    mqtt_roundtrip,
)

BROKER_USER = "mosquitto"


@dataclass(frozen=True)
class BrokerSecurity:
    """What the secured Mosquitto loads."""

    password_file: Path
    acl_file: Path
    #: credentials allowed to read and write under probe.topic_root (the admin account)
    probe: MqttConfig = field(repr=False)
    tls_port: int | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def __post_init__(self) -> None:
        if (self.tls_port is None) != (self.certfile is None) or (self.certfile is None) != (
            self.keyfile is None
        ):
            raise ValueError("tls_port, certfile and keyfile go together")


def _broker_uid_gid() -> tuple[int, int] | None:
    """The user Mosquitto drops to when started as root, or None if it will not drop."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None  # Mosquitto then falls back to "nobody"; files stay root's (see below)
    return pw.pw_uid, pw.pw_gid


def _check_traversable(path: Path, uid: int, gid: int) -> None:
    for d in [path, *path.parents]:
        st = d.stat()
        if st.st_uid == uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            raise PostmonError(
                f"Mosquitto runs as user {BROKER_USER!r} and cannot enter {d} "
                f"(mode {oct(st.st_mode & 0o777)})",
                Reason.CONFIG_INVALID,
                hint=f"use a state directory under a path that user can traverse "
                f"(e.g. chmod o+x {d}, or a directory made with mode 0711 under /tmp or /var/lib)",
            )


class SecureLocalServices(LocalServices):
    """LocalServices with MQTT auth/ACL/TLS and InfluxDB auth on."""

    def __init__(
        self,
        cfg: ServicesConfig,
        *,
        broker: BrokerSecurity | None = None,
        influx_auth: bool = True,
        influx_tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        """``influx_tls``: (certificate, private key, CA that signed it): the
        HTTP API then speaks only HTTPS."""
        super().__init__(cfg)
        self.broker = broker
        self.influx_auth = influx_auth
        self.influx_tls = influx_tls

    @property
    def influx_url(self) -> str:
        scheme = "https" if self.influx_tls else "http"
        return f"{scheme}://127.0.0.1:{self.cfg.influx_port}"

    def _influx_ready(self) -> bool:
        if self.influx_tls is None:
            return influx_ping(self.cfg.influx_port)
        ctx = ssl.create_default_context(cafile=str(self.influx_tls[2]))
        try:
            with urllib.request.urlopen(f"{self.influx_url}/ping", timeout=1.0, context=ctx) as r:
                return bool(r.status == 204)
        except (OSError, urllib.error.URLError):
            return False

    def _install_broker_file(
        self, src: Path, auth_dir: Path, owner: tuple[int, int] | None
    ) -> Path:
        dst = auth_dir / src.name
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o600)
        if owner:
            os.chown(dst, *owner)
        return dst

    def _mosquitto_conf(self) -> Path:
        conf = super()._mosquitto_conf()
        if self.broker is None:
            return conf
        b = self.broker
        d = conf.parent
        owner = _broker_uid_gid()
        auth_dir = d / "auth"
        auth_dir.mkdir(exist_ok=True)
        os.chmod(auth_dir, 0o700)
        files = {
            "password_file": self._install_broker_file(b.password_file, auth_dir, owner),
            "acl_file": self._install_broker_file(b.acl_file, auth_dir, owner),
        }
        if b.certfile and b.keyfile:
            files["certfile"] = self._install_broker_file(b.certfile, auth_dir, owner)
            files["keyfile"] = self._install_broker_file(b.keyfile, auth_dir, owner)
        if owner:
            _check_traversable(d, *owner)
            for p in (d, auth_dir, *d.iterdir()):
                os.chown(p, *owner)
        text = conf.read_text()
        if "allow_anonymous true\n" not in text:
            raise RuntimeError(
                "postmon.services' mosquitto.conf changed; update SecureLocalServices"
            )
        text = text.replace("allow_anonymous true\n", "allow_anonymous false\n")
        text += f"password_file {files['password_file']}\nacl_file {files['acl_file']}\n"
        if b.tls_port is not None:
            # a second listener on loopback that speaks only TLS 1.2+
            text += (
                f"listener {b.tls_port} 127.0.0.1\n"
                f"certfile {files['certfile']}\n"
                f"keyfile {files['keyfile']}\n"
                "tls_version tlsv1.2\n"
            )
        conf.write_text(text)
        return conf

    def _influx_conf(self) -> Path:
        conf = super()._influx_conf()
        if not (self.influx_auth or self.influx_tls):
            return conf
        text = conf.read_text()
        if "[http]\n" not in text:
            raise RuntimeError(
                "postmon.services' influxdb.conf changed; update SecureLocalServices"
            )
        extra = "  auth-enabled = true\n" if self.influx_auth else ""
        if self.influx_tls:
            cert, key, _ca = self.influx_tls
            extra += (
                "  https-enabled = true\n"
                f'  https-certificate = "{cert}"\n'
                f'  https-private-key = "{key}"\n'
            )
        conf.write_text(text.replace("[http]\n", "[http]\n" + extra, 1))
        return conf

    def _wait(self, log: Log) -> None:
        probe = self.broker.probe if self.broker else None
        deadline = time.monotonic() + START_TIMEOUT_S
        influx_ok = mqtt_ok = False
        last: Exception | None = None
        while time.monotonic() < deadline and not (influx_ok and mqtt_ok):
            influx_ok = influx_ok or self._influx_ready()
            if not mqtt_ok:
                try:
                    mqtt_ok = (
                        _roundtrip(probe)
                        if probe
                        else mqtt_roundtrip(self.cfg.mqtt_port, timeout_s=1.0)
                    )
                except (PostmonError, OSError) as exc:
                    last = exc
            if not (influx_ok and mqtt_ok):
                time.sleep(0.2)
        if not influx_ok:
            raise ServiceUnavailable(
                f"influxd did not answer /ping on 127.0.0.1:{self.cfg.influx_port}",
                hint=f"see {self.root}/influxdb/influxd.log",
            )
        if not mqtt_ok:
            raise ServiceUnavailable(
                f"mosquitto did not route a message on 127.0.0.1:{self.cfg.mqtt_port} ({last})",
                hint=f"see {self.root}/mosquitto/mosquitto.log and stdout.log",
            )
        log("secured services ready: InfluxDB /ping ok, MQTT round trip ok")


def _roundtrip(cfg: MqttConfig) -> bool:
    """Authenticated publish + receive under ``cfg.topic_root``."""
    # "_probe" cannot be a site (sites start with a letter or digit): never collides
    topic = f"{cfg.topic_root}/_probe/{uuid.uuid4().hex}"
    got: list[bytes] = []
    s = connect(cfg, timeout_s=2.0)
    try:
        s.client.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
        s.subscribe(topic, timeout_s=2.0)
        s.publish(topic, b"ping", timeout_s=2.0)
        deadline = time.monotonic() + 2.0
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(got)
    finally:
        s.close()

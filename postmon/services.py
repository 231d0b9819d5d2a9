"""Local Mosquitto and InfluxDB for development, tests and the demo.

Both run on loopback only, with config, data, logs and PID files under a
project-local state directory (``.postmon/`` by default), on ports that do
not collide with a system-wide install. There is no systemd here, so the
processes are started detached and stopped by their recorded PIDs.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from postmon.config import ServicesConfig
from postmon.errors import PostmonError, Reason, ServiceUnavailable

Log = Callable[[str], object]

APT_PACKAGES = {"mosquitto": "mosquitto", "influxd": "influxdb"}
START_TIMEOUT_S = 30.0  # influxd 1.6 opens its stores in ~1-3 s; generous for slow CI disks


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    running: bool
    answering: bool
    detail: str


def _bin(name: str) -> str | None:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_installed(log: Log = print) -> None:
    """Install Debian's mosquitto and influxdb packages when missing."""
    missing = [pkg for binary, pkg in APT_PACKAGES.items() if _bin(binary) is None]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise PostmonError(
            f"missing {', '.join(missing)} and apt-get is not available on this machine",
            Reason.DEPENDENCY_MISSING,
            hint="install Mosquitto (>= 2.0) and InfluxDB 1.x with your package manager, "
            "or point the config at existing servers",
        )
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise PostmonError(
                f"missing {', '.join(missing)}; installing needs root",
                Reason.DEPENDENCY_MISSING,
                hint=f"run: sudo apt-get install -y {' '.join(missing)}",
            )
        prefix = ["sudo", "-n"]
    log(f"installing {', '.join(missing)} with apt-get ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [*prefix, apt, "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(cmd, env=env, check=False, capture_output=True).returncode != 0:
        subprocess.run([*prefix, apt, "update", "-q"], env=env, check=False, capture_output=True)
        proc = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PostmonError(
                f"apt-get install {' '.join(missing)} failed:\n{proc.stderr[-2000:]}",
                Reason.DEPENDENCY_MISSING,
                hint="check network access to the Debian mirror, then run `make services-up`",
            )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); treat it as dead
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state == "Z":
            return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def influx_ping(port: int, host: str = "127.0.0.1", timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=timeout_s) as resp:
            return bool(resp.status == 204)
    except (OSError, urllib.error.URLError):
        return False


def mqtt_roundtrip(port: int, host: str = "127.0.0.1", timeout_s: float = 3.0) -> bool:
    """Publish a message and receive it back: the broker really routes."""
    import paho.mqtt.client as mqtt

    topic = f"postmon/selftest/{uuid.uuid4().hex}"
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return False
    try:
        client.loop_start()
        client.subscribe(topic, qos=1)
        deadline = time.monotonic() + timeout_s
        sent = False
        while time.monotonic() < deadline and not got:
            if not sent and client.is_connected():
                time.sleep(0.05)  # let the SUBACK arrive first
                client.publish(topic, b"ping", qos=1)
                sent = True
            time.sleep(0.02)
        return bool(got)
    finally:
        client.loop_stop()
        client.disconnect()


class LocalServices:
    """Start/stop/status of the project-local Mosquitto and InfluxDB."""

    def __init__(self, cfg: ServicesConfig) -> None:
        self.cfg = cfg
        self.root = cfg.state_dir.resolve()

    # -- layout
    def _dir(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _mosquitto_conf(self) -> Path:
        d = self._dir("mosquitto")
        conf = d / "mosquitto.conf"
        conf.write_text(
            "# written by postmon services; loopback only\n"
            f"listener {self.cfg.mqtt_port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # run as whoever started it: as root, mosquitto would otherwise switch to
            # the `mosquitto` user, which cannot write this state directory, and
            # persistence (sessions, queued QoS 1 messages) would silently not work
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {d}/\n"
            f"log_dest file {d}/mosquitto.log\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # QoS 1 queues for persistent sessions of ingest workers that are down
            "max_queued_messages 1000000\n"
            "max_inflight_messages 100\n"
        )
        return conf

    def _influx_conf(self) -> Path:
        d = self._dir("influxdb")
        conf = d / "influxdb.conf"
        conf.write_text(
            "# written by postmon services; loopback only\n"
            f'bind-address = "127.0.0.1:{self.cfg.influx_rpc_port}"\n'
            "reporting-disabled = true\n"
            "[meta]\n"
            f'  dir = "{d}/meta"\n'
            "[data]\n"
            f'  dir = "{d}/data"\n'
            f'  wal-dir = "{d}/wal"\n'
            '  index-version = "inmem"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n"
            "  store-enabled = false\n"
            "[http]\n"
            "  enabled = true\n"
            f'  bind-address = "127.0.0.1:{self.cfg.influx_port}"\n'
            "  log-enabled = false\n"
            "  max-body-size = 0\n"
            "[continuous_queries]\n"
            "  enabled = true\n"
        )
        return conf

    # -- operations
    def up(self, log: Log = print) -> None:
        ensure_installed(log)
        self._start_mosquitto(log)
        self._start_influx(log)
        self._wait(log)

    def _spawn(self, name: str, argv: list[str], logfile: Path) -> int:
        # Started through a short-lived shell so the server is re-parented to
        # init: it outlives the make/pytest process that started it, and that
        # process holds no child to reap (no zombies, no Popen warnings).
        cmd = " ".join(shlex.quote(a) for a in argv)
        proc = subprocess.run(
            ["/bin/sh", "-c", f"{cmd} >>{shlex.quote(str(logfile))} 2>&1 </dev/null & echo $!"],
            capture_output=True,
            text=True,
            check=True,
            start_new_session=True,
        )
        pid = int(proc.stdout.strip())
        (self._dir(name) / f"{name}.pid").write_text(str(pid))
        return pid

    def _start_mosquitto(self, log: Log) -> None:
        pid = _read_pid(self._dir("mosquitto") / "mosquitto.pid")
        if pid and _pid_alive(pid):
            log(f"mosquitto already running (pid {pid}, port {self.cfg.mqtt_port})")
            return
        if mqtt_roundtrip(self.cfg.mqtt_port, timeout_s=1.0):
            log(f"an MQTT broker already answers on 127.0.0.1:{self.cfg.mqtt_port}; using it")
            return
        binary = _bin("mosquitto")
        assert binary is not None
        conf = self._mosquitto_conf()
        pid = self._spawn(
            "mosquitto", [binary, "-c", str(conf)], self._dir("mosquitto") / "stdout.log"
        )
        log(f"started mosquitto (pid {pid}) on 127.0.0.1:{self.cfg.mqtt_port}")

    def _start_influx(self, log: Log) -> None:
        pid = _read_pid(self._dir("influxdb") / "influxdb.pid")
        if pid and _pid_alive(pid):
            log(f"influxd already running (pid {pid}, port {self.cfg.influx_port})")
            return
        if influx_ping(self.cfg.influx_port):
            log(f"an InfluxDB already answers on 127.0.0.1:{self.cfg.influx_port}; using it")
            return
        binary = _bin("influxd")
        assert binary is not None
        conf = self._influx_conf()
        pid = self._spawn(
            "influxdb", [binary, "-config", str(conf)], self._dir("influxdb") / "influxd.log"
        )
        log(f"started influxd (pid {pid}) on 127.0.0.1:{self.cfg.influx_port}")

    def _wait(self, log: Log) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        influx_ok = mqtt_ok = False
        while time.monotonic() < deadline and not (influx_ok and mqtt_ok):
            influx_ok = influx_ok or influx_ping(self.cfg.influx_port)
            mqtt_ok = mqtt_ok or mqtt_roundtrip(self.cfg.mqtt_port, timeout_s=1.0)
            if not (influx_ok and mqtt_ok):
                time.sleep(0.2)
        if not influx_ok:
            raise ServiceUnavailable(
                f"influxd did not answer /ping on 127.0.0.1:{self.cfg.influx_port} "
                f"within {START_TIMEOUT_S:.0f} s",
                hint=f"see {self.root}/influxdb/influxd.log",
            )
        if not mqtt_ok:
            raise ServiceUnavailable(
                f"mosquitto did not route a test message on 127.0.0.1:{self.cfg.mqtt_port} "
                f"within {START_TIMEOUT_S:.0f} s",
                hint=f"see {self.root}/mosquitto/mosquitto.log",
            )
        log("services ready: InfluxDB /ping ok, MQTT round trip ok")

    def down(self, log: Log = print) -> None:
        for name in ("mosquitto", "influxdb"):
            pidfile = self.root / name / f"{name}.pid"
            pid = _read_pid(pidfile)
            if pid is None or not _pid_alive(pid):
                log(f"{name}: not running")
                pidfile.unlink(missing_ok=True)
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15.0
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            pidfile.unlink(missing_ok=True)
            log(f"{name}: stopped (pid {pid})")

    def status(self) -> list[ServiceStatus]:
        out = []
        for name, port, probe in (
            ("mosquitto", self.cfg.mqtt_port, lambda p: mqtt_roundtrip(p, timeout_s=1.0)),
            ("influxdb", self.cfg.influx_port, influx_ping),
        ):
            pid = _read_pid(self.root / name / f"{name}.pid")
            running = bool(pid and _pid_alive(pid))
            answering = probe(port)
            out.append(ServiceStatus(name, pid, running, answering, f"127.0.0.1:{port}"))
        return out


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0

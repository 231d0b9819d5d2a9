"""What security costs: TLS on MQTT, authentication on InfluxDB.

Side by side on services of this benchmark's own (loopback, free ports):

1. MQTT end to end (collector account publishes QoS 1, ingest account
   receives): the TLS listener vs the plaintext listener of the same
   secured Mosquitto (same accounts, same ACL), 1.6 kB messages (an epoch
   batch of 60 s). Ratio = TLS rate / plaintext rate.
2. InfluxDB writes of 5 000-point bodies: with ``auth-enabled = true`` and
   the writer account vs a server without authentication. Ratio = with auth
   / without.

Clinic IT asks what switching security on costs; this answers it on the
machine at hand.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Entry
from postmon.config import Config, InfluxConfig, MqttConfig, SensorPairing, ServicesConfig

PAYLOAD = bytes(range(256)) * 6 + bytes(57)  # 1 593 bytes: one epoch batch with a MAC sensor id
SITE = "bench-a"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class _Stack:
    out: Path
    cfg: Config
    mqtt_port: int
    tls_port: int
    ca: Path
    influx_url: str
    plain_influx_url: str

    def mqtt(self, user: str, *, tls: bool) -> MqttConfig:
        from postmon.security.secrets import read_secret_file

        return dataclasses.replace(
            self.cfg.mqtt,
            port=self.tls_port if tls else self.mqtt_port,
            username=user,
            password=read_secret_file(self.out / "secrets" / f"mqtt-{user}.password"),
            tls_ca_file=str(self.ca) if tls else "",
        )


@contextmanager
def _stack() -> Iterator[_Stack]:
    from postmon.security.influx import InfluxHttp, bootstrap_admin_with_file, provision_users
    from postmon.security.local import BrokerSecurity, SecureLocalServices
    from postmon.security.mqtt_acl import ADMIN_USER, provision
    from postmon.security.pki import make_ca_and_server
    from postmon.security.secrets import read_secret_file

    base = Path(tempfile.mkdtemp(prefix="postmon-bench-sec-"))
    os.chmod(base, 0o711)  # Mosquitto may run as its own user: it must reach its files
    started: list[Any] = []
    try:
        cfg = Config(
            site=SITE,
            mqtt=MqttConfig(topic_root="bench/v1"),
            influxdb=InfluxConfig(database="bench_sec"),
            sensors=(SensorPairing("AA", "p001", site=SITE),),
        )
        out = base / "out"
        _acc, files = provision(cfg, out)
        certs = make_ca_and_server(out / "tls")
        mqtt_port, tls_port = _free_port(), _free_port()
        probe = dataclasses.replace(
            cfg.mqtt,
            port=mqtt_port,
            username=ADMIN_USER,
            password=read_secret_file(files.secrets[ADMIN_USER]),
        )
        secure = SecureLocalServices(
            ServicesConfig(base / "secure", mqtt_port, _free_port(), _free_port()),
            broker=BrokerSecurity(
                files.password_file,
                files.acl_file,
                probe,
                tls_port,
                certs.server_cert,
                certs.server_key,
            ),
            influx_auth=True,
        )
        secure.up(log=lambda _m: None)
        started.append(secure)
        plain = SecureLocalServices(
            ServicesConfig(base / "plain", _free_port(), _free_port(), _free_port()),
            influx_auth=False,
        )
        plain.up(log=lambda _m: None)
        started.append(plain)
        url = f"http://127.0.0.1:{secure.cfg.influx_port}"
        admin = bootstrap_admin_with_file(InfluxHttp(url), out)
        provision_users(
            InfluxHttp(url, admin.username, read_secret_file(admin.secret_file)), "bench_sec", out
        )
        yield _Stack(
            out,
            cfg,
            mqtt_port,
            tls_port,
            certs.ca_cert,
            url,
            f"http://127.0.0.1:{plain.cfg.influx_port}",
        )
    finally:
        for svc in reversed(started):
            svc.down(log=lambda _m: None)
        shutil.rmtree(base, ignore_errors=True)


def _mqtt_rate(st: _Stack, n: int, *, tls: bool) -> float:
    """Messages/s from publish of the first to receipt of the last (QoS 1)."""
    from postmon.security.mqtt import connect
    from postmon.security.mqtt_acl import INGEST_USER, collector_user

    got = 0
    done = threading.Event()
    lock = threading.Lock()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal got
        with lock:
            got += 1
            if got >= n:
                done.set()

    sub = connect(st.mqtt(INGEST_USER, tls=tls))
    pub = connect(st.mqtt(collector_user(SITE), tls=tls))
    try:
        sub.client.on_message = on_message
        sub.subscribe(f"$share/bench/{st.cfg.mqtt.topic_root}/#")
        topic = f"{st.cfg.mqtt.topic_root}/{SITE}/p001/epochs"
        t0 = time.perf_counter()
        for _ in range(n):
            pub.client.publish(topic, PAYLOAD, qos=1)
        if not done.wait(120):
            raise RuntimeError(f"only {got} of {n} messages arrived")
        return n / (time.perf_counter() - t0)
    finally:
        pub.close()
        sub.close()


def _influx_rate(url: str, user: str, password: str, bodies: list[str]) -> float:
    from postmon.security.influx import InfluxHttp

    http = InfluxHttp(url, user, password, timeout_s=60)
    if not user:  # the server without auth: make the database first
        http.query('CREATE DATABASE "bench_sec"')
    t0 = time.perf_counter()
    for b in bodies:
        http.write(b, "bench_sec", precision="s")
    return sum(b.count("\n") for b in bodies) / (time.perf_counter() - t0)


def run(quick: bool) -> list[Entry]:
    from postmon.security.influx import WRITER_USER
    from postmon.security.secrets import read_secret_file

    n_msgs = 500 if quick else 5000
    n_bodies = 4 if quick else 20
    t0 = int(time.time()) - 3600
    bodies = [
        "".join(
            f"epoch,site={SITE},wearer=p{k % 20:03d},sensor=AA flexion_deg={j % 90}.5,"
            f"activity_code={j % 6}i {t0 + j + 5000 * b}\n"
            for j, k in zip(range(5000), range(5000), strict=True)
        )
        for b in range(n_bodies)
    ]
    with _stack() as st:
        pw = read_secret_file(st.out / "secrets" / f"influx-{WRITER_USER}.password")
        # interleaved, best of 3 each: the machine is shared, so load drifts
        plain_mqtt = tls_mqtt = noauth = auth = 0.0
        for _ in range(3):
            plain_mqtt = max(plain_mqtt, _mqtt_rate(st, n_msgs, tls=False))
            tls_mqtt = max(tls_mqtt, _mqtt_rate(st, n_msgs, tls=True))
            noauth = max(noauth, _influx_rate(st.plain_influx_url, "", "", bodies))
            auth = max(auth, _influx_rate(st.influx_url, WRITER_USER, pw, bodies))
    return [
        Entry(
            "security.mqtt_tls",
            tls_mqtt,
            "msgs/s",
            "security.mqtt_plaintext",
            plain_mqtt,
            tls_mqtt / plain_mqtt,
            ">= 0.5 (TLS costs at most half)",
            tls_mqtt / plain_mqtt >= 0.5,
            f"{n_msgs} x {len(PAYLOAD)} B QoS 1, auth + ACL on both, best of 3",
        ),
        Entry(
            "security.influx_auth",
            auth,
            "points/s",
            "security.influx_noauth",
            noauth,
            auth / noauth,
            ">= 0.8",
            auth / noauth >= 0.8,
            f"{n_bodies} writes x 5000 points, writer account vs no auth, best of 3",
        ),
    ]

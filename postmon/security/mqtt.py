"""An authenticated (and optionally TLS) MQTT v5 session for operations tools.

Used by erasure, provisioning checks and the secured local services' probe.
Connection failures become postmon errors that say what to fix: a refused
password, a certificate that does not verify, a broker that is not there.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from postmon.config import MqttConfig
from postmon.errors import PostmonError, Reason, ServiceUnavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 10.0


class MqttAccessDenied(PostmonError):
    """The broker refused the credentials, or the ACL refused an operation."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.AUTH_FAILED, hint=hint)


@dataclass
class Session:
    """A connected paho client plus the acknowledgements it received."""

    client: mqtt.Client
    cfg: MqttConfig = field(repr=False)
    _acks: dict[int, ReasonCode] = field(default_factory=dict, repr=False)
    _subacks: dict[int, list[ReasonCode]] = field(default_factory=dict, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def _wait(self, table: dict[int, Any], mid: int, timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while mid not in table:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceUnavailable(
                        f"MQTT broker {self.cfg.host}:{self.cfg.port} did not acknowledge {what} "
                        f"within {timeout_s:.0f} s"
                    )
                self._cond.wait(left)
            return table.pop(mid)

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout_s: float = ACK_TIMEOUT_S,
    ) -> ReasonCode:
        """Publish at QoS 1 and return the broker's PUBACK reason code
        (MQTT v5: 0x87 "Not authorized" when the ACL refused it)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ServiceUnavailable(
                f"MQTT publish to {topic!r} failed: {mqtt.error_string(info.rc)}"
            )
        if qos == 0:
            return ReasonCode(PacketTypes.PUBACK, "Success")
        code: ReasonCode = self._wait(self._acks, info.mid, timeout_s, f"publish to {topic!r}")
        return code

    def subscribe(
        self, topic: str, *, qos: int = 1, timeout_s: float = ACK_TIMEOUT_S
    ) -> ReasonCode:
        """Subscribe and return the SUBACK reason code for ``topic``."""
        rc, mid = self.client.subscribe(topic, qos=qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise ServiceUnavailable(f"MQTT subscribe to {topic!r} failed: {mqtt.error_string(rc)}")
        codes: list[ReasonCode] = self._wait(self._subacks, mid, timeout_s, f"subscribe {topic!r}")
        return codes[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _tls_error(cfg: MqttConfig, exc: BaseException) -> PostmonError:
    return PostmonError(
        f"TLS to MQTT broker {cfg.host}:{cfg.port} failed: {exc}",
        Reason.AUTH_FAILED,
        hint=(
            "the broker's certificate must be signed by the CA in [mqtt] tls_ca_file and name "
            f"{cfg.host!r}; check tls_ca_file and the broker's certfile (see docs/SECURITY.md)"
            if cfg.tls_ca_file
            else "this broker speaks TLS: set [mqtt] tls_ca_file to the CA that signed it"
        ),
    )


def _connack_error(cfg: MqttConfig, code: ReasonCode) -> PostmonError:
    name = code.getName()
    if name in ("Not authorized", "Bad user name or password"):
        if not cfg.username:
            return MqttAccessDenied(
                f"MQTT broker {cfg.host}:{cfg.port} refused an anonymous connection ({name})",
                hint="set [mqtt] username and the password in $POSTMON_MQTT_PASSWORD or "
                "$POSTMON_MQTT_PASSWORD_FILE (accounts are made by `postmon security mqtt-acl`)",
            )
        return MqttAccessDenied(
            f"MQTT broker {cfg.host}:{cfg.port} refused user {cfg.username!r} ({name})",
            hint="check that $POSTMON_MQTT_PASSWORD / $POSTMON_MQTT_PASSWORD_FILE holds this "
            "account's password (OUT/secrets/mqtt-<user>.password from `postmon security "
            "mqtt-acl`) and that the broker loaded the matching password_file",
        )
    return ServiceUnavailable(f"MQTT broker {cfg.host}:{cfg.port} refused the connection: {name}")


class TlsSafeClient(mqtt.Client):
    """paho's client, closing the TLS socket when the handshake fails.

    paho 2.2 leaves the half-open ``SSLSocket`` of a failed handshake to the
    garbage collector (a ResourceWarning, and an open descriptor until then).
    The context's ``check_hostname`` (on by default) already verifies the
    host name during the handshake, so nothing of paho's is skipped here.
    """

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        context = self._ssl_context
        if context is None or not context.check_hostname:
            return super()._ssl_wrap_socket(tcp_sock)
        ssl_sock = context.wrap_socket(
            tcp_sock, server_hostname=self._host, do_handshake_on_connect=False
        )
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


def make_client(cfg: MqttConfig, client_id: str | None = None) -> mqtt.Client:
    """A paho v2 client with the config's credentials and TLS settings (not connected)."""
    client = TlsSafeClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"postmon-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
    )
    # paho's protocol trace at debug level (it never logs the password: a test checks)
    client.enable_logger(logging.getLogger("postmon.mqtt.paho"))
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password or None)
    if cfg.tls_ca_file:
        # hostname checking stays on: the certificate must name cfg.host
        client.tls_set(ca_certs=cfg.tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


def connect(
    cfg: MqttConfig, client_id: str | None = None, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> Session:
    """Connect and wait for CONNACK; raise a postmon error that says what to fix."""
    client = make_client(cfg, client_id)
    session = Session(client, cfg)
    connack: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        connack.append(rc)
        done.set()

    def on_publish(_c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with session._cond:
            session._acks[mid] = rc
            session._cond.notify_all()

    def on_subscribe(_c: Any, _u: Any, mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        with session._cond:
            session._subacks[mid] = rcs
            session._cond.notify_all()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    try:
        client.connect(cfg.host, cfg.port, keepalive=max(5, int(cfg.keepalive_s)))
    except ssl.SSLError as exc:
        raise _tls_error(cfg, exc) from None
    except OSError as exc:
        raise ServiceUnavailable(
            f"MQTT broker {cfg.host}:{cfg.port} is not reachable ({exc})",
            hint="check [mqtt] host/port; for the local services run `postmon services up`",
        ) from None
    client.loop_start()
    if not done.wait(timeout_s):
        client.loop_stop()
        raise ServiceUnavailable(
            f"MQTT broker {cfg.host}:{cfg.port} sent no CONNACK within {timeout_s:.0f} s",
            hint="is this port a TLS listener? then set [mqtt] tls_ca_file",
        )
    if connack[0].is_failure:
        client.loop_stop()
        raise _connack_error(cfg, connack[0])
    log.debug("mqtt connected to %s:%d as %s", cfg.host, cfg.port, cfg.username or "(anonymous)")
    return session


@contextmanager
def session(cfg: MqttConfig, client_id: str | None = None) -> Iterator[Session]:
    s = connect(cfg, client_id)
    try:
        yield s
    finally:
        s.close()

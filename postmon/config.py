"""Configuration: one TOML file plus environment overrides for secrets.

Every component has one frozen dataclass with units in its field names.
``from_table`` validates a TOML table against such a dataclass using its type
hints, and errors name the key, the bad value and what is allowed.
Secrets (passwords, tokens) come from the environment (``POSTMON_*``) or from
files with safe permissions, never from the committed TOML.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from analysis.settings import PLACEMENTS
from postmon.errors import ConfigError
from postmon.security.pseudonym import check_pseudonym, check_site
from postmon.security.redact import install_log_redaction, register_secret

T = TypeVar("T")

DEFAULT_MQTT_PORT = 18830  # not 1883: never collide with a system-wide broker
DEFAULT_INFLUX_PORT = 18086  # not 8086: never collide with a system-wide InfluxDB


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one TOML value against a type hint; raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} is not a valid {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: {value!r} is not allowed; expected one of {allowed}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_t = args[0] if args else Any
        return tuple(_coerce(v, item_t, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return from_table(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            # TOML has nan and inf; no setting means either, and range checks
            # like "x > 0" are silently false/true for them
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path string, got {value!r}")
        return Path(value)
    return value


def from_table(cls: type[T], table: Mapping[str, Any], where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a TOML table, validating types.

    Unknown keys are errors (a typo must not silently fall back to a default).
    After type checks, the dataclass's own ``__post_init__`` may raise
    ``ValueError`` for range checks; it is re-raised as ConfigError naming
    the table.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields))
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    missing = sorted(
        f.name
        for f in fields.values()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in table
    )
    if missing:
        raise ConfigError(f"{where or cls.__name__}: missing required key(s) {', '.join(missing)}")
    kwargs = {}
    for name, value in table.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(value, hints[name], key)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def read_secret(env_var: str, *, file_env_var: str | None = None) -> str | None:
    """A secret from ``$ENV_VAR`` or from the file named by ``$ENV_VAR_FILE``.

    The file must not be readable by group or others (like ssh keys).
    """
    value = os.environ.get(env_var)
    if value:
        register_secret(value)  # log output redacts it from now on
        return value
    file_var = file_env_var or f"{env_var}_FILE"
    path = os.environ.get(file_var)
    if not path:
        return None
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{file_var}={path}: cannot read secret file ({exc})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{file_var}={path}: secret file is readable by others (mode {oct(mode & 0o777)})",
            hint=f"chmod 600 {path}",
        )
    secret = p.read_text(encoding="utf-8").strip()
    if not secret:
        # an empty file would silently mean "no password": refuse it
        raise ConfigError(
            f"{file_var}={path}: secret file is empty", hint="write the secret into it"
        )
    register_secret(secret)  # log output redacts it from now on
    return secret


# ---------------------------------------------------------------- components


@dataclass(frozen=True)
class ServicesConfig:
    """Local services started by ``postmon services up`` (dev, tests, demo)."""

    state_dir: Path = Path(".postmon")
    mqtt_port: int = DEFAULT_MQTT_PORT
    influx_port: int = DEFAULT_INFLUX_PORT
    influx_rpc_port: int = 18088

    def __post_init__(self) -> None:
        for name in ("mqtt_port", "influx_port", "influx_rpc_port"):
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise ValueError(f"{name}={port} is not a TCP port (1..65535)")


@dataclass(frozen=True)
class InfluxConfig:
    """InfluxDB v1 HTTP API (/write, /query); 2.x/3.x via v1 compatibility."""

    url: str = f"http://127.0.0.1:{DEFAULT_INFLUX_PORT}"
    database: str = "postmon"
    username: str = ""
    #: never in the TOML: from $POSTMON_INFLUX_PASSWORD or $POSTMON_INFLUX_PASSWORD_FILE
    password: str = field(default="", repr=False)
    timeout_s: float = 10.0
    #: v1 = /write + /query (1.x; 2.x/3.x v1 compatibility); v2 = influxdb-client /api/v2/write
    backend: Literal["v1", "v2"] = "v1"
    #: never in the TOML: from $POSTMON_INFLUX_TOKEN (2.x/3.x; sent as "Authorization: Token")
    token: str = field(default="", repr=False)
    org: str = ""  # v2 backend
    bucket_template: str = "{database}/{rp}"  # v2 backend: bucket per retention policy
    #: create the database and retention policies at startup (needs admin rights on 1.x)
    create_schema: bool = True
    gzip: bool = True
    batch_points: int = 5000  # a write is sent when this many points wait ...
    flush_interval_s: float = 1.0  # ... or when the oldest has waited this long
    max_buffer_points: int = 200_000  # in memory; producers wait beyond it (backpressure)
    retry_initial_s: float = 0.5  # exponential backoff with full jitter ...
    retry_max_s: float = 30.0  # ... capped here
    spool_after_s: float = 5.0  # unreachable this long: batches go to the disk spool
    spool_dir: Path = Path(".postmon/spool/influx")
    spool_max_mb: float = 1024.0  # beyond it the oldest spooled data is dropped (counted, logged)
    downsample_interval_s: float = 60.0  # activity roll-ups recomputed this often

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url={self.url!r} must start with http:// or https://")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s={self.timeout_s} must be > 0")
        for name in ("batch_points", "max_buffer_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.max_buffer_points < self.batch_points:
            raise ValueError(
                f"max_buffer_points={self.max_buffer_points} must be >= "
                f"batch_points={self.batch_points}"
            )
        for name in (
            "flush_interval_s",
            "retry_initial_s",
            "retry_max_s",
            "spool_max_mb",
            "downsample_interval_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if self.spool_after_s < 0:
            raise ValueError(f"spool_after_s={self.spool_after_s} must be >= 0")
        if "{database}" not in self.bucket_template and "{rp}" not in self.bucket_template:
            raise ValueError(
                f"bucket_template={self.bucket_template!r} must use {{database}} and/or {{rp}}"
            )


@dataclass(frozen=True)
class MqttConfig:
    """MQTT broker (paho-mqtt >= 2, MQTT v5)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_MQTT_PORT
    topic_root: str = "postmon/v1"
    username: str = ""
    #: never in the TOML: from $POSTMON_MQTT_PASSWORD or $POSTMON_MQTT_PASSWORD_FILE
    password: str = field(default="", repr=False)
    tls_ca_file: str = ""
    keepalive_s: float = 30.0
    tls_cert_file: str = ""  # client certificate (mutual TLS), with tls_key_file
    tls_key_file: str = ""
    tls_insecure: bool = False  # skip host-name verification (test brokers only)
    #: persistent sessions: the broker keeps subscriptions and queued QoS 1
    #: messages of a disconnected client this long
    session_expiry_s: float = 7 * 24 * 3600.0
    client_id: str = ""  # default: postmon-<role>-<host>-<n>; must be stable for sessions
    ingest_group: str = "postmon-ingest"  # shared-subscription group of ingest workers
    max_inflight: int = 100  # unacknowledged QoS 1 messages per client
    max_queue_msgs: int = 10_000  # publisher: in memory before the disk spool takes over
    spool_dir: Path = Path(".postmon/spool/mqtt")
    spool_max_mb: float = 512.0
    reconnect_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port={self.port} is not a TCP port (1..65535)")
        for name in ("max_inflight", "max_queue_msgs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("keepalive_s", "reconnect_max_s", "spool_max_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if not 0 <= self.session_expiry_s < 2**32:  # MQTT v5: a four-byte integer
            raise ValueError(f"session_expiry_s={self.session_expiry_s} must be in 0..4294967295")
        if any(c in self.ingest_group for c in "/#+") or not self.ingest_group:
            raise ValueError(f"ingest_group={self.ingest_group!r} must be a name without / # +")
        if self.topic_root.endswith("/") or "#" in self.topic_root or "+" in self.topic_root:
            raise ValueError(f"topic_root={self.topic_root!r} must not end in / or hold wildcards")


#: ``[[sensors]] device`` values (``collector.protocols.PROTOCOLS`` plus auto-detection)
SENSOR_TYPES = ("auto", "metamotion", "movesense", "witmotion")


@dataclass(frozen=True)
class SensorPairing:
    """One row of the pairing table: which sensor is worn by whom, where."""

    address: str
    wearer: str
    site: str = "default"
    device: str = "auto"  # auto | witmotion | movesense | metamotion
    #: where this sensor is worn (lower_back | upper_back); empty: the
    #: [analysis] table's ``placement``
    placement: str = ""
    #: a wearer day profile (desk_worker, nurse, ...): `postmon run` then
    #: starts a simulated sensor of this ``device`` type worn by a simulated
    #: wearer instead of connecting to ``address`` (trying it without hardware)
    simulate: str = ""

    def __post_init__(self) -> None:
        if not self.address:
            raise ValueError("sensor address must not be empty")
        if self.device not in SENSOR_TYPES:
            # caught here, not when the collector starts: a typo must not stop every sensor
            raise ValueError(
                f"device={self.device!r} is not a supported sensor type; "
                f"expected one of {', '.join(SENSOR_TYPES)}"
            )
        if self.placement and self.placement not in PLACEMENTS:
            raise ValueError(
                f"sensor {self.address}: placement={self.placement!r} is not one of "
                f"{', '.join(PLACEMENTS)}"
            )
        if self.simulate and self.device == "auto":
            raise ValueError(
                f"sensor {self.address}: a simulated sensor needs its device type "
                "(device = witmotion | movesense | metamotion)"
            )
        # pseudonyms only: wearer and site become MQTT topic levels and InfluxDB tags
        check_pseudonym(self.wearer)
        check_site(self.site)


def sensor_placements(pairings: Iterable[SensorPairing]) -> dict[str, str]:
    """Sensor address -> placement, for the pairing rows that name one (the
    others are analysed at the [analysis] table's ``placement``)."""
    return {p.address: p.placement for p in pairings if p.placement}


@dataclass(frozen=True)
class Config:
    """The whole service configuration (see postmon.example.toml)."""

    site: str = "default"
    #: how results leave the edge: "inprocess" (straight into InfluxDB on this host)
    #: or "mqtt" (to `postmon ingest` workers through the broker)
    transport: Literal["inprocess", "mqtt"] = "inprocess"
    services: ServicesConfig = ServicesConfig()
    influxdb: InfluxConfig = InfluxConfig()
    mqtt: MqttConfig = MqttConfig()
    sensors: tuple[SensorPairing, ...] = ()
    #: validated by analysis' own settings dataclasses where they are used
    analysis: dict[str, Any] = field(default_factory=dict)
    nudges: dict[str, Any] = field(default_factory=dict)
    collector: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_site(self.site)


#: environment overrides for the local services' ports (e.g. a second checkout on one host)
SERVICE_PORT_ENV = {
    "mqtt_port": "POSTMON_SERVICES_MQTT_PORT",
    "influx_port": "POSTMON_SERVICES_INFLUX_PORT",
    "influx_rpc_port": "POSTMON_SERVICES_INFLUX_RPC_PORT",
}


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"${name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"${name}={port} is not a TCP port (1..65535)")
    return port


def _follow_local_services(cfg: Config) -> Config:
    """Clients left at the local services' default address follow moved ports.

    ``postmon services up`` honours ``POSTMON_SERVICES_*_PORT``; a config that
    does not name another broker or database (the defaults) then talks to
    those servers, not to the default ports where nothing of ours may run.
    """
    svc = cfg.services
    mqtt, influx = cfg.mqtt, cfg.influxdb
    if (mqtt.host, mqtt.port) == ("127.0.0.1", DEFAULT_MQTT_PORT):
        mqtt = dataclasses.replace(mqtt, port=svc.mqtt_port)
    if influx.url == f"http://127.0.0.1:{DEFAULT_INFLUX_PORT}":
        influx = dataclasses.replace(influx, url=f"http://127.0.0.1:{svc.influx_port}")
    return dataclasses.replace(cfg, mqtt=mqtt, influxdb=influx)


def _apply_env(cfg: Config) -> Config:
    svc = cfg.services
    env = SERVICE_PORT_ENV
    svc = dataclasses.replace(
        svc,
        mqtt_port=_env_port(env["mqtt_port"], svc.mqtt_port),
        influx_port=_env_port(env["influx_port"], svc.influx_port),
        influx_rpc_port=_env_port(env["influx_rpc_port"], svc.influx_rpc_port),
    )
    cfg = dataclasses.replace(cfg, services=svc)
    cfg = _follow_local_services(cfg)
    influx_pw = read_secret("POSTMON_INFLUX_PASSWORD") or cfg.influxdb.password
    influx_token = read_secret("POSTMON_INFLUX_TOKEN") or cfg.influxdb.token
    mqtt_pw = read_secret("POSTMON_MQTT_PASSWORD") or cfg.mqtt.password
    influx_url = os.environ.get("POSTMON_INFLUX_URL") or cfg.influxdb.url
    return dataclasses.replace(
        cfg,
        influxdb=dataclasses.replace(
            cfg.influxdb, password=influx_pw, url=influx_url, token=influx_token
        ),
        mqtt=dataclasses.replace(cfg.mqtt, password=mqtt_pw),
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the TOML file at ``path`` (defaults if None)."""
    table: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(
                f"config file {p} not found",
                hint="copy postmon.example.toml and edit it, or omit --config for defaults",
            ) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{p}: not a text file (byte {exc.start} is not UTF-8)",
                hint="a config file is UTF-8 TOML text; see postmon.example.toml",
            ) from exc
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
        for secret in (("influxdb", "password"), ("mqtt", "password"), ("influxdb", "token")):
            if secret[1] in table.get(secret[0], {}):
                env = f"POSTMON_{secret[0].upper().replace('DB', '')}_{secret[1].upper()}"
                raise ConfigError(
                    f"{p}: {secret[0]}.{secret[1]} must not be stored in the config file",
                    hint=f"set {env} in the environment "
                    f"(or {env}_FILE pointing to a chmod-600 file)",
                )
    cfg = _apply_env(from_table(Config, table))
    # every command loads its config after logging is set up: from here on the
    # secrets just read (and their HTTP Basic forms) are redacted from all logs
    install_log_redaction(usernames=[cfg.influxdb.username, cfg.mqtt.username])
    return cfg

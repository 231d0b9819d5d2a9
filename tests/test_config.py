from __future__ import annotations

import os
from pathlib import Path

import pytest

from postmon.config import SERVICE_PORT_ENV, Config, load_config, read_secret
from postmon.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_example_config_loads_and_matches_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in SERVICE_PORT_ENV.values():
        monkeypatch.delenv(var, raising=False)
    cfg = load_config(REPO / "postmon.example.toml")
    assert cfg == Config()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_bad_port_names_key_and_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt.*port=70000.*1\.\.65535"):
        load_config(_write(tmp_path, "[mqtt]\nport = 70000\n"))


def test_wrong_type_names_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"influxdb\.timeout_s: expected a number, got 'ten'"):
        load_config(_write(tmp_path, '[influxdb]\ntimeout_s = "ten"\n'))


def test_unknown_key_lists_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) databse; allowed: .*database"):
        load_config(_write(tmp_path, '[influxdb]\ndatabse = "x"\n'))


def test_password_in_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must not be stored"):
        load_config(_write(tmp_path, '[mqtt]\npassword = "hunter2"\n'))


def test_pairing_rejects_names(tmp_path: Path) -> None:
    text = '[[sensors]]\naddress = "AA:BB"\nwearer = "Jane Doe"\n'
    with pytest.raises(ConfigError, match="pseudonym"):
        load_config(_write(tmp_path, text))


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[mqtt\n"))


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMON_MQTT_PASSWORD", "s3cret")
    assert load_config(None).mqtt.password == "s3cret"
    assert "s3cret" not in repr(load_config(None))
    monkeypatch.delenv("POSTMON_MQTT_PASSWORD")
    f = tmp_path / "pw"
    f.write_text("fromfile\n")
    os.chmod(f, 0o600)
    monkeypatch.setenv("POSTMON_X_FILE", str(f))
    assert read_secret("POSTMON_X") == "fromfile"
    os.chmod(f, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_secret("POSTMON_X")


def test_service_ports_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMON_SERVICES_INFLUX_PORT", "28086")
    assert load_config(None).services.influx_port == 28086
    monkeypatch.setenv("POSTMON_SERVICES_MQTT_PORT", "nope")
    with pytest.raises(ConfigError, match="POSTMON_SERVICES_MQTT_PORT='nope'"):
        load_config(None)


def test_default_clients_follow_moved_local_services(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POSTMON_SERVICES_MQTT_PORT", "28831")
    monkeypatch.setenv("POSTMON_SERVICES_INFLUX_PORT", "28087")
    monkeypatch.delenv("POSTMON_INFLUX_URL", raising=False)
    cfg = load_config(None)
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("127.0.0.1", 28831)
    assert cfg.influxdb.url == "http://127.0.0.1:28087"
    # a config naming other servers keeps them
    other = tmp_path / "other.toml"
    other.write_text(
        '[mqtt]\nhost = "broker.clinic.lan"\n[influxdb]\nurl = "https://tsdb.clinic.lan:8086"\n',
        encoding="utf-8",
    )
    cfg = load_config(other)
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("broker.clinic.lan", 18830)
    assert cfg.influxdb.url == "https://tsdb.clinic.lan:8086"

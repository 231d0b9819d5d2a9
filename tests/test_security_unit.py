"""Security building blocks without servers: pseudonyms, ACL text, secrets, redaction, PKI."""

from __future__ import annotations

import base64
import datetime as dt
import io
import ipaddress
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from postmon.config import Config, MqttConfig, SensorPairing, load_config, read_secret
from postmon.errors import ConfigError
from postmon.security.influx import explain_http_error, quote_string
from postmon.security.mqtt_acl import accounts_for, render_acl
from postmon.security.pki import make_ca, make_ca_and_server, make_server_cert
from postmon.security.pseudonym import is_pseudonym, pseudonym_problem, site_problem
from postmon.security.redact import REDACTED, install_log_redaction, redact_influxql
from postmon.security.secrets import read_secret_file, write_secret_file

# ------------------------------------------------------------------ pseudonyms


@pytest.mark.parametrize("ok", ["p017", "w-0042", "P_9", "3", "a" * 63 + "1"])
def test_pseudonyms_accepted(ok: str) -> None:
    assert is_pseudonym(ok)


@pytest.mark.parametrize(
    "bad",
    [
        "alice",  # a name: no digit
        "JohnSmith",
        "Jane Doe",
        "john.smith1",  # dots: names and e-mail addresses
        "jane@clinic1",
        "p/017",  # would add a topic level
        "p+1",  # MQTT wildcards would widen subscriptions and ACL matches
        "p#1",
        "p,1",  # line-protocol syntax
        "p=1",
        "p'1",
        "-p1",
        "",
        "é1",
        "a" * 64 + "1",
    ],
)
def test_non_pseudonyms_refused(bad: str) -> None:
    assert not is_pseudonym(bad)
    assert "p017" in (pseudonym_problem(bad) or "")  # the message shows what to use


def test_sites() -> None:
    assert site_problem("clinic-a") is None
    assert site_problem("ward3") is None
    for bad in ("clinic a", "a/b", "+", "#", "", "_probe", "x" * 65):
        assert site_problem(bad) is not None, bad


def test_config_refuses_names_and_bad_sites(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[[sensors]]\naddress = "AA:BB"\nwearer = "alice"\n')
    with pytest.raises(ConfigError, match=r"alice.*pseudonym"):
        load_config(p)
    p.write_text('[[sensors]]\naddress = "AA:BB"\nwearer = "p1"\nsite = "ward/3"\n')
    with pytest.raises(ConfigError, match="site"):
        load_config(p)
    p.write_text('site = "clinic a"\n')
    with pytest.raises(ConfigError, match="site"):
        load_config(p)


# ------------------------------------------------------------------ MQTT ACL


def test_acl_text_for_two_sites() -> None:
    cfg = Config(
        site="north",
        mqtt=MqttConfig(topic_root="pm/v1"),
        sensors=(
            SensorPairing("AA", "p1", site="north"),
            SensorPairing("BB", "p2", site="south"),
            SensorPairing("CC", "p3", site="south"),
        ),
    )
    accounts = accounts_for(cfg, extra_sites=["east"])
    acl = render_acl(accounts, "pm/v1")
    rules = [ln for ln in acl.splitlines() if ln and not ln.startswith("#")]
    assert rules == [
        "user collector-east",
        "topic readwrite pm/v1/east/#",
        "user collector-north",
        "topic readwrite pm/v1/north/#",
        "user collector-south",
        "topic readwrite pm/v1/south/#",
        "user ingest",
        "topic read pm/v1/#",
        "user admin",
        "topic readwrite pm/v1/#",
    ]
    # rules[0] is a user line: there is no anonymous section granting anything


def test_wearer_app_accounts_read_only_their_nudges() -> None:
    cfg = Config(
        mqtt=MqttConfig(topic_root="pm/v1"),
        sensors=(
            SensorPairing("AA", "p1", site="north"),
            SensorPairing("BB", "p2", site="south"),
            SensorPairing("CC", "p1", site="south"),  # one wearer, two sites (moved)
        ),
    )
    assert [a.username for a in accounts_for(cfg)] == [
        "collector-default",
        "collector-north",
        "collector-south",
        "ingest",
        "admin",
    ]
    acl = render_acl(accounts_for(cfg, wearer_apps=True), "pm/v1")
    rules = [ln for ln in acl.splitlines() if ln and not ln.startswith("#")]
    assert rules[-5:] == [
        "user app-p1",
        "topic read pm/v1/north/p1/nudges",
        "topic read pm/v1/south/p1/nudges",
        "user app-p2",
        "topic read pm/v1/south/p2/nudges",
    ]


def test_acl_refuses_bad_extra_site() -> None:
    with pytest.raises(ValueError, match="site"):
        accounts_for(Config(), extra_sites=["a/#"])


# ------------------------------------------------------------------ secrets


def test_secret_file_is_owner_only_and_read_back(tmp_path: Path) -> None:
    p = tmp_path / "s" / "x.password"
    write_secret_file(p, "correct horse battery")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert read_secret_file(p) == "correct horse battery"
    os.chmod(p, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_secret_file(p)
    with pytest.raises(ValueError, match="one non-empty line"):
        write_secret_file(p, "two\nlines")


def test_empty_secret_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "pw"
    f.write_text("\n")
    os.chmod(f, 0o600)
    monkeypatch.delenv("POSTMON_T", raising=False)
    monkeypatch.setenv("POSTMON_T_FILE", str(f))
    with pytest.raises(ConfigError, match="empty"):
        read_secret("POSTMON_T")


# ------------------------------------------------------------------ redaction


def test_influxql_password_redacted() -> None:
    assert (
        redact_influxql("CREATE USER \"w\" WITH PASSWORD 'a\\'b' WITH ALL PRIVILEGES")
        == f'CREATE USER "w" WITH PASSWORD {REDACTED} WITH ALL PRIVILEGES'
    )
    assert (
        redact_influxql("SET PASSWORD FOR \"w\" = 'x\\'y'") == f'SET PASSWORD FOR "w" = {REDACTED}'
    )
    assert redact_influxql("SHOW USERS") == "SHOW USERS"
    assert quote_string("a'b\\c") == "'a\\'b\\\\c'"


def test_log_filter_redacts_secret_and_basic_auth_form() -> None:
    secret = "s3cr3t-Value-9"
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_log_redaction([secret], usernames=["writer"])
        log = logging.getLogger("postmon.test.redact")
        log.setLevel(logging.DEBUG)
        basic = base64.b64encode(f"writer:{secret}".encode()).decode()
        log.debug("password is %s", secret)
        log.debug("header Authorization: Basic %s", basic)
        try:
            raise RuntimeError(f"failed with {secret}")
        except RuntimeError:
            log.exception("boom")
    finally:
        root.removeHandler(handler)
    text = buf.getvalue()
    assert secret not in text
    assert basic not in text
    assert text.count(REDACTED) >= 3


def test_http_errors_say_what_to_do() -> None:
    e = explain_http_error(
        401,
        '{"error":"unable to parse authentication credentials"}',
        url="http://h:1",
        username="",
        action="writing",
    )
    assert "requires authentication" in str(e)
    assert "POSTMON_INFLUX_PASSWORD" in str(e)
    e = explain_http_error(
        401, '{"error":"authorization failed"}', url="http://h:1", username="w", action="writing"
    )
    assert "wrong password" in str(e)
    assert "--rotate" in str(e)
    e = explain_http_error(403, '{"error":"x"}', url="http://h:1", username="r", action="w")
    assert "privilege" in str(e)


# ------------------------------------------------------------------ PKI


def test_server_cert_is_signed_by_ca_for_loopback_names() -> None:
    ca, ca_key = make_ca()
    cert, _key = make_server_cert(ca, ca_key, ("127.0.0.1", "localhost"))
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    other_ca, _ = make_ca("someone else")
    with pytest.raises(ValueError, match=r"(?i)signature|issuer"):
        cert.verify_directly_issued_by(other_ca)


def test_ca_kept_across_runs_keys_owner_only(tmp_path: Path) -> None:
    first = make_ca_and_server(tmp_path)
    ca_bytes = first.ca_cert.read_bytes()
    srv_bytes = first.server_cert.read_bytes()
    second = make_ca_and_server(tmp_path, ("10.0.0.5",))
    assert second.ca_cert.read_bytes() == ca_bytes  # clients keep trusting the same CA
    assert second.server_cert.read_bytes() != srv_bytes
    for key in (second.ca_key, second.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    cert = x509.load_pem_x509_certificate(second.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_bytes)
    cert.verify_directly_issued_by(ca)


def test_loading_the_config_redacts_its_secrets_from_every_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any command (ingest, run, ...) loads its config after logging is set up:
    from then on its secrets are redacted, whatever logs them."""
    secret = "Kx9-loaded-from-env-Q2"
    monkeypatch.setenv("POSTMON_INFLUX_PASSWORD", secret)
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('[influxdb]\nusername = "ingest_w"\n')
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        cfg = load_config(cfg_file)
        assert cfg.influxdb.password == secret
        basic = base64.b64encode(f"ingest_w:{secret}".encode()).decode()
        logging.getLogger("some.library").warning(
            "sent Authorization: Basic %s / %s", basic, secret
        )
    finally:
        root.removeHandler(handler)
    assert secret not in buf.getvalue()
    assert basic not in buf.getvalue()
    assert buf.getvalue().count(REDACTED) == 2

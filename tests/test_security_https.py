"""InfluxDB over HTTPS with the local CA: trusted with the CA, refused without.

A private influxd with ``https-enabled`` and ``auth-enabled`` (certificate
from ``postmon security tls``); postmon's admin client and the production
writer talk to it through TLS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from postmon.config import InfluxConfig, ServicesConfig
from postmon.errors import PostmonError, Reason
from postmon.security.influx import (
    WRITER_USER,
    InfluxHttp,
    bootstrap_admin_with_file,
    provision_users,
)
from postmon.security.local import SecureLocalServices
from postmon.security.pki import make_ca_and_server
from postmon.security.secrets import read_secret_file
from tests.conftest import free_port

pytestmark = pytest.mark.integration

DB = "postmon_tls"


@dataclass(frozen=True)
class HttpsInflux:
    url: str
    ca: Path
    out: Path

    def http(self, user: str, *, ca: bool = True) -> InfluxHttp:
        pw = read_secret_file(self.out / "secrets" / f"influx-{user}.password")
        return InfluxHttp(self.url, user, pw, ca_file=str(self.ca) if ca else "")


@pytest.fixture(scope="module")
def https_influx() -> Iterator[HttpsInflux]:
    base = Path(tempfile.mkdtemp(prefix="postmon-https-"))
    svc: SecureLocalServices | None = None
    try:
        os.chmod(base, 0o711)
        out = base / "out"
        certs = make_ca_and_server(out / "tls")
        svc = SecureLocalServices(
            ServicesConfig(base / "services", free_port(), free_port(), free_port()),
            influx_auth=True,
            influx_tls=(certs.server_cert, certs.server_key, certs.ca_cert),
        )
        svc.up(log=lambda _m: None)
        assert svc.influx_url.startswith("https://")
        admin = bootstrap_admin_with_file(
            InfluxHttp(svc.influx_url, ca_file=str(certs.ca_cert)), out
        )
        provision_users(
            InfluxHttp(
                svc.influx_url,
                admin.username,
                read_secret_file(admin.secret_file),
                ca_file=str(certs.ca_cert),
            ),
            DB,
            out,
        )
        yield HttpsInflux(svc.influx_url, certs.ca_cert, out)
    finally:
        if svc is not None:
            svc.down(log=lambda _m: None)
        shutil.rmtree(base, ignore_errors=True)


def test_https_with_the_ca_works_without_it_fails(
    https_influx: HttpsInflux, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = https_influx
    h.http(WRITER_USER).write("tls_probe,site=a,wearer=p001 v=1 1700000000\n", DB, precision="s")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(PostmonError, match="CERTIFICATE_VERIFY_FAILED") as e:
        h.http(WRITER_USER, ca=False).write("tls_probe v=2 1700000000\n", DB, precision="s")
    assert e.value.reason is Reason.AUTH_FAILED
    assert "SSL_CERT_FILE" in str(e.value)
    # plaintext HTTP to the HTTPS port is not served
    plain = InfluxHttp(h.url.replace("https://", "http://"), WRITER_USER, "x")
    with pytest.raises(PostmonError):
        plain.write("tls_probe v=3 1700000000\n", DB, precision="s")
    rows = h.http("postmon_admin").query("SELECT v FROM tls_probe", DB)
    assert rows[0]["series"][0]["values"] == [["2023-11-14T22:13:20Z", 1]]


def test_production_writer_over_https_trusting_the_ca(
    https_influx: HttpsInflux, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from postmon.store.writer import Writer
    from tests.store_helpers import make_epochs, recent_hour_ns

    h = https_influx
    monkeypatch.setenv("SSL_CERT_FILE", str(h.ca))  # how an ingest host trusts the local CA
    from postmon.store.http import make_backend

    admin = h.http("postmon_admin")
    schema = make_backend(
        InfluxConfig(url=h.url, database=DB, username=admin.username, password=admin.password)
    )
    try:
        schema.ensure_database()  # retention policies: the admin's job, once
    finally:
        schema.close()
    cfg = InfluxConfig(
        url=h.url,
        database=DB,
        username=WRITER_USER,
        password=read_secret_file(h.out / "secrets" / f"influx-{WRITER_USER}.password"),
        create_schema=False,
        spool_dir=tmp_path / "spool",
        flush_interval_s=0.05,
    )
    with Writer(cfg, name="tls") as w:
        w.write_epochs("clinic-a", "p005", "AA", make_epochs(5, recent_hour_ns(2), 90))
        assert w.flush(20)
    assert w.stats().written == 90
    res = h.http("postmon_admin").query(
        "SELECT count(activity_code) FROM epoch WHERE wearer = 'p005'", DB
    )
    assert res[0]["series"][0]["values"][0][1] == 90

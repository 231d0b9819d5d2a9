"""MQTT accounts/ACLs, TLS and InfluxDB users against real, secured servers.

Everything runs on the security tests' own Mosquitto and InfluxDB
(``tests/security_stack.py``): auth, generated ACLs and TLS on.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postmon.errors import PostmonError, Reason, ServiceUnavailable
from postmon.security.influx import READER_USER, WRITER_USER, InfluxAccessDenied, InfluxHttp
from postmon.security.mqtt import MqttAccessDenied, Session, connect, session
from postmon.security.mqtt_acl import ADMIN_USER
from postmon.security.pki import make_ca_and_server
from tests.security_stack import (
    INGEST_USER,
    ROOT,
    SITE_A,
    SITE_B,
    SecureStack,
    collector_user,
    secure_stack_fixture,  # noqa: F401  (the secure_stack fixture)
)

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87


class Inbox:
    """Messages received by one session, in arrival order."""

    def __init__(self, s: Session) -> None:
        self.items: list[tuple[str, bytes]] = []
        self._lock = threading.RLock()
        s.client.on_message = self._on

    def _on(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._lock:
            self.items.append((msg.topic, bytes(msg.payload)))

    def wait_for(
        self, pred: Callable[[list[tuple[str, bytes]]], bool], timeout_s: float = 5
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if pred(self.items):
                    return
            time.sleep(0.01)
        raise AssertionError(f"timed out; received {self.items}")

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [p for _t, p in self.items]


# ------------------------------------------------------------ authentication


def test_anonymous_and_wrong_passwords_are_refused(secure_stack: SecureStack) -> None:
    s = secure_stack
    with pytest.raises(MqttAccessDenied, match="anonymous") as e:
        connect(s.mqtt(""))
    assert "POSTMON_MQTT_PASSWORD" in str(e.value)
    with pytest.raises(MqttAccessDenied, match=f"refused user '{INGEST_USER}'") as e:
        connect(s.mqtt(INGEST_USER, password="not-the-password"))
    assert "mqtt-acl" in str(e.value)
    # one site's password does not open another site's account
    pw_a = s.mqtt(collector_user(SITE_A)).password
    with pytest.raises(MqttAccessDenied):
        connect(s.mqtt(collector_user(SITE_B), password=pw_a))
    connect(s.mqtt(INGEST_USER)).close()


# ------------------------------------------------------------------- the ACL


def test_collector_publishes_only_its_own_site(secure_stack: SecureStack) -> None:
    s = secure_stack
    with session(s.mqtt(INGEST_USER)) as ing:
        inbox = Inbox(ing)
        assert not ing.subscribe(f"$share/postmon-ingest/{ROOT}/#").is_failure
        with session(s.mqtt(collector_user(SITE_A))) as col:
            own = col.publish(f"{ROOT}/{SITE_A}/p001/epoch", b"own")
            forged = col.publish(f"{ROOT}/{SITE_B}/p101/epoch", b"forged")
            outside = col.publish("elsewhere/p001", b"outside")
            # one publisher, one subscriber: delivery keeps order, so anything
            # delivered from above would arrive before this marker
            col.publish(f"{ROOT}/{SITE_A}/p001/marker", b"end")
        inbox.wait_for(lambda items: (f"{ROOT}/{SITE_A}/p001/marker", b"end") in items)
    assert not own.is_failure
    assert forged.value == NOT_AUTHORIZED
    assert outside.value == NOT_AUTHORIZED
    assert inbox.payloads() == [b"own", b"end"]


def test_collector_cannot_read_other_sites(secure_stack: SecureStack) -> None:
    s = secure_stack
    with (
        session(s.mqtt(collector_user(SITE_A))) as col_a,
        session(s.mqtt(collector_user(SITE_B))) as col_b,
        session(s.mqtt(ADMIN_USER)) as admin,
    ):
        inbox = Inbox(col_a)
        # Mosquitto 2.0's acl_file grants every SUBSCRIBE and checks "read" on each
        # message at delivery; a broker that refuses the SUBSCRIBE itself is as good
        codes = [col_a.subscribe(f"{ROOT}/{SITE_B}/#"), col_a.subscribe(f"{ROOT}/#")]
        assert not col_b.publish(f"{ROOT}/{SITE_B}/p101/epoch", b"site-b-data").is_failure
        assert not col_b.publish(
            f"{ROOT}/{SITE_B}/p101/status", b"retained-b", retain=True
        ).is_failure
        # col_b's messages were routed (PUBACKs above) before this marker is published
        assert not admin.publish(f"{ROOT}/{SITE_A}/p001/marker", b"end").is_failure
        if all(c.is_failure for c in codes):
            time.sleep(0.5)
        else:
            inbox.wait_for(lambda items: b"end" in [p for _t, p in items])
        assert admin.publish(f"{ROOT}/{SITE_B}/p101/status", b"", retain=True).value == 0
    assert b"site-b-data" not in inbox.payloads()
    assert b"retained-b" not in inbox.payloads()
    assert inbox.payloads() in ([b"end"], [])


def test_ingest_reads_all_sites_via_shared_subscription_but_cannot_publish(
    secure_stack: SecureStack,
) -> None:
    s = secure_stack
    group = f"$share/ingest-test/{ROOT}/#"
    sent = [(site, i) for i in range(10) for site in (SITE_A, SITE_B)]
    with (
        session(s.mqtt(INGEST_USER), "ingest-w1") as w1,
        session(s.mqtt(INGEST_USER), "ingest-w2") as w2,
        session(s.mqtt(collector_user(SITE_A))) as col_a,
        session(s.mqtt(collector_user(SITE_B))) as col_b,
    ):
        in1, in2 = Inbox(w1), Inbox(w2)
        assert not w1.subscribe(group).is_failure
        assert not w2.subscribe(group).is_failure
        for site, i in sent:
            col = col_a if site == SITE_A else col_b
            assert not col.publish(
                f"{ROOT}/{site}/p{i:03d}/epoch", f"{site}:{i}".encode()
            ).is_failure
        denied = w1.publish(f"{ROOT}/{SITE_A}/p001/epoch", b"from-ingest")
        in1.wait_for(lambda _i: len(in1.payloads()) + len(in2.payloads()) >= len(sent))
        time.sleep(0.2)  # a duplicate or the denied message would show up now
    got = in1.payloads() + in2.payloads()
    assert sorted(got) == sorted(f"{site}:{i}".encode() for site, i in sent)
    assert in1.payloads()  # the group really shares the load
    assert in2.payloads()
    assert denied.value == NOT_AUTHORIZED


def test_wearer_app_sees_only_its_own_nudges(secure_stack: SecureStack) -> None:
    from postmon.security.mqtt_acl import app_user

    s = secure_stack
    with (
        session(s.mqtt(app_user("p001"))) as app,
        session(s.mqtt(collector_user(SITE_A))) as col,
    ):
        inbox = Inbox(app)
        app.subscribe(f"{ROOT}/{SITE_A}/#")
        for wearer in ("p002", "p001"):  # p002's first: it would arrive before p001's
            col.publish(f"{ROOT}/{SITE_A}/{wearer}/epochs", f"{wearer}-epochs".encode())
            col.publish(f"{ROOT}/{SITE_A}/{wearer}/nudges", f"{wearer}-nudge".encode())
        inbox.wait_for(lambda items: (f"{ROOT}/{SITE_A}/p001/nudges", b"p001-nudge") in items)
        forged = app.publish(f"{ROOT}/{SITE_A}/p001/nudges", b"from-app")
    assert inbox.payloads() == [b"p001-nudge"]
    assert forged.value == NOT_AUTHORIZED


# ----------------------------------------------------------------------- TLS


def test_tls_with_the_ca_connects_and_routes(secure_stack: SecureStack) -> None:
    s = secure_stack
    with (
        session(s.mqtt(INGEST_USER, tls=True)) as ing,
        session(s.mqtt(collector_user(SITE_A), tls=True)) as col,
    ):
        inbox = Inbox(ing)
        ing.subscribe(f"{ROOT}/{SITE_A}/#")
        col.publish(f"{ROOT}/{SITE_A}/p002/epoch", b"over-tls")
        inbox.wait_for(lambda items: (f"{ROOT}/{SITE_A}/p002/epoch", b"over-tls") in items)
        sock = ing.client.socket()
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_without_the_ca_fails_verification(secure_stack: SecureStack, tmp_path: Path) -> None:
    s = secure_stack
    # a client trusting only the public CAs (the system store), not the local CA
    public = dataclasses.replace(
        s.mqtt(INGEST_USER, tls=True), tls_ca_file="/etc/ssl/certs/ca-certificates.crt"
    )
    # ... or another party's CA: neither verifies the broker, and postmon says what to fix
    other = make_ca_and_server(tmp_path / "other")
    foreign = dataclasses.replace(public, tls_ca_file=str(other.ca_cert))
    for cfg in (public, foreign):
        with pytest.raises(PostmonError, match="CERTIFICATE_VERIFY_FAILED") as e:
            connect(cfg)
        assert e.value.reason is Reason.AUTH_FAILED
        assert "tls_ca_file" in str(e.value)


def test_plaintext_client_gets_nothing_from_the_tls_port(secure_stack: SecureStack) -> None:
    s = secure_stack
    cfg = dataclasses.replace(s.mqtt(INGEST_USER), port=s.tls_port)
    with pytest.raises(ServiceUnavailable):
        connect(cfg, timeout_s=2.0)


# ------------------------------------------------------------------ InfluxDB


def _raw_write(url: str, db: str, auth: tuple[str, str] | None) -> int:
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    req = urllib.request.Request(
        f"{url}/write?db={db}", data=b"probe v=1", method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def test_influx_refuses_unauthenticated_and_wrong_password_writes(
    secure_stack: SecureStack,
) -> None:
    s = secure_stack
    line = "epoch,site=clinic-a,wearer=p001,sensor=AA flexion_deg=1 1700000000\n"
    # what the server says, independently of postmon's client
    assert _raw_write(s.influx_url, s.database, None) == 401
    assert _raw_write(s.influx_url, s.database, (WRITER_USER, "wrong")) == 401
    # what postmon says
    with pytest.raises(InfluxAccessDenied) as e:
        s.http().write(line, s.database, precision="s")
    assert "requires authentication" in str(e.value)
    assert "POSTMON_INFLUX_PASSWORD" in str(e.value)
    assert e.value.exit_code == 2
    with pytest.raises(InfluxAccessDenied) as e:
        s.http(WRITER_USER, "wrong").write(line, s.database, precision="s")
    assert f"refused user '{WRITER_USER}'" in str(e.value)
    assert "wrong password" in str(e.value)
    assert "influx-users" in str(e.value)


def test_influx_users_are_least_privilege(secure_stack: SecureStack) -> None:
    s = secure_stack
    db = s.database
    writer, reader = s.http(WRITER_USER), s.http(READER_USER)
    line = "lp_probe,site=clinic-a,wearer=p003 v=42 1700000000\n"
    assert _raw_write(s.influx_url, db, (WRITER_USER, writer.password)) == 204
    writer.write(line, db, precision="s")
    rows = reader.query("SELECT v FROM lp_probe WHERE wearer = 'p003'", db)
    assert rows[0]["series"][0]["values"] == [["2023-11-14T22:13:20Z", 42]]
    with pytest.raises(InfluxAccessDenied, match="privilege"):
        reader.write(line, db, precision="s")
    # the writer reads too (its roll-ups are SELECT ... INTO) but is no admin
    assert writer.query("SELECT v FROM lp_probe", db)[0]["series"][0]["values"][0][1] == 42
    with pytest.raises(InfluxAccessDenied, match="privilege"):
        writer.query("SHOW USERS")
    with pytest.raises(InfluxAccessDenied, match="privilege"):
        writer.query('CREATE DATABASE "other"')
    with pytest.raises(InfluxAccessDenied, match="privilege"):
        writer.query("CREATE USER mallory WITH PASSWORD 'x' WITH ALL PRIVILEGES")
    with pytest.raises(InfluxAccessDenied, match="privilege"):
        reader.query("DROP SERIES FROM lp_probe", db)
    # InfluxDB 1.x: WRITE includes DROP SERIES (documented in docs/SECURITY.md)
    writer.query("DROP SERIES FROM lp_probe WHERE wearer = 'p003'", db)
    assert reader.query("SELECT v FROM lp_probe", db)[0].get("series") is None
    s.http(*_admin(s)).query('DROP MEASUREMENT "lp_probe"', db)


def _admin(s: SecureStack) -> tuple[str, str]:
    from postmon.security.secrets import read_secret_file

    return "postmon_admin", read_secret_file(s.out / "secrets" / "influx-postmon_admin.password")


def test_provisioning_is_idempotent_and_rotation_changes_passwords(
    secure_stack: SecureStack,
) -> None:
    from postmon.security.influx import provision_users

    s = secure_stack
    admin = InfluxHttp(s.influx_url, *_admin(s))
    before = s.http(WRITER_USER).password
    provision_users(admin, s.database, s.out)
    assert s.http(WRITER_USER).password == before
    s.http(WRITER_USER).write("idem v=1 1700000000\n", s.database, precision="s")
    provision_users(admin, s.database, s.out, rotate=True)
    after = s.http(WRITER_USER).password
    assert after != before
    with pytest.raises(InfluxAccessDenied, match="wrong password"):
        s.http(WRITER_USER, before).write("idem v=2 1700000000\n", s.database, precision="s")
    s.http(WRITER_USER).write("idem v=3 1700000000\n", s.database, precision="s")
    admin.query('DROP MEASUREMENT "idem"', s.database)


# ------------------------------------------------- the production clients


def test_secured_pipeline_end_to_end(secure_stack: SecureStack, tmp_path: Path) -> None:
    """Collector publisher -> TLS + ACL -> shared-subscription ingest -> writer
    account -> InfluxDB with auth: every epoch arrives, read back as reader."""
    from postmon.bus.mqtt import IngestWorker, MqttPublisher
    from postmon.store.http import make_backend
    from postmon.store.writer import Writer
    from tests.store_helpers import make_epochs, recent_hour_ns

    s = secure_stack
    n, wearer = 180, "p002"
    # the schema (retention policies) is the admin's job, once
    backend = make_backend(s.influx("postmon_admin"))
    try:
        backend.ensure_database()
    finally:
        backend.close()
    writer_cfg = dataclasses.replace(
        s.influx(WRITER_USER), create_schema=False, spool_dir=tmp_path / "w", flush_interval_s=0.05
    )
    ingest_cfg = dataclasses.replace(
        s.mqtt(INGEST_USER, tls=True), spool_dir=tmp_path / "i", ingest_group="sec-e2e"
    )
    edge_cfg = dataclasses.replace(
        s.mqtt(collector_user(SITE_A), tls=True), spool_dir=tmp_path / "e"
    )
    reader = s.http(READER_USER)
    q = f'SELECT count(activity_code) FROM "epochs_2y"."epoch" WHERE wearer = \'{wearer}\''
    with Writer(writer_cfg, name="sec-ingest") as w:
        worker = IngestWorker(ingest_cfg, w, worker_id="0").start()
        try:
            assert worker.wait_subscribed(10)
            time.sleep(0.3)  # the SUBSCRIBE reaches the broker before the first publish
            with MqttPublisher(edge_cfg, collector_id="edge-a", site=SITE_A) as pub:
                pub.publish_epochs(SITE_A, wearer, "AA", make_epochs(2, recent_hour_ns(2), n))
                assert pub.flush(15)
            deadline = time.monotonic() + 15
            count = 0
            while time.monotonic() < deadline and count < n:
                res = reader.query(q, s.database)
                count = res[0]["series"][0]["values"][0][1] if res[0].get("series") else 0
                time.sleep(0.1)
        finally:
            worker.stop()
    assert count == n
    assert worker.stats().dead_lettered == 0


@pytest.mark.parametrize("who", ["anonymous", "wrong-password", "reader-account"])
def test_writer_refused_keeps_the_data_and_says_what_to_do(
    secure_stack: SecureStack, tmp_path: Path, caplog: pytest.LogCaptureFixture, who: str
) -> None:
    from postmon.store.writer import Writer
    from tests.store_helpers import make_epochs, recent_hour_ns

    s = secure_stack
    base = {
        "anonymous": lambda: s.influx(""),
        "wrong-password": lambda: s.influx(WRITER_USER, "wrong"),
        "reader-account": lambda: s.influx(READER_USER),  # right password, no WRITE privilege
    }[who]()
    cfg = dataclasses.replace(
        base,
        spool_dir=tmp_path / "spool",
        spool_after_s=0.0,
        retry_initial_s=0.05,
        retry_max_s=0.1,
        flush_interval_s=0.05,
    )
    with caplog.at_level(logging.WARNING):
        w = Writer(cfg, name="refused").start()
        w.write_epochs(SITE_A, "p001", "AA", make_epochs(1, recent_hour_ns(2), 30))
        w.close(timeout_s=5)
    st = w.stats()
    assert st.written == 0
    assert st.spool_points == 30  # refused is not lost: it waits for the credentials
    # 401 (who are you?) and 403 (not allowed) read differently: each says its own fix
    if who == "reader-account":
        assert "HTTP 403" in caplog.text
        assert f"user '{READER_USER}' lacks the privilege for writes" in caplog.text
        assert "GRANT" in caplog.text
    else:
        assert "HTTP 401" in caplog.text
        assert "POSTMON_INFLUX_PASSWORD" in caplog.text
        wording = "no user is configured" if who == "anonymous" else "wrong password"
        assert wording in caplog.text

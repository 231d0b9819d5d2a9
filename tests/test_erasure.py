"""Right to erasure on real, secured servers, and secrets never in the logs.

A wearer's data is written to every measurement and retention policy of
InfluxDB and as retained MQTT messages at two sites; after ``erase`` none of
it is left, and another wearer's data is exactly what it was.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from postmon.config import Config, SensorPairing
from postmon.erasure import erase_wearer
from postmon.errors import ConfigError
from postmon.security.influx import READER_USER, WRITER_USER, InfluxHttp, quote_ident
from postmon.security.mqtt import connect, session
from postmon.security.mqtt_acl import ADMIN_USER
from postmon.security.redact import secret_forms
from postmon.security.secrets import read_secret_file
from postmon.store.schema import MEASUREMENTS, RETENTION_POLICIES
from tests.security_stack import (
    ROOT,
    SITE_A,
    SITE_B,
    SecureStack,
    collector_user,
    secure_stack_fixture,  # noqa: F401  (the secure_stack fixture)
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
GONE, KEPT = "p901", "p902"  # wearers of this test only (the stack is shared)
EXTRA_RP = "extra_30d"  # a policy the schema does not know: erasure must still reach it
POINTS_PER_SERIES = 3


def _admin_http(s: SecureStack) -> InfluxHttp:
    pw = read_secret_file(s.out / "secrets" / "influx-postmon_admin.password")
    return InfluxHttp(s.influx_url, "postmon_admin", pw)


def _erase_cfg(s: SecureStack, *, paired: tuple[str, ...] = (KEPT,)) -> Config:
    """The operator's config: admin accounts, the wearer already unpaired."""
    # spools of this test's own (never the repository's .postmon/spool)
    return dataclasses.replace(
        s.cfg,
        influxdb=dataclasses.replace(s.influx("postmon_admin"), spool_dir=s.out / "spool-influx"),
        mqtt=dataclasses.replace(s.mqtt(ADMIN_USER), spool_dir=s.out / "spool-mqtt"),
        sensors=tuple(SensorPairing(f"CC:{i:02d}", w, site=SITE_A) for i, w in enumerate(paired)),
    )


def _count(http: InfluxHttp, db: str, wearer: str) -> dict[str, int]:
    """Points per "rp"."measurement" for ``wearer``, counted independently of postmon.erasure."""
    out: dict[str, int] = {}
    rps = [r[0] for r in http.query("SHOW RETENTION POLICIES", db)[0]["series"][0]["values"]]
    for rp in rps:
        res = http.query(
            f"SELECT count(v) FROM {quote_ident(rp)}./.*/ WHERE wearer = '{wearer}'", db
        )
        for series in res[0].get("series", []) or []:
            out[f"{rp}.{series['name']}"] = int(series["values"][0][1])
    return out


def _seed_influx(s: SecureStack) -> dict[str, int]:
    """Write both wearers into every measurement/RP; return the expected counts per wearer."""
    admin, writer = _admin_http(s), s.http(WRITER_USER)
    db = s.database
    have = {r[0] for r in admin.query("SHOW RETENTION POLICIES", db)[0]["series"][0]["values"]}
    for rp in (
        *RETENTION_POLICIES,
        dataclasses.replace(RETENTION_POLICIES[0], name=EXTRA_RP, duration="30d"),
    ):
        if rp.name not in have:
            admin.query(
                f"CREATE RETENTION POLICY {quote_ident(rp.name)} ON {quote_ident(db)} "
                f"DURATION {rp.duration} REPLICATION 1"
            )
    now_s = int(time.time())
    targets = [(m.rp.name, m.name) for m in MEASUREMENTS]
    targets += [(EXTRA_RP, "epoch"), ("autogen", "custom_export")]  # beyond the schema
    for rp, meas in targets:
        lines = "".join(
            f"{meas},site={SITE_A},wearer={w},sensor=AA v={k} {now_s - k}\n"
            for w in (GONE, KEPT)
            for k in range(POINTS_PER_SERIES)
        )
        # the moved wearer also has history at another site: another series
        lines += f"{meas},site={SITE_B},wearer={GONE},sensor=BB v=9 {now_s}\n"
        writer.write(lines, db, rp=rp, precision="s")
    return {f"{rp}.{meas}": POINTS_PER_SERIES for rp, meas in targets}


def _retained(s: SecureStack, topic_filter: str) -> dict[str, bytes]:
    """Retained messages under ``topic_filter`` as a new subscriber sees them."""
    got: dict[str, bytes] = {}
    marker = f"{ROOT}/_test/{time.monotonic_ns()}"
    with session(s.mqtt(ADMIN_USER)) as sub:
        seen: list[bool] = []

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            if msg.topic == marker:
                seen.append(True)
            elif msg.retain and msg.payload:
                got[msg.topic] = bytes(msg.payload)

        sub.client.on_message = on_message
        sub.subscribe(topic_filter)
        sub.subscribe(marker)
        sub.publish(marker, b"")
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen
    return got


def _seed_retained(s: SecureStack) -> None:
    with (
        session(s.mqtt(collector_user(SITE_A))) as a,
        session(s.mqtt(collector_user(SITE_B))) as b,
    ):
        for topic, col in (
            (f"{ROOT}/{SITE_A}/{GONE}/status", a),
            (f"{ROOT}/{SITE_A}/{GONE}/calibration", a),
            (f"{ROOT}/{SITE_B}/{GONE}/status", b),
            (f"{ROOT}/{SITE_A}/{KEPT}/status", a),
        ):
            assert not col.publish(topic, f"retained:{topic}".encode(), retain=True).is_failure


def test_erase_removes_one_wearer_everywhere_and_keeps_the_other(secure_stack: SecureStack) -> None:
    s = secure_stack
    reader = s.http(READER_USER)
    expected = _seed_influx(s)
    _seed_retained(s)
    kept_before = _count(reader, s.database, KEPT)
    assert kept_before == expected
    assert _count(reader, s.database, GONE) == {k: v + 1 for k, v in expected.items()}
    assert len(_retained(s, f"{ROOT}/+/{GONE}/#")) == 3

    report = erase_wearer(_erase_cfg(s), GONE)

    # gone: no series, no point in any retention policy, no retained message
    assert _count(reader, s.database, GONE) == {}
    assert reader.query(f"SHOW SERIES WHERE wearer = '{GONE}'", s.database)[0].get("series") is None
    assert _retained(s, f"{ROOT}/+/{GONE}/#") == {}
    # untouched: the other wearer's points and retained message
    assert _count(reader, s.database, KEPT) == kept_before
    assert _retained(s, f"{ROOT}/+/{KEPT}/#") == {
        f"{ROOT}/{SITE_A}/{KEPT}/status": f"retained:{ROOT}/{SITE_A}/{KEPT}/status".encode()
    }
    # the report counted what was there (2 sites x every measurement)
    assert report.influx_before is not None
    assert report.retained_topics is not None
    assert report.influx_before.total_points == sum(v + 1 for v in expected.values())
    assert len(report.influx_before.series) == 2 * len(
        {m for _rp, m in (k.split(".") for k in expected)}
    )
    assert sorted(report.retained_topics) == sorted(
        [
            f"{ROOT}/{SITE_A}/{GONE}/calibration",
            f"{ROOT}/{SITE_A}/{GONE}/status",
            f"{ROOT}/{SITE_B}/{GONE}/status",
        ]
    )
    assert report.influx_after is not None
    assert report.influx_after.total_points == 0


def test_erase_refuses_a_paired_wearer_and_non_pseudonyms(secure_stack: SecureStack) -> None:
    s = secure_stack
    with pytest.raises(ConfigError, match="still in the pairing table"):
        erase_wearer(_erase_cfg(s, paired=(KEPT,)), KEPT)
    for bad in ("+", "#", "p1' OR wearer='p2", "alice"):
        with pytest.raises(ConfigError, match="pseudonym"):
            erase_wearer(_erase_cfg(s), bad)


# -------------------------------------------------------- CLI, logs and secrets


def _toml(s: SecureStack, path: Path, *, influx_user: str, mqtt_user: str) -> Path:
    path.write_text(
        f'site = "{SITE_A}"\n'
        "[influxdb]\n"
        f'url = "{s.influx_url}"\ndatabase = "{s.database}"\nusername = "{influx_user}"\n'
        f'spool_dir = "{path.parent / "spool-influx"}"\n'
        "[mqtt]\n"
        f'port = {s.mqtt_port}\ntopic_root = "{ROOT}"\nusername = "{mqtt_user}"\n'
        f'spool_dir = "{path.parent / "spool-mqtt"}"\n'
        f'[[sensors]]\naddress = "CC:00"\nwearer = "{KEPT}"\nsite = "{SITE_A}"\n'
    )
    return path


def _postmon(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "postmon", "-vv", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
        timeout=120,
    )


def test_cli_erase_at_debug_level_never_logs_secrets(
    secure_stack: SecureStack, tmp_path: Path
) -> None:
    s = secure_stack
    _seed_influx(s)
    _seed_retained(s)
    secrets_dir = s.out / "secrets"
    cfg = _toml(s, tmp_path / "erase.toml", influx_user="postmon_admin", mqtt_user=ADMIN_USER)
    env = {
        "POSTMON_INFLUX_PASSWORD_FILE": str(secrets_dir / "influx-postmon_admin.password"),
        "POSTMON_MQTT_PASSWORD_FILE": str(secrets_dir / f"mqtt-{ADMIN_USER}.password"),
    }
    env.pop("POSTMON_INFLUX_PASSWORD", None)
    no_tty = _postmon(["erase", "--wearer", GONE, "--config", str(cfg)], env, stdin="")
    assert no_tty.returncode == 2
    assert "--yes" in no_tty.stderr
    dry = _postmon(["erase", "--wearer", GONE, "--config", str(cfg), "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "would erase" in dry.stdout
    assert _count(s.http(READER_USER), s.database, GONE)  # a dry run leaves everything
    run = _postmon(["erase", "--wearer", GONE, "--config", str(cfg), "--yes"], env)
    assert run.returncode == 0, run.stderr
    assert f"wearer {GONE}: erased" in run.stdout
    assert "InfluxDB after: 0 series, 0 points remain" in run.stdout
    assert f"local spools looked for under: {tmp_path / 'spool-influx'}" in run.stdout
    assert _count(s.http(READER_USER), s.database, GONE) == {}
    # debug logging was really on (the InfluxQL and paho's MQTT trace are there) ...
    assert "influxql: SHOW SERIES" in dry.stderr
    assert "influxql: DROP SERIES" in run.stderr
    for out in (dry, run):
        assert "Sending CONNECT" in out.stderr
    # ... and no secret, nor its HTTP Basic form, appears anywhere
    _assert_no_secrets(s, [no_tty, dry, run])


def test_cli_provisioning_at_debug_level_never_logs_secrets(
    secure_stack: SecureStack, tmp_path: Path
) -> None:
    s = secure_stack
    cfg = _toml(s, tmp_path / "prov.toml", influx_user="postmon_admin", mqtt_user="")
    admin_pw = read_secret_file(s.out / "secrets" / "influx-postmon_admin.password")
    out = tmp_path / "prov"
    prov = _postmon(
        ["security", "influx-users", "--config", str(cfg), "--out", str(out), "--rotate"],
        {"POSTMON_INFLUX_PASSWORD": admin_pw},
    )
    assert prov.returncode == 0, prov.stderr
    assert "influxql: CREATE USER" in prov.stderr or "influxql: SET PASSWORD" in prov.stderr
    acl = _postmon(["security", "mqtt-acl", "--config", str(cfg), "--out", str(out)], {})
    assert acl.returncode == 0, acl.stderr
    new = [read_secret_file(p) for p in sorted((out / "secrets").glob("*.password"))]
    assert len(new) == 2 + 3  # influx writer + reader; mqtt collector-clinic-a, ingest, admin
    _assert_no_secrets(s, [prov, acl], extra=[admin_pw, *new])
    # --rotate gave the server new passwords (kept in tmp_path): put the stack's back
    from postmon.security.influx import provision_users

    provision_users(_admin_http(s), s.database, s.out, rotate=False)


def _assert_no_secrets(
    s: SecureStack, runs: list[subprocess.CompletedProcess[str]], extra: list[str] | None = None
) -> None:
    secrets = [read_secret_file(p) for p in (s.out / "secrets").glob("*.password")]
    secrets += extra or []
    users = [
        "postmon_admin",
        WRITER_USER,
        READER_USER,
        ADMIN_USER,
        "ingest",
        collector_user(SITE_A),
    ]
    forms = set().union(*(secret_forms(x, users) for x in secrets))
    for r in runs:
        text = r.stdout + r.stderr
        leaked = [f for f in forms if f in text]
        assert not leaked, f"secret leaked into output of {r.args}"


def test_connect_at_debug_level_logs_no_password(
    secure_stack: SecureStack, caplog: pytest.LogCaptureFixture
) -> None:
    s = secure_stack
    cfg = s.mqtt(collector_user(SITE_A))
    with caplog.at_level(logging.DEBUG):
        sess = connect(cfg)
        sess.publish(f"{ROOT}/{SITE_A}/{KEPT}/epoch", b"x")
        sess.close()
        http = s.http(READER_USER)
        http.query("SHOW MEASUREMENTS", s.database)
    text = caplog.text + repr(cfg) + repr(sess) + repr(http) + repr(s.influx(READER_USER))
    assert "Sending CONNECT" in caplog.text  # paho's trace was captured
    assert cfg.password not in text
    assert http.password not in text

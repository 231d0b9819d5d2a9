"""MQTT accounts and a Mosquitto ACL generated from the configuration.

Who may do what on the broker (topic tree ``<root>/<site>/<wearer>/<stream>``):

=====================  ==========================  ===============================
account                access                      why
=====================  ==========================  ===============================
``collector-<site>``   readwrite ``<root>/<site>/#``  an edge host publishes its own
                                                   site's streams (and may read
                                                   them back, e.g. retained status)
``ingest``             read ``<root>/#``           central workers read every site,
                                                   also through ``$share/<group>/``;
                                                   they publish nothing
``admin``              readwrite ``<root>/#``      operations: erasure clears
                                                   retained messages
``app-<wearer>``       read ``<root>/<site>/``     optional (``--wearer-apps``): the
                       ``<wearer>/nudges``         wearer's phone/desktop app sees
                                                   their nudges and nothing else
=====================  ==========================  ===============================

Mosquitto 2.0's ``acl_file`` checks are made per message, not per
subscription: a SUBSCRIBE is always granted (even to another site's topics or
to ``#``), and each message is checked for ``read`` against its real topic
at delivery, so a collector subscribed to another site simply receives
nothing. Shared subscriptions need no ACL entry of their own for the same
reason: the message delivered through ``$share/<group>/<root>/#`` is checked
against ``<root>/...``. A denied PUBLISH is acknowledged (MQTT v5 PUBACK
reason 0x87 "Not authorized") and dropped. (Observed on Mosquitto 2.0.11;
``src/security_default.c`` returns success for SUBSCRIBE with a FIXME.)
Anything not listed is denied, including ``$SYS``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from postmon.config import Config
from postmon.errors import PostmonError, Reason
from postmon.security.pseudonym import check_pseudonym, check_site
from postmon.security.secrets import (
    generate_password,
    read_secret_file,
    secret_dir,
    write_secret_file,
)

Access = Literal["read", "write", "readwrite"]

INGEST_USER = "ingest"
ADMIN_USER = "admin"


def collector_user(site: str) -> str:
    return f"collector-{check_site(site)}"


@dataclass(frozen=True)
class TopicGrant:
    access: Access
    topic: str


@dataclass(frozen=True)
class MqttAccount:
    username: str
    role: Literal["collector", "ingest", "admin", "app"]
    grants: tuple[TopicGrant, ...]
    site: str | None = None
    #: filled only while provisioning; never shown
    password: str = field(default="", repr=False, compare=False)


def app_user(wearer: str) -> str:
    return f"app-{check_pseudonym(wearer)}"


def accounts_for(
    cfg: Config, extra_sites: Iterable[str] = (), *, wearer_apps: bool = False
) -> tuple[MqttAccount, ...]:
    """One collector account per site (config's ``site``, every pairing's
    ``site``, plus ``extra_sites``), one ingest and one admin account, and
    with ``wearer_apps`` one read-only account per paired wearer for the
    app that shows them their nudges."""
    root = cfg.mqtt.topic_root
    sites = sorted({cfg.site, *(s.site for s in cfg.sensors), *extra_sites})
    out = [
        MqttAccount(
            collector_user(site),
            "collector",
            (TopicGrant("readwrite", f"{root}/{site}/#"),),
            site=site,
        )
        for site in sites
    ]
    out.append(MqttAccount(INGEST_USER, "ingest", (TopicGrant("read", f"{root}/#"),)))
    out.append(MqttAccount(ADMIN_USER, "admin", (TopicGrant("readwrite", f"{root}/#"),)))
    if wearer_apps:
        pairs = sorted({(s.wearer, s.site) for s in cfg.sensors})
        for wearer in sorted({w for w, _ in pairs}):
            grants = tuple(
                TopicGrant("read", f"{root}/{site}/{wearer}/nudges")
                for w, site in pairs
                if w == wearer
            )
            out.append(MqttAccount(app_user(wearer), "app", grants))
    return tuple(out)


def render_acl(accounts: Iterable[MqttAccount], topic_root: str) -> str:
    """The Mosquitto ``acl_file`` text for ``accounts``."""
    lines = [
        "# Mosquitto ACL written by `postmon security mqtt-acl`; regenerate, do not edit.",
        f"# topic tree: {topic_root}/<site>/<wearer>/<stream>",
        "# No anonymous section: anonymous clients get no access at all.",
        "",
    ]
    for acc in accounts:
        lines.append(f"# {acc.role}" + (f" of site {acc.site}" if acc.site else ""))
        lines.append(f"user {acc.username}")
        lines.extend(f"topic {g.access} {g.topic}" for g in acc.grants)
        lines.append("")
    return "\n".join(lines)


def mosquitto_passwd_binary() -> str:
    for candidate in (shutil.which("mosquitto_passwd"), "/usr/bin/mosquitto_passwd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise PostmonError(
        "mosquitto_passwd was not found",
        Reason.DEPENDENCY_MISSING,
        hint="install Debian's mosquitto package (it ships mosquitto_passwd): "
        "sudo apt-get install mosquitto",
    )


def write_password_file(path: Path, credentials: Iterable[tuple[str, str]]) -> None:
    """Write a Mosquitto password file (salted PBKDF2-SHA512 hashes) for
    ``(username, password)`` pairs, using Mosquitto's own ``mosquitto_passwd``.

    The plaintext goes through a 0600 temporary file converted in place with
    ``mosquitto_passwd -U`` rather than ``-b user password``: arguments are
    visible to every local user in ``ps`` and ``/proc``; the file is not.
    """
    binary = mosquitto_passwd_binary()
    pairs = list(credentials)
    for user, pw in pairs:
        if not user or ":" in user or "\n" in user or not pw or "\n" in pw:
            raise ValueError(f"unusable MQTT credentials for user {user!r}")
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(f"{u}:{p}\n" for u, p in pairs)
        proc = subprocess.run(
            [binary, "-U", str(tmp)], capture_output=True, text=True, check=False, timeout=60
        )
        if proc.returncode != 0:
            raise PostmonError(
                f"mosquitto_passwd -U failed (exit {proc.returncode}): {proc.stderr.strip()}",
                Reason.DEPENDENCY_MISSING,
                hint="check that mosquitto_passwd is Mosquitto >= 2.0",
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class MqttAclFiles:
    acl_file: Path
    password_file: Path
    conf_snippet: Path
    secrets: dict[str, Path]  # username -> its password file


def provision(
    cfg: Config,
    out: Path,
    *,
    extra_sites: Iterable[str] = (),
    rotate: bool = False,
    wearer_apps: bool = False,
) -> tuple[tuple[MqttAccount, ...], MqttAclFiles]:
    """Write ACL, password file, a mosquitto.conf snippet and one 0600
    password file per account (``OUT/secrets/mqtt-<user>.password``).

    Existing account passwords are kept unless ``rotate``: adding a site
    must not break the hosts already deployed.
    """
    out.mkdir(parents=True, exist_ok=True)
    sdir = secret_dir(out)
    accounts = accounts_for(cfg, extra_sites, wearer_apps=wearer_apps)
    creds: list[tuple[str, str]] = []
    secrets: dict[str, Path] = {}
    for acc in accounts:
        p = sdir / f"mqtt-{acc.username}.password"
        if p.exists() and not rotate:
            pw = read_secret_file(p)
        else:
            pw = generate_password()
            write_secret_file(p, pw)
        creds.append((acc.username, pw))
        secrets[acc.username] = p
    acl = out / "mosquitto.acl"
    acl.write_text(render_acl(accounts, cfg.mqtt.topic_root), encoding="utf-8")
    pwfile = out / "mosquitto.passwd"
    write_password_file(pwfile, creds)
    snippet = out / "mosquitto-auth.conf"
    snippet.write_text(
        "# include in mosquitto.conf (Mosquitto >= 2.0); written by `postmon security mqtt-acl`\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {pwfile.resolve()}\n"
        f"acl_file {acl.resolve()}\n",
        encoding="utf-8",
    )
    return accounts, MqttAclFiles(acl, pwfile, snippet, secrets)

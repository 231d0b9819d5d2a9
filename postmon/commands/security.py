"""``postmon security ...`` (accounts, ACLs, TLS) and ``postmon erase`` (right to erasure)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from postmon.config import Config, load_config
from postmon.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "security",
        help="make MQTT accounts/ACLs, TLS certificates and InfluxDB users",
        description=(
            "Provision the security of a deployment (see docs/SECURITY.md). Passwords are "
            "generated, written to OUT/secrets/*.password (mode 0600) and never printed; hand "
            "each file to its host as POSTMON_MQTT_PASSWORD_FILE / POSTMON_INFLUX_PASSWORD_FILE."
        ),
    )
    ss = p.add_subparsers(dest="security_command", metavar="ACTION", required=True)

    acl = ss.add_parser(
        "mqtt-acl",
        help="Mosquitto password file + ACL from the config's sites",
        description=(
            "Write OUT/mosquitto.passwd (hashed with mosquitto_passwd), OUT/mosquitto.acl and "
            "OUT/mosquitto-auth.conf: one collector-<site> account per site (read/write its own "
            "site's topics only), `ingest` (read all sites, also via $share/..., publish "
            "nothing) and `admin` (operations, erasure). Existing passwords are kept unless "
            "--rotate."
        ),
    )
    acl.add_argument("--config", required=True, help="TOML config (sites, [mqtt] topic_root)")
    acl.add_argument("--out", required=True, type=Path, help="output directory")
    acl.add_argument("--site", action="append", default=[], help="an extra site (repeatable)")
    acl.add_argument("--rotate", action="store_true", help="new passwords for every account")
    acl.add_argument(
        "--wearer-apps",
        action="store_true",
        help="also one app-<wearer> account per paired wearer that may read only that wearer's "
        "nudges (for the phone/desktop app showing them)",
    )
    acl.set_defaults(func=run_mqtt_acl)

    tls = ss.add_parser(
        "tls",
        help="a local CA and a server certificate (for Mosquitto / InfluxDB)",
        description=(
            "Write OUT/ca.crt + ca.key (kept if present) and a new OUT/server.crt + server.key "
            "for the given hosts (IP addresses or DNS names). Clients trust ca.crt "
            "([mqtt] tls_ca_file); keys are mode 0600."
        ),
    )
    tls.add_argument("--out", required=True, type=Path, help="output directory")
    tls.add_argument(
        "--host",
        action="append",
        default=[],
        help="host name or IP the server is reached by (repeatable; default 127.0.0.1, localhost)",
    )
    tls.set_defaults(func=run_tls)

    iu = ss.add_parser(
        "influx-users",
        help="least-privilege InfluxDB users (writer, reader) on the config's database",
        description=(
            "As the InfluxDB admin ([influxdb] username + POSTMON_INFLUX_PASSWORD[_FILE]), create "
            "postmon_writer (WRITE) and postmon_reader (READ) on [influxdb] database. With no "
            "username configured and a server that has no users yet (auth-enabled = true, "
            "fresh), first create the admin postmon_admin. Passwords go to OUT/secrets/."
        ),
    )
    iu.add_argument("--config", required=True, help="TOML config ([influxdb] url, database)")
    iu.add_argument("--out", required=True, type=Path, help="output directory")
    iu.add_argument("--rotate", action="store_true", help="new passwords for writer and reader")
    iu.set_defaults(func=run_influx_users)

    er = sub.add_parser(
        "erase",
        help="erase all data of one wearer (right to erasure)",
        description=(
            "Delete everything stored about one wearer: all their series in every measurement "
            "and retention policy of InfluxDB, retained MQTT messages under their topics, and "
            "their records in this host's spools and dead-letter files ([influxdb] and [mqtt] "
            "spool_dir). The wearer must first be removed from the pairing "
            "table. Needs the InfluxDB admin (or writer) and the MQTT admin account. See "
            "docs/SECURITY.md for the whole procedure."
        ),
    )
    er.add_argument("--wearer", required=True, help="the wearer's pseudonym (e.g. p017)")
    er.add_argument("--config", required=True, help="TOML config of the deployment")
    er.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    er.add_argument("--dry-run", action="store_true", help="only report what would be erased")
    er.add_argument(
        "--no-mqtt", action="store_true", help="skip retained MQTT messages (no broker in use)"
    )
    er.add_argument(
        "--local-only",
        action="store_true",
        help="only this host's spools and dead-letter files (run it on every collector and "
        "ingest host, with postmon stopped there)",
    )
    er.set_defaults(func=run_erase)


def _protect(cfg: Config) -> None:
    from postmon.security.redact import install_log_redaction

    install_log_redaction(
        [cfg.influxdb.password, cfg.mqtt.password],
        usernames=[cfg.influxdb.username, cfg.mqtt.username],
    )


def run_mqtt_acl(args: argparse.Namespace) -> int:
    from postmon.security.mqtt_acl import provision

    cfg = load_config(args.config)
    try:
        accounts, files = provision(
            cfg, args.out, extra_sites=args.site, rotate=args.rotate, wearer_apps=args.wearer_apps
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"wrote {files.acl_file}, {files.password_file}, {files.conf_snippet}")
    for acc in accounts:
        grants = "; ".join(f"{g.access} {g.topic}" for g in acc.grants)
        print(f"  {acc.username:24s} {grants}")
        print(f"  {'':24s} password: POSTMON_MQTT_PASSWORD_FILE={files.secrets[acc.username]}")
    print("include mosquitto-auth.conf in mosquitto.conf (see docs/SECURITY.md)")
    return 0


def run_tls(args: argparse.Namespace) -> int:
    from postmon.security.pki import DEFAULT_HOSTS, make_ca_and_server

    hosts = tuple(args.host) or DEFAULT_HOSTS
    paths = make_ca_and_server(args.out, hosts)
    print(f"CA: {paths.ca_cert} (give to clients as [mqtt] tls_ca_file); key {paths.ca_key}")
    print(f"server: {paths.server_cert} + {paths.server_key} for {', '.join(hosts)}")
    return 0


def run_influx_users(args: argparse.Namespace) -> int:
    from postmon.security.influx import InfluxHttp, bootstrap_admin_with_file, provision_users

    cfg = load_config(args.config)
    _protect(cfg)
    admin = InfluxHttp.from_config(cfg.influxdb)
    if not cfg.influxdb.username:
        made = bootstrap_admin_with_file(admin, args.out)
        print(f"created InfluxDB admin {made.username}; password in {made.secret_file}")
        from postmon.security.secrets import read_secret_file

        admin = InfluxHttp(admin.url, made.username, read_secret_file(made.secret_file))
    users = provision_users(admin, cfg.influxdb.database, args.out, rotate=args.rotate)
    for u in users:
        print(
            f"  {u.username:16s} {u.privilege} on {cfg.influxdb.database}; "
            f"POSTMON_INFLUX_PASSWORD_FILE={u.secret_file}"
        )
    return 0


def run_erase(args: argparse.Namespace) -> int:
    from postmon.erasure import erase_wearer

    cfg = load_config(args.config)
    _protect(cfg)
    if not (args.yes or args.dry_run):
        if not sys.stdin.isatty():
            raise ConfigError(
                f"erasing wearer {args.wearer} cannot be undone and needs confirmation",
                hint="add --yes (or run it on a terminal to be asked; --dry-run shows what "
                "would go)",
            )
        answer = input(f"Erase ALL data of wearer {args.wearer}? Type the wearer ID to confirm: ")
        if answer.strip() != args.wearer:
            print("not confirmed; nothing erased", file=sys.stderr)
            return 1
    report = erase_wearer(
        cfg,
        args.wearer,
        dry_run=args.dry_run,
        mqtt=not (args.no_mqtt or args.local_only),
        influx=not args.local_only,
    )
    for line in report.lines():
        print(line)
    return 0

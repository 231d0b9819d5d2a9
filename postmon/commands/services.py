"""``postmon services up|down|status``: the project-local Mosquitto and InfluxDB."""

from __future__ import annotations

import argparse

from postmon.config import ServicesConfig, load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "services",
        help="start/stop the local Mosquitto and InfluxDB (loopback only)",
        description=(
            "Manage a project-local Mosquitto and InfluxDB 1.x for development, tests and "
            "the demo. Installs Debian's packages when missing (apt-get), starts both on "
            "127.0.0.1 with config, data and logs under the state directory, waits until "
            "they answer (InfluxDB /ping, an MQTT round trip), and stops them by PID."
        ),
    )
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--config", help="TOML config file ([services] table); defaults otherwise")
    p.set_defaults(func=run)


def _cfg(args: argparse.Namespace) -> ServicesConfig:
    return load_config(args.config).services


def run(args: argparse.Namespace) -> int:
    from postmon.services import LocalServices

    svc = LocalServices(_cfg(args))
    if args.action == "up":
        svc.up()
        return 0
    if args.action == "down":
        svc.down()
        return 0
    ok = True
    for st in svc.status():
        state = "answering" if st.answering else "running, not answering" if st.running else "down"
        print(f"{st.name:10s} {state:24s} pid={st.pid or '-'} {st.detail}")
        ok = ok and st.answering
    return 0 if ok else 3

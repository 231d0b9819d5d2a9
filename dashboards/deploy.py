"""Deploy the data source, a folder and the dashboards to a running Grafana.

Uses Grafana's HTTP API through ``grafana-client``: idempotent (a second run
updates in place; dashboards are written with ``overwrite``), authenticated
with a service-account token from the environment (never from a file in the
repository). Errors say what went wrong and what to do: a refused or
unreachable server, a rejected token, a missing permission.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboards import build
from dashboards.influxql import DATASOURCE_UID, PLUGIN_ID
from postmon.config import read_secret
from postmon.errors import ConfigError, PostmonError, Reason, ServiceUnavailable

TOKEN_ENV = "POSTMON_GRAFANA_TOKEN"
INFLUX_PASSWORD_ENV = "POSTMON_INFLUX_PASSWORD"
FOLDER_UID = "postmon"


class GrafanaAuthError(PostmonError):
    """Grafana refused the token (401) or its permissions (403)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.AUTH_FAILED, hint=hint)


@dataclass
class DeployResult:
    datasource: str = ""  # "created" | "updated"
    folder: str = ""  # "created" | "exists"
    dashboards: dict[str, str] = field(default_factory=dict)  # uid -> Grafana URL path


def grafana_token() -> str:
    """The API token from ``$POSTMON_GRAFANA_TOKEN`` (or ``..._FILE``)."""
    token = read_secret(TOKEN_ENV)
    if not token:
        raise ConfigError(
            f"no Grafana API token: ${TOKEN_ENV} is not set",
            hint=f"create a service account token with the Editor role in Grafana "
            f"(Administration > Service accounts) and export {TOKEN_ENV}=<token> "
            f"(or {TOKEN_ENV}_FILE=<path to a chmod-600 file>)",
        )
    return token


def datasource_payload(settings: build.ExportSettings) -> dict[str, Any]:
    """The data source as Grafana's API takes it (same as the provisioning file)."""
    payload: dict[str, Any] = {
        "name": build.DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "access": "proxy",
        "url": settings.influx_url,
        "user": settings.username,
        "isDefault": True,
        "jsonData": {
            "dbName": settings.database,
            "httpMode": "POST",
            "timeInterval": build.DATASOURCE_MIN_INTERVAL,
            "version": "InfluxQL",
        },
    }
    password = os.environ.get(INFLUX_PASSWORD_ENV)
    if password:
        payload["secureJsonData"] = {"password": password}
    return payload


def _call(what: str, url: str, fn: Callable[[], Any]) -> Any:
    """Run one API call, translating grafana-client/niquests errors for people."""
    import niquests
    from grafana_client.client import (
        GrafanaClientError,
        GrafanaException,
        GrafanaServerError,
        GrafanaTimeoutError,
        GrafanaUnauthorizedError,
    )

    try:
        return fn()
    except GrafanaUnauthorizedError as exc:
        raise GrafanaAuthError(
            f"Grafana at {url} rejected the API token while trying to {what} (401)",
            hint=f"check ${TOKEN_ENV}: the token may be mistyped, expired or revoked",
        ) from exc
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise GrafanaAuthError(
                f"Grafana at {url} refused to {what} (403: the token lacks permission)",
                hint="give the service account the Editor role (Admin to manage data sources)",
            ) from exc
        raise PostmonError(
            f"Grafana at {url} refused to {what}: {exc.message}",
            Reason.INPUT_MALFORMED,
            hint="see the message above; the Grafana server log has details",
        ) from exc
    except GrafanaTimeoutError as exc:
        raise ServiceUnavailable(
            f"Grafana at {url} did not answer in time while trying to {what}",
            hint="check that Grafana is running and reachable, then retry",
        ) from exc
    except GrafanaServerError as exc:
        raise ServiceUnavailable(
            f"Grafana at {url} failed while trying to {what}: {exc.message}",
            hint="see the Grafana server log",
        ) from exc
    except (niquests.exceptions.RequestException, GrafanaException, OSError) as exc:
        raise ServiceUnavailable(
            f"cannot reach Grafana at {url} to {what}: {exc}",
            hint="check the URL (scheme, host, port) and that Grafana is running",
        ) from exc


def _not_found(fn: Callable[[], Any]) -> bool:
    from grafana_client.client import GrafanaClientError

    try:
        fn()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return True
        raise
    return False


def deploy(
    url: str,
    settings: build.ExportSettings | None = None,
    *,
    token: str | None = None,
    timeout_s: float = 10.0,
) -> DeployResult:
    """Create or update the data source, the folder and every dashboard."""
    from grafana_client import GrafanaApi

    settings = settings or build.ExportSettings()
    token = token or grafana_token()
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--url {url!r} must start with http:// or https://")
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    result = DeployResult()

    _call("check its health", url, api.health.check)
    ds = datasource_payload(settings)
    if _call(
        "look up the data source",
        url,
        lambda: _not_found(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID)),
    ):
        _call("create the data source", url, lambda: api.datasource.create_datasource(ds))
        result.datasource = "created"
    else:
        _call(
            "update the data source",
            url,
            lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, ds),
        )
        result.datasource = "updated"

    if _call(
        "look up the folder", url, lambda: _not_found(lambda: api.folder.get_folder(FOLDER_UID))
    ):
        _call(
            "create the folder",
            url,
            lambda: api.folder.create_folder(build.FOLDER, uid=FOLDER_UID),
        )
        result.folder = "created"
    else:
        result.folder = "exists"

    for uid, make in build.dashboards(settings).items():
        body = json.loads(build.dashboard_json(make()))
        body.pop("id", None)  # Grafana assigns ids; the uid identifies the dashboard
        payload = {
            "dashboard": body,
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "deployed by postmon",
        }

        def save(payload: dict[str, Any] = payload) -> Any:
            return api.dashboard.update_dashboard(payload)

        reply = _call(f"save dashboard {uid}", url, save)
        result.dashboards[uid] = str((reply or {}).get("url", ""))
    return result

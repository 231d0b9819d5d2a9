"""``postmon dashboards deploy`` against a fake Grafana on loopback.

The fake is a test double of a server we cannot install here (Grafana is in
neither Debian, PyPI nor npm): a tiny HTTP server on 127.0.0.1 that records
every request and answers with Grafana-shaped JSON replies -- 200s with the
keys Grafana returns, 404 "not found" for unknown data sources and folders,
and 401 {"message": "invalid API key"} for a wrong token -- so that the real
``grafana-client`` and our error handling run unmodified. What Grafana does
with the payloads is not simulated; the payloads themselves are checked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboards import build
from dashboards.deploy import GrafanaAuthError, deploy
from postmon.cli import main
from postmon.errors import ServiceUnavailable
from tests.conftest import free_port

GOOD_TOKEN = "glsa_test_token"
REPO = Path(__file__).resolve().parent.parent


@dataclass
class FakeGrafana:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "body": body,
                }
            )
            if self.headers.get("Authorization") != f"Bearer {GOOD_TOKEN}":
                self._reply(401, {"message": "invalid API key"})
                return
            m, path = self.command, self.path
            if m == "GET" and path == "/api/frontend/settings":
                self._reply(200, {"buildInfo": {"version": "11.3.0", "commit": "fake"}})
            elif m == "GET" and path.startswith("/api/datasources/uid/"):
                uid = path.rsplit("/", 1)[1]
                if uid in state.datasources:
                    self._reply(200, state.datasources[uid])
                else:
                    self._reply(404, {"message": "Data source not found"})
            elif m == "POST" and path == "/api/datasources":
                assert body is not None
                state.datasources[body["uid"]] = body
                self._reply(
                    200,
                    {
                        "datasource": body,
                        "id": 1,
                        "message": "Datasource added",
                        "name": body["name"],
                    },
                )
            elif m == "PUT" and path.startswith("/api/datasources/uid/"):
                assert body is not None
                state.datasources[path.rsplit("/", 1)[1]] = body
                self._reply(200, {"datasource": body, "id": 1, "message": "Datasource updated"})
            elif m == "GET" and path.startswith("/api/folders/"):
                uid = path.rsplit("/", 1)[1]
                if uid in state.folders:
                    self._reply(200, state.folders[uid])
                else:
                    self._reply(404, {"message": "folder not found", "status": "not-found"})
            elif m == "POST" and path == "/api/folders":
                assert body is not None
                state.folders[body["uid"]] = {"id": 1, "uid": body["uid"], "title": body["title"]}
                self._reply(200, state.folders[body["uid"]])
            elif m == "POST" and path == "/api/dashboards/db":
                assert body is not None
                d = body["dashboard"]
                state.dashboards[d["uid"]] = body
                self._reply(
                    200,
                    {
                        "id": len(state.dashboards),
                        "uid": d["uid"],
                        "url": f"/d/{d['uid']}/x",
                        "status": "success",
                        "version": 1,
                        "slug": "x",
                    },
                )
            else:
                self._reply(404, {"message": "Not found"})

        do_GET = do_POST = do_PUT = _handle

    return Handler


@pytest.fixture
def fake_grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_deploy_creates_datasource_folder_and_dashboards(
    fake_grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTMON_INFLUX_PASSWORD", "influx-secret")
    settings = build.ExportSettings(influx_url="http://influx.local:8086", timezone="Europe/Berlin")
    result = deploy(fake_grafana.url, settings, token=GOOD_TOKEN)
    assert result.datasource == "created"
    assert result.folder == "created"
    assert set(result.dashboards) == {
        "postmon-patient-today",
        "postmon-therapist-trends",
        "postmon-clinic-overview",
    }
    assert all(r["auth"] == f"Bearer {GOOD_TOKEN}" for r in fake_grafana.requests)

    ds = fake_grafana.datasources["postmon-influxdb"]
    assert ds["type"] == "influxdb"
    assert ds["url"] == "http://influx.local:8086"
    assert ds["jsonData"]["version"] == "InfluxQL"
    assert ds["secureJsonData"] == {"password": "influx-secret"}

    committed = {
        p.stem: json.loads(p.read_text()) for p in (REPO / "dashboards" / "json").glob("*.json")
    }
    for uid, posted in fake_grafana.dashboards.items():
        assert posted["folderUid"] == "postmon"
        assert posted["overwrite"] is True
        sent = posted["dashboard"]
        assert "id" not in sent
        expected = dict(committed[uid])
        expected.pop("id", None)
        if uid == "postmon-therapist-trends":  # the site's time zone reaches the tz variable
            tz = next(v for v in sent["templating"]["list"] if v["name"] == "tz")
            assert tz["query"] == "Europe/Berlin"
        else:
            assert sent == expected


def test_second_deploy_updates_in_place(fake_grafana: FakeGrafana) -> None:
    deploy(fake_grafana.url, token=GOOD_TOKEN)
    fake_grafana.requests.clear()
    result = deploy(fake_grafana.url, token=GOOD_TOKEN)
    assert result.datasource == "updated"
    assert result.folder == "exists"
    methods = [(r["method"], r["path"]) for r in fake_grafana.requests]
    assert ("PUT", "/api/datasources/uid/postmon-influxdb") in methods
    assert ("POST", "/api/folders") not in methods
    assert len(fake_grafana.dashboards) == 3


def test_wrong_token_is_a_clear_auth_error(fake_grafana: FakeGrafana) -> None:
    with pytest.raises(GrafanaAuthError) as info:
        deploy(fake_grafana.url, token="wrong")
    assert "rejected the API token" in str(info.value)
    assert "POSTMON_GRAFANA_TOKEN" in str(info.value)
    assert fake_grafana.dashboards == {}  # stopped before writing anything


def test_cli_reports_auth_failure(
    fake_grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POSTMON_GRAFANA_TOKEN", "wrong")
    assert main(["dashboards", "deploy", "--url", fake_grafana.url]) == 1
    assert "rejected the API token" in capsys.readouterr().err
    monkeypatch.setenv("POSTMON_GRAFANA_TOKEN", GOOD_TOKEN)
    assert main(["dashboards", "deploy", "--url", fake_grafana.url]) == 0
    assert "postmon-therapist-trends" in capsys.readouterr().out


def test_unreachable_grafana_is_service_unavailable() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ServiceUnavailable) as info:
        deploy(f"http://127.0.0.1:{port}", token=GOOD_TOKEN, timeout_s=2)
    assert "cannot reach Grafana" in str(info.value)


def test_missing_token_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POSTMON_GRAFANA_TOKEN", raising=False)
    monkeypatch.delenv("POSTMON_GRAFANA_TOKEN_FILE", raising=False)
    assert main(["dashboards", "deploy", "--url", "http://127.0.0.1:9"]) == 2
    assert "service account token" in capsys.readouterr().err


def test_export_writes_the_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "export", "--out", str(tmp_path), "--timezone", "Asia/Tokyo"]) == 0
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(build.render())
    trends = json.loads((tmp_path / "json" / "postmon-therapist-trends.json").read_text())
    assert next(v for v in trends["templating"]["list"] if v["name"] == "tz")["query"] == (
        "Asia/Tokyo"
    )

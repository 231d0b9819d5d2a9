"""A small InfluxDB 2.x write-compatibility proxy for tests.

Accepts ``POST /api/v2/write?org=..&bucket=db[/rp]&precision=..`` (what
``influxdb-client`` sends) and forwards the body unchanged, with its
Content-Encoding, to a real InfluxDB 1.x ``/write?db=..&rp=..``, as InfluxDB
1.8+ does itself. Answers with 1.x's status and body; records what it saw.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class V2WriteProxy:
    def __init__(self, influx_port: int) -> None:
        self.influx_port = influx_port
        self.requests: list[dict[str, Any]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if u.path != "/api/v2/write":
                    self._answer(404, b'{"code":"not found"}')
                    return
                db, _, rp = q.get("bucket", "").partition("/")
                proxy.requests.append(
                    {
                        "path": u.path,
                        "query": q,
                        "encoding": self.headers.get("Content-Encoding", ""),
                        "auth": self.headers.get("Authorization", ""),
                        "agent": self.headers.get("User-Agent", ""),
                        "bytes": len(body),
                    }
                )
                params = {"db": db, "precision": q.get("precision", "ns")}
                if rp:
                    params["rp"] = rp
                headers = {"Content-Type": "text/plain"}
                if self.headers.get("Content-Encoding"):
                    headers["Content-Encoding"] = self.headers["Content-Encoding"]
                conn = http.client.HTTPConnection("127.0.0.1", proxy.influx_port, timeout=10)
                try:
                    conn.request("POST", "/write?" + urllib.parse.urlencode(params), body, headers)
                    resp = conn.getresponse()
                    self._answer(resp.status, resp.read())
                except OSError as exc:
                    self._answer(503, str(exc).encode())
                finally:
                    conn.close()

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> V2WriteProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

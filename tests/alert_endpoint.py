"""A real local HTTP endpoint that records the notices POSTed to it (notify.IocNotifier), and the
`ioc_alerts` connection that points at it."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AlertEndpoint:
    def __init__(self, status: int = 204):
        calls = self.calls = []
        self.headers: list[dict] = []
        headers = self.headers

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/alert"

    def conn_json(self, token: str | None = None) -> str:
        """Value of AIRFLOW_CONN_IOC_ALERTS (JSON form)."""
        conn = {"conn_type": "http", "host": "127.0.0.1", "port": self.port, "schema": "http",
                "extra": {"endpoint": "/alert"}}
        return json.dumps({**conn, **({"password": token} if token else {})})

    def close(self):
        self._server.shutdown()
        self._server.server_close()

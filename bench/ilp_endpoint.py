"""A local ILP/HTTP endpoint for benchmarks: it drains each write and answers 204, costing little CPU.

It answers what the client asks before writing (``/settings``, for the protocol versions; ``/ping``)
and nothing more: no rows are decoded or kept. The benchmarks measure the client side alone with it;
the tests have their own capture server, which records and decodes what it receives.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SETTINGS = json.dumps({"config": {"line.proto.support.versions": [1, 2]}, "preferences.version": 0}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DrainServer

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/settings"):
            return self._reply(200, SETTINGS)
        return self._reply(204 if self.path.startswith("/ping") else 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        scratch = getattr(self, "scratch", None)  # one reused buffer per connection
        if scratch is None:
            scratch = self.scratch = memoryview(bytearray(4 << 20))
        received = 0
        while received < length:
            n = self.rfile.readinto(scratch[: min(length - received, len(scratch))])
            if not n:
                break
            received += n
        with self.server.lock:
            self.server.bytes_received += received
            self.server.writes += 1
        self._reply(204)


class DrainServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.bytes_received = 0
        self.writes = 0
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def http_port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> DrainServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

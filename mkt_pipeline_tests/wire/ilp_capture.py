"""A local stand-in for QuestDB's ILP endpoints, for tests and the benchmark.

``CaptureServer`` listens on 127.0.0.1 (ephemeral ports) with an HTTP endpoint (``/write``,
``/api/v2/write``, ``/settings``, ``/ping``) and a raw TCP listener. It records every request
(headers and body) and every TCP byte stream so tests can decode exactly what the client put on
the wire. It can demand HTTP basic or bearer auth (401 otherwise), reject writes with a
QuestDB-shaped JSON error (400), or run the TCP JWK challenge and verify the signature.

``decode_ilp`` parses ILP text lines and the protocol-v2 binary forms (``==`` + type byte: 16 is a
float64, 14 an n-dimensional float64 array) row by row.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler, ThreadingTCPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np

BINARY_DOUBLE = 16
BINARY_ARRAY = 14
ARRAY_ELEM_DOUBLE = 10


# ---------------------------------------------------------------------------------------------
# decoding


@dataclass
class IlpRow:
    """One decoded ILP line."""

    table: str
    symbols: dict[str, str]
    fields: dict[str, Any]
    timestamp: int | None
    unit: str | None  # 'n' nanoseconds, 't' microseconds, None: bare integer (nanoseconds)


def _read_name(data: bytes, i: int, stops: bytes) -> tuple[str, int]:
    """An escaped name or symbol value up to the first unescaped byte in ``stops``."""
    out = bytearray()
    while True:
        c = data[i]
        if c == 0x5C:  # backslash escapes the next byte
            out.append(data[i + 1])
            i += 2
            continue
        if c in stops:
            return out.decode(), i
        out.append(c)
        i += 1


def _read_binary(data: bytes, i: int) -> tuple[Any, int]:
    kind = data[i]
    i += 1
    if kind == BINARY_DOUBLE:
        return struct.unpack_from("<d", data, i)[0], i + 8
    if kind == BINARY_ARRAY:
        elem, ndims = data[i], data[i + 1]
        if elem != ARRAY_ELEM_DOUBLE:
            raise ValueError(f"unsupported array element type {elem}")
        i += 2
        dims = struct.unpack_from(f"<{ndims}I", data, i)
        i += 4 * ndims
        count = int(np.prod(dims)) if dims else 1
        arr = np.frombuffer(data, dtype="<f8", count=count, offset=i).reshape(dims).copy()
        return arr, i + 8 * count
    raise ValueError(f"unsupported binary field type {kind}")


def _parse_text_value(text: str) -> Any:
    if text in ("t", "T", "true", "True"):
        return True
    if text in ("f", "F", "false", "False"):
        return False
    if text.endswith("i"):
        return int(text[:-1])
    if text.endswith(("t", "n")) and text[:-1].lstrip("-").isdigit():
        return ("timestamp", int(text[:-1]), text[-1])
    return float(text)


def decode_ilp(data: bytes) -> list[IlpRow]:
    """Parse a byte stream of ILP lines (text and protocol-v2 binary values)."""
    rows = []
    i, n = 0, len(data)
    while i < n:
        if data[i] == 0x0A:  # tolerate blank lines
            i += 1
            continue
        table, i = _read_name(data, i, b", ")
        symbols: dict[str, str] = {}
        while data[i] == 0x2C:  # ','
            key, i = _read_name(data, i + 1, b"=")
            value, i = _read_name(data, i + 1, b", \n")
            symbols[key] = value
        fields: dict[str, Any] = {}
        if data[i] == 0x20:
            i += 1
            while True:
                key, i = _read_name(data, i, b"=")
                i += 1
                if data[i] == 0x3D:  # '=': binary value follows
                    value, i = _read_binary(data, i + 1)
                elif data[i] == 0x22:  # '"': string
                    out = bytearray()
                    i += 1
                    while data[i] != 0x22:
                        if data[i] == 0x5C:
                            i += 1
                        out.append(data[i])
                        i += 1
                    value, i = out.decode(), i + 1
                else:
                    start = i
                    while data[i] not in (0x2C, 0x20, 0x0A):
                        i += 1
                    value = _parse_text_value(data[start:i].decode())
                fields[key] = value
                if data[i] != 0x2C:
                    break
                i += 1
        ts = unit = None
        if data[i] == 0x20:
            start = i + 1
            i = data.index(b"\n", start)
            text = data[start:i].decode()
            if text[-1] in "tn":
                ts, unit = int(text[:-1]), text[-1]
            else:
                ts = int(text)
        if data[i] != 0x0A:
            raise ValueError(f"malformed ILP line near byte {i}: {data[max(0, i - 40) : i + 40]!r}")
        i += 1
        rows.append(IlpRow(table, symbols, fields, ts, unit))
    return rows


# ---------------------------------------------------------------------------------------------
# server


@dataclass
class HttpRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class CaptureConfig:
    """What the fake server demands and how it answers writes."""

    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None
    reject_writes: str | None = None  # error message returned with HTTP 400
    jwk: tuple[str, Any] | None = None  # (key id, EC public key) for the TCP challenge
    protocol_versions: tuple[int, ...] = (1, 2)


class CaptureServer:
    """HTTP and TCP ILP listeners on 127.0.0.1 recording what they receive."""

    def __init__(self, config: CaptureConfig | None = None):
        self.config = config or CaptureConfig()
        self.requests: list[HttpRequest] = []
        self.tcp_streams: list[bytes] = []
        self.bytes_received = 0
        self.writes = 0
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _make_http_handler(self))
        self._http.daemon_threads = True
        self._tcp = ThreadingTCPServer(("127.0.0.1", 0), _make_tcp_handler(self))
        self._tcp.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=self._tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
        ]

    @property
    def http_port(self) -> int:
        return self._http.server_address[1]

    @property
    def tcp_port(self) -> int:
        return self._tcp.server_address[1]

    def start(self) -> CaptureServer:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        for srv in (self._http, self._tcp):
            srv.shutdown()
            srv.server_close()

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def write_requests(self) -> list[HttpRequest]:
        """Requests that carried rows (the sink's credential probe is an empty write)."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/write") and r.body]

    def http_rows(self) -> list[IlpRow]:
        """Every row received over HTTP, in arrival order."""
        return [row for r in self.write_requests() for row in decode_ilp(r.body)]

    def tcp_rows(self) -> list[IlpRow]:
        with self._lock:
            streams = list(self.tcp_streams)
        return [row for s in streams for row in decode_ilp(s)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.tcp_streams.clear()
            self.bytes_received = 0
            self.writes = 0

    def _authorized(self, headers) -> bool:
        cfg = self.config
        if cfg.basic_auth is None and cfg.bearer_token is None:
            return True
        auth = headers.get("Authorization", "")
        if cfg.basic_auth is not None:
            expected = base64.b64encode(f"{cfg.basic_auth[0]}:{cfg.basic_auth[1]}".encode()).decode()
            if auth == f"Basic {expected}":
                return True
        if cfg.bearer_token is not None and auth == f"Bearer {cfg.bearer_token}":
            return True
        return False


def _make_http_handler(server: CaptureServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _record(self, body: bytes) -> HttpRequest:
            parts = urlsplit(self.path)
            req = HttpRequest(
                self.command, parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()}, body
            )
            with server._lock:
                server.requests.append(req)
            return req

        def do_GET(self) -> None:
            req = self._record(b"")
            if req.path == "/settings":  # open on a real server too: clients probe it before auth
                settings = {
                    "config": {"line.proto.support.versions": list(server.config.protocol_versions)},
                    "preferences.version": 0,
                }
                return self._reply(200, json.dumps(settings).encode())
            if not server._authorized(self.headers):
                return self._reply(401, b'{"message":"Unauthorized"}')
            if req.path == "/ping":
                return self._reply(204)
            return self._reply(404, b'{"message":"not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            received = len(body)
            self._record(body)
            with server._lock:
                server.bytes_received += received
                server.writes += 1
            if not server._authorized(self.headers):
                return self._reply(401, b'{"message":"Unauthorized"}')
            if server.config.reject_writes and received:  # an empty write has no row to reject, as on QuestDB
                error = {"code": "invalid", "message": server.config.reject_writes, "line": 1, "errorId": "capture-1"}
                return self._reply(400, json.dumps(error).encode())
            return self._reply(204)

    return Handler


def _make_tcp_handler(server: CaptureServer):
    class Handler(BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            received = bytearray()
            if server.config.jwk is not None and not _jwk_handshake(sock, server.config.jwk, received):
                sock.close()
                return
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                received += chunk
                with server._lock:
                    server.bytes_received += len(chunk)
            with server._lock:
                server.tcp_streams.append(bytes(received))

    return Handler


def _recv_line(sock: socket.socket, pending: bytearray) -> bytes:
    while b"\n" not in pending:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("client closed during auth")
        pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


def _jwk_handshake(sock: socket.socket, jwk: tuple[str, Any], pending: bytearray) -> bool:
    """QuestDB's TCP auth: key id line, server challenge, client ECDSA P-256/SHA-256 signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    key_id, public_key = jwk
    if _recv_line(sock, pending).decode() != key_id:
        return False
    challenge = base64.b64encode(os.urandom(24)).rstrip(b"=")
    sock.sendall(challenge + b"\n")
    raw = base64.b64decode(_recv_line(sock, pending) + b"==")
    # the client sends either a DER signature or the raw 64-byte r||s form
    der = (
        raw
        if len(raw) != 64
        else encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    )
    try:
        public_key.verify(der, challenge, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True

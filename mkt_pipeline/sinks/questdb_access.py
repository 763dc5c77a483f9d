"""Pre-flight checks of a QuestDB endpoint, made before any table is created.

Each probe answers one question in about a round trip and says which of three things went wrong:
the server cannot be reached, TLS does not match (or its certificate is not trusted), or the
credentials are refused. None of them writes anything:

- ``probe_tls``: a TLS handshake on the port, with the verification the run will use.
- ``probe_http_auth``: an empty ``POST /write`` with the run's credentials (204 accepted, 401/403
  refused, anything else is not QuestDB); the client's own start-up only reads ``/settings``,
  which needs no credentials.
- ``probe_jwk_auth``: QuestDB's TCP challenge (key id, challenge, ECDSA P-256 signature). The
  server answers a refused key by closing the connection without a word, and the client library
  only notices at its first flush ("Broken pipe"), after the tables exist; so the probe signs the
  challenge itself and watches whether the server hangs up.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from dataclasses import dataclass

UNREACHABLE, TLS, AUTH = "unreachable", "tls", "auth"

# A TLS server answers a ClientHello within a round trip; a plain one may wait silently for more
# bytes (the ILP/TCP listener does), so the handshake gets its own, shorter, limit.
TLS_HANDSHAKE_TIMEOUT_S = 3.0

# How long a server that accepted the signature stays silent before we call it accepted. A refusal
# is a close within milliseconds of the signature.
JWK_SETTLE_S = 1.0


@dataclass(frozen=True)
class AccessProblem:
    """What a probe found: ``kind`` is one of unreachable, tls, auth; ``reason`` is one line."""

    kind: str
    reason: str


def tls_context(verify: bool, ca_file: str | None = None) -> ssl.SSLContext:
    """The client TLS context of a run: system roots (or ``ca_file``) and host checks, unless relaxed."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connect(host: str, port: int, timeout_s: float, tls: ssl.SSLContext | None) -> socket.socket | AccessProblem:
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        return AccessProblem(UNREACHABLE, exc.strerror or str(exc) or type(exc).__name__)
    if tls is None:
        return sock
    try:
        sock.settimeout(min(timeout_s, TLS_HANDSHAKE_TIMEOUT_S))
        wrapped = tls.wrap_socket(sock, server_hostname=host)
        wrapped.settimeout(timeout_s)
        return wrapped
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        return AccessProblem(
            TLS,
            f"TLS certificate not trusted: {exc.verify_message or exc.reason} (give the CA with --tls_ca / QUESTDB_TLS_CA)",
        )
    except (
        ssl.SSLError,
        OSError,
    ) as exc:  # a plain server answers a ClientHello with bytes that are not TLS, or hangs up
        sock.close()
        why = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        if isinstance(exc, (socket.timeout, TimeoutError)):
            why = f"no TLS answer within {min(timeout_s, TLS_HANDSHAKE_TIMEOUT_S):g}s"
        return AccessProblem(
            TLS,
            f"TLS handshake failed ({why}): the port does not speak TLS; use a plain protocol (http/tcp) or enable TLS on the server",
        )


def probe_tcp(host: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection to host:port opens, else the reason it did not."""
    conn = _connect(host, port, timeout_s, None)
    if isinstance(conn, AccessProblem):
        return conn.reason
    conn.close()
    return None


def probe_tls(host: str, port: int, context: ssl.SSLContext, timeout_s: float) -> AccessProblem | None:
    """None when a TLS session opens on host:port with ``context``."""
    conn = _connect(host, port, timeout_s, context)
    if isinstance(conn, AccessProblem):
        return conn
    conn.close()
    return None


def probe_http_auth(
    host: str, port: int, headers: dict[str, str], timeout_s: float, tls: ssl.SSLContext | None = None
) -> AccessProblem | None:
    """None when the ILP endpoint accepts the credentials in ``headers`` (an empty write, no rows)."""
    cls = http.client.HTTPSConnection if tls is not None else http.client.HTTPConnection
    kwargs = {"context": tls} if tls is not None else {}
    conn = cls(host, port, timeout=timeout_s, **kwargs)
    try:
        conn.request("POST", "/write", body=b"", headers={"Content-Length": "0", **headers})
        response = conn.getresponse()
        response.read()
    except ssl.SSLError as exc:
        return AccessProblem(TLS, f"TLS handshake failed ({exc.reason or type(exc).__name__})")
    except OSError as exc:
        return AccessProblem(UNREACHABLE, exc.strerror or str(exc) or type(exc).__name__)
    except http.client.HTTPException as exc:
        return AccessProblem(UNREACHABLE, f"not an HTTP answer ({type(exc).__name__}); is this the HTTP port?")
    finally:
        conn.close()
    if response.status in (401, 403):
        what = (
            "the token"
            if "Bearer" in headers.get("Authorization", "")
            else "the user/password"
            if headers
            else "no credentials"
        )
        return AccessProblem(AUTH, f"HTTP {response.status} {response.reason}: the server refused {what}")
    if response.status != 204:  # QuestDB answers an empty write with 204 No Content
        return AccessProblem(
            UNREACHABLE, f"HTTP {response.status} {response.reason} to an empty ILP write: is this QuestDB's HTTP port?"
        )
    return None


def basic_auth_header(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def probe_jwk_auth(
    host: str,
    port: int,
    key_id: str,
    private_d: str,
    timeout_s: float,
    tls: ssl.SSLContext | None = None,
    settle_s: float = JWK_SETTLE_S,
) -> AccessProblem | None:
    """None when QuestDB's ILP/TCP endpoint accepts key ``key_id`` signed with the JWK ``d`` value."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        secret = int.from_bytes(base64.urlsafe_b64decode(private_d + "=" * (-len(private_d) % 4)), "big")
        key = ec.derive_private_key(secret, ec.SECP256R1())
    except (ValueError, TypeError):
        return AccessProblem(AUTH, "the JWK private key (token) is not a base64url P-256 'd' value")
    conn = _connect(host, port, timeout_s, tls)
    if isinstance(conn, AccessProblem):
        return conn
    with conn:
        try:
            conn.sendall(key_id.encode() + b"\n")
            challenge = b""
            while not challenge.endswith(b"\n"):
                chunk = conn.recv(512)
                if not chunk:
                    return AccessProblem(
                        AUTH,
                        f"the server closed the connection after key id {key_id!r} (unknown key id, or no TCP authentication on the server)",
                    )
                challenge += chunk
            signature = key.sign(challenge[:-1], ec.ECDSA(hashes.SHA256()))
            conn.sendall(base64.b64encode(signature) + b"\n")
            conn.settimeout(settle_s)
            try:
                closed = conn.recv(1) == b""
            except TimeoutError:
                closed = False  # silence: the server accepted the signature and waits for rows
            except ConnectionResetError:
                closed = True
        except TimeoutError:
            return AccessProblem(
                UNREACHABLE,
                f"no authentication challenge within {timeout_s:g}s (is TCP authentication enabled on the server?)",
            )
        except OSError as exc:
            return AccessProblem(UNREACHABLE, exc.strerror or str(exc) or type(exc).__name__)
    if closed:
        return AccessProblem(
            AUTH, f"the server rejected the JWK key of {key_id!r} (it closed the connection after the signature)"
        )
    return None


# ---------------------------------------------------------------------------------------------
# reading back over QWP: the same answers as PG wire, columnar


class QwpCursor:
    """The result of one query over QWP, answering as a psycopg cursor does (``description``, ``fetchall``)."""

    def __init__(self, table):
        self.table = table
        self.description = [(name,) for name in table.column_names]

    def fetchall(self) -> list[tuple]:
        import pyarrow as pa

        columns = []
        for column in self.table.columns:
            if pa.types.is_timestamp(column.type):
                # as psycopg gives a QuestDB timestamp: naive UTC, truncated to microseconds
                column = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
                per_us = 1000 if self.table.schema.field(len(columns)).type.unit == "ns" else 1
                column = pa.array(column // per_us, pa.int64()).cast(pa.timestamp("us"))
            columns.append(column.to_pylist())
        return list(zip(*columns))


class QwpReadConnection:
    """Queries over QWP (``questdb.connect``), shaped like a psycopg connection for read-only callers.

    ``execute(sql)`` answers with the rows PG wire gives (same Python types); ``arrow(sql)`` gives the
    columnar result itself, which callers that want Arrow use to skip building rows at all.
    """

    def __init__(self, db, timeout_s: float | None = None):
        self.db = db
        self.timeout_ms = None if timeout_s is None else int(timeout_s * 1000)

    def arrow(self, sql: str):
        with self.db.query(sql, timeout=self.timeout_ms) as result:
            return result.to_arrow()

    def execute(self, sql: str) -> QwpCursor:
        return QwpCursor(self.arrow(sql))

    def close(self) -> None:
        self.db.close()

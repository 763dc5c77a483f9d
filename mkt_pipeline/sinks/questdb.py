"""The QuestDB sink: DDL and metadata over PG wire (psycopg 3), rows over ILP or QWP (``questdb`` client).

Rows travel through one of two transports that differ only in how a slice reaches the server:
``IlpTransport`` (ILP over HTTP or TCP, a ``Sender`` buffer per slice) and ``QwpTransport`` (QWP
over WebSocket, ``--protocol ws``/``wss``, an Arrow table per slice through ``questdb.connect``).
Slicing, WAL backpressure, the ledger, error messages and DDL are the sink's, shared by both;
``--protocol auto`` picks QWP when the server offers it (see ``resolve_protocol``).

``prepare`` first verifies access (both endpoints reachable, TLS as configured, credentials
accepted on PG wire and ILP; see ``questdb_access``), so a failure creates nothing; then it
verifies pre-existing tables and creates tables and views idempotently. Each batch is encoded in
size-bounded slices and flushed explicitly, one table per request; designated timestamps keep the column's precision (µs or ns).
WAL lag of every table written is watched between flushes (see ``wal_monitor``). Re-sending a window
is safe: every table has DEDUP UPSERT KEYS, so QuestDB keeps one row per key.

Every failure surfaces as a ``QuestDBSinkError`` whose one-line message names host, port, table and
cause; secrets are scrubbed from messages and never appear in ``repr`` of the settings.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.core.secrets import REDACTED, first_line, scrub, scrubbable_secrets  # noqa: F401  (scrub is part of this module's API)
from mkt_pipeline.core.tables import TIMESTAMP_NS, TableBatch, TableSchema
from mkt_pipeline.core.timeline import NS_PER_US, Window
from mkt_pipeline.sinks import ilp
from mkt_pipeline.sinks.base import Sink, TableNaming, WindowWriter, WriteStats
from mkt_pipeline.sinks.ddl import (
    DdlOptions,
    SchemaMismatchError,
    check_table_compatible,
    checked_name,
    ddl_statements,
    table_columns_sql,
)
from mkt_pipeline.sinks.ledger import (
    CHUNK,
    LEDGER_BASE,
    ChunkKey,
    LedgerEntry,
    entries_from_rows,
    ledger_insert_sql,
    ledger_select_sql,
    ledger_table_sql,
)
from mkt_pipeline.sinks.questdb_access import (
    AUTH,
    TLS,
    AccessProblem,
    QwpReadConnection,
    basic_auth_header,
    bearer_header,
    probe_http_auth,
    probe_jwk_auth,
    probe_tcp,
    probe_tls,
    tls_context,
)
from mkt_pipeline.sinks.questdb_env import QUESTDB_ENV
from mkt_pipeline.sinks.stall import (
    DEFAULT_STALL_TIMEOUT_S,
    StallError,
    StallWatch,
    shutdown_fd,
    shutdown_peer_sockets,
)
from mkt_pipeline.sinks.wal_monitor import (
    WAL_TABLES_SQL,
    WalLagTimeoutError,
    WalMonitor,
    WalStatus,
    WalSuspendedError,
    statuses_from_rows,
)

log = logging.getLogger(__name__)

PROTOCOLS = ("http", "https", "tcp", "tcps", "ws", "wss", "auto")
QWP_PROTOCOLS = ("ws", "wss")  # QWP over WebSocket on the HTTP port (QuestDB 9.4+)
MAX_STALL_TIMEOUT_S = 86_400
TLS_VERIFY = ("on", "unsafe_off")
SECRET_FIELDS = ("password", "token", "token_x", "token_y")
MiB = 1 << 20


@dataclass(frozen=True, repr=False)
class QuestDBSettings:
    """Where and how to reach QuestDB. Secrets are redacted from ``repr``/``str``/``public_dict``."""

    host: str = "127.0.0.1"
    http_port: int = 9000
    ilp_tcp_port: int = 9009
    pg_port: int = 8812
    protocol: str = "http"
    user: str = "admin"
    password: str | None = "quest"
    token: str | None = None
    token_x: str | None = None
    token_y: str | None = None
    ilp_user: str = "admin"
    tls_verify: str = "on"
    tls_ca: str | None = None
    create_views: bool = True
    short_ttl: bool = False
    enterprise: bool = False
    parquet_encodings: bool = True
    wal_pause_lag: int = 5  # pause when sequencerTxn - writerTxn exceeds this on any table written
    wal_resume_lag: int = 1  # resume once every table is back at or below this
    wal_poll_interval_s: float = 1.0
    wal_max_pause_s: float = 900.0
    flush_bytes: int = 16 * MiB  # encoded bytes per ILP request
    max_buf_size: int = 100 * MiB  # the client's hard cap on one buffer
    connect_timeout_s: float = 5.0
    ledger_wait_s: float = 60.0  # how long rows sent over TCP (unacknowledged) may take to appear
    retry_timeout_ms: int = 10_000  # client-side retries of failed HTTP requests
    # a call to the server without an answer for this long fails the run (see ``stall``)
    stall_timeout_s: int = DEFAULT_STALL_TIMEOUT_S
    # tests only: a shorter wait for QWP to confirm one slice than the stall timeout
    confirm_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"{{protocol}}: {self.protocol!r} must be one of {', '.join(PROTOCOLS)}", "protocol")
        if self.tls_verify not in TLS_VERIFY:
            raise ConfigError(f"{{tls_verify}}: {self.tls_verify!r} must be 'on' or 'unsafe_off'", "tls_verify")
        if not self.host or any(c.isspace() for c in self.host):
            raise ConfigError(f"{{host}}: {self.host!r} is not a host name", "host")
        if "/" in self.host or (self.host.count(":") == 1):
            raise ConfigError(
                f"{{host}}: {self.host!r} is a host name or IP address only (no scheme, port or path)", "host"
            )
        for name in ("http_port", "ilp_tcp_port", "pg_port"):
            port = getattr(self, name)
            if not 0 < int(port) < 65536:
                raise ConfigError(f"{{{name}}}: {port} is not a TCP port (1-65535)", name)
        if self.tls_ca:
            problem = ca_file_problem(self.tls_ca)
            if problem is not None:
                raise ConfigError(f"{{tls_ca}}: {problem}", "tls_ca")
        if not 0 < self.stall_timeout_s <= MAX_STALL_TIMEOUT_S:
            raise ConfigError(
                f"{{stall_timeout_secs}}: {self.stall_timeout_s} must be > 0 and at most {MAX_STALL_TIMEOUT_S} seconds",
                "stall_timeout_secs",
            )
        if self.protocol in ("tcp", "tcps") and self.token and not (self.token_x and self.token_y):
            raise ConfigError("{token}: TCP JWK auth needs token, token_x and token_y together", "token")
        if not 0 < self.flush_bytes < self.max_buf_size:
            raise ConfigError(
                f"{{flush_bytes}} ({self.flush_bytes}) must be > 0 and below max_buf_size ({self.max_buf_size})",
                "flush_bytes",
            )
        if not 0 <= self.wal_resume_lag < self.wal_pause_lag:
            raise ConfigError(
                f"{{wal_resume_lag}} ({self.wal_resume_lag}) must be >= 0 and below {{wal_pause_lag}} ({self.wal_pause_lag})",
                "wal_resume_lag",
                "wal_pause_lag",
            )

    # -- derived ---------------------------------------------------------------------------
    @property
    def over_http(self) -> bool:
        """Rows go to the HTTP port (ILP/HTTP, or QWP's WebSocket), which confirms each request."""
        return self.protocol in ("http", "https", "ws", "wss", "auto")

    @property
    def qwp(self) -> bool:
        return self.protocol in QWP_PROTOCOLS

    @property
    def tls(self) -> bool:
        return self.protocol in ("https", "tcps", "wss")

    @property
    def wire(self) -> str:
        """How rows travel, for messages: ``QWP over ws``, ``ILP over http``..."""
        return f"{'QWP' if self.qwp else 'ILP'} over {self.protocol}"

    @property
    def ilp_port(self) -> int:
        return self.http_port if self.over_http else self.ilp_tcp_port

    @property
    def ilp_where(self) -> str:
        return f"{self.host}:{self.ilp_port}"

    @property
    def pg_where(self) -> str:
        return f"{self.host}:{self.pg_port}"

    @property
    def read_where(self) -> str:
        """Where reads go, for messages: the HTTP port over QWP, else the PG-wire port."""
        return self.ilp_where if self.qwp else self.pg_where

    def secrets(self) -> list[str]:
        """Secret values to scrub from text before it is logged or raised (never the stock password)."""
        return scrubbable_secrets(getattr(self, f) for f in SECRET_FIELDS)

    def public_dict(self) -> dict[str, Any]:
        """All settings with secrets replaced by ``***`` (for logs and metadata)."""
        return {
            f.name: (REDACTED if f.name in SECRET_FIELDS and getattr(self, f.name) else getattr(self, f.name))
            for f in fields(self)
        }

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.public_dict().items())
        return f"QuestDBSettings({body})"

    __str__ = __repr__

    def with_(self, **changes) -> QuestDBSettings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> QuestDBSettings:
        """Settings from the ``QUESTDB_*`` variables (docs/questdb.md#environment-variables); keyword overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}  # settings field -> the variable that set it
        for name, var, conv in ENV_VARS:
            if var in env and env[var] != "":
                try:
                    values[name] = conv(env[var])
                except ValueError:
                    kind = "whole number of seconds" if name in _SECONDS_FIELDS else f"valid {name}"
                    raise ConfigError(f"{{{name}}}: {env[var]!r} is not a {kind}", name, names={name: var}) from None
                sources[name] = var
        overrides = {k: v for k, v in overrides.items() if v is not None}
        values.update(overrides)
        try:
            return cls(**values)
        except ConfigError as exc:
            # a rule broken by a variable's value names that variable, not the field
            raise exc.named(**{f: sources[f] for f in exc.settings if f in sources and f not in overrides}) from None

    @classmethod
    def from_cli(cls, values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> QuestDBSettings:
        """Settings from explicitly set CLI flags over the ``QUESTDB_*`` environment.

        Pass only flags the user set (on the command line or through ``MKT_<MARKET>_<FLAG>``): each
        overrides the environment, so ``QUESTDB_HOST=db mkt-pipeline fx`` reaches ``db`` while
        ``--host 127.0.0.1`` still wins over it. ``token_file`` supplies ``token``. Invalid values
        raise ``ConfigError`` naming the field (``ilp_tcp_port`` is the flag ``--ilp_port``) or the variable.
        """
        defaults = cls.__dataclass_fields__
        overrides: dict[str, Any] = {}
        for flag, value in values.items():
            name = _CLI_NAMES.get(flag, flag)
            if name in defaults and value is not None:
                overrides[name] = value
        token_file = values.get("token_file")
        if token_file:
            try:
                with open(token_file, encoding="utf-8") as fh:
                    overrides["token"] = fh.read().strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or "not a text file"
                raise ConfigError(f"{{token_file}}: cannot read {token_file}: {why}", "token_file") from None
            if not overrides["token"]:
                raise ConfigError(f"{{token_file}}: {token_file} is empty (it must hold the ILP token)", "token_file")
        try:
            return cls.from_env(env, **overrides)
        except ConfigError as exc:  # a field whose flag has another name (ilp_tcp_port is --ilp_port)
            raise exc.named(
                **{f: f"--{_FLAG_NAMES[f]}" for f in exc.settings if f in _FLAG_NAMES and f not in exc.names}
            ) from None


_CLI_NAMES = {"ilp_port": "ilp_tcp_port", "stall_timeout_secs": "stall_timeout_s"}  # CLI flag -> settings field
_FLAG_NAMES = {v: k for k, v in _CLI_NAMES.items()}


def settings_field(flag: str) -> str | None:
    """The ``QuestDBSettings`` field a CLI flag sets (``ilp_port`` sets ``ilp_tcp_port``), None for other flags."""
    name = _CLI_NAMES.get(flag, flag)
    return name if name in QuestDBSettings.__dataclass_fields__ else None


_INT_FIELDS = ("http_port", "ilp_tcp_port", "pg_port")
_SECONDS_FIELDS = ("stall_timeout_s",)  # whole seconds (Dagster reads them with EnvVar.int)
_LOWERCASE_FIELDS = ("protocol", "tls_verify")


def _env_converter(field: str) -> Callable[[str], Any]:
    if field in _INT_FIELDS or field in _SECONDS_FIELDS:
        return int
    if field in _LOWERCASE_FIELDS:
        return lambda v: v.strip().lower()
    return str


# (settings field, variable, converter), derived from the one table of QUESTDB_* variables
ENV_VARS: tuple[tuple[str, str, Callable[[str], Any]], ...] = tuple(
    (_CLI_NAMES.get(flag, flag), var, _env_converter(_CLI_NAMES.get(flag, flag))) for flag, var in QUESTDB_ENV.items()
)


# ---------------------------------------------------------------------------------------------
# errors


class QuestDBSinkError(RuntimeError):
    """A QuestDB failure, as one secret-free line naming host, port, table and cause.

    ``transient`` classifies the fault: True when trying again later may succeed (the server was
    unreachable, a connection broke, WAL apply lagged), False when only a change of settings or of
    the server can help (credentials refused, TLS mismatch, rows or an existing table rejected).
    Orchestrators retry only transient faults.
    """

    transient = True


class QuestDBUnreachableError(QuestDBSinkError):
    pass


class QuestDBAuthError(QuestDBSinkError):
    transient = False


class QuestDBTlsError(QuestDBSinkError):
    """TLS does not match: a plain server asked for TLS, or a certificate that is not trusted."""

    transient = False


class QuestDBRejectedError(QuestDBSinkError):
    transient = False


class QuestDBSchemaError(QuestDBSinkError):
    transient = False


class QuestDBWalSuspendedError(QuestDBSinkError):
    transient = False  # a suspended table needs an operator (ALTER TABLE ... RESUME WAL)


class QuestDBWalLagError(QuestDBSinkError):
    """WAL apply stayed behind for longer than the allowed pause."""


class QuestDBStallError(QuestDBSinkError):
    """The server stopped answering (accepted the request, never replied) for longer than the stall timeout."""


def ca_file_problem(path: str) -> str | None:
    """Why ``path`` cannot serve as the CA bundle of TLS verification (None when it can)."""
    import ssl

    if not os.path.isfile(path):
        return f"{path} is not a readable file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if b"-----BEGIN CERTIFICATE-----" not in head:
        return f"{path} is not a PEM CA bundle (no '-----BEGIN CERTIFICATE-----' block)"
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError):
        return f"{path} holds no loadable PEM certificate"
    return None


# ---------------------------------------------------------------------------------------------
# connections


def make_sender(settings: QuestDBSettings):
    """An ILP ``Sender`` for the settings (not yet connected); auto-flush is off, we flush by size."""
    from questdb import Protocol, Sender, TlsCa

    kwargs: dict[str, Any] = dict(
        auto_flush=False,
        max_buf_size=settings.max_buf_size,
        auth_timeout=int(settings.connect_timeout_s * 1000),
    )
    if settings.over_http:
        # protocol version left to negotiate: the server's /settings tells which ILP versions it speaks
        kwargs["retry_timeout"] = settings.retry_timeout_ms
        # each request may take the stall timeout, whatever its size (no per-byte allowance on top),
        # so the client gives up on a frozen server by itself too (see ``stall``)
        kwargs["request_timeout"] = int(settings.stall_timeout_s * 1000)
        kwargs["request_min_throughput"] = 0
        if settings.token:
            kwargs["token"] = settings.token  # bearer
        elif settings.user:
            kwargs.update(username=settings.user, password=settings.password or "")
    else:
        kwargs["protocol_version"] = 2  # TCP cannot negotiate; v2 carries arrays and binary doubles
        if settings.token:
            kwargs.update(
                username=settings.ilp_user, token=settings.token, token_x=settings.token_x, token_y=settings.token_y
            )
    if settings.tls:
        kwargs["tls_verify"] = settings.tls_verify == "on"
        if settings.tls_ca:
            kwargs.update(tls_ca=TlsCa.PemFile, tls_roots=settings.tls_ca)
    return Sender(Protocol.parse(settings.protocol), settings.host, settings.ilp_port, **kwargs)


def pg_connect_params(settings: QuestDBSettings) -> dict[str, Any]:
    """libpq parameters of the PG wire connection; TLS follows the ILP protocol's TLS setting.

    With ``https``/``tcps`` the password never crosses in clear: ``verify-full`` checks the
    certificate (against ``tls_ca`` when given, else the system roots) and the host name;
    ``tls_verify=unsafe_off`` relaxes that to ``require`` (encrypted, unverified). Plain protocols
    use ``disable``: no TLS attempt, so a server that is not PostgreSQL-speaking is not mistaken
    for a TLS problem.
    """
    params: dict[str, Any] = dict(
        host=settings.host,
        port=settings.pg_port,
        user=settings.user,
        password=settings.password or "",
        dbname="qdb",
        connect_timeout=max(1, int(settings.connect_timeout_s)),
    )
    if not settings.tls:
        params["sslmode"] = "disable"
    elif settings.tls_verify == "unsafe_off":
        params["sslmode"] = "require"
    else:
        params.update(sslmode="verify-full", sslrootcert=settings.tls_ca or "system")
    return params


def pg_connect(settings: QuestDBSettings):
    """A psycopg 3 connection (autocommit) to QuestDB's PG wire endpoint."""
    import psycopg

    return psycopg.connect(**pg_connect_params(settings), autocommit=True)


@contextmanager
def pg_session(settings: QuestDBSettings, connect: Callable[[QuestDBSettings], Any] = pg_connect) -> Iterator[Any]:
    """A PG-wire connection closed on exit; failing to connect is one secret-free line naming host and port."""
    try:
        conn = connect(settings)
    except Exception as exc:
        cause = first_line(exc)
        raise QuestDBUnreachableError(
            scrub(f"QuestDB at {settings.pg_where} (PG wire): connection failed: {cause}", settings.secrets())
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def reads_over_qwp(settings: QuestDBSettings) -> bool:
    """Whether reads go over QWP: with ``ws``/``wss``, and with ``auto`` when the server offers it."""
    return settings.qwp or (settings.protocol == "auto" and qwp_offered(settings) is True)


@contextmanager
def read_session(settings: QuestDBSettings) -> Iterator[Any]:
    """A connection for reading back (asset checks, ``facts``, resume): QWP where the settings use it
    (see ``reads_over_qwp``), else PG wire. Both answer ``execute(sql).fetchall()`` with the same rows;
    the QWP one also answers ``arrow(sql)``. Failing to connect is one line naming host and port."""
    if not reads_over_qwp(settings):
        with pg_session(settings) as conn:
            yield conn
        return
    import questdb

    s = settings if settings.qwp else settings.with_(protocol="ws")
    try:
        conn = QwpReadConnection(questdb.connect(qwp_conf(s)))
    except Exception as exc:
        cause = scrub(first_line(exc), s.secrets())
        raise QuestDBUnreachableError(
            f"QuestDB at {s.ilp_where} ({s.wire}, reading): connection failed: {cause}"
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def ilp_access_problem(settings: QuestDBSettings) -> AccessProblem | None:
    """What stops the ILP endpoint from taking rows with these settings (TLS, credentials), or None."""
    s = settings
    tls = tls_context(s.tls_verify == "on", s.tls_ca) if s.tls else None
    if tls is not None:  # a TLS mismatch first, so it is not mistaken for anything else
        problem = probe_tls(s.host, s.ilp_port, tls, s.connect_timeout_s)
        if problem is not None:
            return problem
    if s.over_http:
        headers = bearer_header(s.token) if s.token else basic_auth_header(s.user, s.password or "") if s.user else {}
        return probe_http_auth(s.host, s.http_port, headers, s.connect_timeout_s, tls)
    if s.token:
        return probe_jwk_auth(s.host, s.ilp_tcp_port, s.ilp_user, s.token, s.connect_timeout_s, tls)
    return None


_AUTH_WORDS = ("password", "auth", "credential", "unauthori", "401", "403", "forbidden", "access denied")
_TLS_WORDS = ("ssl", "tls", "certificate")


def _looks_like_auth(text: str) -> bool:
    lower = text.lower()
    return any(w in lower for w in _AUTH_WORDS)


def _looks_like_tls(text: str) -> bool:
    lower = text.lower()
    return any(w in lower for w in _TLS_WORDS)


# ---------------------------------------------------------------------------------------------
# transports: how encoded slices reach the server (everything else is the sink's, shared)


class IlpTransport:
    """ILP over HTTP or TCP through the client's ``Sender``: one flushed buffer per slice."""

    def __init__(self, settings: QuestDBSettings):
        self.settings = settings
        self._sender = None
        self._buffer = None
        self._encoder = ilp.Encoder()

    def open(self) -> None:
        """Connect (raises the client's error; the sink names it)."""
        sender = make_sender(self.settings)
        sender.establish()
        if sender.protocol_version < 2:
            sender.close(flush=False)
            raise QuestDBSinkError(
                f"QuestDB at {self.settings.ilp_where} speaks only ILP protocol v{sender.protocol_version}; "
                "arrays need protocol v2 (QuestDB 9.0+)"
            )
        self._sender, self._buffer = sender, sender.new_buffer()

    @property
    def is_open(self) -> bool:
        return self._sender is not None

    def send(self, name: str, batch: TableBatch, lo: int, hi: int) -> int:
        """Send rows ``[lo, hi)``; returns the bytes sent. Over HTTP it returns once they are committed."""
        buf = self._buffer
        buf.clear()
        self._encoder.encode(buf, name, batch, lo, hi)
        nbytes = len(buf)
        self._sender.flush(buf)
        return nbytes

    def close(self) -> None:
        sender, self._sender, self._buffer = self._sender, None, None
        if sender is not None:
            sender.close(flush=False)


def qwp_conf(settings: QuestDBSettings) -> str:
    """The ``questdb.connect`` configuration string of the settings (holds secrets: never log it)."""
    s = settings

    def value(text: str) -> str:  # a ';' inside a value is written twice
        return text.replace(";", ";;")

    parts = [f"{s.protocol}::addr={s.host}:{s.http_port}", f"auth_timeout_ms={int(s.connect_timeout_s * 1000)}"]
    if s.token:
        parts.append(f"token={value(s.token)}")  # HTTP bearer, as over ILP/HTTP
    elif s.user:
        parts.append(f"username={value(s.user)};password={value(s.password or '')}")
    if s.tls:
        parts.append(f"tls_verify={'on' if s.tls_verify == 'on' else 'unsafe_off'}")
        if s.tls_ca:
            parts.append(f"tls_roots={value(s.tls_ca)}")  # a PEM file of trusted CAs
    return ";".join(parts) + ";"


class QwpTransport:
    """QWP over WebSocket through ``questdb.connect``: one Arrow table per slice.

    ``QuestDB.dataframe`` returns only once the server has committed every row of the call, so a
    slice that returned is stored; a rejection raises from that call, naming the cause. The call
    runs on a worker thread and is waited for at most the stall timeout, so a server that stops
    answering fails the run with one line instead of hanging it.
    """

    def __init__(self, settings: QuestDBSettings):
        self.settings = settings
        self._db = None
        self._worker = None

    def open(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import questdb

        self._db = questdb.connect(qwp_conf(self.settings))
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwp-send")

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def reader(self) -> QwpReadConnection:
        """Queries over the same QWP handle (its pool lends a reader connection per query)."""
        return QwpReadConnection(self._db)

    def send(self, name: str, batch: TableBatch, lo: int, hi: int) -> int:
        from concurrent.futures import TimeoutError as FutureTimeout

        from mkt_pipeline.sinks import qwp

        table = qwp.table(batch, lo, hi)
        timeout = self.settings.confirm_timeout_s or self.settings.stall_timeout_s
        call = self._worker.submit(
            self._db.dataframe,
            table,
            table_name=name,
            symbols=qwp.symbol_columns(batch),
            at=batch.schema.timestamp,
            max_rows_per_batch=QWP_ROWS_PER_BATCH,
        )
        try:
            call.result(timeout=timeout)
        except FutureTimeout:
            raise QwpStalledError(f"no confirmation within {timeout:g}s (is the server stalled?)") from None
        return table.nbytes

    def close(self) -> None:
        db, self._db = self._db, None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=False, cancel_futures=True)
        if db is not None:
            db.close(timeout=self.settings.connect_timeout_s)


QWP_ROWS_PER_BATCH = 65_536  # rows per QWP frame (the client splits a frame further when over its byte cap)


class QwpStalledError(TimeoutError):
    pass


def qwp_offered(settings: QuestDBSettings) -> bool | str:
    """True when the HTTP port takes a QWP WebSocket handshake, False when it answers without QWP
    (HTTP 404: an older server), else the reason it could not tell (unreachable, refused)."""
    import questdb

    try:
        questdb.connect(qwp_conf(settings.with_(protocol="ws"))).close()
        return True
    except Exception as exc:
        code = getattr(getattr(exc, "code", None), "name", "")
        if code == "HandshakeError" and "404" in str(exc):
            return False
        return scrub(first_line(exc), settings.secrets())


def resolve_protocol(settings: QuestDBSettings) -> tuple[QuestDBSettings, str]:
    """Settings with ``auto`` replaced by ``ws`` when the server offers QWP, else ``http``; the choice is
    said in the returned line. ``auto`` is plain (no TLS): name ``wss`` or ``https`` for TLS. Other protocols
    pass unchanged (with an empty line)."""
    if settings.protocol != "auto":
        return settings, ""
    offered = qwp_offered(settings)
    if offered is True:
        chosen, why = "ws", "the server offers QWP"
    elif offered is False:
        chosen, why = "http", "the server has no QWP (HTTP 404 to the WebSocket upgrade)"
    else:
        chosen, why = "http", f"QWP handshake failed: {offered}"
    return settings.with_(protocol=chosen), f"QuestDB at {settings.ilp_where}: --protocol auto chose {chosen} ({why})"


# ---------------------------------------------------------------------------------------------
# the sink


class QuestDBSink(Sink):
    """Writes batches into QuestDB; see the module docstring."""

    def __init__(
        self,
        settings: QuestDBSettings | None = None,
        naming: TableNaming | None = None,
        *,
        connect: Callable[[QuestDBSettings], Any] = pg_connect,
        access_probe: Callable[[QuestDBSettings], AccessProblem | None] = ilp_access_problem,
        logger: logging.Logger = log,
    ):
        self.settings = settings or QuestDBSettings()
        self.naming = naming or TableNaming()
        self.stats = WriteStats()
        self.log = logger
        self._connect = connect
        self._access_probe = access_probe
        self.protocol_note = ""  # what --protocol auto chose, once prepared
        self._conn = None
        # every blocking call to the server runs under this watch: a warning while it waits, an error after the timeout
        self.stall = StallWatch(self.settings.stall_timeout_s, logger=logger)
        self._stalled: str | None = None  # once the server stalled, the sink gives up at once (no second wait)
        self._transport: IlpTransport | QwpTransport | None = None
        self._written: list[str] = []
        self._schemas: dict[str, TableSchema] = {}
        self.monitor = WalMonitor(
            self._fetch_wal,
            pause_above=self.settings.wal_pause_lag,
            resume_at=self.settings.wal_resume_lag,
            poll_interval_s=self.settings.wal_poll_interval_s,
            max_pause_s=self.settings.wal_max_pause_s,
            where=self.settings.pg_where,
            logger=logger,
        )

    def __repr__(self) -> str:
        return f"QuestDBSink({self.settings!r}, naming={self.naming!r})"

    # -- errors --------------------------------------------------------------------------------
    @property
    def wal_lag_max(self) -> int | None:
        return self.monitor.max_lag_seen

    @property
    def location(self) -> str:
        return f"questdb {self.settings.ilp_where} ({self.settings.wire})"

    def _error(self, cls: type[QuestDBSinkError], text: str) -> QuestDBSinkError:
        return cls(scrub(text, self.settings.secrets()))

    def _ilp_error(self, exc: Exception, table: str) -> QuestDBSinkError:
        """A client error while connecting or sending, as the sink's one line (ILP or QWP)."""
        s = self.settings
        if isinstance(exc, QuestDBSinkError):
            return exc
        cause = scrub(first_line(exc) if s.qwp else str(exc), s.secrets())
        code = getattr(getattr(exc, "code", None), "name", "")
        where = f"QuestDB at {s.ilp_where} ({s.wire}, table {table})"
        if isinstance(exc, QwpStalledError):
            return self._error(QuestDBSinkError, f"{where}: {cause}")
        if s.qwp and code == "HandshakeError" and "404" in cause:
            return self._error(
                QuestDBSinkError,
                f"{where}: the server has no QWP ({cause}); QWP needs QuestDB 9.4+, use --protocol http or auto",
            )
        if code in ("AuthError", "ServerSecurityError") or _looks_like_auth(cause):
            return self._error(QuestDBAuthError, f"{where}: authentication failed: {cause}")
        # a failed /settings probe (protocol negotiation) is an I/O or TLS failure, not a version issue
        probe_failed = code == "ProtocolVersionError" and " err: " in cause
        if code == "TlsError":
            return self._error(QuestDBTlsError, f"{where}: TLS failed: {cause}")
        if code == "SocketError" and not s.over_http and s.token:
            # QuestDB answers a refused JWK key by closing the connection: the client sees a broken pipe
            return self._error(
                QuestDBAuthError,
                f"{where}: the server closed the connection ({cause}); with TCP JWK auth this is how a refused key shows",
            )
        if code in ("SocketError", "CouldNotResolveAddr", "ConnectTimeout") or probe_failed:
            return self._error(QuestDBUnreachableError, f"{where} is unreachable: {cause}")
        # QWP: a server's refusal of a frame arrives as "QWP server error on fsn N: status=..., message=..."
        rejected = s.qwp and ("server error" in cause.lower() or type(exc).__name__ == "QuestDBServerRejectionError")
        if rejected or code in (
            "ServerFlushError",
            "ServerRejection",
            "ServerSchemaMismatch",
            "ServerParseError",
            "ServerInternalError",
        ):
            return self._error(QuestDBRejectedError, f"{where} rejected rows: {cause}")
        return self._error(QuestDBSinkError, f"{where}: {cause}")

    # -- connections ---------------------------------------------------------------------------
    def check_reachable(self) -> None:
        """Both endpoints open a TCP connection; raises ``QuestDBUnreachableError`` otherwise."""
        s = self.settings
        for what, port in ((s.wire, s.ilp_port), ("PG wire", s.pg_port)):
            reason = probe_tcp(s.host, port, s.connect_timeout_s)
            if reason is not None:
                raise self._error(
                    QuestDBUnreachableError, f"QuestDB at {s.host}:{port} ({what}) is unreachable: {reason}"
                )

    def verify_access(self) -> None:
        """Reach both endpoints, agree on TLS and have both accept the credentials: all before any DDL.

        One line per failure, told apart by class: ``QuestDBUnreachableError``, ``QuestDBTlsError``,
        ``QuestDBAuthError``; each within about ``connect_timeout_s``.
        """
        self.check_reachable()
        self.settings, note = resolve_protocol(self.settings)
        s = self.settings
        if note:
            self.protocol_note = note
            self.log.info(note)
        problem = self._access_probe(s)
        if problem is not None:
            where = f"QuestDB at {s.ilp_where} ({s.wire})"
            if problem.kind == AUTH:
                raise self._error(QuestDBAuthError, f"{where}: authentication failed: {problem.reason}")
            if problem.kind == TLS:
                raise self._error(QuestDBTlsError, f"{where}: {problem.reason}")
            raise self._error(QuestDBUnreachableError, f"{where} is unreachable: {problem.reason}")
        self._pg()

    def _pg(self):
        if self._conn is None:
            try:
                self._conn = self._connect(self.settings)
            except Exception as exc:  # psycopg.OperationalError and friends
                cause = first_line(exc)
                if _looks_like_auth(cause):
                    cls, what = QuestDBAuthError, "authentication failed"
                elif self.settings.tls and _looks_like_tls(cause):
                    cls, what = QuestDBTlsError, f"TLS failed (sslmode={pg_connect_params(self.settings)['sslmode']})"
                else:
                    cls, what = QuestDBUnreachableError, "connection failed"
                raise self._error(cls, f"QuestDB at {self.settings.pg_where} (PG wire): {what}: {cause}") from None
        return self._conn

    # -- stalls ----------------------------------------------------------------------------------
    @contextmanager
    def _ilp_call(self, table: str):
        """One ILP request: warned about while the server is silent, broken and failed after the stall timeout."""
        s = self.settings
        self._check_not_stalled()
        try:
            label = f"{s.wire}, table {table}"
            with self.stall.call(label, s.ilp_where, lambda: shutdown_peer_sockets(s.host, s.ilp_port)):
                yield
        except StallError as exc:
            raise self._stall_error(str(exc)) from None

    @contextmanager
    def _pg_call(self, table: str = ""):
        """One PG-wire statement under the stall watch; a stalled connection is dropped (the next call reconnects)."""
        s = self.settings
        self._check_not_stalled()
        conn = self._pg()
        on = f", table {table}" if table else ""
        try:
            with self.stall.call(f"PG wire{on}", s.pg_where, lambda: shutdown_fd(conn.fileno())):
                yield conn
        except StallError as exc:
            self._drop_pg()
            raise self._stall_error(str(exc)) from None

    def _stall_error(self, text: str) -> QuestDBSinkError:
        error = self._error(QuestDBStallError, text)
        self._stalled = str(error)
        return error

    def _check_not_stalled(self) -> None:
        if self._stalled is not None:
            raise QuestDBStallError(self._stalled)

    def _drop_pg(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _query(self, sql: str, table: str = "", pg: bool = False) -> list[tuple]:
        """Rows of ``sql``: over QWP's own handle once a QWP transport is open (unless ``pg``), else PG wire.
        Both give the same rows (see ``questdb_access.QwpReadConnection``); DDL and ledger inserts stay on PG wire."""
        where = f"{self.settings.pg_where} (PG wire"
        try:
            transport = self._transport
            if not pg and isinstance(transport, QwpTransport) and transport.is_open:
                where = f"{self.settings.ilp_where} ({self.settings.wire}"
                with self._ilp_call(table):
                    return list(transport.reader().execute(sql).fetchall())
            with self._pg_call(table) as conn:
                return list(conn.execute(sql).fetchall())
        except QuestDBSinkError:
            raise
        except Exception as exc:
            on = f", {table}" if table else ""
            cause = first_line(exc)
            raise self._error(QuestDBSinkError, f"QuestDB at {where}{on}): {cause}") from None

    def _execute(self, sql: str, table: str) -> None:
        try:
            with self._pg_call(table) as conn:
                conn.execute(sql)
        except QuestDBSinkError:
            raise
        except Exception as exc:
            cause = first_line(exc)
            raise self._error(
                QuestDBSinkError, f"QuestDB at {self.settings.pg_where} could not create {table}: {cause}"
            ) from None

    def existing_tables(self, wanted: str = "") -> set[str]:
        """Names of the server's tables (``wanted``: the table the caller asks about, for errors)."""
        return {str(r[0]) for r in self._query("SELECT table_name FROM tables()", wanted)}

    def _fetch_wal(self, tables: Sequence[str]) -> dict[str, WalStatus]:
        # the WAL monitor's polls stay on PG wire, over QWP runs too: they are small and frequent
        return statuses_from_rows(self._query(WAL_TABLES_SQL, ", ".join(tables), pg=True), tables)

    # -- Sink interface ------------------------------------------------------------------------
    def prepare(self, schemas: Sequence[TableSchema]) -> None:
        """Verify access (reachable, TLS, credentials), open the ILP sender, verify existing tables, then create tables/views."""
        s = self.settings
        self.verify_access()
        self._open_sender(schemas)  # the ILP session opens before any DDL, so a failure leaves nothing behind
        existing = self.existing_tables(", ".join(self.naming.name(x) for x in schemas))
        for schema in schemas:
            name = checked_name(self.naming.name(schema))
            if name in existing:
                rows = self._query(table_columns_sql(name), name)
                try:
                    check_table_compatible(schema, name, rows, where=s.pg_where)
                except SchemaMismatchError as exc:
                    raise self._error(QuestDBSchemaError, str(exc)) from None
        options = DdlOptions(parquet_encodings=s.parquet_encodings, short_ttl=s.short_ttl, enterprise=s.enterprise)
        for name, sql in ddl_statements(schemas, self.naming, options, create_views=s.create_views):
            self._execute(sql, name)
        self._execute(ledger_table_sql(self.ledger_name), self.ledger_name)
        self._schemas.update({self.naming.name(x): x for x in schemas})

    # -- the ledger of complete chunks (see ``ledger``) -------------------------------------------
    @property
    def ledger_name(self) -> str:
        return checked_name(self.naming.name(LEDGER_BASE))

    def ledger_entries(self, key: ChunkKey, window: Window | None = None) -> list[LedgerEntry]:
        name = self.ledger_name
        if name not in self.existing_tables(name):
            return []
        # entries of a run that just ended may still wait in the WAL: read once they are applied
        with self._wal_errors():
            lag = self.monitor.wait_drained([name], self.settings.ledger_wait_s)
        if lag:
            raise self._error(
                QuestDBWalLagError,
                f"QuestDB at {self.settings.pg_where}: table {name} still has {lag} WAL transactions to apply "
                f"after {self.settings.ledger_wait_s:g}s; cannot tell which chunks are stored",
            )
        return entries_from_rows(self._query(ledger_select_sql(name, key, window), name))

    def record(self, key: ChunkKey, entry: LedgerEntry) -> None:
        """Insert a ledger row over PG wire (a WAL commit); chunks sent over TCP are first seen stored.

        ILP over HTTP answers only once a request is committed, so a chunk is complete when its
        window closes. ILP over TCP acknowledges nothing: the chunk counts as complete only once
        QuestDB shows every row of it.
        """
        if entry.kind == CHUNK:
            if not self.settings.over_http:
                self._confirm_stored(entry)
            # a table suspended meanwhile may not hold the chunk's rows yet: stop before recording it
            self._throttle(force=True)
        name = self.ledger_name
        try:
            with self._pg_call(name) as conn:
                conn.execute(ledger_insert_sql(name, key, entry))
        except QuestDBSinkError:
            raise
        except Exception as exc:
            cause = first_line(exc)
            raise self._error(
                QuestDBSinkError, f"QuestDB at {self.settings.pg_where} (PG wire, {name}): cannot record chunk: {cause}"
            ) from None

    def _confirm_stored(self, entry: LedgerEntry) -> None:
        deadline = time.monotonic() + self.settings.ledger_wait_s
        for name, expected in entry.rows.items():
            schema = self._schemas.get(name)
            if schema is None or expected <= 0:
                continue
            sql = (
                f"SELECT count() FROM {checked_name(name)} "
                f"WHERE {schema.timestamp} >= {int(entry.start_us)}::timestamp AND {schema.timestamp} < {int(entry.end_us)}::timestamp"
            )
            while (stored := int(self._query(sql, name)[0][0])) < expected:
                if time.monotonic() > deadline:
                    raise self._error(
                        QuestDBSinkError,
                        f"QuestDB at {self.settings.ilp_where} (ILP over {self.settings.protocol}, table {name}): only {stored:,} of "
                        f"{expected:,} rows of {entry.window} stored after {self.settings.ledger_wait_s:g}s",
                    )
                with self._wal_errors():
                    self.monitor.throttle([name])  # a suspended table stops here with its fix
                time.sleep(0.2)

    def _open_sender(self, schemas: Sequence[TableSchema]) -> None:
        if self._transport is not None:
            return
        table = ", ".join(self.naming.name(x) for x in schemas) or "-"
        transport = QwpTransport(self.settings) if self.settings.qwp else IlpTransport(self.settings)
        try:
            with self._ilp_call(table):
                transport.open()
        except QuestDBSinkError:
            raise
        except Exception as exc:
            raise self._ilp_error(exc, table) from None
        self._transport = transport

    @contextmanager
    def window(self, window: Window) -> Iterator[QuestDBWindowWriter]:
        if self._transport is None:
            raise RuntimeError("QuestDBSink.prepare() must run before writing")
        writer = QuestDBWindowWriter(self, window)
        yield writer
        self.stats.add(writer.stats)

    def send(self, batch: TableBatch, stats: WriteStats) -> None:
        """Send one batch in size-bounded slices (one table per request), each confirmed before the next."""
        name = self.naming.name(batch.schema)
        if name not in self._written:
            self._written.append(name)
        sizes = ilp.row_size_estimate(batch, name)
        for lo, hi in ilp.slices(sizes, self.settings.flush_bytes):
            self._throttle()
            try:
                with self._ilp_call(name):
                    nbytes = self._transport.send(name, batch, lo, hi)
            except QuestDBSinkError:
                raise
            except Exception as exc:
                raise self._ilp_error(exc, name) from None
            stats.rows[name] += hi - lo
            stats.bytes[name] += nbytes

    def _throttle(self, force: bool = False) -> None:
        with self._wal_errors():
            self.monitor.throttle(self._written, force=force)

    def wait_for_wal(self, timeout_s: float = 60.0) -> int:
        """Block until every table written has applied its WAL (lag 0) or the timeout passes."""
        with self._wal_errors():
            return self.monitor.wait_drained(self._written, timeout_s)

    @contextmanager
    def _wal_errors(self):
        """WAL monitor failures as the sink's one-line, secret-free errors."""
        try:
            yield
        except WalSuspendedError as exc:
            raise self._error(QuestDBWalSuspendedError, str(exc)) from None
        except WalLagTimeoutError as exc:
            raise self._error(QuestDBWalLagError, str(exc)) from None

    def latest_timestamp_us(self, schema: TableSchema) -> int | None:
        name = checked_name(self.naming.name(schema))
        if name not in self.existing_tables(name):
            return None
        # cast to long: psycopg truncates TIMESTAMP_NS to µs (docs/questdb.md#questdb-facts); LIMIT -1 is the last row
        rows = self._query(f"SELECT cast({schema.timestamp} AS long) FROM {name} LIMIT -1", name)
        if not rows or rows[0][0] is None:
            return None
        value = int(rows[0][0])
        return value // NS_PER_US if schema.timestamp_kind == TIMESTAMP_NS else value

    def close(self) -> None:
        transport, self._transport = self._transport, None
        conn, self._conn = self._conn, None
        if transport is not None:
            try:
                transport.close()
            except Exception:  # closing must not mask the error that got us here
                pass
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


class QuestDBWindowWriter(WindowWriter):
    """Sends each batch as it arrives; rows are only counted for the sink when the window commits."""

    def __init__(self, sink: QuestDBSink, window: Window):
        self.sink = sink
        self.window = window
        self.stats = WriteStats()

    def write(self, batch: TableBatch) -> None:
        if not len(batch):
            return
        ts = batch.timestamps
        lo, hi = self.window.start_us, self.window.end_us
        if batch.schema.timestamp_kind == TIMESTAMP_NS:
            lo, hi = lo * NS_PER_US, hi * NS_PER_US
        if ts.min() < lo or ts.max() >= hi:
            raise ValueError(f"{self.sink.naming.name(batch.schema)}: batch rows fall outside the window {self.window}")
        self.sink.send(batch, self.stats)

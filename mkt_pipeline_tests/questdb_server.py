"""Where the real QuestDB of the ``questdb`` suite is, and small helpers every integration test shares.

``.ci/run`` starts a server and exports ``QDB_TEST_HOST`` (``host`` or ``host:http_port``) plus
``QDB_TEST_PG_PORT`` and ``QDB_TEST_ILP_PORT`` when they are not the defaults. Without a server
that answers, every test using these fixtures skips with one line saying where it looked.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.common import drop_suffix
from mkt_pipeline.core.tables import BOOK, TIMESTAMP, TIMESTAMP_NS, TableSchema
from mkt_pipeline.sinks.base import TableNaming


@dataclass(frozen=True)
class QuestDBServer:
    host: str
    http_port: int
    pg_port: int
    ilp_port: int
    password: str | None = None  # PG password of a server started with one (else QUESTDB_PASSWORD or the default)
    pid: int | None = None  # the server process, for a server a test started itself (own_server)

    def cli_flags(self) -> list[str]:
        """The CLI flags that point ``mkt-pipeline`` at this server."""
        return [
            "--host",
            self.host,
            "--http_port",
            str(self.http_port),
            "--pg_port",
            str(self.pg_port),
            "--ilp_port",
            str(self.ilp_port),
        ]

    def env(self) -> dict[str, str]:
        """The variables (docs/questdb.md#environment-variables) that point the Dagster resources (and the CLI) at
        this server."""
        return {
            "QUESTDB_HOST": self.host,
            "QUESTDB_HTTP_PORT": str(self.http_port),
            "QUESTDB_PG_PORT": str(self.pg_port),
            "QUESTDB_ILP_TCP_PORT": str(self.ilp_port),
        }

    def connect(self):
        """A psycopg connection (autocommit) with the server's default credentials or ``QUESTDB_*``."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.pg_port,
            user=os.environ.get("QUESTDB_USER", "admin"),
            password=self.password or os.environ.get("QUESTDB_PASSWORD", "quest"),
            dbname="qdb",
            autocommit=True,
            connect_timeout=5,
        )

    def query(self, sql: str) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql).fetchall()

    def execute(self, sql: str) -> None:
        with self.connect() as conn:
            conn.execute(sql)

    def drop_suffix(self, suffix: str) -> None:
        """Drop every view, then every table, whose name ends with ``suffix``."""
        with self.connect() as conn:
            drop_suffix(conn, suffix)

    def wait_applied(self, tables: Sequence[str], timeout_s: float = 60) -> None:
        """Wait until each of ``tables`` exists and has applied every WAL transaction committed to it."""

        def applied() -> bool:
            lag = {r[0]: r[1] - r[2] for r in self.query("SELECT name, sequencerTxn, writerTxn FROM wal_tables()")}
            return all(lag.get(t, 1) == 0 for t in tables)

        self.wait_until(applied, timeout_s, f"WAL apply of {', '.join(tables)}")

    def stored_rows(self, schemas: Sequence[TableSchema], naming: TableNaming) -> dict[str, list]:
        """Every table's rows (comparable columns, see ``comparable_columns``), ordered, by base name, once
        the WAL has applied them."""
        names = [naming.name(s) for s in schemas]
        self.wait_applied(names)
        out = {}
        for schema, name in zip(schemas, names):
            cols = comparable_columns(schema)
            order = ", ".join(str(i + 1) for i in range(len(cols)))
            out[schema.base_name] = self.query(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {order}")
        return out

    def refresh_views(self, views: Sequence[tuple[str, bool]], timeout_s: float = 120) -> None:
        """Bring ``(name, timed)`` views up to date, in dependency order, and wait for each.

        A timed view gets ``REFRESH ... FULL`` and is waited for until that refresh has finished,
        not merely until it holds rows: a full refresh first empties the view, and emptying a view
        invalidates every view built on it that was refreshed in the meantime. Every view is then
        waited for until it is valid, has applied all of its base's transactions and holds rows.
        """
        for name, timed in views:
            issued = None
            if timed:
                issued = self.query("SELECT now()")[0][0]
                self.execute(f"REFRESH MATERIALIZED VIEW {name} FULL")

            def caught_up(name=name, timed=timed, issued=issued) -> bool:
                rows = self.query(
                    "SELECT view_status, refresh_base_table_txn, base_table_txn, last_refresh_start_timestamp, last_refresh_finish_timestamp"
                    f" FROM materialized_views() WHERE view_name = '{name}'"
                )
                if not rows:
                    return False
                status, applied, base, started, finished = rows[0]
                if status != "valid" or applied is None or applied < base:
                    return False
                if timed and (started is None or finished is None or started < issued or finished < started):
                    return False
                return self.query(f"SELECT count() FROM {name}")[0][0] > 0

            self.wait_until(caught_up, timeout_s, f"view {name} to refresh")

    def wait_until(self, predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
            time.sleep(0.25)


def comparable_columns(schema: TableSchema) -> list[str]:
    """A select list of the table's columns that compares row for row across runs: timestamps as
    integers (psycopg truncates TIMESTAMP_NS to µs), books as their best level and depth."""
    out = []
    for col in schema.columns:
        if col.kind in (TIMESTAMP, TIMESTAMP_NS):
            out.append(f"cast({col.name} AS long)")
        elif col.kind == BOOK:
            out += [f"{col.name}[1, 1]", f"{col.name}[2, 1]", f"array_count({col.name})"]
        else:
            out.append(col.name)
    return out


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def configured_server() -> QuestDBServer:
    host, _, http = os.environ.get("QDB_TEST_HOST", "127.0.0.1:9000").partition(":")
    return QuestDBServer(
        host=host or "127.0.0.1",
        http_port=int(http or 9000),
        pg_port=int(os.environ.get("QDB_TEST_PG_PORT", "8812")),
        ilp_port=int(os.environ.get("QDB_TEST_ILP_PORT", "9009")),
        password=os.environ.get("QUESTDB_PASSWORD", "quest"),  # read once: a test may change the variable for the CLI
    )


def require_server() -> QuestDBServer:
    """The configured server, or a skip naming where none answered."""
    server = configured_server()
    if not (_answers(server.host, server.http_port) and _answers(server.host, server.pg_port)):
        pytest.skip(f"no QuestDB at {server.host}:{server.http_port} / PG {server.pg_port} (set QDB_TEST_HOST)")
    return server


@pytest.fixture
def questdb() -> QuestDBServer:
    return require_server()


@pytest.fixture
def qdb_suffix(questdb: QuestDBServer):
    """A table suffix of this test alone; everything named with it is dropped afterwards."""
    suffix = f"_t{uuid.uuid4().hex[:8]}"
    yield suffix
    questdb.drop_suffix(suffix)


# ---------------------------------------------------------------------------------------------
# a server of a test's own (e.g. with authentication), started with the shared ``qdb`` script

REPO = Path(__file__).resolve().parents[1]


def server_script() -> Path | None:
    """The ``qdb`` start/stop script: ``QDB_SERVER_SCRIPT``, else ``../shared/questdb/qdb`` beside the repository."""
    given = os.environ.get("QDB_SERVER_SCRIPT")
    path = Path(given) if given else REPO.parent / "shared" / "questdb" / "qdb"
    return path if path.is_file() and shutil.which(os.environ.get("JAVA", "java")) else None


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextmanager
def own_server(
    *settings: str, ports: Sequence[int] | None = None, prepare: Callable[[Path], None] | None = None
) -> Iterator[QuestDBServer]:
    """A fresh QuestDB with ``settings`` (``key=value`` server.conf pairs) in a temporary folder, stopped after.

    ``ports`` are (http, pg, ilp, health); free ones by default. ``prepare(root)`` runs before the
    start (e.g. to write ``conf/auth.txt``). Skips when the script or Java is missing.
    """
    script = server_script()
    if script is None:
        pytest.skip(
            "no qdb script (QDB_SERVER_SCRIPT or ../shared/questdb/qdb) or no java to start a QuestDB of this test"
        )
    ports = ports or free_ports(4)
    with tempfile.TemporaryDirectory(prefix="mkt-qdb-") as root:
        if prepare is not None:
            prepare(Path(root))
        pid = start_qdb(script, root, ports, *settings)
        try:
            yield QuestDBServer("127.0.0.1", ports[0], ports[1], ports[2], pid=pid)
        finally:
            stop_qdb(script, root)


def start_qdb(
    script: Path, root: str | Path, ports: Sequence[int], *settings: str, timeout_s: float = 180
) -> int | None:
    """Start the ``qdb`` script's server with its data in ``root`` on ``ports`` (http, pg, ilp, health) and
    ``settings`` (``key=value`` server.conf pairs); its process id. A server that does not start fails the test."""
    http, pg, ilp, health = ports
    cmd = ["bash", str(script), "start", "--root", str(root), "--http", str(http), "--pg", str(pg), "--ilp", str(ilp),
           "--min", str(health), *settings]  # fmt: skip
    started = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if started.returncode != 0:
        pytest.fail(f"could not start a QuestDB: {started.stderr.strip()[-500:]}")
    found = re.search(r"pid=(\d+)", started.stdout + started.stderr)
    return int(found.group(1)) if found else None


def stop_qdb(script: Path, root: str | Path) -> None:
    subprocess.run(["bash", str(script), "stop", str(root)], capture_output=True, timeout=60)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    return free_ports(1)[0]

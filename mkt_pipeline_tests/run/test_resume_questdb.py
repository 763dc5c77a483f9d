"""Resumption against a real QuestDB (docs/faults.md#resumption): interrupt a run, re-run the same command, compare.

The tests start their own server with the ``qdb`` script (``QDB_SERVER_SCRIPT``, or
``../shared/questdb/qdb`` beside the repository) with ``dev.mode.enabled=true`` (needed for
``ALTER TABLE … SUSPEND WAL``) on free ports, so they can kill and restart it; they skip when the
script or Java is absent. Each interrupted run is
re-run plainly and its stored rows are compared, row for row on the key and value columns, with
an uninterrupted run of the same window under another suffix.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.core.tables import EQUITIES_TABLES, FX_TABLES
from mkt_pipeline.core.timeline import US_PER_S, format_us, parse_timestamp
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ledger import LEDGER_BASE
from mkt_pipeline_tests.conftest import LIGHT_FLAGS
from mkt_pipeline_tests.questdb_server import QuestDBServer, free_ports, server_script, start_qdb, stop_qdb

pytestmark = pytest.mark.questdb

REPO = Path(__file__).resolve().parents[2]
FX_LIGHT = LIGHT_FLAGS["fx"]
EQ_LIGHT = LIGHT_FLAGS["equities"]
MARKETS = {
    # 3 minutes in 10-second chunks: long enough to interrupt after a few chunks, short to compare
    "fx": (FX_LIGHT, FX_TABLES, "2025-11-11T03:00:00Z", "2025-11-11T03:03:00Z"),
    "equities": (EQ_LIGHT, EQUITIES_TABLES, "2025-06-02T14:00:00Z", "2025-06-02T14:03:00Z"),  # New York morning session
}
CHUNK_S = "10"


class OwnServer:
    """A QuestDB server of this module: started, killed and restarted on the same data and ports."""

    def __init__(self, root: Path):
        self.root = root
        self.http, self.pg, self.ilp, self.min = free_ports(4)
        self.pid: int | None = None
        self.server = QuestDBServer("127.0.0.1", self.http, self.pg, self.ilp)

    def start(self) -> None:
        self.pid = start_qdb(
            server_script(), self.root, (self.http, self.pg, self.ilp, self.min), "dev.mode.enabled=true"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no orderly shutdown."""
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        stop_qdb(server_script(), self.root)


@pytest.fixture(scope="module")
def own():
    if server_script() is None:
        pytest.skip(
            "no qdb script (QDB_SERVER_SCRIPT or ../shared/questdb/qdb) or no java to start a QuestDB of this test"
        )
    root = Path(tempfile.mkdtemp(prefix="mkt-resume-qdb-"))
    server = OwnServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def suffix(own):
    sfx = f"_r{uuid.uuid4().hex[:8]}"
    yield sfx
    own.server.drop_suffix(sfx)


@pytest.fixture(scope="module")
def uninterrupted(own):
    """The stored rows of one uninterrupted run per market (computed once, then dropped)."""
    done: dict[str, dict[str, list]] = {}
    suffixes = []

    def rows_of(market: str) -> dict[str, list]:
        if market not in done:
            sfx = f"_u{uuid.uuid4().hex[:8]}"
            suffixes.append(sfx)
            assert main(command(own.server, market, sfx, processes=1)) == 0
            done[market] = stored(own.server, market, sfx)
        return done[market]

    yield rows_of
    for sfx in suffixes:
        own.server.drop_suffix(sfx)


def command(
    server: QuestDBServer,
    market: str,
    suffix: str,
    processes: int,
    http_port: int | None = None,
    protocol: str = "http",
) -> list[str]:
    light, _, start, end = MARKETS[market]
    flags = server.cli_flags()
    if http_port is not None:
        flags[flags.index("--http_port") + 1] = str(http_port)
    return [
        market,
        "--mode",
        "faster-than-life",
        *light,
        "--sink",
        "questdb",
        *flags,
        "--suffix",
        suffix,
        "--create_views",
        "false",
        "--start_ts",
        start,
        "--end_ts",
        end,
        "--chunk_seconds",
        CHUNK_S,
        "--processes",
        str(processes),
        "--protocol",
        protocol,
    ]


def needs_qwp(server: QuestDBServer, protocol: str) -> None:
    """Skip a QWP case on a server without QWP (CI's ILP pass runs this module on QuestDB 9.3)."""
    from mkt_pipeline.sinks.questdb import QuestDBSettings, qwp_offered

    settings = QuestDBSettings(host=server.host, http_port=server.http_port, pg_port=server.pg_port)
    if protocol == "ws" and qwp_offered(settings) is not True:
        pytest.skip(f"the QuestDB at {server.host}:{server.http_port} has no QWP (QuestDB 9.4+ has)")


def stored(server: QuestDBServer, market: str, suffix: str) -> dict[str, list]:
    """Every table's rows (key and value columns), ordered, once the WAL has applied them."""
    return server.stored_rows(MARKETS[market][1], TableNaming(suffix=suffix))


def ledger_chunks(server: QuestDBServer, suffix: str, settled: bool = False) -> int:
    """Chunks recorded complete; ``settled`` waits for the ledger's WAL first (after a run ended)."""
    name = TableNaming(suffix=suffix).name(LEDGER_BASE)
    if settled:
        server.wait_applied([name])
    try:
        return int(server.query(f"SELECT count() FROM {name} WHERE kind = 'chunk'")[0][0])
    except Exception:  # not created yet, or the server is restarting
        return 0


def assert_same_as_uninterrupted(server, market, suffix, uninterrupted) -> None:
    got, want = stored(server, market, suffix), uninterrupted(market)
    for table, rows in want.items():
        assert rows, f"{table}: the uninterrupted run stored no rows"
        assert len(got[table]) == len(rows), (
            f"{table}: {len(got[table])} rows after the re-run vs {len(rows)} uninterrupted"
        )
        assert got[table] == rows, f"{table}: rows differ from the uninterrupted run"


def start_cli(server: QuestDBServer, market: str, suffix: str, processes: int, protocol: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mkt_pipeline.cli", *command(server, market, suffix, processes, protocol=protocol)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_chunks(server: QuestDBServer, suffix: str, proc: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 90
    while ledger_chunks(server, suffix) < at_least:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {at_least} chunks were recorded: {proc.stderr.read()[-500:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"fewer than {at_least} chunks recorded after 90 s")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# (a) the server killed mid-run and restarted


@pytest.mark.parametrize("processes,protocol", [(1, "http"), (2, "http"), (1, "ws")])
def test_server_killed_mid_run_then_restarted(own, suffix, uninterrupted, processes, protocol, capsys):
    needs_qwp(own.server, protocol)
    proc = start_cli(own.server, "fx", suffix, processes, protocol)
    wait_for_chunks(own.server, suffix, proc, 3)
    own.kill()
    try:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        line = err.strip().splitlines()[-1]
        # one line naming where it failed (host and port), the table and the cause
        assert f"127.0.0.1:{own.http}" in line or f"127.0.0.1:{own.pg}" in line, err
        assert suffix in line and line.count(": ") >= 1, err
    finally:
        own.start()
    recorded = ledger_chunks(own.server, suffix, settled=True)
    assert 3 <= recorded < 18, "the kill must land mid-run"
    assert main(command(own.server, "fx", suffix, processes, protocol=protocol)) == 0
    err = capsys.readouterr().err
    assert f"{recorded} of 18 chunks are recorded as stored; sending the other {18 - recorded}" in err
    assert_same_as_uninterrupted(own.server, "fx", suffix, uninterrupted)


# ---------------------------------------------------------------------------------------------
# (b) a connection reset on exactly one table's request


class ResetProxy:
    """TCP proxy in front of the HTTP port: resets the connection of the request carrying ``needle``.

    It lets ``skip`` such requests through first (so earlier chunks complete), then resets every
    request that carries ``needle`` (the client's own retries of it included) until ``disarm``.
    A request is an ILP/HTTP ``POST``, or over QWP one WebSocket frame: client frames are masked,
    so each is held until complete, unmasked and searched before it is passed on. Nothing of a
    reset request reaches the server beyond what preceded it, so the server commits none of it.
    """

    def __init__(self, upstream_port: int, needle: bytes, skip: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.needle = needle
        self.skip = skip
        self.seen = 0
        self.resets = 0
        self.armed = True
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def disarm(self) -> None:
        self.armed = False

    def close(self) -> None:
        self._closed = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._client_to_server, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _reset(self, client: socket.socket, upstream: socket.socket) -> None:
        for s in (client, upstream):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
                s.close()
            except OSError:
                pass

    def _hit(self) -> bool:
        """One more request carrying the needle: whether to reset it."""
        with self._lock:
            self.seen += 1
            reset = self.armed and self.seen > self.skip
            self.resets += int(reset)
        return reset

    def _client_to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        tail, counted = b"", False
        try:
            while data := client.recv(1 << 16):
                if data.startswith(b"GET "):  # a plain GET (the ILP client's /settings), or QWP's WebSocket upgrade
                    while b"\r\n\r\n" not in data and (more := client.recv(1 << 16)):
                        data += more
                    head = data[: data.find(b"\r\n\r\n")].lower()
                    if b"upgrade: websocket" in head:
                        self._websocket(data, client, upstream)
                        return
                if b"POST /" in data:
                    counted = False  # a new request (every ILP row line repeats the table name)
                window = tail + data
                if self.needle in window and not counted:
                    counted = True
                    if self._hit():
                        self._reset(client, upstream)
                        return
                tail = window[-len(self.needle) :]
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _websocket(self, data: bytes, client: socket.socket, upstream: socket.socket) -> None:
        """Pass the upgrade request on, then whole frames, resetting at a frame carrying the needle."""
        end = data.index(b"\r\n\r\n") + 4
        upstream.sendall(data[:end])
        buf = bytearray(data[end:])
        while True:
            frame = _ws_frame(buf)
            while frame is None:
                more = client.recv(1 << 16)
                if not more:
                    return
                buf += more
                frame = _ws_frame(buf)
            size, payload = frame
            if self.needle in payload and self._hit():
                self._reset(client, upstream)
                return
            upstream.sendall(bytes(buf[:size]))
            del buf[:size]

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass


def _ws_frame(buf: bytearray) -> tuple[int, bytes] | None:
    """The first complete WebSocket frame in ``buf`` as (its size, its unmasked payload), or None."""
    if len(buf) < 2:
        return None
    length, head = buf[1] & 0x7F, 2
    if length == 126:
        if len(buf) < 4:
            return None
        length, head = struct.unpack(">H", buf[2:4])[0], 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length, head = struct.unpack(">Q", buf[2:10])[0], 10
    masked = bool(buf[1] & 0x80)
    key = bytes(buf[head : head + 4]) if masked else b""
    head += len(key)
    if len(buf) < head + length:
        return None
    payload = bytes(buf[head : head + length])
    if masked and length:
        mask = int.from_bytes((key * (length // 4 + 1))[:length], "big")
        payload = (int.from_bytes(payload, "big") ^ mask).to_bytes(length, "big")
    return head + length, payload


@pytest.mark.parametrize(
    "market,processes,protocol", [("fx", 1, "http"), ("fx", 2, "http"), ("equities", 1, "http"), ("fx", 1, "ws")]
)
def test_connection_reset_on_one_tables_request(own, suffix, uninterrupted, market, processes, protocol, capsys):
    needs_qwp(own.server, protocol)
    trades = TableNaming(suffix=suffix).name(MARKETS[market][1][-1])
    assert trades.endswith(f"trades{suffix}")
    proxy = ResetProxy(own.http, trades.encode(), skip=3)  # three chunks' trades go through
    try:
        assert main(command(own.server, market, suffix, processes, proxy.port, protocol)) == 1
        err = capsys.readouterr().err
        line = err.strip().splitlines()[-1]
        # one line naming host, port, the table whose request failed, and the cause
        assert proxy.resets >= 1 and f"127.0.0.1:{proxy.port}" in line and trades in line, err
        proxy.disarm()
        # the book tables of the reset chunk are stored, its trades are not: a hole the ledger knows
        recorded = ledger_chunks(own.server, suffix, settled=True)
        assert 3 <= recorded < 18
        assert main(command(own.server, market, suffix, processes, proxy.port, protocol)) == 0
        assert f"{recorded} of 18 chunks are recorded as stored" in capsys.readouterr().err
    finally:
        proxy.close()
    assert_same_as_uninterrupted(own.server, market, suffix, uninterrupted)


# ---------------------------------------------------------------------------------------------
# (c) a suspended WAL table, then RESUME WAL


@pytest.mark.parametrize("processes", [1, 2])
def test_suspended_wal_table_then_resume_wal(own, suffix, uninterrupted, processes, capsys):
    trades = TableNaming(suffix=suffix).name(FX_TABLES[-1])
    # the first chunks stored, then the table suspended: on a quiet machine a whole run takes about
    # two seconds, so suspending "while it runs" would race with its end
    first = command(own.server, "fx", suffix, processes)
    start = parse_timestamp(first[first.index("--start_ts") + 1])
    first[first.index("--end_ts") + 1] = format_us(start + 3 * int(CHUNK_S) * US_PER_S)
    assert main(first) == 0
    server = own.server
    # QuestDB 9.4 can lose a SUSPEND issued while the table's WAL is being applied (the table then stops
    # applying without showing as suspended): suspend an applied table and wait until it shows as suspended
    server.wait_until(
        lambda: dict(server.query("SELECT name, sequencerTxn - writerTxn FROM wal_tables()")).get(trades, 1) == 0,
        60,
        f"WAL apply of {trades}",
    )
    server.execute(f"ALTER TABLE {trades} SUSPEND WAL")
    server.wait_until(
        lambda: server.query(f"SELECT suspended FROM wal_tables() WHERE name = '{trades}'") == [(True,)],
        30,
        f"{trades} to show as suspended",
    )
    capsys.readouterr()
    assert main(command(own.server, "fx", suffix, processes)) == 1
    err = capsys.readouterr().err
    assert f"{trades}" in err and f"ALTER TABLE {trades} RESUME WAL" in err, err
    recorded = ledger_chunks(own.server, suffix, settled=True)
    assert 3 <= recorded < 18, "the suspension must stop the run before its end"
    own.server.execute(f"ALTER TABLE {trades} RESUME WAL")
    assert main(command(own.server, "fx", suffix, processes)) == 0
    assert f"{recorded} of 18 chunks are recorded as stored" in capsys.readouterr().err
    assert_same_as_uninterrupted(own.server, "fx", suffix, uninterrupted)

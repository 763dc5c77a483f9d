"""The command line against a real QuestDB: both modes, both markets, worker processes, and faults
that must stop the run before any table exists (skipped without a server; see ``questdb_server``).

Every run gets its own table suffix, dropped afterwards. A faster-than-life run into QuestDB must
store exactly the rows the same command writes into the Parquet dataset.
"""

from __future__ import annotations

import re
import time

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.core.tables import EQUITIES_TABLES, FX_TABLES
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ddl import views_for
from mkt_pipeline.sinks.ledger import LEDGER_BASE
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import LIGHT_FLAGS
from mkt_pipeline_tests.questdb_server import QuestDBServer, closed_port

pytestmark = pytest.mark.questdb

LIGHT = LIGHT_FLAGS
SCHEMAS = {"fx": FX_TABLES, "equities": EQUITIES_TABLES}
# two minutes of a trading hour (10:00 New York) so equities trades flow
WINDOW = ["--start_ts", "2025-06-02T14:00:00Z", "--end_ts", "2025-06-02T14:02:00Z"]


def cli(market: str, server: QuestDBServer, suffix: str, *extra: str) -> int:
    return main([market, *server.cli_flags(), "--suffix", suffix, *LIGHT[market], *extra])


def stored(server: QuestDBServer, table: str) -> int:
    return int(server.query(f"SELECT count() FROM {table}")[0][0])


def tables_with(server: QuestDBServer, suffix: str) -> list[str]:
    names = [r[0] for r in server.query("SELECT table_name FROM tables()")] + [
        r[0] for r in server.query("SELECT view_name FROM materialized_views()")
    ]
    return sorted({n for n in names if n.endswith(suffix)})  # tables() lists materialized views too


@pytest.mark.parametrize("market,processes", [("fx", 2), ("equities", 2), ("equities", 1)])
def test_faster_than_life_stores_what_parquet_stores_with_every_table_and_view(
    questdb, qdb_suffix, tmp_path, capsys, market, processes
):
    args = ["--mode", "faster-than-life", *WINDOW, "--chunk_seconds", "30", "--total_market_data_events", "1e9"]
    assert cli(market, questdb, qdb_suffix, *args, "--processes", str(processes)) == 0, capsys.readouterr().err
    assert main([market, "--sink", "parquet", "--parquet_dir", str(tmp_path), *LIGHT[market], *args]) == 0
    naming = TableNaming(suffix=qdb_suffix)
    tables = [naming.name(s) for s in SCHEMAS[market]]
    questdb.wait_applied(tables)
    parquet = ParquetSink(tmp_path)
    want = {naming.name(s): parquet.read(s).num_rows for s in SCHEMAS[market]}
    assert {t: stored(questdb, t) for t in tables} == want
    assert all(n > 0 for n in want.values()), want
    views = sorted(v.name(naming) for v in views_for(SCHEMAS[market]))
    # beside the data, the ledger of complete chunks (resumption)
    assert tables_with(questdb, qdb_suffix) == sorted(tables + views + [naming.name(LEDGER_BASE)])
    # the same command again changes nothing
    assert cli(market, questdb, qdb_suffix, *args, "--processes", str(processes)) == 0
    questdb.wait_applied(tables)
    assert {t: stored(questdb, t) for t in tables} == want


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_a_short_real_time_run_stores_what_it_reports(questdb, qdb_suffix, capsys, market):
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
    assert cli(market, questdb, qdb_suffix, "--mode", "real-time", "--end_ts", end) == 0
    out = capsys.readouterr().out
    assert "end reached" in out, out
    naming = TableNaming(suffix=qdb_suffix)
    reported = {m.group(1): int(m.group(2).replace(",", "")) for m in re.finditer(r"^\s+(\w+)\s+([\d,]+)$", out, re.M)}
    md = naming.name(SCHEMAS[market][0])
    assert reported.get(md, 0) > 0, out
    questdb.wait_applied(list(reported))
    assert {t: stored(questdb, t) for t in reported} == reported
    # nothing stamped at or after the end
    latest = questdb.query(f"SELECT max({SCHEMAS[market][0].timestamp}) FROM {md}")[0][0]
    assert latest.strftime("%Y-%m-%dT%H:%M:%SZ") < end


# ---------------------------------------------------------------------------------------------
# faults found before anything is created: one line naming host, port and cause, within seconds


def fails_cleanly(capsys, questdb, suffix, code, *needles, within_s=8.0, secret=None, argv=()) -> str:
    started = time.monotonic()
    assert cli("fx", questdb, suffix, "--mode", "faster-than-life", *WINDOW, *argv) == code
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    assert elapsed < within_s, f"took {elapsed:.1f}s: {err}"
    if secret:
        assert secret not in captured.out + captured.err
    assert tables_with(questdb, suffix) == []
    return err


def test_end_in_the_past_without_start_creates_nothing(questdb, qdb_suffix, capsys):
    started = time.monotonic()
    assert cli("fx", questdb, qdb_suffix, "--mode", "faster-than-life", "--end_ts", "2025-06-02T14:02:00Z") == 2
    assert "--end_ts (2025-06-02T14:02:00.000000Z) is not in the future" in capsys.readouterr().err
    assert time.monotonic() - started < 5 and tables_with(questdb, qdb_suffix) == []


def test_wrong_pg_password_is_an_auth_error(questdb, qdb_suffix, capsys, monkeypatch):
    monkeypatch.setenv("QUESTDB_PASSWORD", "not-the-password")
    fails_cleanly(
        capsys,
        questdb,
        qdb_suffix,
        1,
        f"QuestDB at {questdb.host}:{questdb.pg_port} (PG wire): authentication failed",
        secret="not-the-password",
    )


@pytest.mark.parametrize("protocol", ["https", "tcps", "wss"])
def test_tls_against_a_plain_server_is_a_tls_error_at_once(questdb, qdb_suffix, capsys, protocol):
    port = questdb.ilp_port if protocol == "tcps" else questdb.http_port
    wire = f"{'QWP' if protocol == 'wss' else 'ILP'} over {protocol}"
    fails_cleanly(
        capsys, questdb, qdb_suffix, 1, f"QuestDB at {questdb.host}:{port} ({wire}): TLS handshake failed", "does not speak TLS",
        within_s=5.0, argv=("--protocol", protocol, "--tls_verify", "unsafe_off"),
    )  # fmt: skip


def test_a_closed_port_is_unreachable(questdb, qdb_suffix, capsys):
    port = closed_port()
    fails_cleanly(
        capsys,
        questdb,
        qdb_suffix,
        1,
        f"QuestDB at {questdb.host}:{port} (ILP over http) is unreachable: Connection refused",
        argv=("--http_port", str(port)),
    )

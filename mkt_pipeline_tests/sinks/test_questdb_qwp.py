"""QWP (``--protocol ws``) against a real QuestDB: the same rows as ILP/HTTP, compared on the server.

Needs a server that offers QWP (QuestDB 9.4+; ``.ci/run`` starts one); on an older server the QWP
tests skip and ``--protocol auto`` is checked to fall back to ILP/HTTP instead.
"""

from __future__ import annotations

import time
import uuid

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.core.tables import EQUITIES_TABLES, FX_CORE_PRICE, FX_TABLES
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ddl import table_columns_sql
from mkt_pipeline.sinks.ledger import LEDGER_BASE
from mkt_pipeline.sinks.questdb import QuestDBRejectedError, QuestDBSettings, QuestDBSink, QuestDBSinkError, qwp_offered
from mkt_pipeline_tests.conftest import LIGHT_FLAGS
from mkt_pipeline_tests.questdb_server import QuestDBServer

pytestmark = pytest.mark.questdb

LIGHT = {
    "fx": LIGHT_FLAGS["fx"],
    "equities": "--market_data_min_eps 200 --market_data_max_eps 300 --trades_min_eps 50 --trades_max_eps 80 --min_levels 3 --max_levels 8".split(),
}
SCHEMAS = {"fx": FX_TABLES, "equities": EQUITIES_TABLES}
# two minutes of a trading hour (10:00 New York) so equities trades flow; 20-second chunks
WINDOW = [
    "--mode",
    "faster-than-life",
    "--start_ts",
    "2025-06-02T14:00:00Z",
    "--end_ts",
    "2025-06-02T14:02:00Z",
    "--chunk_seconds",
    "20",
]
CHUNKS = 6


def settings_of(server: QuestDBServer, **changes) -> QuestDBSettings:
    return QuestDBSettings(
        host=server.host, http_port=server.http_port, pg_port=server.pg_port, ilp_tcp_port=server.ilp_port, **changes
    )


@pytest.fixture
def qwp_server(questdb) -> QuestDBServer:
    if qwp_offered(settings_of(questdb)) is not True:
        pytest.skip(f"the QuestDB at {questdb.host}:{questdb.http_port} has no QWP (QuestDB 9.4+ has)")
    return questdb


@pytest.fixture
def suffixes(questdb):
    made: list[str] = []

    def new() -> str:
        made.append(f"_q{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield new
    for sfx in made:
        questdb.drop_suffix(sfx)


def cli(market: str, server: QuestDBServer, suffix: str, *extra: str) -> int:
    return main(
        [market, *server.cli_flags(), "--suffix", suffix, "--create_views", "false", *LIGHT[market], *WINDOW, *extra]
    )


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_qwp_stores_the_rows_ilp_stores_row_by_row_with_ledger_and_dedup(qwp_server, suffixes, capsys, market):
    server = qwp_server
    over_ilp, over_qwp = suffixes(), suffixes()
    assert cli(market, server, over_ilp, "--protocol", "http") == 0, capsys.readouterr().err
    assert cli(market, server, over_qwp, "--protocol", "ws") == 0, capsys.readouterr().err
    assert f"into questdb {server.host}:{server.http_port} (QWP over ws)" in capsys.readouterr().out
    pairs = [(TableNaming(suffix=over_ilp).name(s), TableNaming(suffix=over_qwp).name(s)) for s in SCHEMAS[market]]
    server.wait_applied([t for pair in pairs for t in pair])
    for a, b in pairs:
        # the same DDL: names and types of every column, in order
        assert server.query(table_columns_sql(a)) == server.query(table_columns_sql(b))
        n = int(server.query(f"SELECT count() FROM {a}")[0][0])
        assert n > 0 and n == int(server.query(f"SELECT count() FROM {b}")[0][0]), (a, b)
        # row by row on the server, every column (books, UUIDs and ns timestamps included)
        assert server.query(f"SELECT count() FROM ({a} EXCEPT {b})") == [(0,)], (a, b)
        assert server.query(f"SELECT count() FROM ({b} EXCEPT {a})") == [(0,)], (a, b)
    ledger = TableNaming(suffix=over_qwp).name(LEDGER_BASE)
    assert int(server.query(f"SELECT count() FROM {ledger} WHERE kind = 'chunk'")[0][0]) == CHUNKS

    # the ledger written over QWP's runs lets the same command skip every chunk ...
    capsys.readouterr()
    assert cli(market, server, over_qwp, "--protocol", "ws") == 0
    assert "nothing to do: every chunk of" in capsys.readouterr().out
    # ... and re-sending everything over QWP leaves one row per DEDUP key
    counts = {b: server.query(f"SELECT count() FROM {b}") for _, b in pairs}
    assert cli(market, server, over_qwp, "--protocol", "ws", "--overwrite", "true") == 0, capsys.readouterr().err
    server.wait_applied([b for _, b in pairs])
    assert {b: server.query(f"SELECT count() FROM {b}") for _, b in pairs} == counts
    for a, b in pairs:
        assert server.query(f"SELECT count() FROM ({b} EXCEPT {a})") == [(0,)], (a, b)


def test_auto_picks_qwp_when_offered_else_ilp_and_says_so(questdb, suffixes, capsys):
    sfx = suffixes()
    offered = qwp_offered(settings_of(questdb)) is True
    assert cli("fx", questdb, sfx, "--protocol", "auto", "--end_ts", "2025-06-02T14:00:20Z") == 0
    err = capsys.readouterr().err
    chosen = "ws (the server offers QWP)" if offered else "http (the server has no QWP"
    assert f"QuestDB at {questdb.host}:{questdb.http_port}: --protocol auto chose {chosen}" in err, err
    name = TableNaming(suffix=sfx).name(FX_TABLES[0])
    questdb.wait_until(lambda: int(questdb.query(f"SELECT count() FROM {name}")[0][0]) > 0, 60, f"rows in {name}")


def test_qwp_on_a_server_without_it_is_one_line(questdb, suffixes, capsys):
    if qwp_offered(settings_of(questdb)) is True:
        pytest.skip("this server offers QWP")
    sfx = suffixes()
    assert cli("fx", questdb, sfx, "--protocol", "ws") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        f"QuestDB at {questdb.host}:{questdb.http_port} (QWP over ws, table " in err and "the server has no QWP" in err
    ), err


def test_suspended_table_stops_a_qwp_run_with_the_fix(qwp_server, suffixes, capsys):
    server, sfx = qwp_server, suffixes()
    assert cli("fx", server, sfx, "--protocol", "ws", "--end_ts", "2025-06-02T14:00:40Z") == 0, capsys.readouterr().err
    trades = TableNaming(suffix=sfx).name(FX_TABLES[-1])
    server.wait_applied([trades])
    server.execute(f"ALTER TABLE {trades} SUSPEND WAL")
    suspended = f"SELECT suspended FROM wal_tables() WHERE name = '{trades}'"
    server.wait_until(lambda: server.query(suspended) == [(True,)], 30, f"{trades} to show as suspended")
    try:
        capsys.readouterr()
        assert cli("fx", server, sfx, "--protocol", "ws") == 1
        err = capsys.readouterr().err
        assert trades in err and f"ALTER TABLE {trades} RESUME WAL" in err, err
        ledger = TableNaming(suffix=sfx).name(LEDGER_BASE)
        assert int(server.query(f"SELECT count() FROM {ledger} WHERE kind = 'chunk'")[0][0]) < CHUNKS
    finally:
        server.execute(f"ALTER TABLE {trades} RESUME WAL")


def test_a_rejected_qwp_slice_is_one_line_naming_host_port_table_and_cause(qwp_server, suffixes):
    from mkt_pipeline.fx.engine import FxEngine
    from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

    naming = TableNaming(suffix=suffixes())
    name = naming.name(FX_CORE_PRICE)
    window = Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T10:00:10Z")
    batch = next(
        b
        for group in FxEngine(LIGHT_FX, fx_references(window)).generate(window)
        for b in group
        if b.schema == FX_CORE_PRICE
    )
    sink = QuestDBSink(settings_of(qwp_server, protocol="ws", create_views=False), naming)
    try:
        sink.prepare([FX_CORE_PRICE])
        # the table changes under the run: a column of another type than the rows carry
        sink._execute(f"ALTER TABLE {name} DROP COLUMN indicator1", name)
        sink._execute(f"ALTER TABLE {name} ADD COLUMN indicator1 BOOLEAN", name)
        with sink.window(window) as writer, pytest.raises(QuestDBRejectedError) as caught:
            writer.write(batch)
        text = str(caught.value)
        assert "\n" not in text and text.startswith(
            f"QuestDB at {qwp_server.host}:{qwp_server.http_port} (QWP over ws, table {name}) rejected rows: "
        )
        assert "cannot write DOUBLE to column [column=indicator1, type=BOOLEAN]" in text, text
    finally:
        sink.close()


def test_a_qwp_confirmation_wait_is_bounded(qwp_server, suffixes):
    """A slice whose confirmation does not come within ``confirm_timeout_s`` fails the run (a stalled server)."""
    from mkt_pipeline.fx.engine import FxEngine
    from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

    naming = TableNaming(suffix=suffixes())
    window = Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T10:00:10Z")
    batch = next(
        b
        for group in FxEngine(LIGHT_FX, fx_references(window)).generate(window)
        for b in group
        if b.schema == FX_CORE_PRICE
    )
    sink = QuestDBSink(settings_of(qwp_server, protocol="ws", create_views=False, confirm_timeout_s=1e-6), naming)
    try:
        sink.prepare([FX_CORE_PRICE])
        started = time.monotonic()
        with sink.window(window) as writer, pytest.raises(QuestDBSinkError, match=r"no confirmation within 1e-06s"):
            writer.write(batch)
        assert time.monotonic() - started < 5
    finally:
        sink.close()


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_reads_over_qwp_answer_what_pg_wire_answers(qwp_server, suffixes, capsys, market):
    """The read-back path (checks' SQL, facts' slices, resume and ledger reads) gives identical answers."""
    from mkt_pipeline.sinks.questdb import read_session
    from mkt_pipeline.sinks.stored_rows import TOP_OF_BOOK, QuestDBRows
    from mkt_pipeline.sinks.wal_monitor import WAL_TABLES_SQL

    server, sfx = qwp_server, suffixes()
    assert cli(market, server, sfx, "--protocol", "ws") == 0, capsys.readouterr().err
    naming = TableNaming(suffix=sfx)
    server.wait_applied([naming.name(s) for s in SCHEMAS[market]])
    part = Window.from_iso("2025-06-02T14:00:30Z", "2025-06-02T14:01:10Z")
    pg_settings, qwp_settings = settings_of(server), settings_of(server, protocol="ws")
    with read_session(pg_settings) as pg, read_session(qwp_settings) as qwp:
        assert not hasattr(pg, "arrow") and hasattr(qwp, "arrow")
        over = {"pg": QuestDBRows(pg, naming), "qwp": QuestDBRows(qwp, naming)}
        # the resume reads: the ledger and WAL state (the sink asks them over QWP when it writes over QWP)
        sqls = [
            f"SELECT * FROM {naming.name(LEDGER_BASE)} ORDER BY start_ts",
            f"{WAL_TABLES_SQL} WHERE name LIKE '%{sfx}'",
        ]
        for schema in SCHEMAS[market]:
            name = naming.name(schema)
            rows = over
            assert rows["qwp"].count(schema, part) == rows["pg"].count(schema, part) > 0
            assert rows["qwp"].extent(schema) == rows["pg"].extent(schema)
            assert rows["qwp"].count_distinct(schema, "symbol", part) == rows["pg"].count_distinct(
                schema, "symbol", part
            )
            names = [c.name for c in schema.columns if c.name != schema.timestamp and c.kind != "DOUBLE[][]"]
            tops = [c for c in TOP_OF_BOOK if c.split("_")[0] + "s" in {c.name for c in schema.columns}]
            for columns in (names, tops, ["symbol"] + tops[:2], []):
                a, b = rows["pg"].read(schema, part, columns), rows["qwp"].read(schema, part, columns)
                assert a.schema == b.schema and a.equals(b), (name, columns)
            # every column as stored, books and UUIDs included, and a check's style of aggregate
            sqls.append(
                f"SELECT * FROM {name} WHERE {rows['pg'].time_filter(schema, part)} ORDER BY {schema.timestamp}, symbol"
            )
            sqls.append(
                f"SELECT cast({schema.timestamp} AS long) / 1000000 s, count() n FROM {name} GROUP BY s ORDER BY s"
            )
            sqls.append(f"SELECT cast({schema.timestamp} AS long) FROM {name} LIMIT -1")
        for sql in sqls:
            assert qwp.execute(sql).fetchall() == pg.execute(sql).fetchall(), sql

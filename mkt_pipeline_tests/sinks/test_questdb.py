"""The QuestDB sink on the wire: ILP to a local capture server, PG wire to the real QuestDB (docs/development.md#tests).

Everything the client puts on the wire is decoded row by row and compared with the batches written:
arrays, µs vs ns designated timestamps, symbols, auth headers, one table per request, size-bounded
flushes. Error paths (unreachable, 401, rejected rows, schema mismatch, suspended WAL) must give one
clean, secret-free line naming host, port and table.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from mkt_pipeline.core.engine import Engine
from mkt_pipeline.core.tables import (
    BOOK,
    BOOLEAN,
    DOUBLE,
    EQUITIES_MARKET_DATA,
    EQUITIES_TABLES,
    EQUITIES_TRADES,
    FX_CORE_PRICE,
    FX_MARKET_DATA,
    FX_TABLES,
    FX_TRADES,
    LONG,
    SYMBOL,
    TIMESTAMP,
    TIMESTAMP_NS,
    UUID,
    BookColumn,
    SymbolColumn,
    TableBatch,
    UuidColumn,
)
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.markets import market_references
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.questdb import (
    QuestDBAuthError,
    QuestDBRejectedError,
    QuestDBSettings,
    QuestDBSink,
    QuestDBSinkError,
    QuestDBTlsError,
    QuestDBUnreachableError,
)
from mkt_pipeline_tests.conftest import LIGHT_FX
from mkt_pipeline_tests.questdb_server import closed_port
from mkt_pipeline_tests.wire.ilp_capture import CaptureServer, IlpRow, decode_ilp

T0_US = 1_748_858_400_000_000  # 2025-06-02T10:00:00Z
SECRET_PW = "pw-Zq9!secret"
SECRET_TOKEN = "tok-7f3a9c-secret"


# -- hand-built batches ------------------------------------------------------------------------


def book(rng, depths) -> BookColumn:
    depths = np.asarray(depths)
    parts = []
    for d in depths:
        prices = np.round(1.1 + 0.0001 * np.arange(d) + rng.integers(0, 50) * 0.0001, 5)
        parts.append(np.concatenate([prices, rng.integers(1, 1000, d) * 1000.0]))
    return BookColumn(np.concatenate(parts), depths)


def fx_batches(n=40, seed=0, depths=None) -> list[TableBatch]:
    rng = np.random.default_rng(seed)
    ts = T0_US + np.sort(rng.choice(1_000_000, n, replace=False))
    depths = rng.integers(3, 6, n) if depths is None else depths
    bids, asks = book(rng, depths), book(rng, depths)
    symbols = SymbolColumn(rng.integers(0, 3, n), ("EURUSD", "USDJPY", "GBP,U=SD x"))  # exercises escaping
    md = TableBatch(
        FX_MARKET_DATA,
        {
            "timestamp": ts,
            "symbol": symbols,
            "bids": bids,
            "asks": asks,
            "best_bid": bids.level(0),
            "best_ask": asks.level(0),
        },
    )
    cp = TableBatch(
        FX_CORE_PRICE,
        {
            "timestamp": ts + 1,
            "symbol": symbols,
            "ecn": SymbolColumn(rng.integers(0, 4, n), ("LMAX", "EBS", "Hotspot", "Currenex")),
            "bid_price": bids.level(0),
            "bid_volume": rng.integers(50_000, 100_000, n),
            "ask_price": asks.level(0),
            "ask_volume": rng.integers(50_000, 100_000, n),
            "reason": SymbolColumn(rng.integers(0, 3, n), ("normal", "news_event", "liquidity_event")),
            "indicator1": rng.random(n),
            "indicator2": rng.random(n),
        },
    )
    tr = TableBatch(
        FX_TRADES,
        {
            "timestamp": (ts + 2) * 1000 + rng.integers(0, 1000, n),
            "symbol": symbols,
            "ecn": SymbolColumn(rng.integers(0, 4, n), ("LMAX", "EBS", "Hotspot", "Currenex")),
            "trade_id": UuidColumn(
                rng.integers(0, 2**63, n).astype(np.uint64), rng.integers(0, 2**63, n).astype(np.uint64)
            ),
            "side": SymbolColumn(rng.integers(0, 2, n), ("buy", "sell")),
            "passive": rng.random(n) < 0.4,
            "price": bids.level(0),
            "quantity": rng.integers(1, 100, n) * 100_000.0,
            "counterparty": SymbolColumn(rng.integers(0, 2, n), ("5493001KJTIIGC8Y1R12", "529900T8BM49AURSDO55")),
            "order_id": UuidColumn(
                rng.integers(0, 2**63, n).astype(np.uint64), rng.integers(0, 2**63, n).astype(np.uint64)
            ),
        },
    )
    return [md, cp, tr]


def equities_batches(n=30, seed=1) -> list[TableBatch]:
    rng = np.random.default_rng(seed)
    ts_ns = T0_US * 1000 + np.sort(rng.choice(10**9, n, replace=False))
    symbols = SymbolColumn(rng.integers(0, 2, n), ("AAPL", "MSFT"))
    venues = SymbolColumn(rng.integers(0, 3, n), ("NASDAQ", "NYSE", "IEX"))
    md = TableBatch(
        EQUITIES_MARKET_DATA,
        {
            "timestamp_ns": ts_ns,
            "symbol": symbols,
            "venue": venues,
            "bids": book(rng, np.full(n, 10)),
            "asks": book(rng, np.full(n, 10)),
        },
    )
    tr = TableBatch(
        EQUITIES_TRADES,
        {
            "timestamp_ns": ts_ns + 7,
            "symbol": symbols,
            "venue": venues,
            "price": rng.random(n) * 100,
            "size": rng.integers(1, 10_000, n),
            "side": SymbolColumn(rng.integers(0, 2, n), ("B", "S")),
            "cond": SymbolColumn(rng.integers(0, 4, n), ("T", "O", "C", "H")),
        },
    )
    return [md, tr]


def expected_row(batch: TableBatch, r: int, table: str) -> IlpRow:
    """What row ``r`` of ``batch`` must look like once decoded from the wire."""
    symbols, fields, ts, unit = {}, {}, None, None
    for col in batch.schema.columns:
        data = batch.columns[col.name]
        if col.name == batch.schema.timestamp:
            ts, unit = int(data[r]), ("n" if col.kind == TIMESTAMP_NS else "t")
        elif col.kind == SYMBOL:
            symbols[col.name] = data.categories[data.codes[r]]
        elif col.kind == BOOK:
            fields[col.name] = data.row(r)
        elif col.kind == UUID:
            fields[col.name] = data.take(np.array([r])).strings()[0]
        elif col.kind == DOUBLE:
            fields[col.name] = float(data[r])
        elif col.kind == LONG:
            fields[col.name] = int(data[r])
        elif col.kind == BOOLEAN:
            fields[col.name] = bool(data[r])
    return IlpRow(table, symbols, fields, ts, unit)


def assert_rows_equal(got: list[IlpRow], want: list[IlpRow]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert (g.table, g.symbols, g.timestamp, g.unit) == (w.table, w.symbols, w.timestamp, w.unit), i
        assert g.fields.keys() == w.fields.keys(), i
        for key, value in w.fields.items():
            if isinstance(value, np.ndarray):
                assert g.fields[key].shape == value.shape and g.fields[key].dtype == np.float64, (i, key)
                np.testing.assert_array_equal(g.fields[key], value)
            else:
                assert g.fields[key] == value and type(g.fields[key]) is type(value), (i, key)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def capture():
    """ILP to a capture server on 127.0.0.1 (what it receives is decoded row by row)."""
    with CaptureServer() as server:
        yield server


@pytest.fixture
def wire(capture, questdb, qdb_suffix):
    """The capture server for ILP, and the real QuestDB for PG wire (DDL, the ledger, WAL status):
    the tables exist for real; their rows go to the capture server."""
    if questdb.host not in ("127.0.0.1", "localhost"):
        pytest.skip("the capture server listens on 127.0.0.1, beside the QuestDB of the suite")
    capture.pg_port, capture.suffix, capture.server = questdb.pg_port, qdb_suffix, questdb
    return capture


def settings_for(server: CaptureServer, **kw) -> QuestDBSettings:
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("http_port", server.http_port)
    kw.setdefault("ilp_tcp_port", server.tcp_port)
    kw.setdefault("pg_port", getattr(server, "pg_port", server.http_port))
    kw.setdefault("retry_timeout_ms", 0)
    kw.setdefault("wal_poll_interval_s", 0.0)
    return QuestDBSettings(**kw)


def open_sink(server, schemas=FX_TABLES, naming=None, **kw) -> QuestDBSink:
    """A sink writing ILP to the capture server; its tables are created in the real QuestDB."""
    sink = QuestDBSink(settings_for(server, **kw), naming or TableNaming(suffix=server.suffix))
    sink.prepare(schemas)
    return sink


def window_of(batches) -> Window:
    return Window(T0_US, T0_US + 3_600_000_000)


# -- rows on the wire --------------------------------------------------------------------------


@pytest.mark.questdb
def test_fx_rows_decode_exactly_with_us_and_ns_timestamps(wire):
    batches = fx_batches()
    sink = open_sink(wire)
    with sink.window(window_of(batches)) as w:
        for b in batches:
            w.write(b)
    sink.close()
    want = [expected_row(b, r, sink.naming.name(b.schema)) for b in batches for r in range(len(b))]
    got = wire.http_rows()
    assert_rows_equal(got, want)
    sfx = wire.suffix
    assert {r.unit for r in got if r.table in (f"market_data{sfx}", f"core_price{sfx}")} == {"t"}
    assert {r.unit for r in got if r.table == f"fx_trades{sfx}"} == {"n"}
    assert got[0].fields["bids"].shape[0] == 2 and got[0].fields["bids"][0][0] == got[0].fields["best_bid"]
    assert sink.stats.rows == {f"market_data{sfx}": 40, f"core_price{sfx}": 40, f"fx_trades{sfx}": 40}
    assert sum(sink.stats.bytes.values()) == sum(len(r.body) for r in wire.write_requests())


@pytest.mark.questdb
def test_equities_rows_are_nanoseconds_with_prefix_and_suffix(wire):
    batches = equities_batches()
    naming = TableNaming(suffix=wire.suffix, prefix="eq_")
    sink = open_sink(wire, schemas=EQUITIES_TABLES, naming=naming)
    with sink.window(Window(T0_US, T0_US + 2_000_000)) as w:
        for b in batches:
            w.write(b)
    want = [expected_row(b, r, naming.name(b.schema)) for b in batches for r in range(len(b))]
    assert_rows_equal(wire.http_rows(), want)
    assert {r.unit for r in wire.http_rows()} == {"n"}
    tables = {name for (name,) in wire.server.query("SELECT table_name FROM tables()")}
    assert {f"eq_equities_market_data{wire.suffix}", f"eq_equities_trades{wire.suffix}"} <= tables


@pytest.mark.questdb
def test_one_table_per_request_and_one_flush_per_batch(wire):
    md, cp, tr = fx_batches()
    sink = open_sink(wire)
    with sink.window(window_of(None)) as w:
        for b in (md, cp, md, tr):
            w.write(b)
    requests = wire.write_requests()
    assert [{r.table.removesuffix(wire.suffix) for r in decode_ilp(req.body)} for req in requests] == [
        {"market_data"}, {"core_price"}, {"market_data"}, {"fx_trades"},
    ]  # fmt: skip
    assert all(req.query == "precision=n" for req in requests)


@pytest.mark.questdb
def test_flush_by_size_keeps_40_level_books_under_the_buffer_cap(wire):
    # 3,000 rows of 40-level books are ~4.2 MB: over a 1 MiB client buffer cap, so it must be split
    n = 3000
    batches = fx_batches(n=n, depths=np.full(n, 40))
    md = batches[0]
    sink = open_sink(wire, flush_bytes=256 * 1024, max_buf_size=1 << 20)
    with sink.window(window_of(None)) as w:
        w.write(md)
    requests = wire.write_requests()
    sizes = [len(r.body) for r in requests]
    assert sum(sizes) > (1 << 20) * 4
    assert max(sizes) <= 256 * 1024
    assert len(requests) >= sum(sizes) // (256 * 1024)
    rows = wire.http_rows()
    assert len(rows) == n and all(r.fields["bids"].shape == (2, 40) for r in rows)
    assert [r.timestamp for r in rows] == md.timestamps.tolist()


def test_the_trap_one_buffer_for_a_whole_batch_overflows_the_client(capture):
    """What the size budget avoids: the client refuses a buffer above max_buf_size."""
    from questdb import Protocol, Sender

    md = fx_batches(n=3000, depths=np.full(3000, 40))[0]
    sender = Sender(
        Protocol.Http, "127.0.0.1", capture.http_port, protocol_version=2, auto_flush=False, max_buf_size=1 << 20
    )
    sender.establish()
    buf = sender.new_buffer()
    from mkt_pipeline.sinks import ilp

    ilp.encode(buf, "market_data", md, 0, len(md))
    with pytest.raises(Exception, match="exceeds maximum configured allowed size"):
        sender.flush(buf)
    sender.close(flush=False)
    assert capture.write_requests() == []


def test_settings_reject_a_flush_budget_at_or_above_the_cap():
    with pytest.raises(ValueError, match="flush_bytes"):
        QuestDBSettings(flush_bytes=100 << 20, max_buf_size=100 << 20)


# -- auth ----------------------------------------------------------------------------------------


@pytest.mark.questdb
def test_bearer_token_header(wire):
    """The open-source server takes no tokens: the header is checked on the wire."""
    wire.config.bearer_token = SECRET_TOKEN
    sink = open_sink(wire, token=SECRET_TOKEN)
    with sink.window(window_of(None)) as w:
        w.write(fx_batches(n=3)[1])
    assert [r.headers["authorization"] for r in wire.write_requests()] == [f"Bearer {SECRET_TOKEN}"]


@pytest.mark.questdb
def test_401_mid_run_is_a_clean_auth_error_without_secrets(wire):
    """Credentials revoked while a run goes on: a server cannot be made to do that on cue."""
    wire.config.basic_auth = ("admin", "quest")
    sink = open_sink(wire, password="quest")
    wire.config.basic_auth = ("admin", SECRET_PW)  # rotated: the run's password is refused from now on
    with pytest.raises(QuestDBAuthError) as err:
        with sink.window(window_of(None)) as w:
            w.write(fx_batches(n=3)[1])
    text = str(err.value)
    table = f"core_price{wire.suffix}"
    assert text.startswith(
        f"QuestDB at 127.0.0.1:{wire.http_port} (ILP over http, table {table}): authentication failed:"
    )
    assert "401" in text and "\n" not in text and SECRET_PW not in text
    assert sink.stats.rows == {}  # the failed window is not reported as written


@pytest.mark.questdb
def test_rejected_rows_name_the_table_and_scrub_secrets(wire):
    wire.config.reject_writes = f"cast error: column [bids] expects DOUBLE[][] (token {SECRET_TOKEN})"
    sink = open_sink(wire, token=SECRET_TOKEN)
    with pytest.raises(QuestDBRejectedError) as err:
        with sink.window(window_of(None)) as w:
            w.write(fx_batches(n=3)[0])
    text = str(err.value)
    table = f"market_data{wire.suffix}"
    assert text.startswith(f"QuestDB at 127.0.0.1:{wire.http_port} (ILP over http, table {table}) rejected rows:")
    assert "cast error: column [bids] expects DOUBLE[][]" in text
    assert SECRET_TOKEN not in text and "***" in text
    assert sink.stats.rows == {}


@pytest.mark.parametrize(
    "settings,expected",
    [
        (dict(protocol="http"), {"sslmode": "disable"}),
        (dict(protocol="tcp"), {"sslmode": "disable"}),
        (dict(protocol="https"), {"sslmode": "verify-full", "sslrootcert": "system"}),
        # a real PEM bundle (CA_FILE: made by the test), as the settings refuse a file that is not one
        (dict(protocol="tcps", tls_ca="CA_FILE"), {"sslmode": "verify-full", "sslrootcert": "CA_FILE"}),
        (dict(protocol="https", tls_verify="unsafe_off"), {"sslmode": "require"}),
    ],
)
def test_pg_wire_follows_the_tls_setting(settings, expected, tmp_path):
    from mkt_pipeline.sinks.questdb import pg_connect_params
    from mkt_pipeline_tests.tls_files import self_signed_pem

    ca = str(self_signed_pem(tmp_path / "ca.pem"))
    settings = {k: ca if v == "CA_FILE" else v for k, v in settings.items()}
    expected = {k: ca if v == "CA_FILE" else v for k, v in expected.items()}
    params = pg_connect_params(QuestDBSettings(host="db.example", pg_port=18812, password=SECRET_PW, **settings))
    assert {k: params.get(k) for k in ("sslmode", "sslrootcert") if k in params} == expected
    assert (params["host"], params["port"], params["dbname"], params["password"]) == (
        "db.example",
        18812,
        "qdb",
        SECRET_PW,
    )


def test_pg_tls_refused_by_a_plain_server_is_a_tls_error(capture):
    def plain_server(settings):
        raise RuntimeError(
            'connection failed: connection to server at "127.0.0.1" failed: server does not support SSL, but SSL was required'
        )

    sink = QuestDBSink(
        settings_for(capture, protocol="https", tls_verify="unsafe_off"),
        connect=plain_server,
        access_probe=lambda s: None,
    )
    with pytest.raises(QuestDBTlsError) as err:
        sink.prepare(FX_TABLES)
    assert str(err.value).startswith(
        f"QuestDB at 127.0.0.1:{capture.http_port} (PG wire): TLS failed (sslmode=require): "
    )


# -- reachability, PG and schema -----------------------------------------------------------------


def test_unreachable_pg_port(capture):
    port = closed_port()
    sink = QuestDBSink(settings_for(capture, pg_port=port))
    with pytest.raises(QuestDBUnreachableError, match=f"QuestDB at 127.0.0.1:{port} \\(PG wire\\) is unreachable"):
        sink.prepare(FX_TABLES)


# -- settings and secrets ------------------------------------------------------------------------


def test_settings_repr_and_public_dict_redact_secrets():
    s = QuestDBSettings(password=SECRET_PW, token=SECRET_TOKEN, token_x="xx-secret", token_y="yy-secret")
    for text in (repr(s), str(s), str(s.public_dict()), repr(QuestDBSink(s))):
        for secret in (SECRET_PW, SECRET_TOKEN, "xx-secret", "yy-secret"):
            assert secret not in text
    assert s.public_dict()["password"] == "***" and s.public_dict()["token_x"] == "***"
    assert QuestDBSettings(password=None).public_dict()["password"] is None


def test_from_env_reads_spec_variables():
    env = {
        "QUESTDB_HOST": "db.example", "QUESTDB_HTTP_PORT": "19000", "QUESTDB_ILP_TCP_PORT": "19009",
        "QUESTDB_PG_PORT": "18812", "QUESTDB_PROTOCOL": "TCPS", "QUESTDB_USER": "u", "QUESTDB_PASSWORD": "p",
        "QUESTDB_TOKEN": "t", "QUESTDB_TOKEN_X": "x", "QUESTDB_TOKEN_Y": "y", "QUESTDB_ILP_USER": "ilp",
        "QUESTDB_TLS_VERIFY": "unsafe_off",
    }  # fmt: skip
    s = QuestDBSettings.from_env(env)
    assert (s.host, s.http_port, s.ilp_tcp_port, s.pg_port, s.protocol) == ("db.example", 19000, 19009, 18812, "tcps")
    assert (s.user, s.password, s.token, s.token_x, s.token_y, s.ilp_user, s.tls_verify) == (
        "u",
        "p",
        "t",
        "x",
        "y",
        "ilp",
        "unsafe_off",
    )
    assert s.ilp_where == "db.example:19009" and s.tls
    assert QuestDBSettings.from_env({}) == QuestDBSettings()
    with pytest.raises(ValueError, match="QUESTDB_HTTP_PORT"):
        QuestDBSettings.from_env({"QUESTDB_HTTP_PORT": "http"})
    with pytest.raises(ValueError, match="QUESTDB_PROTOCOL: 'udp' must be one of"):
        QuestDBSettings.from_env({"QUESTDB_PROTOCOL": "udp"})


def test_from_cli_flags_over_env_and_token_file(tmp_path):
    from mkt_pipeline.core.engine import ConfigError

    token_file = tmp_path / "token"
    token_file.write_text(SECRET_TOKEN + "\n")
    values = {"ilp_port": 29009, "protocol": "tcp", "token_file": str(token_file),
              "token_x": "x", "token_y": "y", "short_ttl": True, "suffix": "_x"}  # fmt: skip
    s = QuestDBSettings.from_cli(values, env={"QUESTDB_HOST": "db.example"})
    assert s.host == "db.example"  # a flag the user did not set leaves the environment in charge
    explicit = QuestDBSettings.from_cli({**values, "host": "127.0.0.1"}, env={"QUESTDB_HOST": "db.example"})
    assert explicit.host == "127.0.0.1"  # an explicit flag wins, even when it equals the default
    assert (s.ilp_tcp_port, s.protocol, s.token, s.short_ttl) == (29009, "tcp", SECRET_TOKEN, True)
    with pytest.raises(ConfigError, match="^--ilp_port: 0 is not a TCP port"):
        QuestDBSettings.from_cli({"ilp_port": 0}, env={})
    with pytest.raises(ConfigError, match="^--token_file: cannot read"):
        QuestDBSettings.from_cli({"token_file": str(tmp_path / "missing")}, env={})


def test_tcp_token_needs_all_three_parts():
    with pytest.raises(ValueError, match="token_x and token_y"):
        QuestDBSettings(protocol="tcps", token="d")


# -- engines end to end: Parquet equality, idempotency, overlapped run_window ----------------------


def parquet_rows(sink: ParquetSink, schema, table: str) -> list[IlpRow]:
    """Rows of a Parquet table in the decoded-ILP shape, for row-by-row comparison."""
    data: pa.Table = sink.read(schema)
    out = []
    cols = {c.name: data.column(c.name) for c in schema.columns}
    py = {
        name: col.to_pylist() for name, col in cols.items() if schema.column(name).kind not in (TIMESTAMP, TIMESTAMP_NS)
    }
    ts = cols[schema.timestamp].cast(pa.int64()).to_numpy()
    for r in range(data.num_rows):
        symbols, fields = {}, {}
        for c in schema.columns:
            if c.name == schema.timestamp:
                continue
            value = py[c.name][r]
            if c.kind == SYMBOL:
                symbols[c.name] = value
            elif c.kind == BOOK:
                fields[c.name] = np.array(value, dtype=np.float64)
            else:
                fields[c.name] = value
        out.append(IlpRow(table, symbols, fields, int(ts[r]), "n" if schema.timestamp_kind == TIMESTAMP_NS else "t"))
    return out


def fx_engine_and_window():
    from mkt_pipeline.fx.engine import FxEngine
    from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

    window = Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T10:00:45Z")
    return FxEngine(LIGHT_FX, fx_references(window)), window


def equities_engine_and_window():
    eq = pytest.importorskip("mkt_pipeline.equities.engine")
    window = Window.from_iso("2025-06-02T14:00:00Z", "2025-06-02T14:00:20Z")  # a trading day, 10:00 New York
    config = eq.EquitiesConfig(
        market_data_min_eps=200,
        market_data_max_eps=300,
        trades_min_eps=50,
        trades_max_eps=80,
        min_levels=5,
        max_levels=5,
    )
    return eq.EquitiesEngine(config, market_references("equities", window, offline=True)), window


ENGINES = {"fx": fx_engine_and_window, "equities": equities_engine_and_window}


def dedup_view(rows: list[IlpRow], schema) -> dict:
    """What a DEDUP UPSERT KEYS table keeps: the last row per key."""
    out = {}
    for row in rows:
        key = tuple(
            row.timestamp if k == schema.timestamp else row.symbols.get(k, row.fields.get(k)) for k in schema.dedup_keys
        )
        out[key] = row
    return out


@pytest.mark.questdb
@pytest.mark.parametrize("market", ["fx", "equities"])
def test_questdb_rows_equal_parquet_rows_and_rewrites_are_idempotent(market, wire, tmp_path):
    engine, window = ENGINES[market]()
    naming = TableNaming(suffix=wire.suffix)
    parquet = ParquetSink(tmp_path, naming)
    parquet.prepare(engine.schemas)
    run_window(engine, parquet, window, chunk_seconds=15)
    qdb = open_sink(wire, schemas=engine.schemas, naming=naming)
    first = run_window(engine, qdb, window, chunk_seconds=15)
    sent_once = wire.http_rows()
    # the same window again, chunked differently, past the ledger (which records it as stored)
    second = run_window(engine, qdb, window, chunk_seconds=20, skip_recorded=False)
    sent_all = wire.http_rows()
    assert first.stats.rows == second.stats.rows
    for schema in engine.schemas:
        table = naming.name(schema)
        once = [r for r in sent_once if r.table == table]
        want = parquet_rows(parquet, schema, table)
        assert len(once) > 0
        assert_rows_equal(once, want)
        # keys are unique, so DEDUP keeps every row once; the re-send changes nothing
        kept_once = dedup_view(once, schema)
        assert len(kept_once) == len(once)
        kept_all = dedup_view([r for r in sent_all if r.table == table], schema)
        assert kept_all.keys() == kept_once.keys()
        assert_rows_equal(list(kept_all.values()), list(kept_once.values()))


class _ListEngine(Engine):
    """Replays fixed batches; optionally fails or records which thread generated."""

    market = "test"
    schemas = (FX_CORE_PRICE,)
    config = LIGHT_FX  # keys the ledger (any settings dataclass with a seed)

    def __init__(self, fail_at: int | None = None):
        super().__init__(batch_rows=10)
        self.fail_at = fail_at
        self.threads: set[str] = set()
        self.calls = 0

    @property
    def max_rows_per_second(self) -> int:
        return 5

    def generate_seconds(self, first_second, end_second):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise ArithmeticError("engine failed")
        n = 5 * (end_second - first_second)
        ts = np.repeat(np.arange(first_second, end_second) * 1_000_000, 5) + np.tile(
            np.arange(5), end_second - first_second
        )
        cp = fx_batches(n=n)[1]
        cp.columns["timestamp"] = ts
        return [cp]


def test_run_window_generates_in_a_background_thread_and_preserves_order(tmp_path):
    engine = _ListEngine()
    sink = ParquetSink(tmp_path)
    window = Window(T0_US, T0_US + 10_000_000)
    result = run_window(engine, sink, window, chunk_seconds=3)
    assert engine.threads == {"mkt-generate"}
    assert result.stats.rows == {"core_price": 50}
    ts = sink.read(FX_CORE_PRICE).column("timestamp").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(ts) > 0) and len(ts) == 50


def test_run_window_propagates_engine_errors(tmp_path):
    sink = ParquetSink(tmp_path)
    with pytest.raises(ArithmeticError, match="engine failed"):
        run_window(_ListEngine(fail_at=3), sink, Window(T0_US, T0_US + 10_000_000), chunk_seconds=5)
    assert threading.active_count() < 50 and not any(t.name == "mkt-generate" for t in threading.enumerate())


@pytest.mark.questdb
def test_run_window_stops_the_producer_when_the_sink_fails(wire):
    wire.config.reject_writes = "nope"
    sink = open_sink(wire, schemas=(FX_CORE_PRICE,), create_views=False)
    engine = _ListEngine()
    with pytest.raises(QuestDBSinkError):
        run_window(engine, sink, Window(T0_US, T0_US + 100_000_000), chunk_seconds=5)
    assert not any(t.name == "mkt-generate" for t in threading.enumerate())
    assert engine.calls < 20  # it did not generate the whole window after the failure


# -- reusable book views -------------------------------------------------------------------------


def test_the_encoder_reusing_book_views_sends_the_bytes_of_fresh_views():
    """Staged views (uniform and mixed depths, growing and shrinking slices) encode byte for byte
    what per-row views of the batch itself encode, and a later call never alters an earlier buffer."""
    from questdb._client import Buffer

    from mkt_pipeline.sinks import ilp

    encoder = ilp.Encoder()
    uniform = fx_batches(n=300, seed=1, depths=np.full(300, 40))[0]
    mixed = fx_batches(n=300, seed=2)[0]  # depths 3..5
    earlier = []
    for batch, lo, hi in [(uniform, 0, 100), (uniform, 100, 300), (mixed, 0, 300), (uniform, 250, 260), (mixed, 7, 9)]:
        staged, fresh = Buffer(protocol_version=2), Buffer(protocol_version=2)
        encoder.encode(staged, "market_data", batch, lo, hi)
        ilp.encode(fresh, "market_data", batch, lo, hi)
        assert bytes(staged) == bytes(fresh)
        rows = decode_ilp(bytes(staged))
        assert [np.asarray(r.fields["bids"]).tolist() for r in rows] == [
            batch.columns["bids"].row(r).tolist() for r in range(lo, hi)
        ]
        earlier.append((staged, bytes(fresh)))
    assert all(bytes(buf) == want for buf, want in earlier)


def test_qwp_configuration_carries_auth_and_tls_and_the_client_accepts_it(tmp_path):
    """The ``questdb.connect`` string of each auth/TLS setting, parsed by the client itself (no server needed)."""
    import questdb

    from mkt_pipeline.sinks.questdb import qwp_conf
    from mkt_pipeline_tests.tls_files import self_signed_pem

    ca = self_signed_pem(tmp_path / "ca.pem")
    cases = {
        QuestDBSettings(
            protocol="ws", user="u", password="p;q"
        ): "ws::addr=127.0.0.1:9000;auth_timeout_ms=5000;username=u;password=p;;q;",
        QuestDBSettings(
            protocol="ws", token="Zq7bearer"
        ): "ws::addr=127.0.0.1:9000;auth_timeout_ms=5000;token=Zq7bearer;",
        QuestDBSettings(protocol="wss", http_port=19000, tls_ca=str(ca)): (
            f"wss::addr=127.0.0.1:19000;auth_timeout_ms=5000;username=admin;password=quest;tls_verify=on;tls_roots={ca};"
        ),
        QuestDBSettings(protocol="wss", tls_verify="unsafe_off", password=None): (
            "wss::addr=127.0.0.1:9000;auth_timeout_ms=5000;username=admin;password=;tls_verify=unsafe_off;"
        ),
    }
    for settings, expected in cases.items():
        assert qwp_conf(settings) == expected
        questdb.connect(expected + "lazy_connect=on;").close()  # the client parses every key and value
        assert "p;q" not in repr(settings) and "Zq7bearer" not in repr(settings)

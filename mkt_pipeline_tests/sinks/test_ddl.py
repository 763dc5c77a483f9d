"""Exact QuestDB DDL text for every table and view, the switches that change it, and schema checks."""

from __future__ import annotations

import pytest

from mkt_pipeline.core.tables import (
    EQUITIES_MARKET_DATA,
    EQUITIES_TABLES,
    EQUITIES_TRADES,
    FX_CORE_PRICE,
    FX_MARKET_DATA,
    FX_TABLES,
    FX_TRADES,
    TableSchema,
)
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ddl import (
    EQUITIES_VIEWS,
    FX_VIEWS,
    DdlOptions,
    SchemaMismatchError,
    check_table_compatible,
    create_table_sql,
    create_view_sql,
    ddl_statements,
    table_columns_sql,
    views_for,
)

PLAIN = TableNaming()


def columns_of(schema: TableSchema, overrides: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> list[tuple]:
    """``table_columns()`` rows (name, type, designated, upsert key) for a schema, optionally with changed
    types or missing columns: what QuestDB answers for an existing table."""
    overrides = overrides or {}
    return [
        (c.name, overrides.get(c.name, c.kind), c.name == schema.timestamp, c.name in schema.dedup_keys)
        for c in schema.columns
        if c.name not in drop
    ]


# Golden text, reviewed by hand against docs/data-model.md#fx-tables, #fx-views,
# #equities-tables, #equities-views (default options: encodings on,
# no retention, no suffix).
TABLES = {
    "market_data": """\
CREATE TABLE IF NOT EXISTS market_data (
  timestamp TIMESTAMP PARQUET(delta_binary_packed, zstd(4)),
  symbol SYMBOL CAPACITY 15000 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  bids DOUBLE[][] PARQUET(default, zstd(4)),
  asks DOUBLE[][] PARQUET(default, zstd(4)),
  best_bid DOUBLE PARQUET(default, zstd(4)),
  best_ask DOUBLE PARQUET(default, zstd(4))
) TIMESTAMP(timestamp) PARTITION BY HOUR WAL
DEDUP UPSERT KEYS(timestamp, symbol)""",
    "core_price": """\
CREATE TABLE IF NOT EXISTS core_price (
  timestamp TIMESTAMP PARQUET(delta_binary_packed, zstd(4)),
  symbol SYMBOL CAPACITY 15000 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  ecn SYMBOL PARQUET(rle_dictionary, zstd(4), bloom_filter),
  bid_price DOUBLE PARQUET(default, zstd(4)),
  bid_volume LONG PARQUET(default, zstd(4)),
  ask_price DOUBLE PARQUET(default, zstd(4)),
  ask_volume LONG PARQUET(default, zstd(4)),
  reason SYMBOL PARQUET(rle_dictionary, zstd(4), bloom_filter),
  indicator1 DOUBLE PARQUET(default, zstd(4)),
  indicator2 DOUBLE PARQUET(default, zstd(4))
) TIMESTAMP(timestamp) PARTITION BY HOUR WAL
DEDUP UPSERT KEYS(timestamp, symbol)""",
    "fx_trades": """\
CREATE TABLE IF NOT EXISTS fx_trades (
  timestamp TIMESTAMP_NS PARQUET(delta_binary_packed, zstd(4)),
  symbol SYMBOL CAPACITY 15000 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  ecn SYMBOL PARQUET(rle_dictionary, zstd(4), bloom_filter),
  trade_id UUID PARQUET(default, zstd(4)),
  side SYMBOL PARQUET(rle_dictionary, zstd(4), bloom_filter),
  passive BOOLEAN PARQUET(default, zstd(4)),
  price DOUBLE PARQUET(default, zstd(4)),
  quantity DOUBLE PARQUET(default, zstd(4)),
  counterparty SYMBOL CAPACITY 4096 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  order_id UUID PARQUET(default, zstd(4))
) TIMESTAMP(timestamp) PARTITION BY HOUR WAL
DEDUP UPSERT KEYS(timestamp, trade_id)""",
    "equities_market_data": """\
CREATE TABLE IF NOT EXISTS equities_market_data (
  timestamp_ns TIMESTAMP_NS PARQUET(delta_binary_packed, zstd(4)),
  symbol SYMBOL CAPACITY 256 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  venue SYMBOL CAPACITY 32 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  bids DOUBLE[][] PARQUET(default, zstd(4)),
  asks DOUBLE[][] PARQUET(default, zstd(4))
) TIMESTAMP(timestamp_ns) PARTITION BY HOUR WAL
DEDUP UPSERT KEYS(timestamp_ns, symbol, venue)""",
    "equities_trades": """\
CREATE TABLE IF NOT EXISTS equities_trades (
  timestamp_ns TIMESTAMP_NS PARQUET(delta_binary_packed, zstd(4)),
  symbol SYMBOL CAPACITY 256 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  venue SYMBOL CAPACITY 32 PARQUET(rle_dictionary, zstd(4), bloom_filter),
  price DOUBLE PARQUET(default, zstd(4)),
  size LONG PARQUET(default, zstd(4)),
  side SYMBOL PARQUET(rle_dictionary, zstd(4), bloom_filter),
  cond SYMBOL PARQUET(rle_dictionary, zstd(4), bloom_filter)
) TIMESTAMP(timestamp_ns) PARTITION BY HOUR WAL
DEDUP UPSERT KEYS(timestamp_ns, symbol, venue)""",
}
VIEWS = {
    "core_price_1s": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS core_price_1s REFRESH IMMEDIATE AS (
  SELECT
    timestamp,
    symbol,
    first((bid_price + ask_price) / 2) AS open_mid,
    max((bid_price + ask_price) / 2) AS high_mid,
    min((bid_price + ask_price) / 2) AS low_mid,
    last((bid_price + ask_price) / 2) AS close_mid,
    last(ask_price) - last(bid_price) AS last_spread,
    max(bid_price) AS max_bid,
    min(bid_price) AS min_bid,
    avg(bid_price) AS avg_bid,
    max(ask_price) AS max_ask,
    min(ask_price) AS min_ask,
    avg(ask_price) AS avg_ask
  FROM core_price
  SAMPLE BY 1s
) PARTITION BY HOUR""",
    "core_price_1d": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS core_price_1d REFRESH EVERY 1h DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp,
    symbol,
    first((bid_price + ask_price) / 2) AS open_mid,
    max((bid_price + ask_price) / 2) AS high_mid,
    min((bid_price + ask_price) / 2) AS low_mid,
    last((bid_price + ask_price) / 2) AS close_mid,
    last(ask_price) - last(bid_price) AS last_spread,
    max(bid_price) AS max_bid,
    min(bid_price) AS min_bid,
    avg(bid_price) AS avg_bid,
    max(ask_price) AS max_ask,
    min(ask_price) AS min_ask,
    avg(ask_price) AS avg_ask
  FROM core_price
  SAMPLE BY 1d
) PARTITION BY MONTH""",
    "bbo_1s": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS bbo_1s REFRESH IMMEDIATE AS (
  SELECT
    timestamp,
    symbol,
    last(best_bid) AS bid,
    last(best_ask) AS ask
  FROM market_data
  SAMPLE BY 1s
) PARTITION BY HOUR""",
    "bbo_1m": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS bbo_1m REFRESH EVERY 1m DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp,
    symbol,
    max(bid) AS bid,
    min(ask) AS ask
  FROM bbo_1s
  SAMPLE BY 1m
) PARTITION BY DAY""",
    "bbo_1h": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS bbo_1h REFRESH EVERY 10m DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp,
    symbol,
    max(bid) AS bid,
    min(ask) AS ask
  FROM bbo_1m
  SAMPLE BY 1h
) PARTITION BY MONTH""",
    "bbo_1d": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS bbo_1d REFRESH EVERY 1h DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp,
    symbol,
    max(bid) AS bid,
    min(ask) AS ask
  FROM bbo_1h
  SAMPLE BY 1d
) PARTITION BY MONTH""",
    "market_data_ohlc_1m": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS market_data_ohlc_1m REFRESH IMMEDIATE AS (
  SELECT
    timestamp,
    symbol,
    first(best_bid) AS open,
    max(best_bid) AS high,
    min(best_bid) AS low,
    last(best_bid) AS close,
    SUM(bids[2][1]) AS total_volume
  FROM market_data
  SAMPLE BY 1m
) PARTITION BY HOUR""",
    "market_data_ohlc_15m": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS market_data_ohlc_15m REFRESH IMMEDIATE AS (
  SELECT
    timestamp,
    symbol,
    first(open) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close) AS close,
    SUM(total_volume) AS total_volume
  FROM market_data_ohlc_1m
  SAMPLE BY 15m
) PARTITION BY HOUR""",
    "market_data_ohlc_1d": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS market_data_ohlc_1d REFRESH EVERY 1h DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp,
    symbol,
    first(best_bid) AS open,
    max(best_bid) AS high,
    min(best_bid) AS low,
    last(best_bid) AS close,
    SUM(bids[2][1]) AS total_volume
  FROM market_data
  SAMPLE BY 1d
) PARTITION BY MONTH""",
    "fx_trades_ohlc_1m": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS fx_trades_ohlc_1m REFRESH IMMEDIATE AS (
  SELECT
    timestamp,
    symbol,
    first(price) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price) AS close,
    SUM(quantity) AS total_volume
  FROM fx_trades
  SAMPLE BY 1m
) PARTITION BY HOUR""",
    "fx_trades_ohlc_1h": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS fx_trades_ohlc_1h REFRESH EVERY 10m DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp,
    symbol,
    first(open) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close) AS close,
    SUM(total_volume) AS total_volume
  FROM fx_trades_ohlc_1m
  SAMPLE BY 1h
) PARTITION BY DAY""",
    "fx_trades_ohlc_1d": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS fx_trades_ohlc_1d REFRESH EVERY 1h DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp,
    symbol,
    first(open) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close) AS close,
    SUM(total_volume) AS total_volume
  FROM fx_trades_ohlc_1m
  SAMPLE BY 1d
) PARTITION BY MONTH""",
    "top_of_book_1s": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS top_of_book_1s REFRESH IMMEDIATE AS (
  SELECT
    timestamp_ns,
    symbol,
    venue,
    last(bids[1][1]) AS bid_price,
    last(bids[2][1]) AS bid_size,
    last(asks[1][1]) AS ask_price,
    last(asks[2][1]) AS ask_size
  FROM equities_market_data
  SAMPLE BY 1s
) PARTITION BY HOUR""",
    "nbbo_1s": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS nbbo_1s REFRESH IMMEDIATE AS (
  SELECT
    timestamp_ns,
    symbol,
    max(bid_price) AS best_bid,
    min(ask_price) AS best_ask,
    min(ask_price) - max(bid_price) AS spread
  FROM top_of_book_1s
  SAMPLE BY 1s
) PARTITION BY HOUR""",
    "trades_ohlcv_1s": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS trades_ohlcv_1s REFRESH IMMEDIATE AS (
  SELECT
    timestamp_ns,
    symbol,
    first(price) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price) AS close,
    sum(size) AS volume,
    sum(price * size) / sum(size) AS vwap
  FROM equities_trades
  SAMPLE BY 1s
) PARTITION BY HOUR""",
    "nbbo_1m": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS nbbo_1m REFRESH EVERY 1m DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp_ns,
    symbol,
    max(best_bid) AS max_bid,
    min(best_ask) AS min_ask,
    min(spread) AS min_spread
  FROM nbbo_1s
  SAMPLE BY 1m
) PARTITION BY DAY""",
    "nbbo_1h": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS nbbo_1h REFRESH EVERY 10m DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp_ns,
    symbol,
    max(max_bid) AS max_bid,
    min(min_ask) AS min_ask,
    min(min_spread) AS min_spread
  FROM nbbo_1m
  SAMPLE BY 1h
) PARTITION BY MONTH""",
    "trades_ohlcv_1m": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS trades_ohlcv_1m REFRESH EVERY 1m DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp_ns,
    symbol,
    first(open) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close) AS close,
    sum(volume) AS volume,
    sum(vwap * volume) / sum(volume) AS vwap
  FROM trades_ohlcv_1s
  SAMPLE BY 1m
) PARTITION BY DAY""",
    "trades_ohlcv_15m": """\
CREATE MATERIALIZED VIEW IF NOT EXISTS trades_ohlcv_15m REFRESH EVERY 5m DEFERRED START '2025-06-01T00:00:00.000000Z' AS (
  SELECT
    timestamp_ns,
    symbol,
    first(open) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close) AS close,
    sum(volume) AS volume,
    sum(vwap * volume) / sum(volume) AS vwap
  FROM trades_ohlcv_1m
  SAMPLE BY 15m
) PARTITION BY DAY""",
}


@pytest.mark.parametrize("schema", FX_TABLES + EQUITIES_TABLES, ids=lambda s: s.base_name)
def test_table_ddl_exact(schema):
    assert create_table_sql(schema, PLAIN) == TABLES[schema.base_name]


@pytest.mark.parametrize("view", FX_VIEWS + EQUITIES_VIEWS, ids=lambda v: v.base_name)
def test_view_ddl_exact(view):
    assert create_view_sql(view, PLAIN) == VIEWS[view.base_name]


def test_every_spec_view_is_declared():
    assert [v.base_name for v in FX_VIEWS] == [
        "core_price_1s", "core_price_1d", "bbo_1s", "bbo_1m", "bbo_1h", "bbo_1d", "market_data_ohlc_1m",
        "market_data_ohlc_15m", "market_data_ohlc_1d", "fx_trades_ohlc_1m", "fx_trades_ohlc_1h", "fx_trades_ohlc_1d",
    ]  # fmt: skip
    assert {v.base_name for v in EQUITIES_VIEWS} == {
        "top_of_book_1s", "nbbo_1s", "trades_ohlcv_1s", "nbbo_1m", "nbbo_1h", "trades_ohlcv_1m", "trades_ohlcv_15m",
    }  # fmt: skip


def test_short_ttl_tables():
    sql = create_table_sql(FX_MARKET_DATA, PLAIN, DdlOptions(short_ttl=True))
    assert sql == TABLES["market_data"].replace("PARTITION BY HOUR WAL", "PARTITION BY HOUR TTL 3 DAYS WAL")
    assert sql.endswith(") TIMESTAMP(timestamp) PARTITION BY HOUR TTL 3 DAYS WAL\nDEDUP UPSERT KEYS(timestamp, symbol)")
    expected = {"market_data": "3 DAYS", "core_price": "3 DAYS", "fx_trades": "1 MONTH",
                "equities_market_data": "3 DAYS", "equities_trades": "1 MONTH"}  # fmt: skip
    for schema in FX_TABLES + EQUITIES_TABLES:
        sql = create_table_sql(schema, PLAIN, DdlOptions(short_ttl=True))
        assert f"PARTITION BY HOUR TTL {expected[schema.base_name]} WAL\n" in sql


def test_enterprise_storage_policy_only_with_short_ttl():
    assert create_table_sql(FX_TRADES, PLAIN, DdlOptions(enterprise=True)) == TABLES["fx_trades"]
    sql = create_table_sql(FX_TRADES, PLAIN, DdlOptions(short_ttl=True, enterprise=True))
    assert sql == TABLES["fx_trades"].replace(
        "PARTITION BY HOUR WAL",
        "PARTITION BY HOUR STORAGE POLICY(TO REMOTE 1 hour, TO PARQUET 2 days, DROP LOCAL 3 months) WAL",
    )
    assert "TTL" not in sql


def test_views_always_use_ttl_never_a_policy():
    expected_ttl = {
        "core_price_1s": "4 HOURS", "core_price_1d": "1 MONTH", "bbo_1s": "3 DAYS", "bbo_1m": "3 DAYS",
        "bbo_1h": "1 MONTH", "bbo_1d": "1 MONTH", "market_data_ohlc_1m": "1 DAY", "market_data_ohlc_15m": "2 DAYS",
        "market_data_ohlc_1d": "1 MONTH", "fx_trades_ohlc_1m": "2 DAYS", "fx_trades_ohlc_1h": "1 MONTH",
        "fx_trades_ohlc_1d": "1 MONTH", "top_of_book_1s": "3 DAYS", "nbbo_1s": "3 DAYS", "trades_ohlcv_1s": "3 DAYS",
        "nbbo_1m": "1 MONTH", "nbbo_1h": "1 MONTH", "trades_ohlcv_1m": "1 MONTH", "trades_ohlcv_15m": "1 MONTH",
    }  # fmt: skip
    statements = dict(ddl_statements(FX_TABLES + EQUITIES_TABLES, PLAIN, DdlOptions(short_ttl=True, enterprise=True)))
    for view in FX_VIEWS + EQUITIES_VIEWS:
        sql = statements[view.base_name]
        assert sql == VIEWS[view.base_name] + f" TTL {expected_ttl[view.base_name]}"
        assert "STORAGE POLICY" not in sql


def test_parquet_encodings_switch_off():
    sql = create_table_sql(EQUITIES_TRADES, PLAIN, DdlOptions(parquet_encodings=False))
    assert (
        sql
        == """\
CREATE TABLE IF NOT EXISTS equities_trades (
  timestamp_ns TIMESTAMP_NS,
  symbol SYMBOL CAPACITY 256,
  venue SYMBOL CAPACITY 32,
  price DOUBLE,
  size LONG,
  side SYMBOL,
  cond SYMBOL
) TIMESTAMP(timestamp_ns) PARTITION BY HOUR WAL
DEDUP UPSERT KEYS(timestamp_ns, symbol, venue)"""
    )


def test_prefix_and_suffix_apply_to_tables_views_and_sources():
    naming = TableNaming(suffix="_t1", prefix="eq_")
    assert (
        create_table_sql(EQUITIES_MARKET_DATA, naming, DdlOptions(parquet_encodings=False))
        == """\
CREATE TABLE IF NOT EXISTS eq_equities_market_data_t1 (
  timestamp_ns TIMESTAMP_NS,
  symbol SYMBOL CAPACITY 256,
  venue SYMBOL CAPACITY 32,
  bids DOUBLE[][],
  asks DOUBLE[][]
) TIMESTAMP(timestamp_ns) PARTITION BY HOUR WAL
DEDUP UPSERT KEYS(timestamp_ns, symbol, venue)"""
    )
    nbbo = next(v for v in EQUITIES_VIEWS if v.base_name == "nbbo_1s")
    assert (
        create_view_sql(nbbo, naming, short_ttl=True)
        == """\
CREATE MATERIALIZED VIEW IF NOT EXISTS eq_nbbo_1s_t1 REFRESH IMMEDIATE AS (
  SELECT
    timestamp_ns,
    symbol,
    max(bid_price) AS best_bid,
    min(ask_price) AS best_ask,
    min(ask_price) - max(bid_price) AS spread
  FROM eq_top_of_book_1s_t1
  SAMPLE BY 1s
) PARTITION BY HOUR TTL 3 DAYS"""
    )


@pytest.mark.parametrize("bad", ["x; DROP TABLE market_data", "a b", "é", "x" * 65, "'"])
def test_identifiers_are_validated_before_sql(bad):
    with pytest.raises(ValueError):
        ddl_statements(FX_TABLES, TableNaming(suffix=bad))
    with pytest.raises(ValueError):
        table_columns_sql(f"market_data{bad}" if len(bad) < 65 else "x" * 128)


def test_dependency_order_and_subsets():
    names = [name for name, _ in ddl_statements(FX_TABLES + EQUITIES_TABLES, PLAIN)]
    assert names[:5] == ["market_data", "core_price", "fx_trades", "equities_market_data", "equities_trades"]
    position = {n: i for i, n in enumerate(names)}
    for view in FX_VIEWS + EQUITIES_VIEWS:
        assert position[view.source] < position[view.base_name], view.base_name
    assert {v.base_name for v in views_for(EQUITIES_TABLES)} == {v.base_name for v in EQUITIES_VIEWS}
    assert [v.base_name for v in views_for((FX_MARKET_DATA,))] == [
        "bbo_1s", "bbo_1m", "bbo_1h", "bbo_1d", "market_data_ohlc_1m", "market_data_ohlc_15m", "market_data_ohlc_1d",
    ]  # fmt: skip
    assert [n for n, _ in ddl_statements(FX_TABLES, PLAIN, create_views=False)] == [
        "market_data",
        "core_price",
        "fx_trades",
    ]


def test_table_columns_query():
    assert (
        table_columns_sql("market_data_x")
        == "SELECT \"column\", type, designated, upsertKey FROM table_columns('market_data_x')"
    )


# -- compatibility of pre-existing tables -------------------------------------------------------


def test_compatible_table_passes_and_extra_columns_are_tolerated():
    rows = columns_of(FX_MARKET_DATA) + [("note", "VARCHAR", False, False)]
    check_table_compatible(FX_MARKET_DATA, "market_data", rows)


def test_type_mismatch_names_table_column_and_types():
    rows = columns_of(FX_TRADES, overrides={"timestamp": "TIMESTAMP"})
    with pytest.raises(SchemaMismatchError) as err:
        check_table_compatible(FX_TRADES, "fx_trades", rows, where="db:8812")
    assert str(err.value).startswith(
        "QuestDB table fx_trades at db:8812 has an incompatible schema: column timestamp is TIMESTAMP, expected TIMESTAMP_NS"
    )


def test_missing_column_and_array_type():
    with pytest.raises(SchemaMismatchError, match="column asks is missing \\(expected DOUBLE\\[\\]\\[\\]\\)"):
        check_table_compatible(FX_MARKET_DATA, "market_data", columns_of(FX_MARKET_DATA, drop=("asks",)))
    with pytest.raises(SchemaMismatchError, match="column bids is DOUBLE\\[\\], expected DOUBLE\\[\\]\\[\\]"):
        check_table_compatible(
            FX_MARKET_DATA, "market_data", columns_of(FX_MARKET_DATA, overrides={"bids": "DOUBLE[]"})
        )


def test_dedup_keys_and_designated_timestamp_must_match():
    rows = [(c, t, d, False) for c, t, d, _ in columns_of(FX_CORE_PRICE)]
    with pytest.raises(SchemaMismatchError, match=r"DEDUP UPSERT KEYS are \(none\), expected \(timestamp, symbol\)"):
        check_table_compatible(FX_CORE_PRICE, "core_price", rows)
    rows = [(c, t, False, k) for c, t, _, k in columns_of(FX_CORE_PRICE)]
    with pytest.raises(SchemaMismatchError, match="designated timestamp is none, expected timestamp"):
        check_table_compatible(FX_CORE_PRICE, "core_price", rows)

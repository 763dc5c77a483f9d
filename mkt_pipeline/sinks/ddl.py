"""QuestDB DDL for every table and materialized view (docs/data-model.md#fx-tables,
#fx-views, #equities-tables, #equities-views).

Table DDL is generated from the ``TableSchema`` objects in ``tables.py``; nothing here redeclares a
column. Views are declared once below, in dependency order (every view after its source). Names get
the run's prefix/suffix through ``TableNaming``, whose parts are validated identifiers, so no text
from the outside reaches SQL unchecked.

``check_table_compatible`` compares a pre-existing table (``table_columns()``) with its schema and
raises ``SchemaMismatchError`` naming the table, the column, and the expected vs found type.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mkt_pipeline.core.tables import (
    EQUITIES_MARKET_DATA,
    EQUITIES_TRADES,
    FX_CORE_PRICE,
    FX_MARKET_DATA,
    FX_TRADES,
    SYMBOL,
    TIMESTAMP,
    TIMESTAMP_NS,
    TableSchema,
)
from mkt_pipeline.sinks.base import TableNaming

# The storage policy the public scripts attach with --enterprise --short_ttl (tables only: QuestDB
# does not accept a policy on materialized views, so views always use TTL).
ENTERPRISE_STORAGE_POLICY = "TO REMOTE 1 hour, TO PARQUET 2 days, DROP LOCAL 3 months"
DEFERRED_START = "2025-06-01T00:00:00.000000Z"

# Retention of each table under --short_ttl (docs/data-model.md#fx-tables, #equities-tables), keyed by base name.
TABLE_TTL = {
    FX_MARKET_DATA.base_name: "3 DAYS",
    FX_CORE_PRICE.base_name: "3 DAYS",
    FX_TRADES.base_name: "1 MONTH",
    EQUITIES_MARKET_DATA.base_name: "3 DAYS",
    EQUITIES_TRADES.base_name: "1 MONTH",
}

_ZSTD = "zstd(4)"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")


def checked_name(name: str) -> str:
    """A full table/view name as it will appear in SQL: ``[A-Za-z0-9_]``, at most 127 characters."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid QuestDB table name (A-Z, a-z, 0-9 and _, at most 127 characters)")
    return name


def parquet_clause(kind: str) -> str:
    """Per-column Parquet encoding: delta for timestamps, dictionary + bloom filter for symbols."""
    if kind in (TIMESTAMP, TIMESTAMP_NS):
        return f"PARQUET(delta_binary_packed, {_ZSTD})"
    if kind == SYMBOL:
        return f"PARQUET(rle_dictionary, {_ZSTD}, bloom_filter)"
    return f"PARQUET(default, {_ZSTD})"


@dataclass(frozen=True)
class DdlOptions:
    """The switches that change DDL text."""

    parquet_encodings: bool = True
    short_ttl: bool = False
    enterprise: bool = False


def create_table_sql(schema: TableSchema, naming: TableNaming, options: DdlOptions = DdlOptions()) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one table: WAL, DEDUP keys, encodings, retention."""
    name = checked_name(naming.name(schema))
    lines = []
    for col in schema.columns:
        parts = [col.name, col.kind]
        if col.capacity is not None:
            parts.append(f"CAPACITY {int(col.capacity)}")
        if options.parquet_encodings:
            parts.append(parquet_clause(col.kind))
        lines.append("  " + " ".join(parts))
    retention = ""
    if options.short_ttl:
        if options.enterprise:
            retention = f" STORAGE POLICY({ENTERPRISE_STORAGE_POLICY})"
        else:
            retention = f" TTL {TABLE_TTL[schema.base_name]}"
    # TTL / STORAGE POLICY must sit between PARTITION BY and WAL for QuestDB's parser.
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (\n"
        + ",\n".join(lines)
        + f"\n) TIMESTAMP({schema.timestamp}) PARTITION BY {schema.partition_by}{retention} WAL\n"
        + f"DEDUP UPSERT KEYS({', '.join(schema.dedup_keys)})"
    )


# ---------------------------------------------------------------------------------------------
# materialized views


@dataclass(frozen=True)
class ViewSpec:
    """One materialized view: ``SELECT <ts>, <keys>, <columns> FROM <source> SAMPLE BY <every>``."""

    base_name: str
    source: str  # base name of a table or of another view
    sample_by: str
    columns: tuple[str, ...]
    partition_by: str
    ttl: str  # applied with short_ttl
    refresh_every: str | None = None  # None: REFRESH IMMEDIATE
    timestamp: str = "timestamp"
    keys: tuple[str, ...] = ("symbol",)

    def name(self, naming: TableNaming) -> str:
        return naming.name(self.base_name)


_MID = "(bid_price + ask_price) / 2"
_CORE_PRICE_COLUMNS = (
    f"first({_MID}) AS open_mid",
    f"max({_MID}) AS high_mid",
    f"min({_MID}) AS low_mid",
    f"last({_MID}) AS close_mid",
    "last(ask_price) - last(bid_price) AS last_spread",
    "max(bid_price) AS max_bid",
    "min(bid_price) AS min_bid",
    "avg(bid_price) AS avg_bid",
    "max(ask_price) AS max_ask",
    "min(ask_price) AS min_ask",
    "avg(ask_price) AS avg_ask",
)
_BBO_ROLLUP = ("max(bid) AS bid", "min(ask) AS ask")
_BEST_BID_OHLC = (
    "first(best_bid) AS open",
    "max(best_bid) AS high",
    "min(best_bid) AS low",
    "last(best_bid) AS close",
    "SUM(bids[2][1]) AS total_volume",
)
_OHLC_ROLLUP = (
    "first(open) AS open",
    "max(high) AS high",
    "min(low) AS low",
    "last(close) AS close",
    "SUM(total_volume) AS total_volume",
)

FX_VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("core_price_1s", "core_price", "1s", _CORE_PRICE_COLUMNS, "HOUR", "4 HOURS"),
    ViewSpec("core_price_1d", "core_price", "1d", _CORE_PRICE_COLUMNS, "MONTH", "1 MONTH", "1h"),
    ViewSpec("bbo_1s", "market_data", "1s", ("last(best_bid) AS bid", "last(best_ask) AS ask"), "HOUR", "3 DAYS"),
    ViewSpec("bbo_1m", "bbo_1s", "1m", _BBO_ROLLUP, "DAY", "3 DAYS", "1m"),
    ViewSpec("bbo_1h", "bbo_1m", "1h", _BBO_ROLLUP, "MONTH", "1 MONTH", "10m"),
    ViewSpec("bbo_1d", "bbo_1h", "1d", _BBO_ROLLUP, "MONTH", "1 MONTH", "1h"),
    ViewSpec("market_data_ohlc_1m", "market_data", "1m", _BEST_BID_OHLC, "HOUR", "1 DAY"),
    ViewSpec("market_data_ohlc_15m", "market_data_ohlc_1m", "15m", _OHLC_ROLLUP, "HOUR", "2 DAYS"),
    ViewSpec("market_data_ohlc_1d", "market_data", "1d", _BEST_BID_OHLC, "MONTH", "1 MONTH", "1h"),
    ViewSpec(
        "fx_trades_ohlc_1m",
        "fx_trades",
        "1m",
        (
            "first(price) AS open",
            "max(price) AS high",
            "min(price) AS low",
            "last(price) AS close",
            "SUM(quantity) AS total_volume",
        ),
        "HOUR",
        "2 DAYS",
    ),
    ViewSpec("fx_trades_ohlc_1h", "fx_trades_ohlc_1m", "1h", _OHLC_ROLLUP, "DAY", "1 MONTH", "10m"),
    ViewSpec("fx_trades_ohlc_1d", "fx_trades_ohlc_1m", "1d", _OHLC_ROLLUP, "MONTH", "1 MONTH", "1h"),
)

_EQ = {"timestamp": "timestamp_ns"}
_TRADES_ROLLUP = (
    "first(open) AS open",
    "max(high) AS high",
    "min(low) AS low",
    "last(close) AS close",
    "sum(volume) AS volume",
    "sum(vwap * volume) / sum(volume) AS vwap",
)
_NBBO_ROLLUP = ("max(max_bid) AS max_bid", "min(min_ask) AS min_ask", "min(min_spread) AS min_spread")

EQUITIES_VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(
        "top_of_book_1s",
        "equities_market_data",
        "1s",
        (
            "last(bids[1][1]) AS bid_price",
            "last(bids[2][1]) AS bid_size",
            "last(asks[1][1]) AS ask_price",
            "last(asks[2][1]) AS ask_size",
        ),
        "HOUR",
        "3 DAYS",
        keys=("symbol", "venue"),
        **_EQ,
    ),
    ViewSpec(
        "nbbo_1s",
        "top_of_book_1s",
        "1s",
        ("max(bid_price) AS best_bid", "min(ask_price) AS best_ask", "min(ask_price) - max(bid_price) AS spread"),
        "HOUR",
        "3 DAYS",
        **_EQ,
    ),
    ViewSpec(
        "trades_ohlcv_1s",
        "equities_trades",
        "1s",
        (
            "first(price) AS open",
            "max(price) AS high",
            "min(price) AS low",
            "last(price) AS close",
            "sum(size) AS volume",
            "sum(price * size) / sum(size) AS vwap",
        ),
        "HOUR",
        "3 DAYS",
        **_EQ,
    ),
    ViewSpec(
        "nbbo_1m",
        "nbbo_1s",
        "1m",
        ("max(best_bid) AS max_bid", "min(best_ask) AS min_ask", "min(spread) AS min_spread"),
        "DAY",
        "1 MONTH",
        "1m",
        **_EQ,
    ),
    ViewSpec("nbbo_1h", "nbbo_1m", "1h", _NBBO_ROLLUP, "MONTH", "1 MONTH", "10m", **_EQ),
    ViewSpec("trades_ohlcv_1m", "trades_ohlcv_1s", "1m", _TRADES_ROLLUP, "DAY", "1 MONTH", "1m", **_EQ),
    ViewSpec("trades_ohlcv_15m", "trades_ohlcv_1m", "15m", _TRADES_ROLLUP, "DAY", "1 MONTH", "5m", **_EQ),
)


def create_view_sql(view: ViewSpec, naming: TableNaming, short_ttl: bool = False) -> str:
    """``CREATE MATERIALIZED VIEW IF NOT EXISTS`` for one view (TTL only, never a storage policy)."""
    name, source = checked_name(view.name(naming)), checked_name(naming.name(view.source))
    if view.refresh_every is None:
        refresh = "REFRESH IMMEDIATE"
    else:
        refresh = f"REFRESH EVERY {view.refresh_every} DEFERRED START '{DEFERRED_START}'"
    select = ",\n    ".join((view.timestamp, *view.keys, *view.columns))
    ttl = f" TTL {view.ttl}" if short_ttl else ""
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} {refresh} AS (\n"
        f"  SELECT\n    {select}\n"
        f"  FROM {source}\n"
        f"  SAMPLE BY {view.sample_by}\n"
        f") PARTITION BY {view.partition_by}{ttl}"
    )


def views_for(schemas: Sequence[TableSchema]) -> tuple[ViewSpec, ...]:
    """The views whose whole dependency chain lies on the given tables, in dependency order.

    Each view's timestamp column is its source's designated timestamp, so the equities views
    follow the configured ``timestamp_column``.
    """
    timestamps = {s.base_name: s.timestamp for s in schemas}
    out = []
    for view in FX_VIEWS + EQUITIES_VIEWS:
        if view.source in timestamps:
            view = dataclasses.replace(view, timestamp=timestamps[view.source])
            out.append(view)
            timestamps[view.base_name] = view.timestamp
    return tuple(out)


def ddl_statements(
    schemas: Sequence[TableSchema],
    naming: TableNaming,
    options: DdlOptions = DdlOptions(),
    create_views: bool = True,
) -> list[tuple[str, str]]:
    """(object name, SQL) for every table, then every view, in dependency order."""
    out = [(naming.name(s), create_table_sql(s, naming, options)) for s in schemas]
    if create_views:
        out += [(v.name(naming), create_view_sql(v, naming, options.short_ttl)) for v in views_for(schemas)]
    return out


# ---------------------------------------------------------------------------------------------
# compatibility of pre-existing tables


class SchemaMismatchError(RuntimeError):
    """A pre-existing table does not match the schema this run writes."""


TABLE_COLUMNS_SQL = "SELECT \"column\", type, designated, upsertKey FROM table_columns('{name}')"


def table_columns_sql(name: str) -> str:
    """The metadata query for one (validated) table name."""
    return TABLE_COLUMNS_SQL.format(name=checked_name(name))


def check_table_compatible(schema: TableSchema, name: str, found: Iterable[Sequence], where: str = "") -> None:
    """Compare ``table_columns()`` rows ``(column, type, designated, upsertKey)`` with ``schema``.

    Extra columns are tolerated (ILP leaves them null); a missing column, a different type, a
    different designated timestamp or different DEDUP keys is an error, since re-runs would then
    not be idempotent or rows would be rejected.
    """
    at = f" at {where}" if where else ""
    fix = "drop or rename it, or write under another table suffix"
    rows: Mapping[str, Sequence] = {str(r[0]): r for r in found}
    for col in schema.columns:
        row = rows.get(col.name)
        if row is None:
            raise SchemaMismatchError(
                f"QuestDB table {name}{at} has an incompatible schema: column {col.name} is missing "
                f"(expected {col.kind}); {fix}"
            )
        if str(row[1]).upper() != col.kind:
            raise SchemaMismatchError(
                f"QuestDB table {name}{at} has an incompatible schema: column {col.name} is {row[1]}, "
                f"expected {col.kind}; {fix}"
            )
    designated = [c for c, r in rows.items() if _truthy(r[2])]
    if designated != [schema.timestamp]:
        raise SchemaMismatchError(
            f"QuestDB table {name}{at} has an incompatible schema: designated timestamp is "
            f"{designated[0] if designated else 'none'}, expected {schema.timestamp}; {fix}"
        )
    keys = sorted(c for c, r in rows.items() if _truthy(r[3]))
    if keys != sorted(schema.dedup_keys):
        expected = ", ".join(schema.dedup_keys)
        # a table without keys (as the public scripts create them) only needs them switched on
        remedy = f"run ALTER TABLE {name} DEDUP ENABLE UPSERT KEYS({expected}), or {fix}" if not keys else fix
        raise SchemaMismatchError(
            f"QuestDB table {name}{at} has an incompatible schema: DEDUP UPSERT KEYS are "
            f"({', '.join(keys) or 'none'}), expected ({expected}); {remedy}"
        )


def _truthy(value) -> bool:
    return value is True or str(value).lower() in ("true", "t", "1")

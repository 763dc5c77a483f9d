"""Table schemas and the columnar batches the engines produce.

One description per table serves every consumer: the QuestDB DDL, the Parquet schema and the ILP
encoder all read the same ``TableSchema``; engines fill ``TableBatch`` objects whose columns follow
it exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from mkt_pipeline.core.keyed_random import uuid_strings

# Column kinds, named after the QuestDB types they map to.
TIMESTAMP = "TIMESTAMP"  # int64 microseconds since the epoch
TIMESTAMP_NS = "TIMESTAMP_NS"  # int64 nanoseconds since the epoch
SYMBOL = "SYMBOL"
DOUBLE = "DOUBLE"
LONG = "LONG"
BOOLEAN = "BOOLEAN"
UUID = "UUID"
BOOK = "DOUBLE[][]"  # [2][N]: prices (best first), then volumes

IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9_]{0,64}$")


def validate_identifier(value: str, setting: str) -> str:
    """Reject a suffix/prefix that is not ``[A-Za-z0-9_]``, at most 64 characters.

    A prefix starts every table name, so it must not start with a digit either.
    """
    if not IDENTIFIER_RE.fullmatch(value or ""):
        raise ValueError(
            f"{setting}: {value!r} is not a valid identifier part (only A-Z, a-z, 0-9 and _, at most 64 characters)"
        )
    if setting == "prefix" and value[:1].isdigit():
        raise ValueError(f"{setting}: {value!r} must not start with a digit (table names start with a letter or _)")
    return value


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    capacity: int | None = None  # SYMBOL CAPACITY


@dataclass(frozen=True)
class TableSchema:
    """One table: its base name, columns, designated timestamp and DEDUP UPSERT keys."""

    base_name: str
    columns: tuple[Column, ...]
    timestamp: str
    dedup_keys: tuple[str, ...]
    partition_by: str = "HOUR"

    def name(self, suffix: str = "", prefix: str = "") -> str:
        return f"{prefix}{self.base_name}{suffix}"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def timestamp_kind(self) -> str:
        return self.column(self.timestamp).kind

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind]) for c in self.columns])

    def with_timestamp_column(self, name: str) -> TableSchema:
        """The same table with its designated timestamp column called ``name`` (columns and keys follow)."""
        if name == self.timestamp:
            return self
        rename = {self.timestamp: name}
        return TableSchema(
            self.base_name,
            tuple(Column(rename.get(c.name, c.name), c.kind, c.capacity) for c in self.columns),
            name,
            tuple(rename.get(k, k) for k in self.dedup_keys),
            self.partition_by,
        )


_ARROW_TYPES = {
    TIMESTAMP: pa.timestamp("us", tz="UTC"),
    TIMESTAMP_NS: pa.timestamp("ns", tz="UTC"),
    SYMBOL: pa.dictionary(pa.int32(), pa.string()),
    DOUBLE: pa.float64(),
    LONG: pa.int64(),
    BOOLEAN: pa.bool_(),
    UUID: pa.string(),
    BOOK: pa.list_(pa.list_(pa.float64())),
}

FX_MARKET_DATA = TableSchema(
    "market_data",
    (
        Column("timestamp", TIMESTAMP),
        Column("symbol", SYMBOL, 15000),
        Column("bids", BOOK),
        Column("asks", BOOK),
        Column("best_bid", DOUBLE),
        Column("best_ask", DOUBLE),
    ),
    timestamp="timestamp",
    dedup_keys=("timestamp", "symbol"),
)
FX_CORE_PRICE = TableSchema(
    "core_price",
    (
        Column("timestamp", TIMESTAMP),
        Column("symbol", SYMBOL, 15000),
        Column("ecn", SYMBOL),
        Column("bid_price", DOUBLE),
        Column("bid_volume", LONG),
        Column("ask_price", DOUBLE),
        Column("ask_volume", LONG),
        Column("reason", SYMBOL),
        Column("indicator1", DOUBLE),
        Column("indicator2", DOUBLE),
    ),
    timestamp="timestamp",
    dedup_keys=("timestamp", "symbol"),
)
FX_TRADES = TableSchema(
    "fx_trades",
    (
        Column("timestamp", TIMESTAMP_NS),
        Column("symbol", SYMBOL, 15000),
        Column("ecn", SYMBOL),
        Column("trade_id", UUID),
        Column("side", SYMBOL),
        Column("passive", BOOLEAN),
        Column("price", DOUBLE),
        Column("quantity", DOUBLE),
        Column("counterparty", SYMBOL, 4096),  # the LEI pool (2,000 by default)
        Column("order_id", UUID),
    ),
    timestamp="timestamp",
    dedup_keys=("timestamp", "trade_id"),
)
EQUITIES_MARKET_DATA = TableSchema(
    "equities_market_data",
    (
        Column("timestamp_ns", TIMESTAMP_NS),
        Column("symbol", SYMBOL, 256),
        Column("venue", SYMBOL, 32),
        Column("bids", BOOK),
        Column("asks", BOOK),
    ),
    timestamp="timestamp_ns",
    dedup_keys=("timestamp_ns", "symbol", "venue"),
)
EQUITIES_TRADES = TableSchema(
    "equities_trades",
    (
        Column("timestamp_ns", TIMESTAMP_NS),
        Column("symbol", SYMBOL, 256),
        Column("venue", SYMBOL, 32),
        Column("price", DOUBLE),
        Column("size", LONG),
        Column("side", SYMBOL),
        Column("cond", SYMBOL),
    ),
    timestamp="timestamp_ns",
    dedup_keys=("timestamp_ns", "symbol", "venue"),
)

FX_TABLES = (FX_MARKET_DATA, FX_CORE_PRICE, FX_TRADES)
EQUITIES_TABLES = (EQUITIES_MARKET_DATA, EQUITIES_TRADES)

# The equities designated timestamp: ``timestamp_ns`` as the seed document names it, or
# ``timestamp`` as the public equities script (and its dashboards and demo queries) now does.
EQUITIES_TIMESTAMP_COLUMNS = ("timestamp_ns", "timestamp")


def equities_tables(timestamp_column: str = "timestamp_ns") -> tuple[TableSchema, TableSchema]:
    """(market data, trades) schemas with the designated timestamp named ``timestamp_column``."""
    if timestamp_column not in EQUITIES_TIMESTAMP_COLUMNS:
        raise ValueError(
            f"timestamp_column: {timestamp_column!r} is not one of {', '.join(EQUITIES_TIMESTAMP_COLUMNS)}"
        )
    return tuple(s.with_timestamp_column(timestamp_column) for s in EQUITIES_TABLES)  # type: ignore[return-value]


def market_tables(market: str, timestamp_column: str | None = None) -> tuple[TableSchema, ...]:
    """Every table of ``market`` (equities with its designated timestamp named as configured)."""
    if market == "fx":
        return FX_TABLES
    if market == "equities":
        return equities_tables(timestamp_column or "timestamp_ns")
    raise ValueError(f"unknown market {market!r}")


@dataclass
class SymbolColumn:
    """Dictionary-encoded strings: ``categories[codes[i]]`` is row i."""

    codes: np.ndarray
    categories: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, index: np.ndarray) -> SymbolColumn:
        return SymbolColumn(self.codes[index], self.categories)

    def values(self) -> np.ndarray:
        return np.asarray(self.categories, dtype=object)[self.codes]


@dataclass
class UuidColumn:
    """UUIDs as two uint64 words (big-endian halves of the 128-bit value)."""

    hi: np.ndarray
    lo: np.ndarray

    def __len__(self) -> int:
        return len(self.hi)

    def take(self, index: np.ndarray) -> UuidColumn:
        return UuidColumn(self.hi[index], self.lo[index])

    def strings(self) -> np.ndarray:
        return uuid_strings(self.hi, self.lo)


@dataclass
class BookColumn:
    """Ragged ``[2][depth]`` order-book arrays stored flat.

    Row ``r`` occupies ``values[offsets[r] : offsets[r] + 2 * depth[r]]``: ``depth[r]`` prices (best
    first) followed by ``depth[r]`` volumes. This is both the Parquet ``list<list<double>>`` value
    buffer and the row-major layout of an ILP binary array, so neither consumer copies per row.
    """

    values: np.ndarray
    depth: np.ndarray

    offsets: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.depth = np.asarray(self.depth, dtype=np.int64)
        self.offsets = np.zeros(len(self.depth) + 1, dtype=np.int64)
        np.cumsum(2 * self.depth, out=self.offsets[1:])

    def __len__(self) -> int:
        return len(self.depth)

    @classmethod
    def from_dense(cls, prices: np.ndarray, volumes: np.ndarray, depth: np.ndarray) -> BookColumn:
        """Build from ``(rows, max_depth)`` price and volume matrices, keeping ``depth[r]`` levels."""
        rows, width = prices.shape
        stacked = np.stack((prices, volumes), axis=1)  # (rows, 2, width)
        depth = np.asarray(depth, dtype=np.int64)
        if rows and depth.min() == width:
            return cls(stacked.reshape(-1), depth)
        keep = np.arange(width)[None, None, :] < depth[:, None, None]
        return cls(stacked[np.broadcast_to(keep, stacked.shape)], depth)

    def row(self, r: int) -> np.ndarray:
        """Row ``r`` as a ``(2, depth)`` array (a view)."""
        d = int(self.depth[r])
        return self.values[self.offsets[r] : self.offsets[r] + 2 * d].reshape(2, d)

    def level(self, level: int, volumes: bool = False) -> np.ndarray:
        """Price (or volume) at 0-based ``level`` for every row; NaN where the book is shallower."""
        out = np.full(len(self.depth), np.nan)
        ok = self.depth > level
        pos = self.offsets[:-1][ok] + level + (self.depth[ok] if volumes else 0)
        out[ok] = self.values[pos]
        return out

    def take(self, index: np.ndarray) -> BookColumn:
        depth = self.depth[index]
        starts = self.offsets[:-1][index]
        lengths = 2 * depth
        total = int(lengths.sum())
        within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return BookColumn(self.values[np.repeat(starts, lengths) + within], depth)

    def to_arrow(self) -> pa.Array:
        inner_offsets = np.zeros(2 * len(self.depth) + 1, dtype=np.int32)
        np.cumsum(np.repeat(self.depth, 2), out=inner_offsets[1:])
        inner = pa.ListArray.from_arrays(pa.array(inner_offsets), pa.array(self.values, type=pa.float64()))
        outer_offsets = np.arange(0, 2 * len(self.depth) + 1, 2, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(outer_offsets), inner)


ColumnData = np.ndarray | SymbolColumn | UuidColumn | BookColumn


@dataclass
class TableBatch:
    """Rows of one table, column by column, in the order of ``schema.columns``."""

    schema: TableSchema
    columns: dict[str, ColumnData]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    @property
    def timestamps(self) -> np.ndarray:
        return self.columns[self.schema.timestamp]

    def take(self, index: np.ndarray) -> TableBatch:
        return TableBatch(
            self.schema,
            {name: (col.take(index) if hasattr(col, "take") else col[index]) for name, col in self.columns.items()},
        )

    def to_arrow(self) -> pa.Table:
        arrays = []
        for col in self.schema.columns:
            data = self.columns[col.name]
            if col.kind == TIMESTAMP:
                arrays.append(pa.array(data, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")))
            elif col.kind == TIMESTAMP_NS:
                arrays.append(pa.array(data, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")))
            elif col.kind == SYMBOL:
                arrays.append(
                    pa.DictionaryArray.from_arrays(
                        pa.array(data.codes, type=pa.int32()), pa.array(data.categories, type=pa.string())
                    )
                )
            elif col.kind == UUID:
                arrays.append(pa.array(data.strings(), type=pa.string()))
            elif col.kind == BOOK:
                arrays.append(data.to_arrow())
            else:
                arrays.append(pa.array(data, type=_ARROW_TYPES[col.kind]))
        return pa.Table.from_arrays(arrays, schema=self.schema.arrow_schema())


def concat_batches(batches: list[TableBatch]) -> TableBatch:
    """Concatenate batches of one schema (symbol categories must match)."""
    schema = batches[0].schema
    columns: dict[str, ColumnData] = {}
    for col in schema.columns:
        parts = [b.columns[col.name] for b in batches]
        first = parts[0]
        if isinstance(first, SymbolColumn):
            columns[col.name] = SymbolColumn(np.concatenate([p.codes for p in parts]), first.categories)
        elif isinstance(first, UuidColumn):
            columns[col.name] = UuidColumn(np.concatenate([p.hi for p in parts]), np.concatenate([p.lo for p in parts]))
        elif isinstance(first, BookColumn):
            columns[col.name] = BookColumn(
                np.concatenate([p.values for p in parts]), np.concatenate([p.depth for p in parts])
            )
        else:
            columns[col.name] = np.concatenate(parts)
    return TableBatch(schema, columns)


def book_from_arrow(array: pa.Array | pa.ChunkedArray) -> BookColumn:
    """A ``list<list<double>>`` column (outer length 2) back into a ``BookColumn``."""
    if isinstance(array, pa.ChunkedArray):
        array = (
            pa.concat_arrays(array.chunks) if array.num_chunks else pa.array([], type=pa.list_(pa.list_(pa.float64())))
        )
    inner = array.flatten()
    lengths = pa.compute.list_value_length(inner).to_numpy(zero_copy_only=False)
    return BookColumn(inner.flatten().to_numpy(zero_copy_only=False).astype(np.float64), lengths[0::2])

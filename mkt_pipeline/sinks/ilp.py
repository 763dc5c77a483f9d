"""Columnar batches to ILP: size-bounded row slices, encoded through the ``questdb`` client buffer.

The client's DataFrame path serialises whole columns in native code, so a batch is handed over as a
pandas frame built without copying numeric columns: timestamps become ``datetime64[us]`` or
``datetime64[ns]`` views (the client then sends the designated timestamp with the ``t`` or ``n``
suffix, matching the column's precision), symbols become categoricals, UUIDs their 36-character
strings, and books object columns of ``(2, depth)`` float64 views into ``BookColumn.values``.

A batch is cut into slices whose estimated encoded size stays under a byte budget, because the
client refuses a buffer above its ``max_buf_size`` (100 MiB by default) and a failed flush drops the
buffer: at ~1.4 KB per 40-level market_data row, a row-count budget such as the client's 75,000
default overflows it (docs/questdb.md#flushing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mkt_pipeline.core.keyed_random import uuid_strings
from mkt_pipeline.core.tables import (
    BOOK,
    BOOLEAN,
    DOUBLE,
    LONG,
    SYMBOL,
    TIMESTAMP,
    TIMESTAMP_NS,
    UUID,
    BookColumn,
    TableBatch,
)

if TYPE_CHECKING:
    import pandas as pd

# Upper bounds of the encoded size of one field, beyond its ``,name=`` prefix.
_FIELD_BYTES = {
    DOUBLE: 10,  # '=' 0x10 + 8 bytes (protocol v2 binary double)
    LONG: 21,  # up to 20 digits and 'i'
    BOOLEAN: 1,
    UUID: 38,  # quoted 36-character string
}
_TIMESTAMP_BYTES = 23  # ' ' + up to 20 digits + unit suffix + '\n'
_ARRAY_HEADER = 12  # '=' + type, element type, ndims, two uint32 dims


def row_size_estimate(batch: TableBatch, table_name: str) -> np.ndarray:
    """Upper bound of each row's ILP size in bytes (int64 array)."""
    n = len(batch)
    sizes = np.full(n, len(table_name) + _TIMESTAMP_BYTES, dtype=np.int64)
    for col in batch.schema.columns:
        if col.name == batch.schema.timestamp:
            continue
        data = batch.columns[col.name]
        prefix = len(col.name) + 2  # ',' or ' ' then 'name='
        if col.kind == SYMBOL:
            # escaping can at most double a symbol's length
            lengths = np.array([2 * len(c.encode()) for c in data.categories], dtype=np.int64)
            sizes += prefix + (lengths[data.codes] if len(lengths) else 0)
        elif col.kind == BOOK:
            sizes += prefix + _ARRAY_HEADER + 16 * data.depth
        else:
            sizes += prefix + _FIELD_BYTES[col.kind]
    return sizes


def slices(sizes: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive row ranges whose summed ``sizes`` stay within ``budget`` (at least one row each)."""
    n = len(sizes)
    if n == 0:
        return []
    cum = np.cumsum(sizes)
    out, lo, base = [], 0, 0
    while lo < n:
        hi = int(np.searchsorted(cum, base + budget, side="right"))
        hi = min(n, max(hi, lo + 1))
        out.append((lo, hi))
        base = int(cum[hi - 1])
        lo = hi
    return out


def _book_objects(book: BookColumn, lo: int, hi: int) -> np.ndarray:
    """One ``(2, depth)`` view per row into the batch's own values (what the client reads)."""
    depth = book.depth[lo:hi]
    out = np.empty(hi - lo, dtype=object)
    if len(depth) and depth.min() == depth.max():
        d = int(depth[0])
        out[:] = list(book.values[book.offsets[lo] : book.offsets[hi]].reshape(hi - lo, 2, d))
        return out
    starts = book.offsets[lo:hi].tolist()
    values = book.values
    out[:] = [values[s : s + 2 * d].reshape(2, d) for s, d in zip(starts, depth.tolist())]
    return out


class BookStaging:
    """Reusable per-row views for one book column, so encoding a batch creates no array objects.

    The client reads a book from a numpy array per row; making those views costs ~0.15 µs a row,
    as much as the client's own encoding of a 3-level row. Here the views are made once, over a
    staging block that each slice's values are copied into (one memcpy), and a slice's column is
    a slice of the ready-made object array. The column is valid until the next ``column`` call.
    """

    def __init__(self) -> None:
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # depth -> (values, views)

    def _block(self, depth: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        block = self._blocks.get(depth)
        if block is None or len(block[0]) < rows:
            values = np.empty((max(rows, 2 * len(block[0]) if block else 0), 2, depth))
            views = np.empty(len(values), dtype=object)
            views[:] = list(values)
            block = self._blocks[depth] = (values, views)
        return block

    def column(self, book: BookColumn, lo: int, hi: int) -> np.ndarray:
        depth = book.depth[lo:hi]
        n = hi - lo
        if n and depth.min() == depth.max():
            d = int(depth[0])
            values, views = self._block(d, n)
            values[:n] = book.values[book.offsets[lo] : book.offsets[hi]].reshape(n, 2, d)
            return views[:n]
        out = np.empty(n, dtype=object)
        for d in np.unique(depth).tolist():
            rows = np.flatnonzero(depth == d)
            values, views = self._block(d, len(rows))
            values[: len(rows)] = book.take(lo + rows).values.reshape(len(rows), 2, d)
            out[rows] = views[: len(rows)]
        return out


class Encoder:
    """Appends batch rows to a client ``Buffer``, reusing book views between calls (one per sink)."""

    def __init__(self) -> None:
        self._staging: dict[str, BookStaging] = {}

    def encode(self, buffer, table_name: str, batch: TableBatch, lo: int, hi: int) -> None:
        """Append rows ``[lo, hi)`` of ``batch`` to ``buffer``."""

        def book(name: str, column: BookColumn) -> np.ndarray:
            return self._staging.setdefault(name, BookStaging()).column(column, lo, hi)

        encode(buffer, table_name, batch, lo, hi, book)


def frame(batch: TableBatch, lo: int, hi: int, book=None) -> pd.DataFrame:
    """Rows ``[lo, hi)`` of a batch as a DataFrame shaped for ``Buffer.dataframe``.

    ``book(name, column)`` gives a book column's per-row arrays; by default, fresh views.
    """
    import pandas as pd  # here, not at import: a run over QWP never needs pandas (~0.3 s to import)

    cols = {}
    for col in batch.schema.columns:
        data = batch.columns[col.name]
        if col.kind == TIMESTAMP:
            cols[col.name] = np.asarray(data[lo:hi], dtype=np.int64).view("datetime64[us]")
        elif col.kind == TIMESTAMP_NS:
            cols[col.name] = np.asarray(data[lo:hi], dtype=np.int64).view("datetime64[ns]")
        elif col.kind == SYMBOL:
            cols[col.name] = pd.Categorical.from_codes(data.codes[lo:hi], categories=list(data.categories))
        elif col.kind == UUID:
            cols[col.name] = pd.Series(uuid_strings(data.hi[lo:hi], data.lo[lo:hi]), dtype=object, copy=False)
        elif col.kind == BOOK:
            objects = book(col.name, data) if book is not None else _book_objects(data, lo, hi)
            cols[col.name] = pd.Series(objects, dtype=object, copy=False)
        else:
            cols[col.name] = data[lo:hi]
    return pd.DataFrame(cols, copy=False)


def symbol_columns(batch: TableBatch) -> list[str]:
    return [c.name for c in batch.schema.columns if c.kind == SYMBOL]


def encode(buffer, table_name: str, batch: TableBatch, lo: int, hi: int, book=None) -> None:
    """Append rows ``[lo, hi)`` of ``batch`` to a ``questdb`` client ``Buffer`` (``book`` as in ``frame``)."""
    buffer.dataframe(
        frame(batch, lo, hi, book), table_name=table_name, symbols=symbol_columns(batch), at=batch.schema.timestamp
    )

"""Columnar batches to QWP: Arrow tables the ``questdb`` client sends without touching Python objects.

QWP (QuestDB's binary columnar protocol over WebSocket, servers 9.4+) takes Arrow columns as they
are, so a batch slice becomes an Arrow table whose buffers are views of, or one copy of, the
batch's numpy arrays: timestamps as ``timestamp[us]``/``timestamp[ns]`` (the column's precision),
symbols as dictionaries, UUIDs as the ``arrow.uuid`` type (16 big-endian bytes), books as
``list<list<double>>`` over the batch's own values. Object columns (per-row arrays, UUID strings)
would cost the client ~70 µs a book row; this path costs well under a microsecond.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mkt_pipeline.core.tables import BOOK, SYMBOL, TIMESTAMP, TIMESTAMP_NS, UUID, BookColumn, TableBatch, UuidColumn

_TIMESTAMP_TYPES = {TIMESTAMP: pa.timestamp("us"), TIMESTAMP_NS: pa.timestamp("ns")}


def _book(book: BookColumn, lo: int, hi: int) -> pa.Array:
    """Rows ``[lo, hi)`` as ``list<list<double>>``: per row two lists (prices, volumes) of its depth."""
    n = hi - lo
    base = int(book.offsets[lo])
    starts = np.asarray(book.offsets[lo:hi], dtype=np.int64) - base
    depth = np.asarray(book.depth[lo:hi], dtype=np.int64)
    inner = np.empty(2 * n + 1, dtype=np.int32)
    inner[0:-1:2] = starts
    inner[1:-1:2] = starts + depth
    inner[-1] = int(book.offsets[hi]) - base
    values = pa.array(book.values[base : base + int(inner[-1])], type=pa.float64())
    inner_lists = pa.ListArray.from_arrays(pa.array(inner), values)
    outer = pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32))
    return pa.ListArray.from_arrays(outer, inner_lists)


def _uuid(column: UuidColumn, lo: int, hi: int) -> pa.Array:
    n = hi - lo
    raw = np.empty((n, 2), dtype=">u8")  # RFC 4122 byte order: the high 64 bits first, big-endian
    raw[:, 0] = column.hi[lo:hi]
    raw[:, 1] = column.lo[lo:hi]
    storage = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw.tobytes())])
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def table(batch: TableBatch, lo: int, hi: int) -> pa.Table:
    """Rows ``[lo, hi)`` of ``batch`` as an Arrow table shaped for ``QuestDB.dataframe``."""
    arrays, names = [], []
    for col in batch.schema.columns:
        data = batch.columns[col.name]
        if col.kind in _TIMESTAMP_TYPES:
            arr = pa.array(np.asarray(data[lo:hi], dtype=np.int64)).view(_TIMESTAMP_TYPES[col.kind])
        elif col.kind == SYMBOL:
            codes = pa.array(np.asarray(data.codes[lo:hi], dtype=np.int32))
            arr = pa.DictionaryArray.from_arrays(codes, pa.array(list(data.categories), type=pa.string()))
        elif col.kind == UUID:
            arr = _uuid(data, lo, hi)
        elif col.kind == BOOK:
            arr = _book(data, lo, hi)
        else:
            arr = pa.array(data[lo:hi])
        arrays.append(arr)
        names.append(col.name)
    return pa.Table.from_arrays(arrays, names=names)


def symbol_columns(batch: TableBatch) -> list[str]:
    return [c.name for c in batch.schema.columns if c.kind == SYMBOL]

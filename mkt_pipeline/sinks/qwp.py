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

from mkt_pipeline.core.tables import (
    BOOK,
    BOOLEAN,
    SYMBOL,
    TIMESTAMP,
    TIMESTAMP_NS,
    UUID,
    BookColumn,
    TableBatch,
    UuidColumn,
)

_TIMESTAMP_TYPES = {TIMESTAMP: pa.timestamp("us"), TIMESTAMP_NS: pa.timestamp("ns")}
_NUMPY_TYPES = {np.dtype(np.float64): pa.float64(), np.dtype(np.int64): pa.int64(), np.dtype(np.int32): pa.int32()}

# Arrays are made from their buffers, never with ``pa.array``: its first call imports pandas (about
# 0.3 s of start-up on a quiet machine, several seconds on a busy one), which a QWP run never needs.


def _primitive(values: np.ndarray, type_: pa.DataType | None = None) -> pa.Array:
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type_ or _NUMPY_TYPES[values.dtype], len(values), [None, pa.py_buffer(values)])


def _booleans(values: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(
        pa.bool_(), len(values), [None, pa.py_buffer(np.packbits(values.astype(bool), bitorder="little"))]
    )


def _strings(texts) -> pa.Array:
    encoded = [t.encode() for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


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
    values = _primitive(np.asarray(book.values[base : base + int(inner[-1])], dtype=np.float64))
    inner_lists = pa.ListArray.from_arrays(_primitive(inner), values)
    return pa.ListArray.from_arrays(_primitive(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), inner_lists)


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
            arr = _primitive(np.asarray(data[lo:hi], dtype=np.int64), _TIMESTAMP_TYPES[col.kind])
        elif col.kind == SYMBOL:
            codes = _primitive(np.asarray(data.codes[lo:hi], dtype=np.int32))
            arr = pa.DictionaryArray.from_arrays(codes, _strings(data.categories))
        elif col.kind == UUID:
            arr = _uuid(data, lo, hi)
        elif col.kind == BOOK:
            arr = _book(data, lo, hi)
        elif col.kind == BOOLEAN:
            arr = _booleans(np.asarray(data[lo:hi]))
        else:
            arr = _primitive(np.asarray(data[lo:hi]))
        arrays.append(arr)
        names.append(col.name)
    return pa.Table.from_arrays(arrays, names=names)


def symbol_columns(batch: TableBatch) -> list[str]:
    return [c.name for c in batch.schema.columns if c.kind == SYMBOL]

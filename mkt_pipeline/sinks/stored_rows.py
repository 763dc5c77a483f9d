"""Read back what a sink stored, in bounded slices, so asset checks work on either sink.

Both readers answer the same two questions: how many rows of a table lie in a window, and the rows
of a (short) window restricted to a few columns. Book columns are never read whole by callers:
they ask for the top-of-book fields in ``TOP_OF_BOOK`` (QuestDB computes them server side; the
Parquet reader extracts them and drops the arrays).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mkt_pipeline.core.secrets import first_line
from mkt_pipeline.core.tables import SYMBOL, TIMESTAMP, TIMESTAMP_NS, TableSchema
from mkt_pipeline.core.timeline import NS_PER_US, Window, datetime_to_us, format_us
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.stall import StallError, StallWatch, shutdown_fd

# derived column -> (book column, row of the [2][N] array: 0 prices / 1 volumes, level from 1);
# levels 1-3 of each side, NaN where a book is shallower
TOP_OF_BOOK = {
    f"{side}_{kind}{level}": (f"{side}s", row, level)
    for level in (1, 2, 3)
    for side in ("bid", "ask")
    for kind, row in (("px", 0), ("sz", 1))
}


def _ts_type(schema: TableSchema) -> pa.DataType:
    return pa.timestamp("ns" if schema.timestamp_kind == TIMESTAMP_NS else "us", tz="UTC")


def _window_ns(window: Window) -> tuple[int, int]:
    return window.start_us * NS_PER_US, window.end_us * NS_PER_US


class ParquetRows:
    """Counts and slices of the Parquet dataset, reading only the row groups a window touches."""

    def __init__(self, sink: ParquetSink):
        self.sink = sink
        self._metadata: dict[Path, tuple[tuple[int, int], pq.FileMetaData]] = {}

    def _meta(self, path: Path) -> pq.FileMetaData:
        # Only the footers are kept: an open reader holds on to ~150 MB of buffers for an hour of
        # default-rate books, which over a day of parts added up to gigabytes. A part re-written
        # since (same name, new file) is read afresh.
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._metadata.get(path)
        if cached is None or cached[0] != stamp:
            cached = self._metadata[path] = (stamp, pq.read_metadata(path))
        return cached[1]

    def _overlapping(self, schema: TableSchema, window: Window):
        for a, b, path in self.sink.parts(schema):
            if a < window.end_us and b > window.start_us:
                yield a, b, path

    def count(self, schema: TableSchema, window: Window) -> int:
        total = 0
        for a, b, path in self._overlapping(schema, window):
            if window.start_us <= a and b <= window.end_us:
                total += self._meta(path).num_rows  # the part lies inside: no need to read it
            else:
                total += self._read_part(path, schema, window, [schema.timestamp]).num_rows
        return total

    def extent(self, schema: TableSchema) -> tuple[int, int] | None:
        """[start_us, end_us) of the time the dataset holds for a table (its parts' span), or None."""
        parts = self.sink.parts(schema)
        return (parts[0][0], max(b for _, b, _ in parts)) if parts else None

    def count_distinct(self, schema: TableSchema, column: str, window: Window) -> int:
        values: set = set()
        for _, _, path in self._overlapping(schema, window):
            values.update(self._read_part(path, schema, window, [schema.timestamp, column]).column(column).to_pylist())
        return len(values)

    def read(self, schema: TableSchema, window: Window, columns: Sequence[str]) -> pa.Table:
        base = list(dict.fromkeys([schema.timestamp] + [TOP_OF_BOOK.get(c, (c,))[0] for c in columns]))
        pieces = [self._read_part(path, schema, window, base) for _, _, path in self._overlapping(schema, window)]
        table = pa.concat_tables(pieces) if pieces else schema.arrow_schema().empty_table().select(base)
        return _project(table, columns, schema)

    def _read_part(self, path: Path, schema: TableSchema, window: Window, columns: list[str]) -> pa.Table:
        """Rows of one part inside ``window``, reading only row groups whose time range meets it."""
        lo, hi = _window_ns(window)
        meta = self._meta(path)
        leaves = [meta.schema.column(i).path for i in range(meta.num_columns)]  # statistics are per leaf column
        if schema.timestamp not in leaves:
            found = ", ".join(meta.schema.to_arrow_schema().names)
            raise ValueError(
                f"{path}: no column {schema.timestamp} (found {found}); was it written with another timestamp_column?"
            )
        ts_index = leaves.index(schema.timestamp)
        groups = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(ts_index).statistics
            if stats is None or not stats.has_min_max or (_stat_ns(stats.min) < hi and _stat_ns(stats.max) >= lo):
                groups.append(g)
        if groups:
            with pq.ParquetFile(path, metadata=meta) as pf:
                table = pf.read_row_groups(groups, columns=columns)
        else:
            table = schema.arrow_schema().empty_table().select(columns)
        ts = table.column(schema.timestamp).cast(pa.int64()).to_numpy()
        if schema.timestamp_kind == TIMESTAMP:
            ts = ts * NS_PER_US
        inside = np.flatnonzero((ts >= lo) & (ts < hi))
        if len(inside) == 0 or inside[-1] - inside[0] + 1 == len(inside):
            # one run of rows (parts are written in time order): a zero-copy slice instead of a
            # filter, which would copy every nested book list
            return table.slice(int(inside[0]) if len(inside) else 0, len(inside))
        return table.filter(pa.array((ts >= lo) & (ts < hi), pa.bool_()))


def _stat_ns(value) -> int:
    """A Parquet timestamp statistic (pandas Timestamp for ns columns, datetime for µs) in ns."""
    if hasattr(value, "value"):
        return int(value.value)
    if isinstance(value, int):
        return value
    return datetime_to_us(value) * NS_PER_US


class _BookSide:
    """One row (prices or volumes) of every ``[2][N]`` book of a column, located once for any level.

    Reads the nested lists' offsets in place, chunk by chunk: extracting the row with Arrow
    (``list_element``, ``combine_chunks``) would copy every book first.
    """

    def __init__(self, column: pa.ChunkedArray | pa.Array, row: int):
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        self.parts = []
        for chunk in chunks:
            if not len(chunk):
                continue
            inner = chunk.values  # one list per book and row, absolute positions from the offsets
            inner_offsets = inner.offsets.to_numpy()
            outer = chunk.offsets.to_numpy()
            has_row = np.diff(outer) > row  # a null book (or one without this row) has no levels
            lists = np.where(has_row, outer[:-1] + row, 0)
            starts = inner_offsets[lists]
            depth = (
                np.where(has_row, inner_offsets[lists + 1] - starts, 0)
                if len(inner)
                else np.zeros(len(chunk), np.int64)
            )
            self.parts.append((inner.values.to_numpy(zero_copy_only=False), starts, depth))

    def level(self, level: int) -> pa.Array:
        """``[level]`` (1-based) of every book; NaN beyond a book's depth."""
        out = []
        for values, starts, depth in self.parts:
            deep = depth >= level
            if deep.all():
                out.append(values[starts + level - 1])
                continue
            part = np.full(len(depth), np.nan)
            part[deep] = values[starts[deep] + level - 1]
            out.append(part)
        return pa.array(np.concatenate(out) if out else np.empty(0), pa.float64())


def _project(table: pa.Table, columns: Sequence[str], schema: TableSchema) -> pa.Table:
    """Requested columns (timestamp first), with top-of-book fields taken from the book arrays."""
    out = {schema.timestamp: table.column(schema.timestamp)}
    sides: dict[tuple[str, int], _BookSide] = {}  # a side serves all its levels (FX facts ask for three)
    for name in columns:
        if name in TOP_OF_BOOK:
            book, row, level = TOP_OF_BOOK[name]
            if (book, row) not in sides:
                sides[book, row] = _BookSide(table.column(book), row)
            out[name] = sides[book, row].level(level)
        else:
            out[name] = table.column(name)
    return pa.table(out)


class QuestDBRows:
    """Counts and slices over PG wire; top-of-book fields are computed by QuestDB (1-based arrays)."""

    def __init__(
        self,
        connection: Any,
        naming: TableNaming,
        scrub: Callable[[str], str] = str,
        where: str = "",
        stall_timeout_s: float | None = None,
    ):
        self.conn = connection
        self.naming = naming
        self.scrub = scrub
        self.where = where
        # a server that stops answering fails a query after the stall timeout instead of hanging (see ``stall``)
        self.stall = StallWatch(stall_timeout_s) if stall_timeout_s else None

    def query(self, sql: str, table: str) -> tuple[list[str], list[tuple]]:
        """(column names, rows) of ``sql``; an error names the server, the table and the cause."""
        return self._query(sql, table)

    def table_name(self, schema: TableSchema) -> str:
        """The stored (validated) name of a table."""
        return self._name(schema)

    def time_filter(self, schema: TableSchema, window: Window) -> str:
        """SQL condition selecting ``window`` on the designated timestamp (literals from integers only)."""
        return self._where(schema, window)

    def column_expression(self, schema: TableSchema, column: str) -> str:
        """SQL for a column, or for a top-of-book field taken from the book arrays (1-based)."""
        if column in TOP_OF_BOOK:
            book, row, level = TOP_OF_BOOK[column]
            return f"{book}[{row + 1}][{level}]"
        schema.column(column)  # KeyError for anything that is not a column of the table
        return column

    def _query(self, sql: str, table: str) -> tuple[list[str], list[tuple]]:
        try:
            with self._watched(table):
                cur = self.conn.execute(sql)
                return [d[0] for d in (cur.description or [])], list(cur.fetchall())
        except StallError as exc:
            raise RuntimeError(self.scrub(str(exc))) from None
        except Exception as exc:
            cause = first_line(exc)
            raise RuntimeError(self.scrub(f"QuestDB at {self.where} ({table}): {cause}")) from None

    def _watched(self, table: str):
        if self.stall is None:
            return nullcontext()
        conn = self.conn
        # a PG-wire connection's socket can be shut to break the wait; a QWP reader ends by the client's own timeout
        breaker = (lambda: shutdown_fd(conn.fileno())) if hasattr(conn, "fileno") else (lambda: None)
        return self.stall.call(f"table {table}", self.where, breaker)

    def _name(self, schema: TableSchema) -> str:
        from mkt_pipeline.sinks.ddl import checked_name

        return checked_name(self.naming.name(schema))

    @staticmethod
    def _where(schema: TableSchema, window: Window) -> str:
        # literals come from integers only, never from user text
        return f"{schema.timestamp} >= '{format_us(window.start_us)}' AND {schema.timestamp} < '{format_us(window.end_us)}'"

    def count(self, schema: TableSchema, window: Window) -> int:
        name = self._name(schema)
        _, rows = self._query(f"SELECT count() FROM {name} WHERE {self._where(schema, window)}", name)
        return int(rows[0][0]) if rows else 0

    def extent(self, schema: TableSchema) -> tuple[int, int] | None:
        """[first row's µs, last row's µs + 1) of a table, or None when it holds no rows."""
        name = self._name(schema)
        _, rows = self._query(
            f"SELECT cast(min({schema.timestamp}) AS long), cast(max({schema.timestamp}) AS long) FROM {name}", name
        )
        if not rows or rows[0][0] is None:
            return None
        per_us = NS_PER_US if schema.timestamp_kind == TIMESTAMP_NS else 1
        return int(rows[0][0]) // per_us, int(rows[0][1]) // per_us + 1

    def count_distinct(self, schema: TableSchema, column: str, window: Window) -> int:
        schema.column(column)  # KeyError for anything that is not a column of the table
        name = self._name(schema)
        _, rows = self._query(f"SELECT count_distinct({column}) FROM {name} WHERE {self._where(schema, window)}", name)
        return int(rows[0][0] or 0) if rows else 0

    def select_sql(self, schema: TableSchema, window: Window, columns: Sequence[str]) -> str:
        exprs = [f"cast({schema.timestamp} AS long) {schema.timestamp}"]
        for c in columns:
            if c in TOP_OF_BOOK:
                book, row, level = TOP_OF_BOOK[c]
                exprs.append(f"{book}[{row + 1}][{level}] {c}")
            else:
                schema.column(c)
                exprs.append(c)
        name = self._name(schema)
        return f"SELECT {', '.join(exprs)} FROM {name} WHERE {self._where(schema, window)} ORDER BY {schema.timestamp}"

    def read(self, schema: TableSchema, window: Window, columns: Sequence[str]) -> pa.Table:
        if hasattr(self.conn, "arrow"):  # QWP answers in columns: no rows built in Python
            return self._read_arrow(schema, window, columns)
        names, rows = self._query(self.select_sql(schema, window, columns), self._name(schema))
        data = list(zip(*rows)) if rows else [[] for _ in names]
        out = {}
        for name, values in zip(names, data):
            if name == schema.timestamp:
                out[name] = pa.array(values, pa.int64()).cast(_ts_type(schema))
            elif name in TOP_OF_BOOK:
                out[name] = pa.array(values, pa.float64())
            else:
                kind = schema.column(name).kind
                out[name] = (
                    pa.array([None if v is None else str(v) for v in values], pa.string())
                    if kind in (SYMBOL, "UUID")
                    else pa.array(values)
                )
        return pa.table(out)

    def _read_arrow(self, schema: TableSchema, window: Window, columns: Sequence[str]) -> pa.Table:
        """``read`` over a connection answering Arrow: the same table the row path builds."""
        sql = self.select_sql(schema, window, columns)
        try:
            table = self.conn.arrow(sql)
        except Exception as exc:
            raise RuntimeError(
                self.scrub(f"QuestDB at {self.where} ({self._name(schema)}): {first_line(exc)}")
            ) from None
        out = {}
        for name, column in zip(table.column_names, table.columns):
            if name == schema.timestamp:
                out[name] = column.cast(pa.int64()).cast(_ts_type(schema))
            elif name in TOP_OF_BOOK:
                out[name] = column.cast(pa.float64())
            elif schema.column(name).kind == SYMBOL:
                out[name] = column.cast(pa.string())
            elif schema.column(name).kind == "UUID":
                out[name] = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
            else:
                out[name] = column
        return pa.table({k: (v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v) for k, v in out.items()})

    def wait_applied(self, schemas: Iterable[TableSchema], timeout_s: float = 60.0) -> int:
        """Wait until QuestDB has applied the WAL transactions committed to the tables so far (not
        those committed meanwhile); how many were left unapplied at the timeout (0 when done)."""
        from mkt_pipeline.sinks.wal_monitor import WAL_TABLES_SQL, WalMonitor, statuses_from_rows

        def fetch(tables):
            return statuses_from_rows(self._query(WAL_TABLES_SQL, ", ".join(tables))[1], tables)

        return WalMonitor(fetch, poll_interval_s=0.5).wait_applied([self._name(s) for s in schemas], timeout_s)


def time_slices(window: Window, rows_in_window: int, target_rows: int) -> list[Window]:
    """Cut ``window`` in whole-second slices holding about ``target_rows`` rows each."""
    seconds = max(1, window.seconds)
    per_slice = max(1, int(seconds * target_rows / max(rows_in_window, 1)))
    return list(window.split(min(per_slice, seconds)))

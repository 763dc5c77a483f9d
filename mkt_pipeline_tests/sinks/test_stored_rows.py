"""The Parquet reader behind the checks and the facts: windows cut through parts and row groups,
top-of-book fields taken from ragged books."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from mkt_pipeline.core.tables import FX_MARKET_DATA
from mkt_pipeline.core.timeline import NS_PER_US, Window
from mkt_pipeline.fx.engine import FxEngine
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.stored_rows import TOP_OF_BOOK, ParquetRows, _project
from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

WINDOW = Window.from_iso("2025-11-11T02:59:50Z", "2025-11-11T03:00:20Z")
RAGGED = dataclasses.replace(LIGHT_FX, min_levels=1, max_levels=4)


def test_slices_and_top_of_book_match_the_stored_rows(tmp_path):
    sink = ParquetSink(tmp_path)
    engine = FxEngine(RAGGED, fx_references(WINDOW))
    sink.prepare(engine.schemas)
    run_window(engine, sink, WINDOW, chunk_seconds=7)  # several parts per hour, two hours
    stored = sink.read(FX_MARKET_DATA)
    ts_ns = stored.column("timestamp").cast(pa.int64()).to_numpy() * NS_PER_US
    bids, asks = stored.column("bids").to_pylist(), stored.column("asks").to_pylist()
    assert {len(b[0]) for b in bids} == {1, 2, 3, 4}  # ragged books: levels past the depth are NaN

    rows = ParquetRows(sink)
    columns = sorted(TOP_OF_BOOK)
    # windows meeting part edges, cutting parts and row groups in the middle, and empty ones
    for start, end in [
        ("02:59:50", "03:00:20"),
        ("02:59:53.25", "03:00:01.5"),
        ("03:00:07", "03:00:07.000001"),
        ("03:00:30", "03:00:40"),
    ]:
        window = Window.from_iso(f"2025-11-11T{start}Z", f"2025-11-11T{end}Z")
        got = rows.read(FX_MARKET_DATA, window, columns)
        inside = np.flatnonzero((ts_ns >= window.start_us * NS_PER_US) & (ts_ns < window.end_us * NS_PER_US))
        assert got.num_rows == len(inside) == rows.count(FX_MARKET_DATA, window)
        assert got.column("timestamp").equals(stored.column("timestamp").take(inside))
        for name in columns:
            book, row, level = TOP_OF_BOOK[name]
            books = bids if book == "bids" else asks
            want = [books[i][row][level - 1] if len(books[i][row]) >= level else np.nan for i in inside]
            np.testing.assert_array_equal(
                got.column(name).to_numpy(), np.array(want, dtype=np.float64), err_msg=f"{name} in {window}"
            )


def test_book_levels_of_sliced_chunks_null_and_short_books():
    books = pa.array(
        [[[1.0, 2.0], [10.0, 20.0]], None, [[3.0], [30.0]], [[4.0, 5.0, 6.0]], [[], []], [[7.0], [70.0]]],
        pa.list_(pa.list_(pa.float64())),
    )
    column = pa.chunked_array([books.slice(0, 2), books.slice(2, 3), books.slice(5, 1)])  # chunks that start mid-array
    table = _project(
        pa.table({"timestamp": pa.array(range(6), pa.int64()), "bids": column}),
        sorted(c for c in TOP_OF_BOOK if c.startswith("bid")),
        FX_MARKET_DATA,
    )
    nan = np.nan
    expected = {
        "bid_px1": [1, nan, 3, 4, nan, 7],
        "bid_px2": [2, nan, nan, 5, nan, nan],
        "bid_px3": [nan, nan, nan, 6, nan, nan],
        "bid_sz1": [10, nan, 30, nan, nan, 70],
        "bid_sz2": [20, nan, nan, nan, nan, nan],
        "bid_sz3": [nan] * 6,  # row 3 has no volumes
    }
    for name, want in expected.items():
        np.testing.assert_array_equal(table.column(name).to_numpy(), np.array(want, dtype=np.float64), err_msg=name)


def test_a_part_rewritten_under_the_same_name_is_read_afresh(tmp_path):
    sink = ParquetSink(tmp_path)
    window = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:04Z")
    engine = FxEngine(RAGGED, fx_references(window))
    sink.prepare(engine.schemas)
    run_window(engine, sink, window, chunk_seconds=4)
    rows = ParquetRows(sink)
    before = rows.read(FX_MARKET_DATA, window, ["bid_px1"]).num_rows
    # the same window again with other rates: the part keeps its name, its footer changes
    engine = FxEngine(
        dataclasses.replace(RAGGED, market_data_min_eps=300, market_data_max_eps=400), fx_references(window)
    )
    run_window(engine, sink, window, chunk_seconds=4)
    after = rows.read(FX_MARKET_DATA, window, ["bid_px1"])
    assert after.num_rows == sink.read(FX_MARKET_DATA).num_rows == rows.count(FX_MARKET_DATA, window) > before

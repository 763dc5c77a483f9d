"""The embedded Parquet dataset: layout, types, idempotent re-writes, windows that add up."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.fx.engine import FxEngine
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

WINDOW = Window.from_iso("2025-11-11T02:59:00Z", "2025-11-11T03:01:00Z")


def write(root, window, chunk_seconds=900, suffix="_t"):
    sink = ParquetSink(root, TableNaming(suffix=suffix))
    engine = FxEngine(LIGHT_FX, fx_references(window))
    sink.prepare(engine.schemas)
    return sink, run_window(engine, sink, window, chunk_seconds=chunk_seconds)


def snapshot(sink: ParquetSink) -> dict[str, pa.Table]:
    return {t.base_name: sink.read(t) for t in FX_TABLES}


def test_layout_and_column_types(tmp_path):
    sink, result = write(tmp_path, WINDOW)
    hours = sorted(p.name for p in (tmp_path / "market_data_t").iterdir())
    assert hours == ["hour=2025-11-11T02", "hour=2025-11-11T03"]
    files = list((tmp_path / "fx_trades_t" / "hour=2025-11-11T03").glob("part-*.parquet"))
    assert len(files) == 1
    schema = pq.read_schema(files[0])
    assert schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("trade_id").type == pa.string() and pa.types.is_dictionary(schema.field("symbol").type)
    md_schema = pq.read_schema(next((tmp_path / "market_data_t" / "hour=2025-11-11T03").glob("part-*.parquet")))
    assert md_schema.field("bids").type == pa.list_(pa.list_(pa.float64()))
    assert md_schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    row = sink.read(FX_TABLES[0]).slice(0, 1).to_pylist()[0]
    assert len(row["bids"]) == 2 and len(row["bids"][0]) == 10 and row["bids"][0][0] == row["best_bid"]
    assert result.stats.rows["market_data_t"] == sink.read(FX_TABLES[0]).num_rows > 0
    assert len(pa.compute.unique(sink.read(FX_TABLES[2]).column("trade_id").cast(pa.string()))[0].as_py()) == 36


def test_rewrite_is_idempotent_and_windows_add_up(tmp_path):
    whole_sink, _ = write(tmp_path / "whole", WINDOW)
    whole = snapshot(whole_sink)
    split_sink, _ = write(tmp_path / "split", WINDOW, chunk_seconds=17)  # many chunks meeting at boundaries
    assert snapshot(split_sink) == whole
    # write again, and write a straddling window over part of it: nothing is duplicated or lost
    write(tmp_path / "split", WINDOW)
    write(tmp_path / "split", Window.from_iso("2025-11-11T02:59:30.5Z", "2025-11-11T03:00:10Z"))
    assert snapshot(split_sink) == whole
    # an inner window replaced inside an existing part keeps the rows on both sides
    write(tmp_path / "split", Window.from_iso("2025-11-11T03:00:20Z", "2025-11-11T03:00:21Z"))
    assert snapshot(split_sink) == whole


def test_failed_window_publishes_nothing(tmp_path):
    sink = ParquetSink(tmp_path)
    engine = FxEngine(LIGHT_FX, fx_references(WINDOW))
    sink.prepare(engine.schemas)
    with pytest.raises(RuntimeError):
        with sink.window(WINDOW) as writer:
            for batches in engine.generate(WINDOW):
                writer.write(batches[0])
                raise RuntimeError("generation failed")
    assert sink.parts(FX_TABLES[0]) == []
    assert not list(tmp_path.rglob("*.tmp"))


def test_latest_timestamp(tmp_path):
    sink, _ = write(tmp_path, WINDOW, suffix="")
    latest = sink.latest_timestamp_us(FX_TABLES[0])
    assert WINDOW.end_us - 1_000_000 < latest < WINDOW.end_us
    assert sink.latest_timestamp_us(FX_TABLES[2]) < WINDOW.end_us


def test_concurrent_writers_trimming_the_same_part(tmp_path):
    """Two windows rewritten at once inside one stored part: each trim sees the other's result."""
    from concurrent.futures import ThreadPoolExecutor

    whole_sink, _ = write(tmp_path, WINDOW)
    whole = snapshot(whole_sink)
    inner = [
        Window.from_iso("2025-11-11T03:00:05Z", "2025-11-11T03:00:15Z"),
        Window.from_iso("2025-11-11T03:00:30Z", "2025-11-11T03:00:40Z"),
    ]
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda w: write(tmp_path, w), inner))
        assert snapshot(whole_sink) == whole

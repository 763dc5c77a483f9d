"""Faster-than-life planning, resumption and parallel bookkeeping (``run.faster``) and progress lines."""

from __future__ import annotations

from mkt_pipeline.core.timeline import Window
from mkt_pipeline.run.faster import plan_window
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.test_cli import FTL, LIGHT


def test_progress_line_rate_share_and_eta():
    from mkt_pipeline.run.progress import Progress

    now = [100.0]
    window = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:01:40Z")
    progress = Progress("fx", window, clock=lambda: now[0])
    now[0] = 110.0
    progress.add(50_000, 25 * 1_000_000)
    line = progress.line()
    assert "rows 50,000" in line and "5,000 rows/s" in line and "25.0%" in line and "ETA 30s" in line


def test_planned_window_ends_at_the_exact_second_across_count_blocks(clean_env):
    from mkt_pipeline.cli import load_references, make_engine, parse_options
    from mkt_pipeline.sinks.parquet import ParquetSink as Empty

    opts = parse_options(
        ["fx", *FTL, *LIGHT, "--start_ts", "2025-11-11T03:00:00.5Z", "--total_market_data_events", "100_000"]
    )
    engine = make_engine(opts, load_references("fx", Window(opts.start_ts, opts.start_ts + 1)))
    window = plan_window(
        engine,
        Empty("/nonexistent/empty"),
        start_us=opts.start_ts,
        end_us=None,
        max_market_data_rows=opts.total_market_data_events,
    )
    first, total, s = opts.start_ts // 1_000_000, 0, opts.start_ts // 1_000_000
    while total < 100_000:
        total += engine.planned_counts(s, s + 1)["market_data"]
        s += 1
    assert (window.start_us, window.end_us) == (opts.start_ts, s * 1_000_000) and s - first > 600


def test_resume_starts_at_the_least_advanced_table(tmp_path):
    """A run cut between tables leaves market_data ahead of core_price: resume where core_price stops."""
    from mkt_pipeline.fx.engine import FxEngine
    from mkt_pipeline.run.faster import stored_resume_us
    from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

    sink = ParquetSink(tmp_path)
    early = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:05Z")
    late = Window.from_iso("2025-11-11T03:00:05Z", "2025-11-11T03:00:09Z")
    engine = FxEngine(LIGHT_FX, fx_references(early))
    for window, tables in ((early, (0, 1, 2)), (late, (0,))):  # the second window stored only market_data
        with sink.window(window) as writer:
            for batches in engine.generate(window):
                for i in tables:
                    writer.write(batches[i])
    assert stored_resume_us(engine, sink) == early.end_us


def test_each_committed_chunk_is_reported_once_with_its_own_rows(tmp_path):
    """``iter_chunks`` yields every chunk once, in this process, with that chunk's own rows per table,
    and ``run_chunks`` sums them."""
    import io

    from mkt_pipeline.fx.engine import FxConfig, FxEngine
    from mkt_pipeline.markets import market_references
    from mkt_pipeline.run.faster import iter_chunks, run_chunks
    from mkt_pipeline.run.progress import Progress

    window = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:30Z")
    engine = FxEngine(
        FxConfig(
            market_data_min_eps=70, market_data_max_eps=80, core_min_eps=60, core_max_eps=65, min_levels=3, max_levels=3
        ),
        market_references("fx", window, offline=True),
    )
    with ParquetSink(tmp_path / "a") as sink:
        sink.prepare(engine.schemas)
        progress = Progress("fx", window, out=io.StringIO())
        seen = [(c, dict(rows)) for c, rows in iter_chunks(engine, sink, window, chunk_seconds=10, progress=progress)]
    with ParquetSink(tmp_path / "b") as sink:
        sink.prepare(engine.schemas)
        stats = run_chunks(engine, sink, window, chunk_seconds=10, progress=Progress("fx", window, out=io.StringIO()))
    assert [c for c, _ in seen] == list(window.split(10))
    for chunk, rows in seen:
        assert rows["market_data"] == engine.planned_counts(chunk.first_second, chunk.end_second)["market_data"] > 0
    assert {t: sum(r[t] for _, r in seen) for t in stats.rows} == dict(stats.rows)


def test_leaving_the_chunk_iterator_early_stops_the_producer(tmp_path):
    """A driver that stops consuming (an error while reporting a chunk) closes the iterator: the
    generating thread stops, and only the chunks reported were committed and recorded."""
    import threading
    from contextlib import closing

    from mkt_pipeline.fx.engine import FxConfig, FxEngine
    from mkt_pipeline.markets import market_references
    from mkt_pipeline.run.ingest import iter_window
    from mkt_pipeline.run.resume import chunk_key, plan_chunks

    window = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:01:00Z")
    config = FxConfig(
        market_data_min_eps=70, market_data_max_eps=80, core_min_eps=60, core_max_eps=65, min_levels=3, max_levels=3
    )
    engine = FxEngine(config, market_references("fx", window, offline=True))
    with ParquetSink(tmp_path) as sink:
        sink.prepare(engine.schemas)
        with closing(iter_window(engine, sink, window, chunk_seconds=10, in_process=False)) as chunks:
            first, _ = next(chunks)
        assert not any(t.name == "mkt-generate" and t.is_alive() for t in threading.enumerate())
        plan = plan_chunks(sink, chunk_key(engine), window, 10)
    assert plan.stored == [first] and len(plan.pending) == 5

"""Resumption by the ledger of complete chunks (docs/faults.md#resumption), on the Parquet dataset (no server needed).

Each test interrupts a run at a chosen instant, re-runs it plainly and compares the dataset row
for row with one uninterrupted run of the same window.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from mkt_pipeline.core.timeline import US_PER_S, Window
from mkt_pipeline.fx.engine import FxConfig, FxEngine
from mkt_pipeline.markets import market_references
from mkt_pipeline.run.faster import WorkerFactories, plan_window, run_chunks
from mkt_pipeline.run.progress import Progress
from mkt_pipeline.run.realtime import pace_window
from mkt_pipeline.run.resume import chunk_key, plan_chunks
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ledger import CHUNK, PLAN, LedgerEntry
from mkt_pipeline.sinks.parquet import ParquetSink, _pending
from mkt_pipeline_tests.conftest import LIGHT_FX

FX_WINDOW = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:40Z")
# a trading hour in New York, so equities trades flow
EQ_WINDOW = Window.from_iso("2025-06-02T14:00:00Z", "2025-06-02T14:00:40Z")
CHUNK_S = 10


class InjectedFault(OSError):
    pass


class FaultyParquetSink(ParquetSink):
    """Fails while publishing ``table``'s part of the chunk that starts at ``fail_at_us``.

    The tables published before it in the same chunk stay published: the state a crash or a full
    disk leaves behind.
    """

    def __init__(self, root, fail_table: str, fail_at_us: int, naming: TableNaming | None = None):
        super().__init__(root, naming)
        self.fail_table = fail_table
        self.fail_at_us = fail_at_us

    def _clear(self, schema, hour_dir, a, b):
        if a == self.fail_at_us and self.naming.name(schema) == self.fail_table:
            raise InjectedFault(f"injected: no space left publishing {self.fail_table}")
        super()._clear(schema, hour_dir, a, b)


def fx_engine(references=None, config: FxConfig = LIGHT_FX):
    return FxEngine(config, references or market_references("fx", FX_WINDOW, offline=True))


def equities_engine(references=None):
    from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine

    config = EquitiesConfig(
        market_data_min_eps=200,
        market_data_max_eps=300,
        trades_min_eps=50,
        trades_max_eps=80,
        min_levels=5,
        max_levels=5,
    )
    return EquitiesEngine(config, references or market_references("equities", EQ_WINDOW, offline=True))


MARKETS = {"fx": (fx_engine, FX_WINDOW, "trades"), "equities": (equities_engine, EQ_WINDOW, "trades")}


def run(engine_fn, sink, window, processes: int = 1, factories=None, **kw):
    engine = engine_fn()
    sink.prepare(engine.schemas)
    with Progress(engine.market, window, interval_s=3600) as progress:
        return run_chunks(
            engine,
            sink,
            window,
            chunk_seconds=CHUNK_S,
            progress=progress,
            workers=processes,
            factories=factories,
            references=engine.references,
            **kw,
        )


def assert_same_rows(a: ParquetSink, b: ParquetSink, schemas) -> None:
    for schema in schemas:
        left, right = a.read(schema), b.read(schema)
        assert left.num_rows > 0, schema.base_name
        assert left.equals(right), f"{schema.base_name}: {left.num_rows} rows vs {right.num_rows} uninterrupted"


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tmp"))


def _faulty_sink(root: str, table: str, at_us: int) -> ParquetSink:
    return FaultyParquetSink(root, table, at_us)


def _plain_sink(root: str) -> ParquetSink:
    return ParquetSink(root)


@pytest.mark.parametrize("market,processes", [("fx", 1), ("fx", 2), ("equities", 1), ("equities", 2)])
def test_failed_publish_of_one_table_is_filled_by_a_plain_rerun(tmp_path, market, processes, capsys):
    engine_fn, window, trades = MARKETS[market]
    trades_table = engine_fn().schemas[-1]
    assert trades_table.base_name.endswith(trades)
    fail_at = window.start_us + CHUNK_S * US_PER_S  # the second chunk
    name = TableNaming().name(trades_table)
    faulty = FaultyParquetSink(tmp_path / "run", name, fail_at)
    factories = WorkerFactories(engine_fn, partial(_faulty_sink, str(tmp_path / "run"), name, fail_at))
    with pytest.raises((InjectedFault, RuntimeError), match="injected: no space left"):
        run(engine_fn, faulty, window, processes, factories)
    # the book tables of the failed chunk were published, its trades were not: a hole
    md = faulty.read(engine_fn().schemas[0], Window(fail_at, fail_at + CHUNK_S * US_PER_S))
    assert md.num_rows > 0
    assert not temp_files(tmp_path / "run"), "a failed publish leaves no temporary file"
    recorded = {(e.start_us, e.end_us) for e in faulty.ledger_entries(chunk_key(engine_fn())) if e.kind == CHUNK}
    assert (fail_at, fail_at + CHUNK_S * US_PER_S) not in recorded
    assert (
        f"{len(recorded)} of 4 chunks were stored and recorded; re-run the same command to send the other {4 - len(recorded)}"
        in capsys.readouterr().err
    )

    # the same command again: sends exactly the unrecorded chunks
    sink = ParquetSink(tmp_path / "run")
    pending = plan_chunks(sink, chunk_key(engine_fn()), window, CHUNK_S).pending
    assert Window(fail_at, fail_at + CHUNK_S * US_PER_S) in pending and len(pending) == 4 - len(recorded)
    run(engine_fn, sink, window, processes, WorkerFactories(engine_fn, partial(_plain_sink, str(tmp_path / "run"))))
    once = ParquetSink(tmp_path / "once")
    run(engine_fn, once, window)
    assert_same_rows(sink, once, engine_fn().schemas)
    # and a third run has nothing left to send
    assert not plan_chunks(sink, chunk_key(engine_fn()), window, CHUNK_S).pending
    assert sum(run(engine_fn, sink, window).rows.values()) == 0


def test_overwrite_resends_every_chunk_and_changes_nothing(tmp_path):
    sink = ParquetSink(tmp_path)
    first = run(fx_engine, sink, FX_WINDOW)
    before = {s.base_name: sink.read(s) for s in fx_engine().schemas}
    again = run(fx_engine, sink, FX_WINDOW, overwrite=True)
    assert dict(again.rows) == dict(first.rows) and sum(first.rows.values()) > 0
    for schema in fx_engine().schemas:
        assert sink.read(schema).equals(before[schema.base_name])


def test_other_settings_do_not_count_as_stored(tmp_path):
    sink = ParquetSink(tmp_path)
    run(fx_engine, sink, FX_WINDOW)
    import dataclasses

    other = dataclasses.replace(LIGHT_FX, seed=LIGHT_FX.seed + 1)
    assert chunk_key(fx_engine(config=other)) != chunk_key(fx_engine())
    assert len(plan_chunks(sink, chunk_key(fx_engine(config=other)), FX_WINDOW, CHUNK_S).pending) == 4
    # other chunk sizes still see what is stored: entries are time ranges, not chunk numbers
    assert not plan_chunks(sink, chunk_key(fx_engine()), FX_WINDOW, 7).pending
    assert (
        len(
            plan_chunks(
                sink, chunk_key(fx_engine()), Window(FX_WINDOW.start_us, FX_WINDOW.end_us + US_PER_S), 7
            ).pending
        )
        == 1
    )


def test_stale_temp_files_are_removed_but_not_those_of_a_live_writer(tmp_path):
    sink = ParquetSink(tmp_path)
    run(fx_engine, sink, FX_WINDOW)
    hour = next((tmp_path / sink.naming.name(fx_engine().schemas[0])).glob("hour=*"))
    stale = [hour / ".pending-0123abcd.tmp", hour / ".part-1-2.parquet.0123abcd.tmp"]
    for p in stale:
        p.write_bytes(b"left by a crash")
    live = _pending(hour)  # a writer in another process holds its file
    try:
        assert ParquetSink(tmp_path).remove_stale_temp_files(fx_engine().schemas) == 2
        assert not any(p.exists() for p in stale) and live.path.exists()
    finally:
        live.discard()
    assert not temp_files(tmp_path)


def test_a_torn_manifest_line_is_an_unrecorded_chunk(tmp_path):
    sink = ParquetSink(tmp_path)
    run(fx_engine, sink, FX_WINDOW)
    key = chunk_key(fx_engine())
    lines = sink.manifest.path.read_text().splitlines()
    chunk_lines = [i for i, line in enumerate(lines) if '"kind":"chunk"' in line]
    last = chunk_lines[-1]
    lines[last] = lines[last][: len(lines[last]) // 2]  # a crash in the middle of the append
    sink.manifest.path.write_text("\n".join(lines) + "\n")
    assert plan_chunks(sink, key, FX_WINDOW, CHUNK_S).pending == [
        Window(FX_WINDOW.end_us - CHUNK_S * US_PER_S, FX_WINDOW.end_us)
    ]


def test_incremental_finishes_the_interrupted_window_first(tmp_path):
    """An interrupted ``--incremental`` run is finished by the next one, which then goes no further."""
    key = chunk_key(fx_engine())
    sink = FaultyParquetSink(tmp_path, "fx_trades", FX_WINDOW.start_us + 2 * CHUNK_S * US_PER_S)
    with pytest.raises(InjectedFault):
        run(fx_engine, sink, FX_WINDOW)
    plain = ParquetSink(tmp_path)
    assert any(e.kind == PLAN and e.window == FX_WINDOW for e in plain.ledger_entries(key))
    window = plan_window(fx_engine(), plain, start_us=None, end_us=None, max_market_data_rows=10**9, incremental=True)
    assert window == FX_WINDOW
    run(fx_engine, plain, window)
    once = ParquetSink(tmp_path / "once")
    run(fx_engine, once, FX_WINDOW)
    assert_same_rows(plain, once, fx_engine().schemas)
    # finished: the next incremental window starts where it ended
    nxt = plan_window(
        fx_engine(),
        plain,
        start_us=None,
        end_us=FX_WINDOW.end_us + 5 * US_PER_S,
        max_market_data_rows=10**9,
        incremental=True,
    )
    assert nxt == Window(FX_WINDOW.end_us, FX_WINDOW.end_us + 5 * US_PER_S)


def test_a_retried_live_window_continues_after_its_recorded_commits(tmp_path):
    """A live window that failed part-way, run again, writes only what its commits did not record."""
    clock = lambda: FX_WINDOW.end_us / US_PER_S + 60  # every second is already due
    sink = FaultyParquetSink(tmp_path, "fx_trades", FX_WINDOW.start_us + 20 * US_PER_S)
    engine = fx_engine()
    sink.prepare(engine.schemas)
    with pytest.raises(InjectedFault):
        pace_window(engine, sink, FX_WINDOW, lookahead_s=0, clock=clock, max_group_s=5, min_commit_s=5)
    retry = ParquetSink(tmp_path)
    result = pace_window(fx_engine(), retry, FX_WINDOW, lookahead_s=0, clock=clock, max_group_s=5, min_commit_s=5)
    assert result.commits == 4  # [20 s, 40 s) in 5 s commits: nothing before the failed one again
    once = ParquetSink(tmp_path / "once")
    pace_window(fx_engine(), once, FX_WINDOW, lookahead_s=0, clock=clock, max_group_s=5, min_commit_s=5)
    assert_same_rows(retry, once, engine.schemas)


def test_ledger_entries_round_trip_with_rows(tmp_path):
    sink = ParquetSink(tmp_path, TableNaming(suffix="_x"))
    key = chunk_key(fx_engine())
    sink.record(key, LedgerEntry(CHUNK, 1, 2, {"fx_trades_x": 3}))
    assert sink.manifest.path.name == "_chunk_ledger_x.jsonl"
    assert sink.ledger_entries(key) == [LedgerEntry(CHUNK, 1, 2)]
    assert sink.ledger_entries(key)[0].rows == {"fx_trades_x": 3}
    assert sink.ledger_entries(key, Window(2, 3)) == []

"""Generation in a child process: the same rows as in-process generation, memory never overwritten
while the parent still holds it, failures re-raised, shared memory removed, and the in-band path
when shared memory has no room."""

from __future__ import annotations

import os
import pickle
import queue
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from mkt_pipeline.core.engine import Engine
from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine
from mkt_pipeline.fx.engine import FxConfig, FxEngine
from mkt_pipeline.markets import market_references
from mkt_pipeline.run import ingest
from mkt_pipeline.run import process as generation_process
from mkt_pipeline.run.ingest import run_window, wants_process
from mkt_pipeline.run.process import END_OF_CHUNK, ProcessProducer
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

WINDOW = Window.from_iso("2025-06-02T14:29:40Z", "2025-06-02T14:30:40Z")  # crosses the equities open


def _shared_segments() -> set[str]:
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("psm_")}
    except FileNotFoundError:
        return set()


def _columns(batch) -> dict[str, np.ndarray]:
    """Every array of a batch, flattened (books as values and depths, symbols as codes)."""
    out = {}
    for name, col in batch.columns.items():
        if hasattr(col, "values") and hasattr(col, "depth"):
            out[name + ".values"], out[name + ".depth"] = col.values, col.depth
        elif hasattr(col, "codes"):
            out[name] = col.codes
        elif hasattr(col, "hi"):
            out[name + ".hi"], out[name + ".lo"] = col.hi, col.lo
        else:
            out[name] = np.asarray(col)
    return out


def assert_groups_equal(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert [b.schema for b in g] == [b.schema for b in w]
        for bg, bw in zip(g, w):
            cg, cw = _columns(bg), _columns(bw)
            assert cg.keys() == cw.keys()
            for k in cg:
                np.testing.assert_array_equal(cg[k], cw[k], err_msg=f"{bg.schema.base_name}.{k}")


def _engines():
    return {
        "fx": FxEngine(LIGHT_FX, fx_references(WINDOW)),
        "equities": EquitiesEngine(
            EquitiesConfig(market_data_min_eps=300, market_data_max_eps=400, min_levels=5, max_levels=12),
            market_references("equities", WINDOW, offline=True),
        ),
    }


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_a_child_process_writes_exactly_the_rows_of_in_process_generation(tmp_path, market):
    engine = _engines()[market]
    before = _shared_segments()
    sinks = {}
    for mode in (False, True):
        sink = sinks[mode] = ParquetSink(tmp_path / str(mode))
        sink.prepare(engine.schemas)
        result = run_window(engine, sink, WINDOW, chunk_seconds=25, in_process=mode)
        assert result.total_rows > 0
    for schema in engine.schemas:
        assert sinks[True].read(schema).equals(sinks[False].read(schema)), schema.base_name
    assert _shared_segments() <= before  # every slot was removed


def test_groups_kept_by_the_caller_are_never_overwritten():
    """Holding every group forces new slots (the child may not reuse memory still in use)."""
    engine = FxEngine(
        FxConfig(min_levels=40, max_levels=40, market_data_min_eps=3000, market_data_max_eps=4000),
        fx_references(WINDOW),
    )
    chunks = list(WINDOW.split(20))
    producer = ProcessProducer(engine, chunks)
    producer.start()
    kept = []
    try:
        for _ in chunks:
            while (group := producer.next()) is not END_OF_CHUNK:
                kept.append(group)
            assert producer._kept, "groups still held must not go back to the child"
    finally:
        producer.close()
    want = [g for chunk in chunks for g in engine.generate(chunk)]
    assert len(kept) > 3
    assert_groups_equal(kept, want)  # read after the child finished writing every later group


class _FailingEngine(Engine):
    market = "fx"
    schemas = FX_TABLES
    dense_schemas = FX_TABLES[:1]

    def __init__(self):
        super().__init__(batch_rows=1000)
        self.inner = FxEngine(LIGHT_FX, fx_references(WINDOW))
        self.config = self.inner.config

    @property
    def max_rows_per_second(self) -> int:
        return 150

    def generate_seconds(self, first_second, end_second):
        if first_second >= WINDOW.first_second + 20:
            raise ArithmeticError("engine failed at second 20")
        return self.inner.generate_seconds(first_second, end_second)


def test_a_failure_in_the_child_is_raised_in_the_caller_and_nothing_is_left_behind(tmp_path):
    before = _shared_segments()
    sink = ParquetSink(tmp_path)
    sink.prepare(FX_TABLES)
    with pytest.raises(ArithmeticError, match="engine failed at second 20"):
        run_window(_FailingEngine(), sink, WINDOW, chunk_seconds=10, in_process=True)
    # the chunks before the failure were committed; the failed one was not
    stored = sink.read(FX_TABLES[0]).column("timestamp").cast("int64").to_numpy()
    assert len(stored) and stored.max() < WINDOW.start_us + 20_000_000
    assert _shared_segments() <= before


def test_groups_travel_in_band_when_shared_memory_has_no_room(monkeypatch):
    engine = FxEngine(LIGHT_FX, fx_references(WINDOW))
    monkeypatch.setattr(generation_process, "_shm_room", lambda: 0)
    out, free, stop = queue.Queue(maxsize=1), queue.Queue(), threading.Event()
    chunk = Window(WINDOW.start_us, WINDOW.start_us + 15_000_000)
    free.put(("job", pickle.dumps(engine), [(chunk.start_us, chunk.end_us)], 1))
    child = threading.Thread(target=generation_process._child, args=(out, free, stop))
    child.start()
    items = []
    while not items or items[-1][0] != "end":
        items.append(out.get(timeout=30))
    child.join()
    kinds = {item[0] for item in items[:-1]}
    assert kinds == {"inband"}
    schemas = {s.base_name: s for s in engine.schemas}
    got = [generation_process._SchemaUnpickler(item[1], schemas, None).load() for item in items[:-1]]
    assert got[0][0].schema is engine.schemas[0]  # schemas arrive as the parent's own objects
    assert_groups_equal(got, list(engine.generate(chunk)))


def test_a_process_is_used_only_where_it_pays_and_may_be_started():
    engine = FxEngine(FxConfig(), fx_references(WINDOW))  # ~15,000 market_data rows/s at most
    assert not wants_process(engine, Window(WINDOW.start_us, WINDOW.start_us + 60_000_000))
    assert wants_process(engine, Window(WINDOW.start_us, WINDOW.start_us + 3_600_000_000))


def test_daemonic_workers_generate_in_a_thread(monkeypatch):
    engine = FxEngine(FxConfig(), fx_references(WINDOW))
    monkeypatch.setattr(ingest.mp, "current_process", lambda: SimpleNamespace(daemon=True))
    assert not wants_process(engine, Window(WINDOW.start_us, WINDOW.start_us + 3_600_000_000))

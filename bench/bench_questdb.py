"""Ingestion into a real QuestDB: rows/s committed (visible after WAL apply) against a ceiling of
pre-built batches sent by the same client to the same server in the same run.

For each book depth (3 and 40 levels; FX at the default rates) one fresh process measures:

* pipeline: ``FxEngine`` -> ``run_window`` -> ``QuestDBSink``, the path of the CLI and the Dagster
  steps (generation in a child process once the window is big enough), into fresh tables; the
  clock stops once every table's WAL is applied (``writerTxn = sequencerTxn``), and the rows
  stored are counted back with SQL;
* ceiling: the same window generated beforehand, then sent by the same sink into another set of
  fresh tables, timed the same way. ``ratio`` = pipeline / ceiling (goal >= 0.8): how much of what
  the client and server can ingest survives generating the data at the same time.

Peak memory is the pipeline's ru_maxrss plus its generation child's, taken before the ceiling
holds its pre-built batches. Every table the run creates is dropped at the end.

    ../shared/questdb/qdb start --root "$(mktemp -d)" --http 9000 --pg 8812 --ilp 9009
    .venv/bin/python bench/bench_questdb.py [--host 127.0.0.1 --http-port 9000 --pg-port 8812]
        [--levels 3 40] [--seconds 3:120 40:30]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MKT_OFFLINE", "1")

WAL_TIMEOUT_S = 1800.0


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _case(levels: int, seconds: int, host: str, http_port: int, pg_port: int, out: mp.Queue) -> None:
    from mkt_pipeline.core.timeline import Window
    from mkt_pipeline.fx.engine import FxConfig, FxEngine
    from mkt_pipeline.markets import market_references
    from mkt_pipeline.run.ingest import run_window, wants_process
    from mkt_pipeline.sinks.base import TableNaming, WriteStats
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink, pg_connect

    start = Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T10:00:01Z").start_us
    window = Window(start, start + seconds * 1_000_000)
    engine = FxEngine(FxConfig(min_levels=levels, max_levels=levels), market_references("fx", window, offline=True))
    settings = QuestDBSettings(host=host, http_port=http_port, pg_port=pg_port, create_views=False)
    run_id = uuid.uuid4().hex[:6]
    suffixes = {"pipeline": f"_bq{run_id}p", "ceiling": f"_bq{run_id}c"}

    def new_sink(which: str) -> QuestDBSink:
        sink = QuestDBSink(settings, TableNaming(suffix=suffixes[which]))
        sink.prepare(engine.schemas)
        return sink

    def committed(sink: QuestDBSink, started: float) -> tuple[int, float]:
        """Wait for WAL apply on every table; rows stored (counted by SQL) and seconds since ``started``."""
        lag = sink.wait_for_wal(WAL_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        if lag:
            raise RuntimeError(f"WAL still {lag} transactions behind after {WAL_TIMEOUT_S:.0f}s on {host}:{pg_port}")
        with pg_connect(settings) as conn:
            rows = sum(conn.execute(f"SELECT count() FROM {sink.naming.name(s)}").fetchone()[0] for s in engine.schemas)
        return rows, elapsed

    try:
        sink = new_sink("pipeline")
        started = time.perf_counter()
        result = run_window(engine, sink, window, chunk_seconds=900)
        stored, elapsed = committed(sink, started)
        sink.close()
        r = dict(levels=levels, seconds=seconds, rows=result.total_rows, stored=stored, pipeline=stored / elapsed,
                 producer="process" if wants_process(engine, window) else "thread",
                 rss=_rss_mb(resource.RUSAGE_SELF) + _rss_mb(resource.RUSAGE_CHILDREN))  # fmt: skip

        batches = [b for group in engine.generate(window) for b in group if len(b)]
        sink, stats = new_sink("ceiling"), WriteStats()
        started = time.perf_counter()
        for batch in batches:
            sink.send(batch, stats)
        stored_ceiling, elapsed = committed(sink, started)
        sink.close()
        r.update(ceiling=stored_ceiling / elapsed, ceiling_rows=stored_ceiling)
        out.put(r)
    finally:
        with pg_connect(settings) as conn:
            for (name,) in conn.execute("SELECT table_name FROM tables()").fetchall():
                if name.endswith(tuple(suffixes.values())):
                    conn.execute(f"DROP TABLE IF EXISTS {name}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("QUESTDB_HOST", "127.0.0.1"))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("QUESTDB_HTTP_PORT", "9000")))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("QUESTDB_PG_PORT", "8812")))
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 40])
    parser.add_argument("--seconds", nargs="+", default=["3:120", "40:30"], metavar="LEVELS:SECONDS",
                        help="seconds of FX data (default rates) per book depth")  # fmt: skip
    args = parser.parse_args(argv)
    seconds = {int(k): int(v) for k, v in (item.split(":") for item in args.seconds)}

    ctx = mp.get_context("spawn")
    print(f"{'levels':>6} {'seconds':>7} {'rows':>10} {'producer':>8} {'committed/s':>12} {'ceiling/s':>10} {'ratio':>6} {'peak MB':>8}")
    for levels in args.levels:
        out = ctx.Queue()
        case = ctx.Process(target=_case, args=(levels, seconds.get(levels, 60), args.host, args.http_port, args.pg_port, out))
        case.start()
        case.join()
        if case.exitcode != 0 or out.empty():
            print(f"{levels:>6} case failed (exit {case.exitcode})")
            return 1
        r = out.get()
        assert r["stored"] == r["rows"] == r["ceiling_rows"], r  # every row sent is visible, in both runs
        print(
            f"{r['levels']:>6} {r['seconds']:>7} {r['rows']:>10,} {r['producer']:>8} {r['pipeline']:>12,.0f} "
            f"{r['ceiling']:>10,.0f} {r['pipeline'] / r['ceiling']:>6.2f} {r['rss']:>8,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

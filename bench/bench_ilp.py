"""ILP throughput: the whole pipeline against the raw ceiling of the same endpoint.

For each book depth (3 and 40 levels) it runs, in a fresh process so peak memory is per case:

* pipeline: ``FxEngine`` -> ``run_window`` -> ``QuestDBSink`` -> a local ILP/HTTP capture endpoint
  (a separate process that counts bytes and answers 204, like a server that is never the bottleneck
  of the client);
* ceiling: the same rows, encoded beforehand into size-bounded ILP frames, flushed back to back to
  the same endpoint by the same client;

and prints rows/s of both, their ratio, and the process RSS before generation and at its peak
after the pipeline (``ru_maxrss``).

    .venv/bin/python bench/bench_ilp.py [--seconds 20] [--levels 3 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MKT_OFFLINE", "1")


def _serve(ports: mp.Queue, stop: mp.Event) -> None:
    from mkt_pipeline_tests.ilp_capture import CaptureConfig, CaptureServer

    with CaptureServer(CaptureConfig(record=False)) as server:
        ports.put(server.http_port)
        stop.wait()


class _NullPG:
    """The PG side is not what is measured: no tables exist, DDL is accepted, WAL never lags."""

    class _Cursor:
        def fetchall(self):
            return []

    def execute(self, sql, params=None):
        return self._Cursor()

    def close(self):
        pass


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _case(levels: int, seconds: int, port: int, out: mp.Queue) -> None:
    from questdb import Protocol, Sender

    from mkt_pipeline import ilp
    from mkt_pipeline.fx_engine import FxConfig, FxEngine
    from mkt_pipeline.ingest import run_window
    from mkt_pipeline.questdb_sink import QuestDBSettings, QuestDBSink
    from mkt_pipeline.reference_prices import fallback_reference_prices, reference_days
    from mkt_pipeline import fx_universe
    from mkt_pipeline.timeline import Window

    start = Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T10:00:01Z").start_us
    window = Window(start, start + seconds * 1_000_000)
    days = window.days()
    refs = fallback_reference_prices(fx_universe.SYMBOLS, fx_universe.FALLBACK_LEVELS, reference_days(days[0], days[-1]))
    engine = FxEngine(FxConfig(min_levels=levels, max_levels=levels), refs)
    settings = QuestDBSettings(http_port=port, pg_port=port, wal_poll_interval_s=3600)
    rss_before = _peak_rss_mb()

    # engine alone, for reference
    started = time.perf_counter()
    generated = sum(len(b) for group in engine.generate(window) for b in group)
    gen_s = time.perf_counter() - started

    # pipeline
    sink = QuestDBSink(settings, connect=lambda s: _NullPG())
    sink.prepare(engine.schemas)
    result = run_window(engine, sink, window, chunk_seconds=900)
    sink.close()
    pipeline_rss = _peak_rss_mb()

    # ceiling: the same rows as pre-built frames, flushed back to back over the same client
    sender = Sender(Protocol.Http, "127.0.0.1", port, auto_flush=False, protocol_version=2)
    sender.establish()
    frames, rows = [], 0
    for group in engine.generate(window):
        for batch in group:
            name = batch.schema.base_name
            for lo, hi in ilp.slices(ilp.row_size_estimate(batch, name), settings.flush_bytes):
                buf = sender.new_buffer()
                ilp.encode(buf, name, batch, lo, hi)
                frames.append(buf)
                rows += hi - lo
    nbytes = sum(len(f) for f in frames)
    started = time.perf_counter()
    for buf in frames:
        sender.flush(buf, clear=False)
    ceiling_s = time.perf_counter() - started
    sender.close(flush=False)

    out.put(
        dict(
            levels=levels, rows=result.total_rows, generated=generated, gen_rate=generated / gen_s,
            pipeline_rate=result.rows_per_second, ceiling_rate=rows / ceiling_s, mb=nbytes / 1e6,
            ceiling_mb_s=nbytes / 1e6 / ceiling_s, rss_before=rss_before, pipeline_rss=pipeline_rss,
        )  # fmt: skip
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="seconds of FX data per case (default rates)")
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 40])
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(ports, stop), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    try:
        print(f"{'levels':>6} {'rows':>9} {'engine rows/s':>14} {'pipeline rows/s':>16} {'ceiling rows/s':>15} "
              f"{'ratio':>6} {'MB sent':>8} {'ceiling MB/s':>13} {'RSS MB base/peak':>17}")  # fmt: skip
        for levels in args.levels:
            out = ctx.Queue()
            case = ctx.Process(target=_case, args=(levels, args.seconds, port, out))
            case.start()
            r = out.get(timeout=1800)
            case.join()
            print(
                f"{r['levels']:>6} {r['rows']:>9,} {r['gen_rate']:>14,.0f} {r['pipeline_rate']:>16,.0f} {r['ceiling_rate']:>15,.0f} "
                f"{r['pipeline_rate'] / r['ceiling_rate']:>6.2f} {r['mb']:>8.0f} {r['ceiling_mb_s']:>13,.0f} {r['rss_before']:>8,.0f}/{r['pipeline_rss']:<8,.0f}"
            )
    finally:
        stop.set()
        server.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

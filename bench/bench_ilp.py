"""ILP throughput: the whole pipeline against the ceiling of sending pre-built frames to the same endpoint.

For each book depth (3 and 40 levels) one fresh process measures, against a local ILP/HTTP endpoint
(a separate process that drains each request into one reused buffer and answers 204, like a server
that is never the client's bottleneck):

* pipeline: ``FxEngine`` -> ``run_window`` -> ``QuestDBSink``, the path the CLI and Dagster take
  (generation in a child process once the window is big enough, see ``ingest.wants_process``);
* ceiling (the target's denominator): the same sink sending batches generated beforehand, so
  everything but generation is paid: frames, encoding, HTTP. ``ratio`` = pipeline / ceiling says
  how much of the sending speed survives generating the data at the same time (target >= 0.8);
* for context, two faster and narrower ceilings over the same rows: pandas frames built
  beforehand and passed to the client (``Buffer.dataframe`` + flush), and ILP bytes encoded
  beforehand and only flushed (the wire).

Ceilings replay a sample of pre-built data (up to ``--sample-mb``) until they have sent as many
rows as the pipeline. Peak memory is the pipeline's process plus its generation child (ru_maxrss).

    .venv/bin/python bench/bench_ilp.py [--seconds 600] [--levels 3 40]
"""

from __future__ import annotations

import argparse
import itertools
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
    from bench.ilp_endpoint import DrainServer

    with DrainServer() as server:
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


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _replay(items, rows_wanted: int, send) -> tuple[int, float]:
    """Send ``items`` (each ``(rows, payload)``) round and round until ``rows_wanted``; rows and seconds."""
    sent, started = 0, time.perf_counter()
    for rows, payload in itertools.cycle(items):
        send(payload)
        sent += rows
        if sent >= rows_wanted:
            break
    return sent, time.perf_counter() - started


def _case(levels: int, seconds: int, sample_mb: int, port: int, out: mp.Queue) -> None:
    from questdb import Protocol, Sender

    from mkt_pipeline.core.timeline import Window
    from mkt_pipeline.fx.engine import FxConfig, FxEngine
    from mkt_pipeline.markets import market_references
    from mkt_pipeline.run.ingest import run_window, wants_process
    from mkt_pipeline.sinks import ilp
    from mkt_pipeline.sinks.base import WriteStats
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink

    start = Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T10:00:01Z").start_us
    window = Window(start, start + seconds * 1_000_000)
    engine = FxEngine(FxConfig(min_levels=levels, max_levels=levels), market_references("fx", window, offline=True))
    settings = QuestDBSettings(http_port=port, pg_port=port, wal_poll_interval_s=3600)

    def new_sink() -> QuestDBSink:
        sink = QuestDBSink(settings, connect=lambda s: _NullPG())
        sink.prepare(engine.schemas)
        return sink

    # pipeline
    sink = new_sink()
    result = run_window(engine, sink, window, chunk_seconds=900)
    sink.close()
    r = dict(
        levels=levels,
        rows=result.total_rows,
        pipeline=result.rows_per_second,
        producer="process" if wants_process(engine, window) else "thread",
    )
    r["rss"] = _rss_mb(resource.RUSAGE_SELF) + _rss_mb(resource.RUSAGE_CHILDREN)

    # a sample of pre-generated batches, small enough to hold in memory
    batches, held = [], 0
    for group in engine.generate(window):
        batches.extend(b for b in group if len(b))
        held += sum(int(ilp.row_size_estimate(b, b.schema.base_name).sum()) for b in group)
        if held > sample_mb * 1e6:
            break

    # ceiling: the same sink, batches already generated
    sink, stats = new_sink(), WriteStats()
    sent, elapsed = _replay([(len(b), b) for b in batches], r["rows"], lambda b: sink.send(b, stats))
    sink.close()
    r["ceiling"] = sent / elapsed

    # context: pre-built pandas frames through the client, and pre-encoded bytes on the wire
    sender = Sender(Protocol.Http, "127.0.0.1", port, auto_flush=False, protocol_version=2)
    sender.establish()
    frames, encoded = [], []
    for b in batches:
        name = b.schema.base_name
        for lo, hi in ilp.slices(ilp.row_size_estimate(b, name), settings.flush_bytes):
            frames.append((hi - lo, (name, ilp.frame(b, lo, hi), ilp.symbol_columns(b), b.schema.timestamp)))
            buf = sender.new_buffer()
            ilp.encode(buf, name, b, lo, hi)
            encoded.append((hi - lo, buf))
    scratch = sender.new_buffer()

    def send_frame(item) -> None:
        name, df, symbols, at = item
        scratch.clear()
        scratch.dataframe(df, table_name=name, symbols=symbols, at=at)
        sender.flush(scratch)

    sent, elapsed = _replay(frames, r["rows"], send_frame)
    r["frames"] = sent / elapsed
    sent, elapsed = _replay(encoded, r["rows"], lambda buf: sender.flush(buf, clear=False))
    r["wire"] = sent / elapsed
    r["wire_mb_s"] = sum(len(buf) for _, buf in encoded) / sum(n for n, _ in encoded) * r["wire"] / 1e6
    sender.close(flush=False)
    out.put(r)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="seconds of FX data per case (default rates)")
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 40])
    parser.add_argument("--sample-mb", type=int, default=600, help="pre-built data the ceilings replay")
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(ports, stop), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    try:
        print(f"{'levels':>6} {'rows':>10} {'producer':>8} {'pipeline/s':>11} {'ceiling/s':>10} {'ratio':>6} "
              f"{'frames/s':>10} {'ratio':>6} {'wire/s':>10} {'ratio':>6} {'wire MB/s':>9} {'peak MB':>8}")  # fmt: skip
        for levels in args.levels:
            out = ctx.Queue()
            case = ctx.Process(target=_case, args=(levels, args.seconds, args.sample_mb, port, out))
            case.start()
            r = out.get(timeout=3600)
            case.join()
            p = r["pipeline"]
            print(
                f"{r['levels']:>6} {r['rows']:>10,} {r['producer']:>8} {p:>11,.0f} {r['ceiling']:>10,.0f} {p / r['ceiling']:>6.2f} "
                f"{r['frames']:>10,.0f} {p / r['frames']:>6.2f} {r['wire']:>10,.0f} {p / r['wire']:>6.2f} {r['wire_mb_s']:>9,.0f} {r['rss']:>8,.0f}"
            )
    finally:
        stop.set()
        server.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the resume ledger costs: recording a chunk and reading a window's entries, per sink.

    python -m bench.bench_ledger --sink parquet
    python -m bench.bench_ledger --sink questdb --host 127.0.0.1 --http_port 9000 --pg_port 8812

Records ``--chunks`` entries (one per chunk, as a run does after each commit), then reads them
back the way a re-run plans its chunks, and prints one JSON line: milliseconds per record, per
read. The QuestDB ledger table is created under a unique suffix and dropped afterwards, the
Parquet manifest in a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid

from mkt_pipeline.core.timeline import US_PER_S, Window
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ledger import CHUNK, ChunkKey, LedgerEntry

START_US = 1_762_830_000 * US_PER_S


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink", choices=("parquet", "questdb"), default="parquet")
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--chunk_seconds", type=int, default=900)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http_port", type=int, default=9000)
    parser.add_argument("--pg_port", type=int, default=8812)
    args = parser.parse_args(argv)
    suffix = f"_b{uuid.uuid4().hex[:8]}"
    naming = TableNaming(suffix=suffix)
    if args.sink == "parquet":
        from mkt_pipeline.sinks.parquet import ParquetSink

        sink = ParquetSink(tempfile.mkdtemp(prefix="bench-ledger-"), naming)
    else:
        from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink

        sink = QuestDBSink(
            QuestDBSettings(host=args.host, http_port=args.http_port, pg_port=args.pg_port, create_views=False), naming
        )
        sink.prepare([])
    key = ChunkKey("fx", 42, "0123456789abcdef")
    step = args.chunk_seconds * US_PER_S
    rows = {"market_data" + suffix: 13_000_000, "core_price" + suffix: 800_000, "fx_trades" + suffix: 60_000}
    try:
        started = time.perf_counter()
        for i in range(args.chunks):
            sink.record(key, LedgerEntry(CHUNK, START_US + i * step, START_US + (i + 1) * step, rows))
        record_s = (time.perf_counter() - started) / args.chunks
        started = time.perf_counter()
        entries = sink.ledger_entries(key, Window(START_US, START_US + args.chunks * step))
        read_s = time.perf_counter() - started
        assert len(entries) == args.chunks, f"read {len(entries)} of {args.chunks} entries"
    finally:
        if args.sink == "questdb":
            sink._execute(f"DROP TABLE IF EXISTS {sink.ledger_name}", sink.ledger_name)
        else:
            shutil.rmtree(sink.root, ignore_errors=True)
        sink.close()
    print(
        json.dumps(
            {
                "sink": args.sink,
                "chunks": args.chunks,
                "record_ms": round(record_s * 1000, 2),
                "read_all_ms": round(read_s * 1000, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

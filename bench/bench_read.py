"""Reading back from a real QuestDB over PG wire and over QWP: the time of what ``facts`` and the asset
checks read (``QuestDBRows``), for the same stored rows, in one run on one server (QuestDB 9.4+).

Writes a window of FX (default rates, 10 levels) over QWP into fresh tables, then, alternating the
wires ``--repeat`` times and keeping each one's best time: the facts' columns of every table over
the whole window (``read``), the row counts per minute (an asset check's style of aggregate) and
the counts per table. The answers of both wires are compared (they must be equal). Every table is
dropped at the end.

    .venv/bin/python bench/bench_read.py [--host 127.0.0.1 --http-port 9000 --pg-port 8812] [--seconds 120]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MKT_OFFLINE", "1")


def main(argv=None) -> int:
    from mkt_pipeline.core import facts as cf
    from mkt_pipeline.core.tables import FX_CORE_PRICE, FX_MARKET_DATA, FX_TRADES
    from mkt_pipeline.core.timeline import Window, parse_timestamp
    from mkt_pipeline.fx.engine import FxConfig, FxEngine
    from mkt_pipeline.markets import market_references
    from mkt_pipeline.run.ingest import run_window
    from mkt_pipeline.sinks.base import TableNaming
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink, read_session
    from mkt_pipeline.sinks.stored_rows import QuestDBRows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("QUESTDB_HOST", "127.0.0.1"))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("QUESTDB_HTTP_PORT", "9000")))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("QUESTDB_PG_PORT", "8812")))
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    start = parse_timestamp("2025-06-02T10:00:00Z")
    window = Window(start, start + args.seconds * 1_000_000)
    engine = FxEngine(FxConfig(min_levels=10, max_levels=10), market_references("fx", window, offline=True))
    settings = QuestDBSettings(
        host=args.host, http_port=args.http_port, pg_port=args.pg_port, protocol="ws", create_views=False
    )
    naming = TableNaming(suffix=f"_br{uuid.uuid4().hex[:6]}")
    sink = QuestDBSink(settings, naming)
    columns = {
        FX_MARKET_DATA: cf.FX_COLUMNS["market_data"],
        FX_CORE_PRICE: cf.FX_COLUMNS["core_price"],
        FX_TRADES: cf.FX_COLUMNS["fx_trades"],
    }
    try:
        sink.prepare(engine.schemas)
        result = run_window(engine, sink, window, chunk_seconds=900)
        sink.wait_for_wal(600)
        print(f"stored {result.total_rows:,} rows of FX ({args.seconds} s, 10 levels)")

        def work(rows: QuestDBRows):
            out = {}
            for schema, cols in columns.items():
                out["read", schema.base_name] = rows.read(schema, window, cols)
                name = rows.table_name(schema)
                sql = (
                    f"SELECT cast({schema.timestamp} AS long) / 60000000 m, count() n FROM {name} GROUP BY m ORDER BY m"
                )
                out["per minute", schema.base_name] = rows.query(sql, name)[1]
                out["count", schema.base_name] = rows.count(schema, window)
            return out

        best: dict[str, float] = {}
        answers = {}
        for _ in range(args.repeat):
            for wire, s in (("pg", settings.with_(protocol="http")), ("qwp", settings)):
                with read_session(s) as conn:
                    rows = QuestDBRows(conn, naming)
                    started = time.perf_counter()
                    answers[wire] = work(rows)
                    best[wire] = min(best.get(wire, float("inf")), time.perf_counter() - started)
        for key, a in answers["pg"].items():
            b = answers["qwp"][key]
            same = a.equals(b) if hasattr(a, "equals") else a == b
            if not same:
                print(f"DIFFERENT answers for {key}")
                return 1
        read_rows = sum(answers["pg"]["read", s.base_name].num_rows for s in columns)
        print(f"{'wire':>5} {'best s':>7} {'rows read/s':>12}")
        for wire in ("pg", "qwp"):
            print(f"{wire:>5} {best[wire]:>7.2f} {read_rows / best[wire]:>12,.0f}")
        print(
            f"qwp saves {1 - best['qwp'] / best['pg']:.0%} of the read time ({best['pg'] / best['qwp']:.1f}x); answers identical"
        )
        return 0
    finally:
        for schema in engine.schemas:
            sink._execute(f"DROP TABLE IF EXISTS {naming.name(schema)}", naming.name(schema))
        sink._execute(f"DROP TABLE IF EXISTS {sink.ledger_name}", sink.ledger_name)
        sink.close()


if __name__ == "__main__":
    sys.exit(main())

"""The stylised facts (docs/data-model.md#realism-bands) of a generated day of each market, and what measuring them
costs.

    python -m bench.bench_facts [--profile light|default|sparse] [--markets fx,equities] [--pictures DIR]
                                [--window START/END]

For each market, in a fresh process: generate a full day (FX: 24 UTC hours of a weekday; equities:
the NYSE session day from the 04:00 pre-open to the 20:00 end of the post-close, New York time) into
a temporary Parquet dataset with 3-level books, then print the facts table. Rates: ``light`` is the
demo profile (FX market_data 100-300/s so the seasonality can show); ``sparse`` the low rates the
realism issue measured at (FX 100-300 quotes/s, equities 300-500 quotes/s and 30-60 trades/s; 5-level books, seed 7); ``default`` the product
defaults (hundreds of millions of rows: minutes of CPU and tens of GB of disk).

Cost columns: generation + Parquet write rows/s (all tables, per core CPU), facts rows/s, and the ratio of the facts
pass to a plain read of the same columns of the same dataset in the same run (the ceiling: the
facts cannot read faster than the reader), plus the peak memory of each process. ``--window`` (ISO
times, e.g. ``2025-11-11T12:00:00Z/2025-11-11T15:00:00Z``) measures part of the day instead, for the
cost columns; facts that need the whole day then fail as unmeasured.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from bench.common import RATE_PROFILES, profile_settings  # noqa: E402  (after the thread limits, as it loads numpy)

DAY = "2025-11-11"  # a Tuesday and an NYSE trading day
LEVELS = 3  # book depth unless the profile names its own


def day_window(market: str):
    """The full day of ``market`` on DAY."""
    import datetime as dt

    from mkt_pipeline.core.timeline import US_PER_S, Window

    if market == "fx":
        start = Window.from_iso(f"{DAY}T00:00:00Z", f"{DAY}T00:00:01Z").start_us
        return Window(start, start + 86400 * US_PER_S)
    from mkt_pipeline.equities.session import trading_day

    session = trading_day(dt.date.fromisoformat(DAY))
    return Window(session.pre_open_s * US_PER_S, session.post_end_s * US_PER_S)


def generate_day(market: str, profile: str, root: str, window=None) -> dict:
    """Generate ``window`` (default: the market's full day) into a Parquet dataset at ``root``; rows and seconds."""
    import time

    from mkt_pipeline.markets import build_engine, market_references
    from mkt_pipeline.run.ingest import run_window
    from mkt_pipeline.settings import GENERATION_FLAGS
    from mkt_pipeline.sinks.parquet import ParquetSink

    window = window or day_window(market)
    values = {f.name: f.default for f in GENERATION_FLAGS[market]}
    values.update(profile_settings(profile, market, levels=LEVELS))
    engine = build_engine(market, values, market_references(market, window, offline=True))
    sink = ParquetSink(root)
    sink.prepare(engine.schemas)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_window(engine, sink, window, chunk_seconds=3600, in_process=False)
    return {
        "rows": sum(result.stats.rows.values()),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "values": values,
    }


def parse_window(text: str):
    """``START/END`` (ISO times) as a Window; empty: None (the market's full day)."""
    from mkt_pipeline.core.timeline import Window

    if not text:
        return None
    start, sep, end = text.partition("/")
    if not sep:
        raise SystemExit(f"--window: expected START/END in ISO time, got {text!r}")
    try:
        return Window.from_iso(start, end)
    except ValueError as exc:
        raise SystemExit(f"--window: {exc}") from None


def child(market: str, profile: str, pictures: str, window_text: str = "") -> dict:
    import resource
    import tempfile
    import time

    from mkt_pipeline.core import facts as cf
    from mkt_pipeline.core.tables import EQUITIES_TABLES, FX_TABLES
    from mkt_pipeline.run.facts import SLICE_S, draw_pictures, fx_rate_spans, measure_dataset
    from mkt_pipeline.sinks.parquet import ParquetSink
    from mkt_pipeline.sinks.stored_rows import ParquetRows

    with tempfile.TemporaryDirectory(prefix="bench-facts-") as root:
        window = parse_window(window_text) or day_window(market)
        gen = generate_day(market, profile, root, window)
        columns = (
            dict(zip(FX_TABLES, cf.FX_COLUMNS.values()))
            if market == "fx"
            else dict(zip(EQUITIES_TABLES, cf.EQUITIES_COLUMNS.values()))
        )
        rows = ParquetRows(ParquetSink(root))
        started = time.perf_counter()
        read_rows = sum(
            rows.read(schema, piece, cols).num_rows
            for piece in window.split(SLICE_S)
            for schema, cols in columns.items()
        )
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        report = measure_dataset(
            market,
            ParquetRows(ParquetSink(root)),
            window,
            offline=True,
            rate_spans=fx_rate_spans(gen["values"]) if market == "fx" else None,
        )
        facts_s = time.perf_counter() - started
        paths = [str(p) for p in draw_pictures(report, pictures)] if pictures else []
    return {
        "market": market,
        "generated_rows": gen["rows"],
        "generation_rows_per_s": gen["rows"] / gen["cpu_seconds"],
        "read_rows_per_s": read_rows / read_s,
        "facts_rows_per_s": read_rows / facts_s,
        "facts_seconds": facts_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "table": report.table(),
        "passed": report.passed,
        "facts": len(report.facts) + len(report.market_facts),
        "pictures": paths,
    }


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(RATE_PROFILES), default="light")
    parser.add_argument("--markets", default="fx,equities", help="comma-separated: fx, equities")
    parser.add_argument("--pictures", default="", help="folder for the PNG pictures (none when empty)")
    parser.add_argument("--window", default="", help="START/END in ISO time (default: the market's full day)")
    parser.add_argument("--child", nargs=4, metavar=("MARKET", "PROFILE", "PICTURES", "WINDOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # numpy scalars (a band test on a numpy value is a numpy bool) as plain numbers
        print(json.dumps(child(*args.child), default=lambda o: o.item() if hasattr(o, "item") else str(o)))
        return
    parse_window(args.window)  # a malformed window fails here, before anything is generated
    from bench.common import run_isolated

    results = []
    for market in args.markets.split(","):
        r = run_isolated("bench.bench_facts", market, args.profile, args.pictures, args.window)
        results.append(r)
        print(r["table"])
        print()
        for path in r["pictures"]:
            print(f"  picture: {path}")
    print(
        f"{'market':<9} {'rows':>12} {'write rows/s':>12} {'read rows/s':>12} {'facts rows/s':>13} {'ratio':>6} {'facts s':>8} {'peak MB':>8} {'pass':>6}"
    )
    for r in results:
        print(
            f"{r['market']:<9} {r['generated_rows']:>12,} {r['generation_rows_per_s']:>12,.0f} {r['read_rows_per_s']:>12,.0f} "
            f"{r['facts_rows_per_s']:>13,.0f} {r['facts_rows_per_s'] / r['read_rows_per_s']:>6.2f} {r['facts_seconds']:>8.1f} "
            f"{r['peak_rss_mb']:>8,.0f} {r['passed']:>3}/{r['facts']}"
        )


if __name__ == "__main__":
    main()

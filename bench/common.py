"""Helpers shared by the benchmarks (and the tests that drive a server the same way): timing an engine run
in a fresh process, reporting peak memory, and the QuestDB a bench writes into."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from mkt_pipeline.core.tables import BookColumn, SymbolColumn, TableBatch, UuidColumn

# Rate profiles of the realism measurements, shared by bench_facts and the facts tests: ``light`` (the demo
# rates with FX market_data 100-300/s so the seasonality can show), ``default`` (the product defaults),
# ``sparse`` (the low rates the realism issue measured at). A profile may name its own depth and seed.
RATE_PROFILES = {
    "light": {
        "fx": dict(
            market_data_min_eps=100,
            market_data_max_eps=300,
            core_min_eps=60,
            core_max_eps=90,
            orders_min_per_sec=5,
            orders_max_per_sec=30,
        ),
        "equities": dict(market_data_min_eps=800, market_data_max_eps=2000, trades_min_eps=300, trades_max_eps=800),
    },
    "default": {"fx": {}, "equities": {}},
    # the sparse rates the realism issue measured at (the facts must hold across the seeds' ranges): FX quotes 100-300/s, core 60-80/s, orders 5-30/s, 5-level books, seed 7
    "sparse": {
        "fx": dict(
            market_data_min_eps=100,
            market_data_max_eps=300,
            core_min_eps=60,
            core_max_eps=80,
            orders_min_per_sec=5,
            orders_max_per_sec=30,
            seed=7,
            levels=5,
        ),
        "equities": dict(
            market_data_min_eps=300, market_data_max_eps=500, trades_min_eps=30, trades_max_eps=60, seed=7, levels=5
        ),
    },
}


def profile_settings(profile: str, market: str, levels: int = 3) -> dict:
    """Engine config values of a rate profile for ``market``: its rates, its seed if it names one, and its book
    depth (``levels`` unless the profile names its own) as min and max levels."""
    settings = dict(RATE_PROFILES[profile][market])
    depth = settings.pop("levels", levels)
    return {**settings, "min_levels": depth, "max_levels": depth}


def batch_nbytes(batch: TableBatch) -> int:
    """Bytes of the generated column arrays (what a sink has to move)."""
    total = 0
    for col in batch.columns.values():
        if isinstance(col, BookColumn):
            total += col.values.nbytes + col.depth.nbytes
        elif isinstance(col, SymbolColumn):
            total += col.codes.nbytes
        elif isinstance(col, UuidColumn):
            total += col.hi.nbytes + col.lo.nbytes
        else:
            total += np.asarray(col).nbytes
    return total


def time_generation(engine, window) -> dict:
    """Generate ``window`` once (after a short warm-up) and return rows, bytes and seconds of the first table."""
    next(iter(engine.generate(type(window)(window.start_us - 5_000_000, window.start_us))))
    rows = nbytes = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for batches in engine.generate(window):
        rows += len(batches[0])
        nbytes += batch_nbytes(batches[0])
    return {
        "rows": rows,
        "bytes": nbytes,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_isolated(module: str, *args: str, source: str | None = None) -> dict:
    """Run ``python -m module --child args`` so peak memory is measured per case; with ``source`` (another
    checkout of the project) its code runs instead of this one's, under the same interpreter."""
    env = None
    if source:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=source,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def generation_bench_main(doc: str, module: str, child, targets: dict[int, int | None], default_seconds: int) -> None:
    """Command line of a generation benchmark: one isolated process per book depth, one table row each.

    ``--against DIR`` measures another checkout of the project (e.g. a ``git worktree`` of an older commit)
    side by side: ``--rounds`` rounds, each running every case of both trees in turn (which one goes first
    alternates), so both see the same machine load; the medians and their ratio are printed."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=default_seconds, help="simulated seconds per case")
    parser.add_argument("--against", default="", help="another checkout of the project to measure side by side")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds with --against (medians)")
    parser.add_argument("--child", nargs=2, type=int, metavar=("LEVELS", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.against:
        _side_by_side(module, targets, args.seconds, os.path.abspath(args.against), args.rounds)
        return
    print(f"{'levels':>6} {'rows':>11} {'rows/s':>12} {'MB/s':>8} {'peak MB':>8} {'target':>10} {'ratio':>6}")
    for levels, target in targets.items():
        r = run_isolated(module, str(levels), str(args.seconds))
        rate = r["rows"] / r["cpu_seconds"]
        print(
            f"{levels:>6} {r['rows']:>11,} {rate:>12,.0f} {r['bytes'] / r['cpu_seconds'] / 1e6:>8,.0f} "
            f"{r['peak_rss_mb']:>8,.0f} {(f'{target:,}' if target else '-'):>10} {(f'{rate / target:.2f}' if target else '-'):>6}"
        )


QUESTDB_VARIABLES = (
    "QUESTDB_HOST",
    "QUESTDB_HTTP_PORT",
    "QUESTDB_PG_PORT",
    "QUESTDB_ILP_TCP_PORT",
    "QUESTDB_USER",
    "QUESTDB_PASSWORD",
)


def questdb_env() -> dict[str, str]:
    """The ``QUESTDB_*`` variables that are set: where the bench's QuestDB is, for the processes it starts."""
    return {n: os.environ[n] for n in QUESTDB_VARIABLES if os.environ.get(n)}


def questdb_connect():
    """A psycopg connection (autocommit) to the bench's QuestDB (``QUESTDB_*``, else the server's defaults)."""
    import psycopg

    return psycopg.connect(
        host=os.environ.get("QUESTDB_HOST", "127.0.0.1"),
        port=int(os.environ.get("QUESTDB_PG_PORT", "8812")),
        user=os.environ.get("QUESTDB_USER", "admin"),
        password=os.environ.get("QUESTDB_PASSWORD", "quest"),
        dbname="qdb",
        autocommit=True,
    )


def drop_suffix(conn, suffix: str) -> None:
    """Drop every materialized view, then every table, whose name ends with ``suffix``."""
    views = [
        r[0] for r in conn.execute("SELECT view_name FROM materialized_views()").fetchall() if r[0].endswith(suffix)
    ]
    # dependants first: longer chains were created later, so drop in reverse creation order
    for name in sorted(views, key=len, reverse=True):
        conn.execute(f"DROP MATERIALIZED VIEW IF EXISTS {name}")
    for (name,) in conn.execute("SELECT table_name FROM tables()").fetchall():
        if name.endswith(suffix):
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def _side_by_side(module: str, targets: dict[int, int | None], seconds: int, other: str, rounds: int) -> None:
    """Rows/s per core of this tree and of ``other``, interleaved round by round; medians and their ratio."""
    rates: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        for levels in targets:
            sides = [("this", None), ("other", other)]
            for name, source in sides if r % 2 == 0 else sides[::-1]:
                got = run_isolated(module, str(levels), str(seconds), source=source)
                rates.setdefault((name, levels), []).append(got["rows"] / got["cpu_seconds"])
                load = os.getloadavg()[0]
                print(
                    f"round {r + 1} levels {levels:>3} {name:<5} {rates[(name, levels)][-1]:>12,.0f} rows/s  load {load:.1f}"
                )
    print(f"other tree: {other}")
    print(f"{'levels':>6} {'this rows/s':>12} {'other rows/s':>13} {'this/other':>11}  (medians of {rounds} rounds)")
    for levels in targets:
        this, base = statistics.median(rates[("this", levels)]), statistics.median(rates[("other", levels)])
        print(f"{levels:>6} {this:>12,.0f} {base:>13,.0f} {this / base - 1:>+10.1%}")

"""Equities generation-only throughput: equities_market_data rows/s and MB/s per core, and peak memory.

    python -m bench.bench_equities [--seconds 120]

Cases: 3 and 40 book levels at the default rates (1,000–15,000 quotes/s, 800–1,100 trades/s), in
continuous NYSE trading (2025-07-01 10:00 ET), trades generated too but not counted. Each case runs
in a fresh single-threaded process, so rows/s is per core. Target (issue 3): >= 300,000
market_data rows/s per core at 40 levels; ratio = measured / target.
"""

from __future__ import annotations

import argparse
import json
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TARGETS = {3: None, 40: 300_000}  # the issue sets a target at 40 levels only


def child(levels: int, seconds: int) -> dict:
    from bench.common import time_generation
    from mkt_pipeline.equities_engine import EquitiesConfig, EquitiesEngine, load_equities_references
    from mkt_pipeline.timeline import US_PER_S, Window

    start = Window.from_iso("2025-07-01T14:00:00Z", "2025-07-01T14:00:01Z").start_us
    window = Window(start, start + seconds * US_PER_S)
    engine = EquitiesEngine(EquitiesConfig(min_levels=levels, max_levels=levels), load_equities_references(window, offline=True))
    return time_generation(engine, window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=120, help="simulated seconds per case (~8,000 market_data rows/s)")
    parser.add_argument("--child", nargs=2, type=int, metavar=("LEVELS", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    from bench.common import run_isolated

    print(f"{'levels':>6} {'rows':>11} {'rows/s':>12} {'MB/s':>8} {'peak MB':>8} {'target':>10} {'ratio':>6}")
    for levels, target in TARGETS.items():
        r = run_isolated("bench.bench_equities", str(levels), str(args.seconds))
        rate = r["rows"] / r["cpu_seconds"]
        print(
            f"{levels:>6} {r['rows']:>11,} {rate:>12,.0f} {r['bytes'] / r['cpu_seconds'] / 1e6:>8,.0f} "
            f"{r['peak_rss_mb']:>8,.0f} {(f'{target:,}' if target else '-'):>10} {(f'{rate / target:.2f}' if target else '-'):>6}"
        )


if __name__ == "__main__":
    main()

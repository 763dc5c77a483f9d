"""FX generation-only throughput: market_data rows/s and MB/s per core, and peak memory, at 3 and 40 levels.

    python -m bench.bench_fx [--seconds 300]

Each case runs in a fresh single-threaded process, so rows/s is per core. Targets (issue 2):
>= 1,000,000 rows/s at 3 levels and >= 300,000 rows/s at 40 levels; the ratio column is
measured / target so numbers compare across machines.
"""

from __future__ import annotations

import argparse
import json
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TARGETS = {3: 1_000_000, 40: 300_000}


def child(levels: int, seconds: int) -> dict:
    from bench.common import time_generation
    from mkt_pipeline.fx_engine import FxConfig, FxEngine
    from mkt_pipeline.markets import market_references
    from mkt_pipeline.timeline import US_PER_S, Window

    start = Window.from_iso("2025-11-11T08:00:00Z", "2025-11-11T08:00:01Z").start_us
    window = Window(start, start + seconds * US_PER_S)
    engine = FxEngine(FxConfig(min_levels=levels, max_levels=levels), market_references("fx", window, offline=True))
    return time_generation(engine, window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=300, help="simulated seconds per case (default rates: ~8,100 rows/s)")
    parser.add_argument("--child", nargs=2, type=int, metavar=("LEVELS", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    from bench.common import run_isolated

    print(f"{'levels':>6} {'rows':>11} {'rows/s':>12} {'MB/s':>8} {'peak MB':>8} {'target':>10} {'ratio':>6}")
    for levels, target in TARGETS.items():
        r = run_isolated("bench.bench_fx", str(levels), str(args.seconds))
        rate = r["rows"] / r["cpu_seconds"]
        print(
            f"{levels:>6} {r['rows']:>11,} {rate:>12,.0f} {r['bytes'] / r['cpu_seconds'] / 1e6:>8,.0f} "
            f"{r['peak_rss_mb']:>8,.0f} {target:>10,} {rate / target:>6.2f}"
        )


if __name__ == "__main__":
    main()

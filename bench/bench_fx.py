"""FX generation-only throughput: market_data rows/s and MB/s per core, and peak memory, at 3 and 40 levels.

    python -m bench.bench_fx [--seconds 300]

Each case runs in a fresh single-threaded process, so rows/s is per core. Targets (issue 2):
>= 1,000,000 rows/s at 3 levels and >= 300,000 rows/s at 40 levels; the ratio column is
measured / target so numbers compare across machines.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TARGETS = {3: 1_000_000, 40: 300_000}


def child(levels: int, seconds: int) -> dict:
    from bench.common import time_generation
    from mkt_pipeline.core.timeline import US_PER_S, Window
    from mkt_pipeline.fx.engine import FxConfig, FxEngine
    from mkt_pipeline.markets import market_references

    start = Window.from_iso("2025-11-11T08:00:00Z", "2025-11-11T08:00:01Z").start_us
    window = Window(start, start + seconds * US_PER_S)
    engine = FxEngine(FxConfig(min_levels=levels, max_levels=levels), market_references("fx", window, offline=True))
    return time_generation(engine, window)


def main() -> None:
    from bench.common import generation_bench_main

    generation_bench_main(__doc__, "bench.bench_fx", child, TARGETS, default_seconds=300)


if __name__ == "__main__":
    main()

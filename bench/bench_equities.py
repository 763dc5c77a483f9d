"""Equities generation-only throughput: equities_market_data rows/s and MB/s per core, and peak memory.

    python -m bench.bench_equities [--seconds 120] [--against DIR [--rounds 5]]

Cases: 3 and 40 book levels at the default rates (1,000–15,000 quotes/s, 800–1,100 trades/s), in
continuous NYSE trading (2025-07-01 10:00 ET), trades generated too but not counted. Each case runs
in a fresh single-threaded process, so rows/s is per core. Target (issue 3): >= 300,000
market_data rows/s per core at 40 levels; ratio = measured / target.

``--against DIR`` measures another checkout side by side (e.g. ``git worktree add ../before <commit>``):
interleaved rounds under the same load, medians of each tree and this tree's difference.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TARGETS = {3: None, 40: 300_000}  # the issue sets a target at 40 levels only


def child(levels: int, seconds: int) -> dict:
    from bench.common import time_generation
    from mkt_pipeline.core.timeline import US_PER_S, Window
    from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine
    from mkt_pipeline.markets import market_references

    start = Window.from_iso("2025-07-01T14:00:00Z", "2025-07-01T14:00:01Z").start_us
    window = Window(start, start + seconds * US_PER_S)
    engine = EquitiesEngine(
        EquitiesConfig(min_levels=levels, max_levels=levels), market_references("equities", window, offline=True)
    )
    return time_generation(engine, window)


def main() -> None:
    from bench.common import generation_bench_main

    generation_bench_main(__doc__, "bench.bench_equities", child, TARGETS, default_seconds=120)


if __name__ == "__main__":
    main()

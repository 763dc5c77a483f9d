"""Drive an engine into a sink over a window, chunk by chunk, and report what was written."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from mkt_pipeline.engine import Engine
from mkt_pipeline.sinks import Sink, WriteStats
from mkt_pipeline.timeline import Window

DEFAULT_CHUNK_SECONDS = 900


@dataclass
class RunResult:
    window: Window
    stats: WriteStats = field(default_factory=WriteStats)
    elapsed_s: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.stats.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.elapsed_s if self.elapsed_s > 0 else 0.0


ProgressFn = Callable[[RunResult, Window], None]


def run_window(
    engine: Engine,
    sink: Sink,
    window: Window,
    chunk_seconds: int = DEFAULT_CHUNK_SECONDS,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Generate ``window`` into ``sink`` one chunk (a committed sink window) at a time."""
    result = RunResult(window)
    started = time.perf_counter()
    for chunk in window.split(chunk_seconds):
        with sink.window(chunk) as writer:
            chunk_stats = WriteStats()
            for batches in engine.generate(chunk):
                for batch in batches:
                    writer.write(batch)
                    chunk_stats.rows[sink.naming.name(batch.schema)] += len(batch)
        result.stats.add(chunk_stats)
        result.elapsed_s = time.perf_counter() - started
        if progress is not None:
            progress(result, chunk)
    result.elapsed_s = time.perf_counter() - started
    return result

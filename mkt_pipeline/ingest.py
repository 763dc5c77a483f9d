"""Drive an engine into a sink over a window, chunk by chunk, and report what was written.

Generation and sending overlap: a producer thread runs the engine and hands batches over a bounded
queue to the calling thread, which owns the sink. numpy and the ILP client's network I/O release the
GIL, so the engine computes the next batches while the previous ones are encoded and sent. The queue
bound keeps memory flat: at most ``queue_depth`` batch groups wait, plus one being generated and one
being written.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from mkt_pipeline.engine import Engine
from mkt_pipeline.sinks import Sink, WriteStats
from mkt_pipeline.timeline import Window

DEFAULT_CHUNK_SECONDS = 900
DEFAULT_QUEUE_DEPTH = 1


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

_END_OF_CHUNK = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


class _Producer(threading.Thread):
    """Runs the engine over every chunk, putting batch groups and chunk markers on a queue."""

    def __init__(self, engine: Engine, chunks: list[Window], depth: int):
        super().__init__(name="mkt-generate", daemon=True)
        self.engine = engine
        self.chunks = chunks
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                for batches in self.engine.generate(chunk):
                    if not self._put(batches):
                        return
                if not self._put(_END_OF_CHUNK):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failed(exc))

    def next(self):
        item = self.queue.get()
        if isinstance(item, _Failed):
            raise item.exc
        return item


def run_window(
    engine: Engine,
    sink: Sink,
    window: Window,
    chunk_seconds: int = DEFAULT_CHUNK_SECONDS,
    progress: ProgressFn | None = None,
    queue_depth: int = DEFAULT_QUEUE_DEPTH,
) -> RunResult:
    """Generate ``window`` into ``sink`` one chunk (a committed sink window) at a time."""
    result = RunResult(window)
    started = time.perf_counter()
    chunks = list(window.split(chunk_seconds))
    producer = _Producer(engine, chunks, queue_depth)
    producer.start()
    try:
        for chunk in chunks:
            with sink.window(chunk) as writer:
                chunk_stats = WriteStats()
                while (item := producer.next()) is not _END_OF_CHUNK:
                    for batch in item:
                        writer.write(batch)
                        chunk_stats.rows[sink.naming.name(batch.schema)] += len(batch)
            result.stats.add(chunk_stats)
            result.elapsed_s = time.perf_counter() - started
            if progress is not None:
                progress(result, chunk)
    finally:
        producer.stop.set()
        producer.join()
    result.elapsed_s = time.perf_counter() - started
    return result

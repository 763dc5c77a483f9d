"""Drive an engine into a sink over a window, chunk by chunk, and report what was written.

Generation and writing overlap: a producer runs the engine and hands batch groups over a bounded
queue to the calling thread, which owns the sink. The producer is a child process for windows big
enough to repay starting one (``generation_process``: it runs on its own core, free of the GIL the
ILP client holds while it serialises arrays) and a thread otherwise (small windows, tests, daemonic
worker processes, which may not start children). The queue bound keeps memory flat: at most
``queue_depth`` groups wait, plus one being generated and one being written.

Each chunk is recorded in the sink's ledger once all its tables are committed, and chunks the
ledger already records are not generated again (``resume``), so any driver calling ``run_window``
resumes an interrupted window without holes or duplicates.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from mkt_pipeline.core.engine import Engine
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.run.process import END_OF_CHUNK, ProcessProducer
from mkt_pipeline.run.resume import chunk_key, plan_chunks, record_chunk
from mkt_pipeline.sinks.base import Sink, WriteStats

DEFAULT_CHUNK_SECONDS = 900
DEFAULT_QUEUE_DEPTH = 1
# A child on its own core can run further ahead, through the writer's stalls, for ~10 MB of shared
# memory per group.
PROCESS_QUEUE_DEPTH = 3
# A child process costs about a second to start (imports); below this many rows a thread is as fast.
PROCESS_MIN_ROWS = 2_000_000


@dataclass
class RunResult:
    window: Window
    stats: WriteStats = field(default_factory=WriteStats)  # rows written by this run
    elapsed_s: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.stats.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


class ThreadProducer(threading.Thread):
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
                if not self._put(END_OF_CHUNK):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failed(exc))

    def next(self):
        item = self.queue.get()
        if isinstance(item, _Failed):
            raise item.exc
        return item

    def close(self) -> None:
        self.stop.set()
        self.join()


def wants_process(engine: Engine, window: Window) -> bool:
    """Whether ``window`` holds enough rows to generate it in a child process (and one may be started)."""
    if mp.current_process().daemon:
        return False
    return engine.max_rows_per_second * window.seconds >= PROCESS_MIN_ROWS


def _write_group(writer, group: list, sink: Sink, stats: WriteStats) -> None:
    for batch in group:
        writer.write(batch)
        stats.rows[sink.naming.name(batch.schema)] += len(batch)


def run_window(
    engine: Engine,
    sink: Sink,
    window: Window,
    chunk_seconds: int = DEFAULT_CHUNK_SECONDS,
    queue_depth: int = DEFAULT_QUEUE_DEPTH,
    in_process: bool | None = None,
    *,
    skip_recorded: bool = True,
) -> RunResult:
    """Generate ``window`` into ``sink`` one chunk (a committed sink window) at a time; what was written.

    ``in_process`` picks the producer: True a child process, False a thread, None by ``wants_process``.
    Chunks the sink's ledger records as stored are skipped unless ``skip_recorded`` is False
    (``--overwrite``); every chunk written is recorded once committed.
    """
    result = RunResult(window)
    started = time.perf_counter()
    for _chunk, chunk_stats in iter_window(
        engine, sink, window, chunk_seconds, queue_depth, in_process, skip_recorded=skip_recorded
    ):
        result.stats.add(chunk_stats)
    result.elapsed_s = time.perf_counter() - started
    return result


def iter_window(
    engine: Engine,
    sink: Sink,
    window: Window,
    chunk_seconds: int = DEFAULT_CHUNK_SECONDS,
    queue_depth: int = DEFAULT_QUEUE_DEPTH,
    in_process: bool | None = None,
    *,
    skip_recorded: bool = True,
) -> Iterator[tuple[Window, WriteStats]]:
    """``run_window`` chunk by chunk: yields ``(chunk, its rows per table)`` once each chunk is committed
    and recorded. Closing the iterator early stops the producer."""
    key = chunk_key(engine)
    chunks = plan_chunks(sink, key, window, chunk_seconds, skip_recorded).pending
    if not chunks:
        return
    if in_process is None:
        in_process = wants_process(engine, window)
    if in_process:
        producer = ProcessProducer(engine, chunks, max(queue_depth, PROCESS_QUEUE_DEPTH))
    else:
        producer = ThreadProducer(engine, chunks, queue_depth)
    producer.start()
    try:
        for chunk in chunks:
            with sink.window(chunk) as writer:
                chunk_stats = WriteStats()
                while (group := producer.next()) is not END_OF_CHUNK:
                    _write_group(writer, group, sink, chunk_stats)
                    del group  # a process producer reuses a group's shared memory once nothing holds it
            record_chunk(sink, key, chunk, chunk_stats)
            yield chunk, chunk_stats
    finally:
        producer.close()

"""Faster-than-life: a planned window in chunks, as fast as the machine allows, on one or more processes.

One implementation for every driver: the CLI plans and runs its window here, and so can a Dagster
step. Chunks are independent (time is stateless), so worker processes each take whole chunks and
own distinct time ranges. The window is planned from the command alone (never from the stored
rows), and only the chunks the sink's ledger does not record as stored are sent (``resume``), so a
re-run after an interruption writes exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, TextIO

import numpy as np

from mkt_pipeline.core.engine import ConfigError, Engine
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.timeline import US_PER_S, Window, format_us
from mkt_pipeline.run.ingest import iter_window, run_window
from mkt_pipeline.run.progress import ObservedSink, Progress
from mkt_pipeline.run.resume import chunk_key, latest_plan_end, plan_chunks, record_plan, unfinished_plan
from mkt_pipeline.sinks.base import Sink, WriteStats
from mkt_pipeline.sinks.ledger import CHUNK, ChunkKey, chunk_ranges, covers

PLAN_BLOCK_S = 3600  # seconds counted at once when planning a window by row count


class ChunkDone(NamedTuple):
    """A chunk this run committed and recorded, with its own rows by table name."""

    chunk: Window
    rows: dict[str, int]


def stored_resume_us(engine: Engine, sink: Sink) -> int | None:
    """First microsecond not yet stored in every table that holds rows each second.

    The minimum, not the maximum: a run interrupted between tables (or with parallel chunks
    finishing out of order) must resume where the least advanced table stops. Going back a little
    is safe because writes are idempotent. Trades are left out: they may legitimately end earlier.
    """
    points = [sink.resume_after_us(s) for s in engine.dense_schemas]
    return None if any(p is None for p in points) else min(points)


def plan_window(
    engine: Engine,
    sink: Sink,
    *,
    start_us: int | None,
    end_us: int | None,
    max_market_data_rows: int,
    overwrite: bool = False,
    incremental: bool = False,
    now_us: int | None = None,
    log: TextIO | None = None,
) -> Window | None:
    """The window to generate, from the command alone: start, then end by time or by count.

    Without ``start_us`` the run starts now; with ``incremental`` it finishes the previous run's
    window if that was interrupted, else starts where that window ended (where the stored rows end
    when no run was recorded). The window ends at ``end_us`` or at the end of the second in which
    ``max_market_data_rows`` market_data rows are reached, whichever comes first. None when the
    window is empty. Which of its chunks are already stored is for ``run_chunks`` to find out.
    """
    now_us = int(time.time()) * US_PER_S if now_us is None else now_us
    out = log or sys.stderr
    if start_us is None and incremental and not overwrite:
        key = chunk_key(engine)
        unfinished = unfinished_plan(sink, key)
        if unfinished is not None:
            print(f"resuming the interrupted run of {unfinished}", file=out)
            return unfinished  # planned by the same command: its end already honours --end_ts and the count
        start_us = latest_plan_end(sink, key) or stored_resume_us(engine, sink)
        if start_us is not None:
            print(f"continuing after the stored data: start {format_us(start_us)}", file=out)
    start_us = now_us if start_us is None else start_us
    if end_us is not None and end_us <= start_us:
        return None
    limit_s = None if end_us is None else -(-end_us // US_PER_S)
    total, s = 0, start_us // US_PER_S
    while total < max_market_data_rows and (limit_s is None or s < limit_s):
        step = PLAN_BLOCK_S if limit_s is None else min(PLAN_BLOCK_S, limit_s - s)
        running = total + np.cumsum(engine.planned_per_second(s, s + step)["market_data"])
        reached = int(np.searchsorted(running, max_market_data_rows))  # first second at or past the target
        if reached < step:
            total, s = int(running[reached]), s + reached + 1
            break
        total, s = int(running[-1]), s + step
    count_end = s * US_PER_S
    return Window(start_us, count_end if end_us is None else min(end_us, count_end))


@dataclass(frozen=True)
class WorkerFactories:
    """How a worker process builds its own engine and sink (picklable: module-level callables).

    ``engine(references)`` builds the engine from the run's reference prices; ``sink()`` opens a
    sink; ``scrub(text)`` removes secrets from an error before it crosses to the parent.
    """

    engine: Callable[[ReferencePrices], Engine]
    sink: Callable[[], Sink]
    scrub: Callable[[str], str] = str


def run_chunks(engine: Engine, sink: Sink, window: Window, **options) -> WriteStats:
    """``iter_chunks`` (the same arguments) to the end: the rows this run wrote, by table."""
    return total_rows(iter_chunks(engine, sink, window, **options))


def total_rows(chunks: Iterable[ChunkDone]) -> WriteStats:
    """The rows of the chunks committed, summed by table."""
    stats = WriteStats()
    for done in chunks:
        for table, n in done.rows.items():
            stats.rows[table] += n
    return stats


def iter_chunks(
    engine: Engine,
    sink: Sink,
    window: Window,
    *,
    chunk_seconds: int,
    progress: Progress,
    workers: int = 1,
    factories: WorkerFactories | None = None,
    references: ReferencePrices | None = None,
    overwrite: bool = False,
    log: TextIO | None = None,
) -> Iterator[ChunkDone]:
    """Write the chunks of ``window`` the sink's ledger does not record (all with ``overwrite``), in this
    process or on ``workers`` processes; yields each chunk this run commits, as it commits, with its own
    rows (drivers that report per hour, such as Dagster's partitions, tally them; ``run_chunks`` sums
    them). Close the iterator (``contextlib.closing``) when leaving it early: that stops the producer
    or the workers."""
    out = log or sys.stderr
    key = chunk_key(engine)
    plan = plan_chunks(sink, key, window, chunk_seconds, skip_recorded=not overwrite)
    if not plan.pending:
        print(
            f"nothing to send: every chunk of {window} is recorded as stored (use --overwrite true to regenerate it)",
            file=out,
        )
        return
    if plan.stored:
        print(
            f"{len(plan.stored)} of {plan.chunks} chunks are recorded as stored; sending the other {len(plan.pending)}",
            file=out,
        )
        progress.add(0, sum(c.seconds for c in plan.stored) * US_PER_S)
    record_plan(sink, key, window)
    if workers <= 1:
        # iter_window re-reads the ledger: a chunk a concurrent run stored meanwhile is not sent twice
        try:
            observed = ObservedSink(sink, progress.add)
            for chunk, chunk_stats in iter_window(
                engine, observed, window, chunk_seconds=chunk_seconds, skip_recorded=not overwrite
            ):
                yield ChunkDone(chunk, dict(chunk_stats.rows))
        except BaseException:
            _report_unsent(len(plan.pending), _recorded_since(sink, key, plan.pending))
            raise
        return
    if factories is None or references is None:
        raise ValueError("parallel runs need worker factories and the run's references")
    yield from iter_parallel(window, chunk_seconds, workers, factories, references, progress, chunks=plan.pending)


def iter_parallel(
    window: Window,
    chunk_seconds: int,
    workers: int,
    factories: WorkerFactories,
    references: ReferencePrices,
    progress: Progress,
    chunks: list[Window] | None = None,
) -> Iterator[ChunkDone]:
    """``chunks`` (default: all of ``window``) on ``workers`` processes; each takes whole chunks.
    Yields each chunk a worker committed, as its event arrives.

    Each worker records every chunk it commits in the ledger, so after a failure a re-run sends
    exactly the chunks no worker finished.
    """
    ctx = mp.get_context("spawn")  # no inherited threads or connections
    tasks, events, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    chunks = list(window.split(chunk_seconds)) if chunks is None else chunks
    for chunk in chunks:
        tasks.put((chunk.start_us, chunk.end_us))
    for _ in range(workers):
        tasks.put(None)
    refs = references.to_json()
    procs = [
        ctx.Process(target=_worker, args=(i, factories, refs, tasks, events, stop), name=f"mkt-worker-{i}", daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    running, error, done, transient = set(range(workers)), None, set(), True
    try:
        while running:
            try:
                kind, worker, *payload = events.get(timeout=0.5)
            except queue.Empty:
                dead = [i for i in running if procs[i].exitcode is not None]
                if dead:
                    # a worker may have queued its last events just before exiting: look again first
                    time.sleep(0.2)
                    if events.empty():
                        error = error or f"worker {dead[0]} exited with status {procs[dead[0]].exitcode}"
                        running -= set(dead)
                continue
            if kind == "rows":
                progress.add(*payload)
            elif kind == "chunk":
                done.add(payload[0])
                yield ChunkDone(Window(*payload[0]), dict(payload[1]))
            elif kind == "error":
                if error is None:
                    error, transient = payload[0], payload[1]
                stop.set()
            elif kind == "done":
                running.discard(worker)
    except KeyboardInterrupt:
        stop.set()
        error = "interrupted"
        raise
    finally:
        stop.set()
        if error:
            _report_unsent(len(chunks), done)
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    if error:
        raise WorkerError(error, transient)


class WorkerError(RuntimeError):
    """A worker process failed; ``transient`` carries the fault's class (see ``QuestDBSinkError``)."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


def _recorded_since(sink: Sink, key: ChunkKey, chunks: list[Window]) -> set[tuple[int, int]] | None:
    """Which of ``chunks`` the ledger records after a failure; None when the ledger cannot be read."""
    try:
        entries = sink.ledger_entries(key, Window(chunks[0].start_us, chunks[-1].end_us))
    except Exception:  # the server that failed the run may be gone
        return None
    ranges = chunk_ranges(e for e in entries if e.kind == CHUNK)
    return {(c.start_us, c.end_us) for c in chunks if covers(ranges, c)}


def _report_unsent(total: int, done: set[tuple[int, int]] | None) -> None:
    """After a failed run, say what a re-run will send (``done``: chunks recorded, None if unknown)."""
    if done is None:
        text = "re-run the same command to send the chunks not recorded as stored"
    else:
        text = f"{len(done)} of {total} chunks were stored and recorded; re-run the same command to send the other {total - len(done)}"
    print(f"mkt-pipeline: note: {text}", file=sys.stderr)


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type (unless it is a plain configuration error) and its message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {text}"


def _worker(worker: int, factories: WorkerFactories, references_json: dict, tasks, events, stop) -> None:
    """One worker process: its own engine and sink; takes chunks until none are left or told to stop."""
    try:
        engine = factories.engine(ReferencePrices.from_json(references_json))
        with factories.sink() as sink:
            sink.prepare(engine.schemas)
            observed = ObservedSink(sink, lambda rows, us: events.put(("rows", worker, rows, us)))
            while not stop.is_set():
                item = tasks.get()
                if item is None:
                    break
                chunk = Window(*item)
                # the parent handed out only unrecorded chunks (all of them with --overwrite)
                result = run_window(engine, observed, chunk, chunk_seconds=chunk.seconds, skip_recorded=False)
                events.put(("chunk", worker, item, dict(result.stats.rows)))
    except KeyboardInterrupt:
        pass
    except BaseException as exc:
        events.put(("error", worker, factories.scrub(one_line(exc)), bool(getattr(exc, "transient", True))))
    finally:
        events.put(("done", worker))

"""Real-time driver: generate a window at wall-clock pace, one committed second (or group) at a time.

Because rows are a pure function of absolute time, pacing is only a question of *when* each second
is generated: second ``s`` is due once ``clock() + lookahead_s >= s + 1`` (so no row is stamped
more than ``lookahead_s`` ahead of the wall clock). Every due second is written exactly once, in
order, from a cursor that only moves forward; after a stall the driver writes the backlog without
sleeping, so it catches up without gaps or overlapping seconds. Each commit is recorded in the
sink's ledger; a window run again (a retried live run) starts after the stretch recorded from its
start, never behind it. The CLI uses it for
``--mode real-time``; the Dagster live runs call ``pace_window`` for their 1-minute windows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mkt_pipeline.core.engine import Engine
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.timeline import SECONDS_PER_DAY, US_PER_S, Window, us_to_datetime
from mkt_pipeline.run.resume import chunk_key, record_chunk, recorded_rows
from mkt_pipeline.sinks.base import Sink, WriteStats
from mkt_pipeline.sinks.ledger import CHUNK, chunk_ranges, covered_from

log = logging.getLogger(__name__)

# FX rows run up to 2 s ahead of the wall clock, as in the seed script; equities rows never do.
LOOKAHEAD_S = {"fx": 2.0, "equities": 0.0}
# Stands in for "no end" in a Window (runs until stopped or a row limit).
OPEN_END_US = 253_370_764_800 * US_PER_S  # 9999-01-01T00:00:00Z
# Refreshed references never touch a day the engine may already have used: PricePath anchors
# reach one hour past the hour being written, and a block may peek one second further.
REFERENCE_PIN_MARGIN_S = 2 * 3600


@dataclass
class PaceResult:
    """What a paced run wrote: rows per table, the end of the last committed second, and why it stopped."""

    window: Window
    written_until_us: int
    stats: WriteStats = field(default_factory=WriteStats)  # rows this run wrote
    # rows the ledger records for the seconds before ``started_us`` (an earlier attempt's commits)
    recorded: WriteStats = field(default_factory=WriteStats)
    commits: int = 0
    catch_up_commits: int = 0  # commits made while more than one second was due
    market_data_rows: int = 0
    stopped: bool = False  # by stop_event (as opposed to reaching the window end or the row limit)
    limit_reached: bool = False

    @property
    def total_rows(self) -> int:
        return sum(self.stats.rows.values())

    @property
    def window_rows(self) -> dict[str, int]:
        """Rows per table of the window so far: recorded by earlier attempts plus written by this one."""
        out = dict(self.recorded.rows)
        for table, n in self.stats.rows.items():
            out[table] = out.get(table, 0) + n
        return out


CommitFn = Callable[[Window, PaceResult, float], None]
EngineUpdate = Callable[[int, Engine], Engine]


def _second_floor(us: int) -> int:
    return us // US_PER_S * US_PER_S


def pace_window(
    engine: Engine,
    sink: Sink,
    window: Window,
    lookahead_s: float = 2.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], object] | None = None,
    stop_event: threading.Event | None = None,
    *,
    max_market_data_rows: int | None = None,
    max_group_s: int = 10,
    min_commit_s: int = 1,
    stop_grace_s: float = 3.0,
    poll_s: float = 0.25,
    on_commit: CommitFn | None = None,
    update_engine: EngineUpdate | None = None,
    skip_recorded: bool = True,
) -> PaceResult:
    """Write ``window`` into ``sink`` as its seconds fall due on ``clock`` (epoch seconds).

    Commits one second at a time while keeping pace, and up to ``max_group_s`` seconds per commit
    while catching up (always one when ``max_market_data_rows`` is set, so the limit stops at the
    second that reaches it). When ``stop_event`` is set it stops starting new seconds, still writes
    the seconds the wall clock has completed (for at most ``stop_grace_s``), and returns.
    ``sleep`` defaults to waiting on ``stop_event`` so a stop wakes it at once; ``update_engine``
    may swap the engine between commits (given the next microsecond to write). ``min_commit_s``
    holds rows back until that many seconds are due (for sinks where a commit is a file, such as
    Parquet, so a live hour is not thousands of one-second files). With ``skip_recorded`` the
    cursor starts after the stretch of ``window`` the ledger records from its start.
    """
    stop_event = stop_event or threading.Event()
    wait = sleep or stop_event.wait
    lead_us = int(round(lookahead_s * US_PER_S))
    key = chunk_key(engine)
    start_us = window.start_us
    recorded = WriteStats()
    if skip_recorded:
        entries = [e for e in sink.ledger_entries(key, window) if e.kind == CHUNK]
        start_us = min(covered_from(chunk_ranges(entries), window.start_us), window.end_us)
        recorded = recorded_rows(entries, window.start_us, start_us)
    result = PaceResult(window, start_us, recorded=recorded)
    md_schema = engine.schemas[0]
    grace_until: float | None = None

    while result.written_until_us < window.end_us:
        cursor = result.written_until_us
        now = clock()
        if stop_event.is_set():
            # finish what the wall clock has completed, without lookahead, within the grace period
            grace_until = now + stop_grace_s if grace_until is None else grace_until
            due_us = min(_second_floor(int(now * US_PER_S)), window.end_us)
            if due_us <= cursor or now >= grace_until:
                result.stopped = True
                break
        else:
            due_us = min(_second_floor(int(now * US_PER_S) + lead_us), window.end_us)
            # a commit falls due when the clock reaches its end minus the lookahead
            commit_end_us = min(window.end_us, _second_floor(cursor) + max(1, min_commit_s) * US_PER_S)
            if due_us < commit_end_us:
                wait(min(poll_s, max(0.001, (commit_end_us - lead_us) / US_PER_S - now)))
                continue
        group_s = 1 if max_market_data_rows is not None else max(max_group_s, min_commit_s)
        end_us = min(due_us, _second_floor(cursor) + group_s * US_PER_S)
        if update_engine is not None:
            engine = update_engine(cursor, engine)
        chunk = Window(cursor, end_us)
        behind = due_us - end_us >= US_PER_S or end_us - cursor > US_PER_S
        md_rows = _write(engine, sink, chunk, result.stats, md_schema, key)
        result.written_until_us = end_us
        result.commits += 1
        result.catch_up_commits += int(behind)
        result.market_data_rows += md_rows
        if on_commit is not None:
            on_commit(chunk, result, clock())
        if max_market_data_rows is not None and result.market_data_rows >= max_market_data_rows:
            result.limit_reached = True
            break
    return result


def _write(engine: Engine, sink: Sink, chunk: Window, stats: WriteStats, md_schema, key) -> int:
    """Generate and commit one window; returns its market_data row count."""
    md_rows = 0
    written = WriteStats()
    with sink.window(chunk) as writer:
        for batches in engine.generate(chunk):
            for batch in batches:
                writer.write(batch)
                written.rows[sink.naming.name(batch.schema)] += len(batch)
                if batch.schema is md_schema:
                    md_rows += len(batch)
    record_chunk(sink, key, chunk, written)
    stats.add(written)  # counted only once the window has committed
    return md_rows


# --------------------------------------------------------------------------------------------
# reference refresh (off the hot path)


def pin_references(current: ReferencePrices, fresh: ReferencePrices, next_us: int) -> ReferencePrices:
    """``current`` with ``fresh`` closes adopted only for days the stream cannot have used yet.

    Days up to the day of ``next_us + REFERENCE_PIN_MARGIN_S`` keep their current closes, so rows
    already written stay a pure function of the recorded references and prices stay continuous.
    """
    pinned_through = us_to_datetime(next_us + REFERENCE_PIN_MARGIN_S * US_PER_S).date().isoformat()
    later = {day: closes for day, closes in fresh.closes.items() if day > pinned_through}
    if not later or all(current.closes.get(day) == closes for day, closes in later.items()):
        return current
    return current.merged(ReferencePrices(fresh.symbols, later, fresh.sources))


def live_reference_window(now_s: float) -> Window:
    """Days a live stream may need: yesterday's close (added by the loader) through tomorrow."""
    day_start = int(now_s) // SECONDS_PER_DAY * SECONDS_PER_DAY
    return Window(day_start * US_PER_S, (day_start + 2 * SECONDS_PER_DAY) * US_PER_S)


class ReferenceRefresher:
    """Background thread that reloads reference prices every ``interval_s``.

    The hot path only calls ``engine_update`` between commits: it swaps in a new engine (via
    ``make_engine``) when fresh references change a day the stream has not reached yet. Failures
    of ``load`` are logged and retried at the next interval; the stream keeps its references.
    """

    def __init__(
        self,
        load: Callable[[], ReferencePrices],
        make_engine: Callable[[ReferencePrices], Engine],
        interval_s: float,
        stop_event: threading.Event | None = None,
    ):
        self.load = load
        self.make_engine = make_engine
        self.interval_s = interval_s
        self.stop_event = stop_event or threading.Event()
        self.refreshes = 0
        self._fresh: ReferencePrices | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mkt-reference-refresh", daemon=True)

    def start(self) -> ReferenceRefresher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def _run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                fresh = self.load()
            except Exception as exc:  # a refresh is best effort: keep the current references
                log.warning("reference refresh failed: %s", exc)
                continue
            with self._lock:
                self._fresh = fresh
                self.refreshes += 1

    def engine_update(self, next_us: int, engine: Engine) -> Engine:
        """The engine to use from ``next_us`` on (the same object unless a refresh changed a future day)."""
        with self._lock:
            fresh, self._fresh = self._fresh, None
        if fresh is None:
            return engine
        references = pin_references(engine.references, fresh, next_us)
        if references is engine.references:
            return engine
        log.info("reference prices refreshed for days after %s", us_to_datetime(next_us).date())
        return self.make_engine(references)

"""Which chunks of a window still need sending (docs/faults.md#resumption): the sink's ledger, keyed by what makes the
rows.

Every driver goes through here (``run_window``, the worker pool of ``faster``, ``pace_window``), so
the CLI, Dagster's hourly steps and its live windows resume the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable

from mkt_pipeline.core.engine import Engine
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.sinks.base import Sink, WriteStats
from mkt_pipeline.sinks.ledger import CHUNK, PLAN, ChunkKey, LedgerEntry, chunk_ranges, covers

# Bump when generation changes the rows produced for the same settings, so older ledger entries
# no longer count as stored.
GENERATOR_VERSION = 1


def chunk_key(engine: Engine) -> ChunkKey:
    """The ledger key of an engine's rows: market, seed and a digest of every generation setting.

    Reference prices are left out: they are recorded per window and reloaded from the cache, and
    a chunk stored with other references is still a stored chunk (re-sending it would not replace
    rows whose timestamps differ).
    """
    config = dataclasses.asdict(engine.config)
    text = json.dumps({"market": engine.market, "version": GENERATOR_VERSION, **config}, sort_keys=True, default=str)
    return ChunkKey(engine.market, int(config["seed"]), hashlib.sha256(text.encode()).hexdigest()[:16])


@dataclasses.dataclass
class ChunkPlan:
    """The chunks of a window split into those to send and those the ledger records as stored."""

    pending: list[Window]
    stored: list[Window]

    @property
    def chunks(self) -> int:
        return len(self.pending) + len(self.stored)


def plan_chunks(sink: Sink, key: ChunkKey, window: Window, chunk_seconds: int, skip_recorded: bool = True) -> ChunkPlan:
    """Split ``window`` into chunks; with ``skip_recorded``, leave out those the ledger covers."""
    chunks = list(window.split(chunk_seconds))
    if not skip_recorded:
        return ChunkPlan(chunks, [])
    ranges = chunk_ranges(e for e in sink.ledger_entries(key, window) if e.kind == CHUNK)
    pending = [c for c in chunks if not covers(ranges, c)]
    stored = [c for c in chunks if covers(ranges, c)]
    return ChunkPlan(pending, stored)


def recorded_rows(entries: Iterable[LedgerEntry], start_us: int, end_us: int) -> WriteStats:
    """Rows per table the ledger records for the chunks inside ``[start_us, end_us)``.

    A chunk recorded twice (a run repeated after its record landed) counts once.
    """
    stats = WriteStats()
    chunks = {
        (e.start_us, e.end_us): e.rows
        for e in entries
        if e.kind == CHUNK and start_us <= e.start_us and e.end_us <= end_us
    }
    for rows in chunks.values():
        for table, n in rows.items():
            stats.rows[table] += n
    return stats


def record_chunk(sink: Sink, key: ChunkKey, chunk: Window, stats: WriteStats) -> None:
    """Record ``chunk`` as stored; call only once every table of it is committed."""
    sink.record(key, LedgerEntry(CHUNK, chunk.start_us, chunk.end_us, dict(stats.rows)))


def record_plan(sink: Sink, key: ChunkKey, window: Window) -> None:
    """Record the window a run sets out to write (``--incremental`` finishes it after an interruption)."""
    sink.record(key, LedgerEntry(PLAN, window.start_us, window.end_us))


def unfinished_plan(sink: Sink, key: ChunkKey) -> Window | None:
    """The latest planned window not wholly covered by stored chunks, if the latest plan is unfinished."""
    entries = sink.ledger_entries(key)
    plans = [e for e in entries if e.kind == PLAN]
    if not plans:
        return None
    latest = max(plans, key=lambda e: (e.end_us, e.start_us))
    return None if covers(chunk_ranges(entries), latest.window) else latest.window


def latest_plan_end(sink: Sink, key: ChunkKey) -> int | None:
    plans = [e.end_us for e in sink.ledger_entries(key) if e.kind == PLAN]
    return max(plans) if plans else None

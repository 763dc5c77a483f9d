"""The record of which chunks are completely stored (docs/faults.md#resumption).

"The latest stored row" is no resume point: each table commits on its own and parallel workers
finish chunks out of order. So a chunk is recorded complete only once every table of it is
committed, in a ledger kept by the sink beside the data (a WAL table with DEDUP in QuestDB, a
manifest file beside the Parquet dataset). A re-run sends exactly the chunks the ledger does not
cover; re-sending part of one that was interrupted is harmless because writes are idempotent.

Entries are keyed by what determines the rows (``ChunkKey``: market, seed and a fingerprint of
every generation setting) and hold a half-open time range, so a re-run with other chunk sizes or
another number of processes still recognises what is stored.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mkt_pipeline.core.timeline import Window

LEDGER_BASE = "chunk_ledger"  # the ledger's name before the run's prefix and suffix
CHUNK = "chunk"  # a chunk whose every table is committed
PLAN = "plan"  # the window a run set out to write (lets ``--incremental`` finish an interrupted run)
KINDS = (CHUNK, PLAN)
_TOKEN_RE = re.compile(r"^[a-z0-9_]{1,64}$")


@dataclass(frozen=True)
class ChunkKey:
    """What makes two runs' rows for the same time identical: market, seed and settings fingerprint."""

    market: str
    seed: int
    fingerprint: str

    def __post_init__(self) -> None:
        # these land in SQL literals and file names: keep them to a safe alphabet by construction
        for name in ("market", "fingerprint"):
            if not _TOKEN_RE.fullmatch(getattr(self, name)):
                raise ValueError(f"ledger {name} {getattr(self, name)!r} must match [a-z0-9_]{{1,64}}")
        if int(self.seed) < 0:
            raise ValueError(f"ledger seed must be >= 0 (got {self.seed})")


@dataclass(frozen=True)
class LedgerEntry:
    """One recorded range: a complete chunk (with its rows per table) or a run's planned window."""

    kind: str
    start_us: int
    end_us: int
    rows: dict[str, int] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ledger entry kind {self.kind!r} must be one of {', '.join(KINDS)}")

    @property
    def window(self) -> Window:
        return Window(self.start_us, self.end_us)

    def rows_json(self) -> str:
        return json.dumps({str(k): int(v) for k, v in sorted(self.rows.items())}, separators=(",", ":"))


def merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Half-open ranges merged where they overlap or meet, in time order."""
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def covers(ranges: Sequence[tuple[int, int]], window: Window) -> bool:
    """Whether merged ``ranges`` contain all of ``window``."""
    return any(a <= window.start_us and window.end_us <= b for a, b in ranges)


def covered_from(ranges: Sequence[tuple[int, int]], start_us: int) -> int:
    """The end of the covered stretch that contains ``start_us`` (``start_us`` itself when none does)."""
    for a, b in ranges:
        if a <= start_us < b:
            return b
    return start_us


def chunk_ranges(entries: Iterable[LedgerEntry]) -> list[tuple[int, int]]:
    return merged((e.start_us, e.end_us) for e in entries if e.kind == CHUNK)


# ---------------------------------------------------------------------------------------------
# the Parquet dataset's manifest


class Manifest:
    """Append-only JSON-lines file of ledger entries; safe for concurrent writers (an exclusive lock per append).

    A line is appended only after every part of the chunk is published, so a torn last line (a
    crash while appending) is just an unrecorded chunk, which the next run re-writes.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, key: ChunkKey, entry: LedgerEntry) -> None:
        line = json.dumps(
            {
                "kind": entry.kind,
                "market": key.market,
                "seed": int(key.seed),
                "fingerprint": key.fingerprint,
                "start_us": int(entry.start_us),
                "end_us": int(entry.end_us),
                "rows": json.loads(entry.rows_json()),
            },
            separators=(",", ":"),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def entries(self, key: ChunkKey, window: Window | None = None) -> list[LedgerEntry]:
        """Entries of ``key`` (overlapping ``window`` when given); unreadable lines are ignored."""
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                lines = fh.read().splitlines()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        for line in lines:
            try:
                d = json.loads(line)
                if (d["market"], int(d["seed"]), d["fingerprint"]) != (key.market, key.seed, key.fingerprint):
                    continue
                entry = LedgerEntry(
                    d["kind"],
                    int(d["start_us"]),
                    int(d["end_us"]),
                    {str(k): int(v) for k, v in d.get("rows", {}).items()},
                )
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash mid-append records nothing
            if window is None or (entry.start_us < window.end_us and entry.end_us > window.start_us):
                out.append(entry)
        return out


# ---------------------------------------------------------------------------------------------
# the QuestDB ledger table


def ledger_table_sql(name: str) -> str:
    """DDL of the QuestDB ledger: WAL with DEDUP, so recording a chunk twice keeps one row."""
    return (
        f"CREATE TABLE IF NOT EXISTS {name} ("
        "start_ts TIMESTAMP, end_ts TIMESTAMP, kind SYMBOL, market SYMBOL, seed LONG, fingerprint SYMBOL, "
        "rows VARCHAR, recorded_at TIMESTAMP"
        ") TIMESTAMP(start_ts) PARTITION BY YEAR WAL "
        "DEDUP UPSERT KEYS(start_ts, end_ts, kind, market, seed, fingerprint)"
    )


def ledger_insert_sql(name: str, key: ChunkKey, entry: LedgerEntry) -> str:
    """One ledger row; every value is an integer or a ``[a-z0-9_]`` token (checked), or JSON of those."""
    rows = entry.rows_json()
    if "'" in rows:
        raise ValueError("ledger rows must not contain quotes")
    return (
        f"INSERT INTO {name} (start_ts, end_ts, kind, market, seed, fingerprint, rows, recorded_at) VALUES ("
        f"{int(entry.start_us)}, {int(entry.end_us)}, '{entry.kind}', '{key.market}', {int(key.seed)}, "
        f"'{key.fingerprint}', '{rows}', now())"
    )


def ledger_select_sql(name: str, key: ChunkKey, window: Window | None) -> str:
    where = f"market = '{key.market}' AND seed = {int(key.seed)} AND fingerprint = '{key.fingerprint}'"
    if window is not None:
        where += f" AND start_ts < {int(window.end_us)} AND end_ts > {int(window.start_us)}"
    return f"SELECT kind, cast(start_ts AS long), cast(end_ts AS long), rows FROM {name} WHERE {where}"


def entries_from_rows(rows: Iterable[Sequence]) -> list[LedgerEntry]:
    out = []
    for kind, start, end, rows_json in rows:
        try:
            counts = {str(k): int(v) for k, v in json.loads(rows_json or "{}").items()}
            out.append(LedgerEntry(str(kind), int(start), int(end), counts))
        except (ValueError, TypeError):
            continue
    return out

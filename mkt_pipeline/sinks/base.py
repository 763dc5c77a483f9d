"""What every sink shares: table naming, write statistics and the sink interface.

A sink is opened once per run (``prepare`` creates tables or directories), then receives windows:
``with sink.window(w) as writer: writer.write(batch) ...``. Leaving the block without an error
commits the window; rows of a window that failed are not reported as written. Once a window is
committed the driver records it in the sink's ledger (``record``), and a later run asks the ledger
(``ledger_entries``) which chunks it may skip (see ``ledger``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from mkt_pipeline.core.tables import TableBatch, TableSchema, validate_identifier
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.sinks.ledger import ChunkKey, LedgerEntry


@dataclass(frozen=True)
class TableNaming:
    """Suffix and prefix applied to every table and view name (validated identifiers)."""

    suffix: str = ""
    prefix: str = ""

    def __post_init__(self) -> None:
        validate_identifier(self.suffix, "suffix")
        validate_identifier(self.prefix, "prefix")

    def name(self, schema_or_base: TableSchema | str) -> str:
        base = schema_or_base if isinstance(schema_or_base, str) else schema_or_base.base_name
        return f"{self.prefix}{base}{self.suffix}"


@dataclass
class WriteStats:
    """Rows and bytes written per table name during a window or a run."""

    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, other: WriteStats) -> None:
        for k, v in other.rows.items():
            self.rows[k] += v
        for k, v in other.bytes.items():
            self.bytes[k] += v


class WindowWriter(ABC):
    @abstractmethod
    def write(self, batch: TableBatch) -> None:
        """Queue or send one batch of rows that lies inside the window."""


class Sink(ABC):
    """Common interface of the QuestDB and Parquet sinks."""

    naming: TableNaming
    stats: WriteStats
    # a commit is a file per table (Parquet): real-time runs group seconds into fewer, larger commits
    commits_are_files: bool = False

    @property
    def wal_lag_max(self) -> int | None:
        """The largest WAL lag (transactions) seen while writing, for sinks with a WAL; None otherwise."""
        return None

    @property
    def location(self) -> str:
        """Where rows go, secret-free, for logs and metadata."""
        return type(self).__name__

    @abstractmethod
    def prepare(self, schemas: Sequence[TableSchema]) -> None:
        """Create what the tables need (DDL, directories) before any row is written."""

    @abstractmethod
    def window(self, window: Window) -> contextmanager[WindowWriter]:
        """Context manager receiving the batches of one window; commits on clean exit."""

    @abstractmethod
    def latest_timestamp_us(self, schema: TableSchema) -> int | None:
        """Timestamp (µs) of the latest stored row of a table, or None when it is empty."""

    def resume_after_us(self, schema: TableSchema) -> int | None:
        """First microsecond not yet stored for a table (None when it is empty)."""
        latest = self.latest_timestamp_us(schema)
        return None if latest is None else latest + 1

    def ledger_entries(self, key: ChunkKey, window: Window | None = None) -> list[LedgerEntry]:
        """Recorded entries of ``key`` overlapping ``window`` (all when None).

        A sink without a ledger records nothing, so every chunk is sent again (which is safe).
        """
        return []

    def record(self, key: ChunkKey, entry: LedgerEntry) -> None:
        """Record ``entry`` durably; for a chunk, only after every table of it is committed."""

    def close(self) -> None:
        """Release connections; idempotent."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""What every market engine shares: window walking, bounded batches, edge clipping, config errors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from mkt_pipeline.core.tables import TIMESTAMP_NS, TableBatch, TableSchema
from mkt_pipeline.core.timeline import NS_PER_US, US_PER_S, Window

# Rows of the widest table a batch may hold (engines with books hold fewer: see book_batch_rows).
DEFAULT_BATCH_ROWS = 150_000


def book_batch_rows(max_levels: int, target_bytes: int) -> int:
    """Batch rows whose order-book arrays (both sides, prices and volumes) stay near ``target_bytes``.

    glibc's allocator maps arrays above 32 MB afresh for every batch and returns them on free, so
    each batch pays a page fault per 4 KB (equities at 40 levels and 150,000 rows: about a quarter of
    the generation time); arrays below it are reused from the heap, already mapped.
    """
    return min(DEFAULT_BATCH_ROWS, max(5_000, target_bytes // (16 * max_levels + 64)))


class ConfigError(ValueError):
    """A setting breaks a rule: one line naming the setting and the rule.

    ``rule`` is the text with ``{name}`` placeholders for the settings it involves (``settings``;
    the first is the one at fault). Each face renders the names in its own words through
    ``render(name_of)``: the CLI as ``--flag`` or the variable that set the value, Dagster as the
    config key or variable. A plain message (no settings) is shown as it is.
    """

    def __init__(self, rule: str, *settings: str, names: dict[str, str] | None = None):
        super().__init__(rule)
        self.rule = rule
        self.settings = settings
        self.names = dict(names or {})  # setting -> how to call it, when the raiser knows (a variable it read)

    @property
    def setting(self) -> str | None:
        return self.settings[0] if self.settings else None

    def render(self, name_of=None) -> str:
        """The message with each setting named by ``name_of(setting)`` (default ``--setting``)."""
        if not self.settings:
            return self.rule
        name_of = name_of or (lambda s: f"--{s}")
        return self.rule.format_map({s: self.names.get(s) or name_of(s) for s in self.settings})

    def named(self, **names: str) -> ConfigError:
        """The same error with some settings' names fixed (e.g. the variable a value was read from)."""
        err = ConfigError(self.rule, *self.settings, names={**self.names, **names})
        return err

    def __str__(self) -> str:
        return self.render()


def check_range(flag_min: str, low: int, flag_max: str, high: int) -> None:
    if low > high:
        raise ConfigError(f"{{{flag_min}}} ({low}) must be <= {{{flag_max}}} ({high})", flag_min, flag_max)


def check_positive(flag: str, value: int | float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{{{flag}}} must be {'>= 0' if allow_zero else '> 0'} (got {value})", flag)


MAX_SEED = 2**63 - 1  # seeds are stored as LONG (the ledger, the settings metadata)


def check_seed(seed: int) -> None:
    if seed < 0:
        raise ConfigError(f"{{seed}} must be >= 0 (got {seed})", "seed")
    if seed > MAX_SEED:
        raise ConfigError(f"{{seed}} must be <= {MAX_SEED:_} (got {seed:_})", "seed")


class Engine(ABC):
    """A pure function from time windows to table batches.

    Subclasses implement ``generate_seconds(first, end)`` for whole seconds; ``generate`` walks a
    window in groups of seconds small enough to bound memory and trims the edge seconds to the
    window, so any split of a window yields the same rows.
    """

    market: str
    schemas: Sequence[TableSchema]
    dense_schemas: Sequence[TableSchema]  # tables that hold rows in every second (resume points)
    config: object  # the validated generation settings (a dataclass with ``seed``); keys the ledger

    def __init__(self, batch_rows: int = DEFAULT_BATCH_ROWS):
        self.batch_rows = batch_rows

    @property
    @abstractmethod
    def max_rows_per_second(self) -> int:
        """Upper bound on rows of the widest table in one second."""

    @abstractmethod
    def generate_seconds(self, first_second: int, end_second: int) -> list[TableBatch]:
        """All rows of the whole seconds ``[first_second, end_second)``, one batch per table."""

    def planned_per_second(self, first_second: int, end_second: int) -> dict[str, np.ndarray]:
        """Rows each whole second of ``[first_second, end_second)`` will hold, per planned table,
        without generating them (a function of absolute time: any split of the span agrees)."""
        raise NotImplementedError(f"the {self.market} engine plans no counts")

    def planned_counts(self, first_second: int, end_second: int) -> dict[str, int]:
        """Planned rows of the whole span, per planned table."""
        return {name: int(n.sum()) for name, n in self.planned_per_second(first_second, end_second).items()}

    def seconds_per_batch(self) -> int:
        return max(1, self.batch_rows // max(1, self.max_rows_per_second))

    def batch_spans(self, first_second: int, end_second: int) -> Iterator[tuple[int, int]]:
        """Consecutive ``[s, e)`` runs of whole seconds covering ``[first_second, end_second)``, one per batch."""
        step = self.seconds_per_batch()
        for s in range(first_second, end_second, step):
            yield s, min(end_second, s + step)

    def generate(self, window: Window) -> Iterator[list[TableBatch]]:
        """Batches (one per table, time-ordered) covering ``window`` exactly."""
        for s, e in self.batch_spans(window.first_second, window.end_second):
            batches = self.generate_seconds(s, e)
            if s * US_PER_S < window.start_us or e * US_PER_S > window.end_us:
                batches = [clip_batch(b, window) for b in batches]
            yield batches


def clip_batch(batch: TableBatch, window: Window) -> TableBatch:
    """Rows of ``batch`` whose timestamp lies in ``window``."""
    ts = batch.timestamps
    if batch.schema.timestamp_kind == TIMESTAMP_NS:
        lo, hi = window.start_us * NS_PER_US, window.end_us * NS_PER_US
    else:
        lo, hi = window.start_us, window.end_us
    keep = (ts >= lo) & (ts < hi)
    return batch if keep.all() else batch.take(np.flatnonzero(keep))

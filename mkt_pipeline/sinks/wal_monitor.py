"""WAL backpressure: pause ingestion while QuestDB's WAL apply lags behind, with hysteresis.

Every committed ILP flush becomes a WAL transaction; the table writer applies them in order. The lag
``sequencerTxn - writerTxn`` (from ``wal_tables()``) counts transactions committed but not yet
applied. When any table written by the run lags by more than ``pause_above`` transactions the run
pauses, and resumes only once every table is back at or below ``resume_at`` (hysteresis keeps it from
flapping at the threshold). A suspended table stops the run with an error naming the table and the
``ALTER TABLE ... RESUME WAL`` fix.

The monitor takes a ``fetch`` callable instead of a connection, so tests drive it with scripted lag
values and a fake clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

WAL_TABLES_SQL = "SELECT name, suspended, writerTxn, sequencerTxn, errorMessage FROM wal_tables()"


@dataclass(frozen=True)
class WalStatus:
    """One table's WAL progress."""

    table: str
    writer_txn: int
    sequencer_txn: int
    suspended: bool = False
    error: str = ""

    @property
    def lag(self) -> int:
        return max(0, self.sequencer_txn - self.writer_txn)


class WalSuspendedError(RuntimeError):
    """A table written by the run has a suspended WAL."""


class WalLagTimeoutError(RuntimeError):
    """The WAL lag did not drain within the allowed pause."""


FetchFn = Callable[[Sequence[str]], Mapping[str, WalStatus]]


class WalMonitor:
    """Decides when ingestion must wait for QuestDB's WAL apply to catch up."""

    def __init__(
        self,
        fetch: FetchFn,
        pause_above: int = 5,
        resume_at: int = 1,
        poll_interval_s: float = 1.0,
        max_pause_s: float = 900.0,
        where: str = "",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ):
        if resume_at < 0 or resume_at >= pause_above:
            raise ValueError(f"WAL resume lag ({resume_at}) must be >= 0 and below the pause lag ({pause_above})")
        self.fetch = fetch
        self.pause_above = pause_above
        self.resume_at = resume_at
        self.poll_interval_s = poll_interval_s
        self.max_pause_s = max_pause_s
        self.where = where
        self.sleep = sleep
        self.clock = clock
        self.log = logger
        self.max_lag_seen = 0
        self.pauses = 0
        self.paused_s = 0.0
        self._last_check: float | None = None

    def _poll(self, tables: Sequence[str]) -> dict[str, WalStatus]:
        statuses = dict(self.fetch(tables))
        for table in tables:
            status = statuses.get(table)
            if status is None:
                continue
            if status.suspended:
                at = f" at {self.where}" if self.where else ""
                cause = f" ({status.error})" if status.error else ""
                raise WalSuspendedError(
                    f"QuestDB table {table}{at} is suspended{cause}; fix the cause, then run: ALTER TABLE {table} RESUME WAL"
                )
            self.max_lag_seen = max(self.max_lag_seen, status.lag)
        return statuses

    def throttle(self, tables: Sequence[str], force: bool = False) -> None:
        """Return at once while lag is acceptable; otherwise block until it drains.

        Polls at most once per ``poll_interval_s`` unless ``force``.
        """
        now = self.clock()
        if not force and self._last_check is not None and now - self._last_check < self.poll_interval_s:
            return
        self._last_check = now
        statuses = self._poll(tables)
        worst = max((s for t, s in statuses.items() if t in tables), key=lambda s: s.lag, default=None)
        if worst is None or worst.lag <= self.pause_above:
            return
        self.pauses += 1
        started = self.clock()
        self.log.warning(
            "WAL lag on %s is %d transactions (> %d): pausing ingestion until it drains to %d",
            worst.table,
            worst.lag,
            self.pause_above,
            self.resume_at,
        )
        while True:
            self.sleep(self.poll_interval_s)
            statuses = self._poll(tables)
            lag = max((s.lag for t, s in statuses.items() if t in tables), default=0)
            waited = self.clock() - started
            if lag <= self.resume_at:
                self.paused_s += waited
                self._last_check = self.clock()
                self.log.warning("WAL lag drained to %d after %.1fs: resuming ingestion", lag, waited)
                return
            if waited > self.max_pause_s:
                at = f" at {self.where}" if self.where else ""
                raise WalLagTimeoutError(
                    f"QuestDB WAL lag{at} stayed at {lag} transactions for {waited:.0f}s (tables: {', '.join(tables)})"
                )

    def wait_drained(self, tables: Sequence[str], timeout_s: float) -> int:
        """Block until every table's lag is 0 (or ``timeout_s`` passes); return the last lag."""
        deadline = self.clock() + timeout_s
        while True:
            statuses = self._poll(tables)
            lag = max((s.lag for t, s in statuses.items() if t in tables), default=0)
            if lag == 0 or self.clock() >= deadline:
                return lag
            self.sleep(min(self.poll_interval_s, 0.2))

    def wait_applied(self, tables: Sequence[str], timeout_s: float) -> int:
        """Block until the transactions committed to ``tables`` before this call are applied.

        Unlike ``wait_drained`` it does not wait for transactions committed meanwhile, so a reader
        can check what was written so far while ingestion goes on. Returns how many of those
        transactions were still unapplied when ``timeout_s`` ran out (0 when done).
        """
        deadline = self.clock() + timeout_s
        targets = {t: s.sequencer_txn for t, s in self._poll(tables).items() if t in tables}
        while True:
            left = max((targets[t] - s.writer_txn for t, s in self._poll(tables).items() if t in targets), default=0)
            if left <= 0 or self.clock() >= deadline:
                return max(0, left)
            self.sleep(min(self.poll_interval_s, 0.2))


def statuses_from_rows(rows: Sequence[Sequence], tables: Sequence[str]) -> dict[str, WalStatus]:
    """``wal_tables()`` rows ``(name, suspended, writerTxn, sequencerTxn, errorMessage)`` for ``tables``."""
    wanted = set(tables)
    out = {}
    for name, suspended, writer_txn, sequencer_txn, error in rows:
        if name in wanted:
            out[name] = WalStatus(
                name,
                int(writer_txn or 0),
                int(sequencer_txn or 0),
                suspended is True or str(suspended).lower() == "true",
                error or "",
            )
    return out

"""What a run reports while it writes: rows per batch and the share of the window covered."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mkt_pipeline.core.tables import TIMESTAMP_NS
from mkt_pipeline.core.timeline import NS_PER_US, Window

PROGRESS_INTERVAL_S = 2.0  # a progress line at least this often


class ObservedSink:
    """A sink wrapper reporting ``(rows, µs of the window covered)`` for every batch written."""

    def __init__(self, sink, report: Callable[[int, int], None]):
        self.sink = sink
        self.naming = sink.naming
        self.report = report

    def __getattr__(self, name: str):
        # everything but writing (the ledger, prepare, stats) is the wrapped sink's
        if name == "sink":
            raise AttributeError(name)
        return getattr(self.sink, name)

    @contextmanager
    def window(self, window: Window) -> Iterator[_ObservedWriter]:
        with self.sink.window(window) as inner:
            writer = _ObservedWriter(inner, window, self.report)
            yield writer
        self.report(0, window.end_us - writer.covered_until_us)


class _ObservedWriter:
    def __init__(self, inner, window: Window, report: Callable[[int, int], None]):
        self.inner = inner
        self.report = report
        self.covered_until_us = window.start_us

    def write(self, batch) -> None:
        self.inner.write(batch)
        if not len(batch):
            return
        last = int(batch.timestamps.max())
        last_us = last // NS_PER_US if batch.schema.timestamp_kind == TIMESTAMP_NS else last
        covered = max(self.covered_until_us, last_us + 1)
        self.report(len(batch), covered - self.covered_until_us)
        self.covered_until_us = covered


class Progress:
    """Rows and share of the window written so far; a ticker thread prints a line every interval."""

    def __init__(self, label: str, window: Window, interval_s: float | None = None, out=None, clock=time.monotonic):
        self.label = label
        self.window = window
        self.interval_s = PROGRESS_INTERVAL_S if interval_s is None else interval_s
        self.out = out or sys.stderr
        self.clock = clock
        self.started = clock()
        self.rows = 0
        self.covered_us = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, rows: int, covered_us: int) -> None:
        with self._lock:
            self.rows += rows
            self.covered_us += covered_us

    def line(self) -> str:
        with self._lock:
            rows, covered = self.rows, self.covered_us
        elapsed = max(self.clock() - self.started, 1e-9)
        total = self.window.end_us - self.window.start_us
        done = min(1.0, covered / total)
        eta = f"{elapsed * (1 - done) / done:,.0f}s" if done > 0 else "?"
        return f"{self.label}: rows {rows:,}  {rows / elapsed:,.0f} rows/s  {done:6.1%} of {self.window}  ETA {eta}"

    def print(self) -> None:
        print(self.line(), file=self.out, flush=True)

    def __enter__(self) -> Progress:
        def tick():
            while not self._stop.wait(self.interval_s):
                self.print()

        self._thread = threading.Thread(target=tick, name="mkt-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.print()

"""One way to open a sink: ``SinkSpec`` says which sink and where, and opens it (or a reader of it).

The CLI builds one from its options, the Dagster sink resource from its configuration; worker
processes receive the spec (it pickles: only settings, no connection) and open their own sink.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.core.secrets import scrub
from mkt_pipeline.sinks.base import Sink, TableNaming

SINK_KINDS = ("questdb", "parquet")


@dataclass(frozen=True)
class SinkSpec:
    kind: str  # questdb or parquet
    naming: TableNaming = field(default_factory=TableNaming)
    parquet_dir: str = "./data"
    questdb: Any = None  # QuestDBSettings for kind questdb (default settings when None)

    def __post_init__(self) -> None:
        if self.kind not in SINK_KINDS:
            raise ConfigError(f"{{sink}}: {self.kind!r} is not one of {', '.join(SINK_KINDS)}", "sink")

    def check(self) -> None:
        """What can be known about the target without creating anything (``ConfigError`` naming the setting)."""
        if self.kind == "parquet":
            from mkt_pipeline.sinks.parquet import dataset_root_problem

            problem = dataset_root_problem(self.parquet_dir)
            if problem is not None:
                raise ConfigError(f"{{parquet_dir}} {problem}", "parquet_dir")

    @property
    def sink_class(self) -> type[Sink]:
        if self.kind == "parquet":
            from mkt_pipeline.sinks.parquet import ParquetSink

            return ParquetSink
        from mkt_pipeline.sinks.questdb import QuestDBSink

        return QuestDBSink

    @property
    def commits_are_files(self) -> bool:
        return self.sink_class.commits_are_files

    def open(self, logger=None) -> Sink:
        """The sink, not yet prepared (call ``prepare(schemas)`` before writing); close it when done.

        ``logger`` (e.g. Dagster's ``context.log``) receives the QuestDB sink's warnings."""
        if self.kind == "parquet":
            from mkt_pipeline.sinks.parquet import ParquetSink

            return ParquetSink(self.parquet_dir, self.naming)
        from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink

        extra = {"logger": logger} if logger is not None else {}
        return QuestDBSink(self.questdb or QuestDBSettings(), self.naming, **extra)

    def secrets(self) -> list[str]:
        return self.questdb.secrets() if self.questdb is not None else []

    def scrub(self, text: str) -> str:
        """``text`` with every secret of the settings replaced (picklable as a bound method)."""
        return scrub(text, self.secrets())

    @property
    def location(self) -> str:
        """Where rows go, secret-free."""
        if self.kind == "parquet":
            import os

            return f"parquet {os.path.abspath(self.parquet_dir)}"
        from mkt_pipeline.sinks.questdb import QuestDBSettings

        s = self.questdb or QuestDBSettings()
        return f"questdb {s.ilp_where} ({s.wire})"

    @contextmanager
    def stored_rows(self) -> Iterator[Any]:
        """A reader of what the sink stored (``ParquetRows`` or ``QuestDBRows``)."""
        from mkt_pipeline.sinks.stored_rows import ParquetRows, QuestDBRows

        if self.kind == "parquet":
            from mkt_pipeline.sinks.parquet import ParquetSink

            yield ParquetRows(ParquetSink(self.parquet_dir, self.naming))
            return
        from mkt_pipeline.sinks.questdb import QuestDBSettings, read_session

        settings = self.questdb or QuestDBSettings()
        with read_session(settings) as conn:  # QWP where the protocol uses it, else PG wire
            yield QuestDBRows(
                conn, self.naming, scrub=self.scrub, where=settings.read_where, stall_timeout_s=settings.stall_timeout_s
            )

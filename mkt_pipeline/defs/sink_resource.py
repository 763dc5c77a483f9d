"""The ``sink`` resource: which sink a run writes to (``MKT_SINK``) and how its tables are named.

It wraps the two resources of ``resources.py`` (QuestDB and Parquet) so assets, checks and the
live job ask one object for a sink, a reader of stored rows, or the status of a view, whatever
the deployment's sink. ``from_env`` wires every SPEC §3.2 variable through ``EnvVar`` so secrets
stay out of run config.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any, Callable, Iterator

import dagster as dg
from pydantic import Field

from mkt_pipeline.core.secrets import scrub
from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
from mkt_pipeline.sinks.base import Sink, TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.stored_rows import ParquetRows, QuestDBRows

SINK_KINDS = ("questdb", "parquet")
VIEWS_NEED_QUESTDB = "materialized views are a QuestDB feature; nothing to create with the Parquet sink (MKT_SINK=parquet)"


def _open_questdb(settings, naming: TableNaming) -> Sink:
    from mkt_pipeline.sinks.questdb import QuestDBSink

    return QuestDBSink(settings, naming)


class MarketSinkResource(dg.ConfigurableResource):
    """Sink selection and table naming shared by every market asset, check and live run."""

    kind: str = Field(default="questdb", description="questdb or parquet (MKT_SINK).")
    table_suffix: str = Field(default="", description="Appended to every table and view name (MKT_TABLE_SUFFIX).")
    equities_prefix: str = Field(default="", description="Prepended to equities table and view names (dashboards use eq_).")
    questdb: QuestDBResource
    parquet: ParquetResource

    def naming(self, market: str) -> TableNaming:
        return TableNaming(suffix=self.table_suffix, prefix=self.equities_prefix if market == "equities" else "")

    def _kind(self) -> str:
        if self.kind not in SINK_KINDS:
            raise dg.Failure(f"MKT_SINK: {self.kind!r} is not one of {', '.join(SINK_KINDS)}")
        return self.kind

    @property
    def is_questdb(self) -> bool:
        return self._kind() == "questdb"

    def location(self) -> str:
        """Where rows go, secret-free: the Parquet root or the QuestDB ILP endpoint."""
        if self.is_questdb:
            s = self.questdb.settings()
            return f"questdb {s.ilp_where} ({s.wire})"
        return f"parquet {os.path.abspath(self.parquet.root_dir)}"

    def sink_opener(self, market: str) -> Callable[[], Sink]:
        """A picklable function opening the configured sink for ``market`` (for worker processes)."""
        if self.is_questdb:
            return partial(_open_questdb, self.questdb.settings(), self.naming(market))
        return partial(ParquetSink, self.parquet.root_dir, self.naming(market))

    def scrubber(self) -> Callable[[str], str]:
        """A picklable function removing every secret of the QuestDB settings from a text."""
        return partial(scrub, secrets=self.questdb.settings().secrets())

    @contextmanager
    def get_sink(self, market: str) -> Iterator[Sink]:
        """The configured sink for ``market``, closed on exit (call ``prepare`` before writing)."""
        resource = self.questdb if self.is_questdb else self.parquet
        with resource.get_sink(self.naming(market)) as sink:
            yield sink

    @contextmanager
    def stored_rows(self, market: str) -> Iterator[ParquetRows | QuestDBRows]:
        """A reader of what the sink stored, for asset checks."""
        naming = self.naming(market)
        if not self.is_questdb:
            yield ParquetRows(ParquetSink(self.parquet.root_dir, naming))
            return
        with self.pg_connection(reading=True) as (conn, settings):
            from mkt_pipeline.sinks.questdb import scrub

            yield QuestDBRows(conn, naming, scrub=lambda text: scrub(text, settings.secrets()), where=settings.pg_where)

    @contextmanager
    def pg_connection(self, reading: bool = False) -> Iterator[tuple[Any, Any]]:
        """(psycopg connection, QuestDBSettings); connection errors name host and port, never secrets.

        ``reading``: only for queries, which go over QWP where the protocol setting uses it (``read_session``)."""
        from mkt_pipeline.sinks.questdb import QuestDBUnreachableError, pg_session, read_session

        settings = self.questdb.settings()
        with ExitStack() as stack:
            try:
                conn = stack.enter_context(read_session(settings) if reading else pg_session(settings))
            except QuestDBUnreachableError as exc:
                raise dg.Failure(str(exc)) from None  # one line for the run's log, no traceback
            yield conn, settings

    @classmethod
    def from_env(cls) -> "MarketSinkResource":
        """Every SPEC §3.2 variable that is set, as an ``EnvVar`` resolved at launch."""
        env: dict[str, Any] = {}
        for field, var in (("kind", "MKT_SINK"), ("table_suffix", "MKT_TABLE_SUFFIX"), ("equities_prefix", "MKT_EQUITIES_PREFIX")):
            if os.environ.get(var):
                env[field] = dg.EnvVar(var)
        parquet = ParquetResource(root_dir=dg.EnvVar("MKT_PARQUET_DIR")) if os.environ.get("MKT_PARQUET_DIR") else ParquetResource()
        return cls(questdb=QuestDBResource.from_env(), parquet=parquet, **env)

"""The ``sink`` resource: which sink a run writes to (``MKT_SINK``) and how its tables are named.

It wraps the two resources of ``resources.py`` (QuestDB and Parquet) so assets, checks and the
live job ask one object for a sink, a reader of stored rows, or the status of a view, whatever
the deployment's sink. ``from_env`` wires every variable of docs/questdb.md#environment-variables through ``EnvVar``
so secrets stay out of run config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from functools import partial
from typing import Any

import dagster as dg
from pydantic import Field

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.core.secrets import scrub
from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
from mkt_pipeline.sinks.base import Sink, TableNaming
from mkt_pipeline.sinks.spec import SINK_KINDS, SinkSpec
from mkt_pipeline.sinks.stored_rows import ParquetRows, QuestDBRows

VIEWS_NEED_QUESTDB = (
    "materialized views are a QuestDB feature; nothing to create with the Parquet sink (MKT_SINK=parquet)"
)


@contextmanager
def permanent_faults_fail_at_once() -> Iterator[None]:
    """A fault that retrying cannot mend (credentials refused, TLS mismatch, a rejected table: the
    sinks' ``transient = False``) fails the step at once; transient faults propagate to the retry policy."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        if getattr(exc, "transient", True):
            raise
        raise dg.Failure(description=str(exc), allow_retries=False) from None


class MarketSinkResource(dg.ConfigurableResource):
    """Sink selection and table naming shared by every market asset, check and live run."""

    kind: str = Field(default="questdb", description="questdb or parquet (MKT_SINK).")
    table_suffix: str = Field(default="", description="Appended to every table and view name (MKT_TABLE_SUFFIX).")
    equities_prefix: str = Field(
        default="", description="Prepended to equities table and view names (dashboards use eq_)."
    )
    questdb: QuestDBResource
    parquet: ParquetResource

    def naming(self, market: str) -> TableNaming:
        try:
            return TableNaming(suffix=self.table_suffix, prefix=self.equities_prefix if market == "equities" else "")
        except (
            ValueError
        ) as exc:  # set in the resource config, not by a variable (those are checked when the code loads)
            raise dg.Failure(f"sink resource {exc}", allow_retries=False) from None

    def _kind(self) -> str:
        if self.kind not in SINK_KINDS:
            raise dg.Failure(
                f"sink resource kind (MKT_SINK): {self.kind!r} is not one of {', '.join(SINK_KINDS)}",
                allow_retries=False,
            )
        return self.kind

    @property
    def is_questdb(self) -> bool:
        return self._kind() == "questdb"

    def spec(self, market: str) -> SinkSpec:
        """Which sink and where, for ``market``; a bad setting fails the step at once (no retry)."""
        kind = self._kind()
        try:
            questdb = self.questdb.settings() if kind == "questdb" else None
        except ConfigError as exc:
            raise dg.Failure(f"sink resource: {exc.render(lambda s: f'questdb {s}')}", allow_retries=False) from None
        return SinkSpec(kind, self.naming(market), parquet_dir=self.parquet.root_dir, questdb=questdb)

    def location(self) -> str:
        """Where rows go, secret-free: the Parquet root or the QuestDB ILP endpoint."""
        return self.spec("fx").location

    def sink_opener(self, market: str) -> Callable[[], Sink]:
        """A picklable function opening the configured sink for ``market`` (for worker processes)."""
        return self.spec(market).open

    def scrubber(self) -> Callable[[str], str]:
        """A picklable function removing every secret of the QuestDB settings from a text."""
        return partial(scrub, secrets=self.questdb.settings().secrets())

    @contextmanager
    def get_sink(self, market: str, logger=None) -> Iterator[Sink]:
        """The configured sink for ``market``, closed on exit (call ``prepare`` before writing).

        ``logger`` (e.g. ``context.log``) receives the sink's warnings, so they reach the run's event log.
        """
        spec = self.spec(market)
        try:
            spec.check()
        except ConfigError as exc:
            raise dg.Failure(
                f"sink resource {exc.render(lambda s: 'parquet root_dir (MKT_PARQUET_DIR)')}", allow_retries=False
            ) from None
        with closing(spec.open(logger=logger)) as sink:
            yield sink

    @contextmanager
    def stored_rows(self, market: str) -> Iterator[ParquetRows | QuestDBRows]:
        """A reader of what the sink stored, for asset checks."""
        from mkt_pipeline.sinks.questdb import QuestDBUnreachableError

        try:
            with self.spec(market).stored_rows() as rows:
                yield rows
        except QuestDBUnreachableError as exc:
            raise dg.Failure(str(exc)) from None  # one line for the run's log, no traceback

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
    def from_env(cls) -> MarketSinkResource:
        """Every deployment variable of the sink that is set, as an ``EnvVar`` resolved at launch.

        The values are checked here, through the settings model, when the code location loads: a bad
        one is recorded (every run then fails at once naming it) instead of stopping the load."""
        deployment_sink_settings()
        env: dict[str, Any] = {}
        for field, var in (
            ("kind", "MKT_SINK"),
            ("table_suffix", "MKT_TABLE_SUFFIX"),
            ("equities_prefix", "MKT_EQUITIES_PREFIX"),
        ):
            if os.environ.get(var):
                env[field] = dg.EnvVar(var)
        parquet = (
            ParquetResource(root_dir=dg.EnvVar("MKT_PARQUET_DIR"))
            if os.environ.get("MKT_PARQUET_DIR")
            else ParquetResource()
        )
        return cls(questdb=QuestDBResource.from_env(), parquet=parquet, **env)


def deployment_sink_settings() -> tuple[str, str, str]:
    """(sink kind, table suffix, equities prefix) from the environment, through the settings model.

    A bad value is recorded for every run (which then fails at once naming the variable) and the
    default is used, so the code location still loads."""
    from mkt_pipeline.core.engine import ConfigError
    from mkt_pipeline.defs.config import ALL, deployment_value, record_problem
    from mkt_pipeline.settings import SINK_FLAGS, convert

    values = []
    for name in ("sink", "suffix"):
        flag = next(f for f in SINK_FLAGS if f.name == name)
        var = flag.env[0]
        raw = os.environ.get(var, "")
        try:
            values.append(convert(flag, raw) if raw.strip() else flag.default)
        except ConfigError as exc:
            record_problem(ALL, exc.named(**{name: var}))
            values.append(flag.default)
    values.append(deployment_value("MKT_EQUITIES_PREFIX", "equities"))
    return values[0], values[1], values[2]

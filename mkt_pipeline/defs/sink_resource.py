"""The ``sink`` resource: which sink a run writes to (``MKT_SINK``) and how its tables are named.

It wraps the two resources of ``resources.py`` (QuestDB and Parquet) so assets, checks and the
live job ask one object for a sink, a reader of stored rows, or the status of a view, whatever
the deployment's sink. ``from_env`` wires every variable of docs/questdb.md#environment-variables through ``EnvVar``
so secrets stay out of run config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, closing, contextmanager
from functools import partial
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.core.secrets import scrub
from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource, pydantic_fields
from mkt_pipeline.settings import (
    PARQUET_RESOURCE_FIELDS,
    SINK_RESOURCE_FIELDS,
    EnvironmentRead,
    ResourceField,
    read_resource_environment,
)
from mkt_pipeline.sinks.base import Sink, TableNaming
from mkt_pipeline.sinks.spec import SinkSpec
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


class _MarketSinkResource(dg.ConfigurableResource):
    """Sink selection and table naming shared by every market asset, check and live run.

    ``kind``, ``table_suffix`` and ``equities_prefix`` are declared in the settings model
    (``SINK_RESOURCE_FIELDS``); their values are checked by the same rules wherever they come from:
    the variables when the code location loads, the resolved values at launch."""

    def naming(self, market: str) -> TableNaming:
        prefix = _checked(PREFIX, self.equities_prefix) if market == "equities" else ""
        return TableNaming(suffix=_checked(SUFFIX, self.table_suffix), prefix=prefix)

    def _kind(self) -> str:
        return _checked(KIND, self.kind)

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
                f"sink resource {exc.render(lambda s: f'parquet {ROOT_DIR.name} ({ROOT_DIR.var})')}",
                allow_retries=False,
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

        The values are read and checked here, through the settings model, when the code location loads
        (``deployment_sink_read``): a bad one is recorded (every run then fails at once naming it) instead
        of stopping the load. Only the variables' names go into the resource's config, so secrets stay
        out of run config; Dagster resolves them when a run starts, where ``spec`` checks them again."""
        read = deployment_sink_read()
        env: dict[str, Any] = {f.name: dg.EnvVar(f.var) for f in SINK_RESOURCE_FIELDS if f.name in read.given}
        root = {f.name: dg.EnvVar(f.var) for f in PARQUET_RESOURCE_FIELDS if f.name in read.given}
        return cls(questdb=QuestDBResource.from_env(), parquet=ParquetResource(**root), **env)


MarketSinkResource = create_model(
    "MarketSinkResource",
    __base__=_MarketSinkResource,
    __module__=__name__,
    __doc__=_MarketSinkResource.__doc__,
    **pydantic_fields(SINK_RESOURCE_FIELDS),
    questdb=(QuestDBResource, Field(description="QuestDB connection (used when kind is questdb).")),
    parquet=(ParquetResource, Field(description="The Parquet dataset (used when kind is parquet).")),
)
KIND, SUFFIX, PREFIX = SINK_RESOURCE_FIELDS
(ROOT_DIR,) = PARQUET_RESOURCE_FIELDS


def _checked(field: ResourceField, value: Any) -> Any:
    """A field's value at launch, checked by the rule that checked its variable when the code location loaded;
    a refused value fails the step at once (no retry)."""
    try:
        return field.check(value)
    except ConfigError as exc:
        name = f"{field.name} ({field.var})"
        raise dg.Failure(f"sink resource {exc.render(lambda s: name)}", allow_retries=False) from None


def deployment_sink_read(environ: Mapping[str, str] | None = None) -> EnvironmentRead:
    """The sink's deployment variables (``MKT_SINK``, ``MKT_TABLE_SUFFIX``, ``MKT_EQUITIES_PREFIX``,
    ``MKT_PARQUET_DIR``), read once and checked through the settings model.

    A bad value is recorded for the runs it affects (which then fail at once naming the variable) and
    the default is used, so the code location still loads."""
    from mkt_pipeline.defs.config import ALL, record_problem

    read = read_resource_environment(SINK_RESOURCE_FIELDS + PARQUET_RESOURCE_FIELDS, environ)
    for name, problem in read.problems.items():
        record_problem("equities" if name == "equities_prefix" else ALL, problem)
    return read


def deployment_sink_settings() -> tuple[str, str, str]:
    """(sink kind, table suffix, equities prefix) the deployment selects, for the catalog (see ``deployment_sink_read``)."""
    values = deployment_sink_read().values
    return values["kind"], values["table_suffix"], values["equities_prefix"]

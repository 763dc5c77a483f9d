"""Dagster resources for the two sinks, in the style of ``dagster-duckdb``'s ``DuckDBResource``.

.. code-block:: python

    from dagster import Definitions, EnvVar
    from mkt_pipeline.defs.resources import QuestDBResource

    @asset
    def fx_hour(questdb: QuestDBResource):
        with questdb.get_sink(TableNaming(suffix="_demo")) as sink:
            sink.prepare(FX_TABLES)
            run_window(engine, sink, window)

    Definitions(assets=[fx_hour], resources={"questdb": QuestDBResource(password=EnvVar("QUESTDB_PASSWORD"))})

Every field is declared once, in the settings model (``mkt_pipeline/settings.py``): its type, default
and description come from the QuestDB flags, the tuning settings and ``QDB_CLIENT_CONF`` there, and
its value is checked by ``QuestDBSettings`` (the sink's rules). Secrets are meant to be given as
``dagster.EnvVar`` so only the variable's name lands in run config; ``QuestDBResource.from_env()``
wires every ``QUESTDB_*`` variable and ``QDB_CLIENT_CONF`` that way (docs/questdb.md#environment-variables).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, create_model

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.settings import (
    PARQUET_RESOURCE_FIELDS,
    ResourceField,
    client_conf_variables,
    questdb_resource_fields,
)
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.questdb import ENV_VARS, QuestDBSettings, QuestDBSink
from mkt_pipeline.sinks.spec import SinkSpec

QUESTDB_FIELDS = questdb_resource_fields()
CLIENT_CONF = "client_conf"


def pydantic_fields(fields: tuple[ResourceField, ...]) -> dict[str, Any]:
    """``create_model`` field definitions (type, default, description) from the settings model."""
    out = {}
    for f in fields:
        optional = f.setting.default is None or f.secret
        out[f.name] = (
            f.py_type | None if optional else f.py_type,
            Field(default=f.setting.default, description=f.description),
        )
    return out


class _QuestDBResource(ConfigurableResource):
    """Connection settings for QuestDB; ``get_sink`` opens a ``QuestDBSink`` for one run.

    Precedence, as on the command line: a field that is set (in code, run config, or through a
    ``QUESTDB_*`` variable) > what ``client_conf`` (``QDB_CLIENT_CONF``) says > the default."""

    def settings(self) -> QuestDBSettings:
        """The validated ``QuestDBSettings`` (secrets redacted from its repr)."""
        values = {f.name: getattr(self, f.name) for f in QUESTDB_FIELDS if f.name != CLIENT_CONF}
        conf = getattr(self, CLIENT_CONF)
        if not conf or not conf.strip():
            return QuestDBSettings(**values)
        below = client_conf_variables(conf)  # the QUESTDB_* variables the connect string stands for
        given = {k: v for k, v in values.items() if k in self.model_fields_set}
        try:
            return QuestDBSettings.from_env(below, **given)
        except ConfigError as exc:  # a value the connect string gave: name the connect string
            raise exc.named(**{s: "QDB_CLIENT_CONF" for s in exc.settings if exc.names.get(s) in below}) from None

    @contextmanager
    def get_sink(self, naming: TableNaming | None = None, logger=None) -> Iterator[QuestDBSink]:
        """A ``QuestDBSink`` closed on exit; call ``prepare(schemas)`` on it before writing.

        ``logger`` (e.g. ``context.log``) receives the sink's warnings (WAL pauses, a silent server).
        """
        sink = SinkSpec("questdb", naming or TableNaming(), questdb=self.settings()).open(logger=logger)
        try:
            yield sink
        finally:
            sink.close()

    @classmethod
    def from_env(cls, **overrides) -> QuestDBResource:
        """Every ``QUESTDB_*`` variable that is set, and ``QDB_CLIENT_CONF``, as an ``EnvVar`` (resolved at launch)."""
        values: dict[str, Any] = {}
        for name, var, convert in ENV_VARS:
            if os.environ.get(var):
                values[name] = EnvVar.int(var) if convert is int else EnvVar(var)
        if os.environ.get("QDB_CLIENT_CONF", "").strip():
            values[CLIENT_CONF] = EnvVar("QDB_CLIENT_CONF")
        values.update(overrides)
        return cls(**values)


QuestDBResource = create_model(
    "QuestDBResource",
    __base__=_QuestDBResource,
    __module__=__name__,
    __doc__=_QuestDBResource.__doc__,
    **pydantic_fields(QUESTDB_FIELDS),
)


class _ParquetResource(ConfigurableResource):
    """The embedded Parquet dataset ({table}/hour=YYYY-MM-DDTHH/part-*.parquet); ``get_sink`` returns a ``ParquetSink``."""

    @contextmanager
    def get_sink(self, naming: TableNaming | None = None, logger=None) -> Iterator[ParquetSink]:
        """A ``ParquetSink`` under ``root_dir``, closed on exit."""
        sink = SinkSpec("parquet", naming or TableNaming(), parquet_dir=self.root_dir).open(logger=logger)
        try:
            yield sink
        finally:
            sink.close()


ParquetResource = create_model(
    "ParquetResource",
    __base__=_ParquetResource,
    __module__=__name__,
    __doc__=_ParquetResource.__doc__,
    **pydantic_fields(PARQUET_RESOURCE_FIELDS),
)

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

Secrets are meant to be given as ``dagster.EnvVar`` so only the variable's name lands in run
config; ``QuestDBResource.from_env()`` wires every ``QUESTDB_*`` variable that way
(docs/questdb.md#environment-variables).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.questdb import ENV_VARS, QuestDBSettings, QuestDBSink
from mkt_pipeline.sinks.spec import SinkSpec

_DEFAULTS = QuestDBSettings()


class QuestDBResource(ConfigurableResource):
    """Connection settings for QuestDB; ``get_sink`` opens a ``QuestDBSink`` for one run."""

    host: str = Field(default=_DEFAULTS.host, description="QuestDB host (QUESTDB_HOST).")
    http_port: int = Field(
        default=_DEFAULTS.http_port, description="HTTP port for ILP over http/https (QUESTDB_HTTP_PORT)."
    )
    ilp_tcp_port: int = Field(
        default=_DEFAULTS.ilp_tcp_port, description="ILP TCP port for tcp/tcps (QUESTDB_ILP_TCP_PORT)."
    )
    pg_port: int = Field(
        default=_DEFAULTS.pg_port, description="PostgreSQL wire port for DDL and metadata (QUESTDB_PG_PORT)."
    )
    protocol: str = Field(
        default=_DEFAULTS.protocol,
        description="Row transport: ILP over http, https, tcp or tcps; QWP over ws or wss (QuestDB 9.4+); auto (QUESTDB_PROTOCOL).",
    )
    user: str = Field(
        default=_DEFAULTS.user, description="PG-wire user, and HTTP basic-auth user for ILP (QUESTDB_USER)."
    )
    password: str | None = Field(
        default=_DEFAULTS.password, description="PG-wire and HTTP basic-auth password; pass EnvVar('QUESTDB_PASSWORD')."
    )
    token: str | None = Field(
        default=None,
        description="ILP token: HTTP bearer token, or JWK private key d for tcp/tcps; pass EnvVar('QUESTDB_TOKEN').",
    )
    token_x: str | None = Field(
        default=None, description="JWK public key x (tcp/tcps); pass EnvVar('QUESTDB_TOKEN_X')."
    )
    token_y: str | None = Field(
        default=None, description="JWK public key y (tcp/tcps); pass EnvVar('QUESTDB_TOKEN_Y')."
    )
    ilp_user: str = Field(default=_DEFAULTS.ilp_user, description="Key id for TCP JWK auth (QUESTDB_ILP_USER).")
    tls_verify: str = Field(
        default=_DEFAULTS.tls_verify, description="TLS verification: on or unsafe_off (QUESTDB_TLS_VERIFY)."
    )
    tls_ca: str | None = Field(default=None, description="CA bundle file for TLS verification (QUESTDB_TLS_CA).")
    create_views: bool = Field(default=_DEFAULTS.create_views, description="Create the materialized views if missing.")
    short_ttl: bool = Field(
        default=_DEFAULTS.short_ttl, description="Short retention (TTL) on tables and views, for demos."
    )
    enterprise: bool = Field(
        default=_DEFAULTS.enterprise, description="Enterprise: storage policy instead of TTL on tables."
    )
    parquet_encodings: bool = Field(
        default=_DEFAULTS.parquet_encodings, description="Per-column PARQUET(...) encodings in DDL."
    )
    wal_pause_lag: int = Field(
        default=_DEFAULTS.wal_pause_lag, description="Pause when any table's WAL lag exceeds this (txns)."
    )
    wal_resume_lag: int = Field(
        default=_DEFAULTS.wal_resume_lag, description="Resume once every table's WAL lag is at or below this."
    )
    flush_bytes: int = Field(
        default=_DEFAULTS.flush_bytes, description="Encoded bytes per ILP request (below the 100 MiB buffer cap)."
    )
    stall_timeout_s: int = Field(
        default=_DEFAULTS.stall_timeout_s,
        description="Fail the step when QuestDB gives no answer for this many seconds; a warning names host and port "
        "after 30 s (MKT_STALL_TIMEOUT_SECONDS).",
    )

    def settings(self) -> QuestDBSettings:
        """The validated ``QuestDBSettings`` (secrets redacted from its repr)."""
        return QuestDBSettings(**{name: getattr(self, name) for name in type(self).model_fields})

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
        """Every ``QUESTDB_*`` variable that is set, as an ``EnvVar`` (resolved at launch)."""
        values = {}
        for name, var, convert in ENV_VARS:
            if os.environ.get(var):
                values[name] = EnvVar.int(var) if convert is int else EnvVar(var)
        values.update(overrides)
        return cls(**values)


class ParquetResource(ConfigurableResource):
    """The embedded Parquet dataset ({table}/hour=YYYY-MM-DDTHH/part-*.parquet); ``get_sink`` returns a ``ParquetSink``."""

    root_dir: str = Field(default="./data", description="Root of the Parquet dataset (MKT_PARQUET_DIR).")

    @contextmanager
    def get_sink(self, naming: TableNaming | None = None, logger=None) -> Iterator[ParquetSink]:
        """A ``ParquetSink`` under ``root_dir``, closed on exit."""
        sink = SinkSpec("parquet", naming or TableNaming(), parquet_dir=self.root_dir).open(logger=logger)
        try:
            yield sink
        finally:
            sink.close()

"""One asset per QuestDB materialized view (``fx_views/<view>``, ``equities_views/<view>``).

Materializing a view asset creates the view if it is missing (``IF NOT EXISTS``, so it is
idempotent; its source table is created first when needed) and reports QuestDB's refresh status
from ``materialized_views()``; a ``view_is_valid`` check fails when QuestDB marks the view invalid.
With the Parquet sink there is nothing to create: the asset says so instead of failing.
"""


import datetime as dt

import dagster as dg
from pydantic import Field

from mkt_pipeline.core.tables import market_tables
from mkt_pipeline.defs.config import MARKET_TABLES
from mkt_pipeline.sinks.ddl import EQUITIES_VIEWS, FX_VIEWS, DdlOptions, ViewSpec, checked_name, create_table_sql, create_view_sql, views_for
from mkt_pipeline.defs.sink_resource import VIEWS_NEED_QUESTDB, MarketSinkResource
from mkt_pipeline.settings import EQUITIES_GENERATION_FLAGS, env_default, env_name

_TIMESTAMP_FLAG = next(f for f in EQUITIES_GENERATION_FLAGS if f.name == "timestamp_column")


class ViewConfig(dg.Config):
    """How the view's source tables name their timestamp (equities only; FX tables always use ``timestamp``)."""

    timestamp_column: str = Field(
        default=env_default("equities", _TIMESTAMP_FLAG),
        description=f"{_TIMESTAMP_FLAG.help} Env: {env_name('equities', 'timestamp_column')}.",
    )

MARKET_VIEWS = {"fx": FX_VIEWS, "equities": EQUITIES_VIEWS}
# columns of materialized_views() worth reporting, when the server has them
STATUS_COLUMNS = (
    "view_status",
    "refresh_type",
    "invalidation_reason",
    "last_refresh_start_timestamp",
    "last_refresh_finish_timestamp",
    "refresh_base_table_txn",
    "base_table_txn",
    "base_table_name",
)


def view_key(market: str, view: ViewSpec) -> dg.AssetKey:
    return dg.AssetKey([f"{market}_views", view.base_name])


def source_key(market: str, view: ViewSpec) -> dg.AssetKey:
    """The asset a view reads: one of the market's tables, or another view."""
    for name, table in MARKET_TABLES[market].items():
        if table.base_name == view.source:
            return dg.AssetKey([market, name])
    return dg.AssetKey([f"{market}_views", view.source])


def view_status(conn, name: str) -> dict:
    """QuestDB's row for the view in ``materialized_views()`` (empty when the view is unknown)."""
    cur = conn.execute(f"SELECT * FROM materialized_views() WHERE view_name = '{checked_name(name)}'")
    columns = [d[0] for d in cur.description or []]
    row = cur.fetchone()
    return {} if row is None else dict(zip(columns, row))


def _metadata_value(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def build_view_asset(market: str, view: ViewSpec) -> dg.AssetsDefinition:
    key = view_key(market, view)

    @dg.asset(
        key=key,
        deps=[source_key(market, view)],
        group_name=f"{market}_views",
        kinds={"questdb"},
        description=f"QuestDB materialized view `{view.base_name}`: {view.source} sampled by {view.sample_by}.",
        check_specs=[dg.AssetCheckSpec("view_is_valid", asset=key, description="QuestDB does not mark the view invalid.")],
    )
    def view_asset(context: dg.AssetExecutionContext, config: ViewConfig, sink: MarketSinkResource):
        naming = sink.naming(market)
        name = view.name(naming)
        try:
            tables = market_tables(market, config.timestamp_column)
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from None
        spec = next(v for v in views_for(tables) if v.base_name == view.base_name)
        if not sink.is_questdb:
            context.log.info(VIEWS_NEED_QUESTDB)
            return dg.MaterializeResult(
                metadata={"view": name, "status": "not applicable", "reason": VIEWS_NEED_QUESTDB},
                check_results=[dg.AssetCheckResult(check_name="view_is_valid", passed=True, metadata={"status": "not applicable (parquet sink)"})],
            )
        with sink.pg_connection() as (conn, settings):
            options = DdlOptions(parquet_encodings=settings.parquet_encodings, short_ttl=settings.short_ttl, enterprise=settings.enterprise)
            for table in tables:
                if table.base_name == spec.source:
                    conn.execute(create_table_sql(table, naming, options))
            conn.execute(create_view_sql(spec, naming, settings.short_ttl))
            status = view_status(conn, name)
        meta = {"view": name, "refresh": "immediate" if view.refresh_every is None else f"every {view.refresh_every}"}
        meta.update({k: _metadata_value(status[k]) for k in STATUS_COLUMNS if status.get(k) is not None})
        state = str(status.get("view_status", "unknown"))
        if state == "invalid":
            context.log.warning(f"{name} is invalid: {status.get('invalidation_reason') or 'no reason given'}")
        return dg.MaterializeResult(
            metadata=meta,
            check_results=[dg.AssetCheckResult(check_name="view_is_valid", passed=state != "invalid", metadata={"view_status": state})],
        )

    return view_asset


def build_view_assets(market: str) -> list[dg.AssetsDefinition]:
    return [build_view_asset(market, view) for view in MARKET_VIEWS[market]]

"""One asset per QuestDB materialized view (``fx_views/<view>``, ``equities_views/<view>``).

Materializing a view asset creates the view if it is missing (``IF NOT EXISTS``, so it is
idempotent; its source table is created first when needed), refreshes a timer view so it holds
what its base table received, and reports QuestDB's state of the view (valid or invalid, rows,
last refresh) from ``materialized_views()``; a ``view_is_valid`` check fails when QuestDB marks
the view invalid. With the Parquet sink there is nothing to create: the asset says so.

The view assets are kept current by a sensor per market (``fx_views_sensor``,
``equities_views_sensor``, on by default): once the market's tables were materialized and no run
writing them is still in progress (a backfill has finished), it runs ``<market>_views_job``, so the
catalog shows QuestDB's state of every view without a manual run.
"""

import datetime as dt
import time

import dagster as dg
from pydantic import Field

from mkt_pipeline.core.tables import market_tables
from mkt_pipeline.defs.config import MARKET_TABLES
from mkt_pipeline.defs.sink_resource import VIEWS_NEED_QUESTDB, MarketSinkResource
from mkt_pipeline.settings import EQUITIES_GENERATION_FLAGS, env_default, env_name
from mkt_pipeline.sinks.ddl import (
    EQUITIES_VIEWS,
    FX_VIEWS,
    DdlOptions,
    ViewSpec,
    checked_name,
    create_table_sql,
    create_view_sql,
    views_for,
)

_TIMESTAMP_FLAG = next(f for f in EQUITIES_GENERATION_FLAGS if f.name == "timestamp_column")


class ViewConfig(dg.Config):
    """How the view's source tables name their timestamp (equities only; FX tables always use ``timestamp``)."""

    timestamp_column: str = Field(
        default=env_default("equities", _TIMESTAMP_FLAG),
        description=f"{_TIMESTAMP_FLAG.help} Env: {env_name('equities', 'timestamp_column')}.",
    )


MARKET_VIEWS = {"fx": FX_VIEWS, "equities": EQUITIES_VIEWS}
# columns of materialized_views() worth reporting as text, when the server has them
STATUS_COLUMNS = ("view_status", "refresh_type", "invalidation_reason", "base_table_name")
REFRESH_WAIT_S = 60.0  # how long a materialization waits for QuestDB to apply a refresh it asked for
VIEWS_SENSOR_INTERVAL_S = 30
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
]  # fmt: skip


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
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _timestamp(value):
    """A refresh time as a Dagster timestamp (QuestDB gives naive UTC datetimes over PG wire)."""
    if isinstance(value, dt.datetime):
        return dg.MetadataValue.timestamp(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return None


def pending_txns(status: dict) -> int | None:
    """Base-table transactions the view has not applied yet (None when the server does not say)."""
    base, applied = status.get("base_table_txn"), status.get("refresh_base_table_txn")
    if base is None or applied is None:
        return None
    return max(int(base) - int(applied), 0)


def refresh_and_wait(conn, name: str, timeout_s: float = REFRESH_WAIT_S) -> dict:
    """Ask QuestDB to bring a timer view up to its base table now, and wait until it has (or the timeout)."""
    conn.execute(f"REFRESH MATERIALIZED VIEW {checked_name(name)} INCREMENTAL")
    deadline = time.monotonic() + timeout_s
    status = view_status(conn, name)
    while (
        time.monotonic() < deadline
        and status.get("view_status") != "invalid"
        and (status.get("view_status") == "refreshing" or (pending_txns(status) or 0) > 0)
    ):
        time.sleep(0.25)
        status = view_status(conn, name)
    return status


def build_view_asset(market: str, view: ViewSpec) -> dg.AssetsDefinition:
    key = view_key(market, view)

    @dg.asset(
        key=key,
        deps=[source_key(market, view)],
        group_name=f"{market}_views",
        kinds={"questdb"},
        description=f"QuestDB materialized view `{view.base_name}`: {view.source} sampled by {view.sample_by}.",
        check_specs=[
            dg.AssetCheckSpec("view_is_valid", asset=key, description="QuestDB does not mark the view invalid.")
        ],
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
                check_results=[
                    dg.AssetCheckResult(
                        check_name="view_is_valid", passed=True, metadata={"status": "not applicable (parquet sink)"}
                    )
                ],
            )
        with sink.pg_connection() as (conn, settings):
            options = DdlOptions(
                parquet_encodings=settings.parquet_encodings,
                short_ttl=settings.short_ttl,
                enterprise=settings.enterprise,
            )
            for table in tables:
                if table.base_name == spec.source:
                    conn.execute(create_table_sql(table, naming, options))
            conn.execute(create_view_sql(spec, naming, settings.short_ttl))
            status = view_status(conn, name)
            if view.refresh_every is not None and status.get("view_status") != "invalid":
                # a timer view would pick up what its base table received only at its next tick
                status = refresh_and_wait(conn, name)
            rows = conn.execute(f"SELECT count() FROM {checked_name(name)}").fetchone()
        meta = {"view": name, "refresh": "immediate" if view.refresh_every is None else f"every {view.refresh_every}"}
        meta.update({k: _metadata_value(status[k]) for k in STATUS_COLUMNS if status.get(k) is not None})
        if rows is not None:
            meta["dagster/row_count"] = int(rows[0])
        for column, label in (
            ("last_refresh_finish_timestamp", "last_refresh"),
            ("last_refresh_start_timestamp", "last_refresh_started"),
        ):
            if _timestamp(status.get(column)) is not None:
                meta[label] = _timestamp(status.get(column))
        if pending_txns(status) is not None:
            meta["base_table_txns_pending"] = pending_txns(status)
        state = str(status.get("view_status", "unknown"))
        if state == "invalid":
            context.log.warning(f"{name} is invalid: {status.get('invalidation_reason') or 'no reason given'}")
        return dg.MaterializeResult(
            metadata=meta,
            check_results=[
                dg.AssetCheckResult(
                    check_name="view_is_valid",
                    passed=state != "invalid",
                    metadata={
                        "view_status": state,
                        **(
                            {"invalidation_reason": str(status["invalidation_reason"])}
                            if status.get("invalidation_reason")
                            else {}
                        ),
                    },
                )
            ],
        )

    return view_asset


def build_view_assets(market: str) -> list[dg.AssetsDefinition]:
    return [build_view_asset(market, view) for view in MARKET_VIEWS[market]]


def build_views_sensor(market: str) -> tuple:
    """``<market>_views_job`` and the sensor that runs it once the market's tables were materialized
    and no run writing them is still in progress (a backfill has finished), so the catalog shows each
    view's state after the base tables changed, without a manual run. On by default."""
    tables = [dg.AssetKey([market, name]) for name in MARKET_TABLES[market]]
    job = dg.define_asset_job(
        f"{market}_views_job", selection=dg.AssetSelection.groups(f"{market}_views"),
        description=f"Create (if missing), refresh (timer views) and report every {market} view.",
    )  # fmt: skip

    def writing(run: dg.DagsterRun) -> bool:
        return bool(run.asset_selection and set(run.asset_selection) & set(tables)) or run.job_name.startswith(
            f"{market}_"
        )

    @dg.sensor(
        name=f"{market}_views_sensor", job=job, minimum_interval_seconds=VIEWS_SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Materializes the {market} views after the {market} tables changed, once no run is writing them.",
    )  # fmt: skip
    def views_sensor(context: dg.SensorEvaluationContext):
        latest = 0
        for key in tables:
            found = context.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1).records
            latest = max([latest, *(r.storage_id for r in found)])
        if latest <= int(context.cursor or 0):
            return dg.SkipReason(f"no {market} table was materialized since the views were last refreshed")
        busy = [r.dagster_run for r in context.instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS), limit=100)]
        if any(writing(run) and run.job_name != job.name for run in busy):
            return dg.SkipReason(f"a run writing the {market} tables is in progress: the views follow when it ends")
        context.update_cursor(str(latest))
        return dg.RunRequest(run_key=f"{market}-views-after-{latest}")

    return job, views_sensor


fx_views_job, fx_views_sensor = build_views_sensor("fx")
equities_views_job, equities_views_sensor = build_views_sensor("equities")

"""The Dagster code location: one explicit Definitions object (docs/dagster.md#names).

Runs execute in one process (``in_process_executor``): the hourly step is large and brings its own
child-process generation and optional worker processes, so a process per step would only add
start-up time. Backfills spread over machines by partition ranges, one run each, or, with
``MKT_EXECUTOR=celery``, by blocks of hours handed to Celery workers as steps (``defs/distributed.py``);
the live jobs always run in one process.
"""

import warnings

import dagster as dg

# Code references, partitioned check specs and a few parameters used here are beta/preview APIs of
# this Dagster version: acknowledged once here instead of a warning per asset on every load.
# Dagster copies sensor definitions when it resolves jobs (after this module loaded), warning about a
# beta parameter these sensors do not use
warnings.filterwarnings(
    "ignore", message="Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    warnings.simplefilter("ignore", dg.PreviewWarning)
    from mkt_pipeline.defs.checks import equities_partition_checks, fx_partition_checks
    from mkt_pipeline.defs.distributed import deployment_executor
    from mkt_pipeline.defs.equities import equities_assets
    from mkt_pipeline.defs.fx import fx_assets
    from mkt_pipeline.defs.jobs import equities_hourly_job, equities_live_job, fx_hourly_job, fx_live_job
    from mkt_pipeline.defs.schedules import equities_hourly_schedule, fx_hourly_schedule
    from mkt_pipeline.defs.sensors import equities_live_sensor, fx_live_sensor
    from mkt_pipeline.defs.sink_resource import MarketSinkResource
    from mkt_pipeline.defs.views import equities_views_job, equities_views_sensor, fx_views_job, fx_views_sensor

    defs = dg.Definitions(
        assets=dg.with_source_code_references([*fx_assets, *equities_assets]),
        asset_checks=[fx_partition_checks, equities_partition_checks],
        jobs=[fx_hourly_job, equities_hourly_job, fx_live_job, equities_live_job, fx_views_job, equities_views_job],
        schedules=[fx_hourly_schedule, equities_hourly_schedule],
        sensors=[fx_live_sensor, equities_live_sensor, fx_views_sensor, equities_views_sensor],
        resources={"sink": MarketSinkResource.from_env()},
        executor=deployment_executor(),
    )

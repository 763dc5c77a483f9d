"""The Dagster code location: one explicit Definitions object (SPEC §3.3)."""

import dagster as dg

from mkt_pipeline.defs.equities import equities_assets
from mkt_pipeline.defs.fx import fx_assets
from mkt_pipeline.defs.checks import equities_partition_checks, fx_partition_checks
from mkt_pipeline.defs.jobs import equities_hourly_job, equities_live_job, fx_hourly_job, fx_live_job
from mkt_pipeline.defs.schedules import equities_hourly_schedule, fx_hourly_schedule
from mkt_pipeline.defs.sensors import equities_live_sensor, fx_live_sensor
from mkt_pipeline.defs.sink_resource import MarketSinkResource

defs = dg.Definitions(
    assets=[*fx_assets, *equities_assets],
    asset_checks=[fx_partition_checks, equities_partition_checks],
    jobs=[fx_hourly_job, equities_hourly_job, fx_live_job, equities_live_job],
    schedules=[fx_hourly_schedule, equities_hourly_schedule],
    sensors=[fx_live_sensor, equities_live_sensor],
    resources={"sink": MarketSinkResource.from_env()},
)

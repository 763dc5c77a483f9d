"""Hourly schedules (stopped by default): each tick materializes the partition that just ended."""

import dagster as dg

from mkt_pipeline.defs.jobs import equities_hourly_job, fx_hourly_job

# A couple of minutes past the hour: the hour has ended and the live stream (if any) has flushed.
MINUTE_OF_HOUR = 2

fx_hourly_schedule = dg.build_schedule_from_partitioned_job(
    fx_hourly_job,
    name="fx_hourly_schedule",
    minute_of_hour=MINUTE_OF_HOUR,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
equities_hourly_schedule = dg.build_schedule_from_partitioned_job(
    equities_hourly_job,
    name="equities_hourly_schedule",
    minute_of_hour=MINUTE_OF_HOUR,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

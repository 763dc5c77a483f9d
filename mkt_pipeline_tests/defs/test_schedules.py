"""Hourly schedules: each tick materializes the hour that just ended."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from mkt_pipeline.definitions import defs


@pytest.mark.parametrize("name", ["fx_hourly_schedule", "equities_hourly_schedule"])
def test_tick_requests_the_hour_that_just_ended(name):
    schedule = defs.resolve_schedule_def(name)  # partitioning comes from the job's assets
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "2 * * * *" and schedule.execution_timezone in (None, "UTC")
    for tick, expected in (
        (dt.datetime(2025, 11, 11, 4, 2, tzinfo=dt.UTC), "2025-11-11-03:00"),
        (dt.datetime(2025, 11, 12, 0, 2, tzinfo=dt.UTC), "2025-11-11-23:00"),  # across midnight
    ):
        with dg.build_schedule_context(scheduled_execution_time=tick) as context:
            requests = schedule.evaluate_tick(context).run_requests
        assert [r.partition_key for r in requests] == [expected]
    assert schedule.job_name in ("fx_hourly_job", "equities_hourly_job")

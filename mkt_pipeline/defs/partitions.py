"""Partitions: one hourly UTC definition per market, plus the reference-price days.

The first hour is ``MKT_PARTITIONS_START`` (``YYYY-MM-DD-HH:MM``, default 2024-01-01-00:00), read
when the code location loads, so a deployment that only cares about recent data lists fewer hours.

The hourly tables of a market depend on the reference closes of the day they fall in and of the
two days before (prices interpolate from the previous close, and the engines' look-back at midnight
reaches the previous day's last hour), hence ``REFERENCE_DAYS_MAPPING``.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from mkt_pipeline.core.timeline import Window, us_to_datetime
from mkt_pipeline.defs.config import ALL, deployment_value
from mkt_pipeline.settings import DEPLOYMENT, deployment

PARTITIONS_START_VAR = "MKT_PARTITIONS_START"
DEFAULT_HOURLY_START = DEPLOYMENT[PARTITIONS_START_VAR].default
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"


def hourly_start(environ=None) -> str:
    """The first hourly partition, from ``MKT_PARTITIONS_START`` (``ConfigError`` names the variable and the rule)."""
    return deployment(PARTITIONS_START_VAR, environ)


# a bad value keeps the default here (the code location loads) and fails every run naming the variable
HOURLY_START = deployment_value(PARTITIONS_START_VAR, ALL)
# The first hourly partition needs the closes of the two days before it.
REFERENCE_START = (dt.datetime.strptime(HOURLY_START, PARTITION_FORMAT).date() - dt.timedelta(days=2)).isoformat()

fx_hourly_partitions = dg.HourlyPartitionsDefinition(start_date=HOURLY_START, timezone="UTC")
equities_hourly_partitions = dg.HourlyPartitionsDefinition(start_date=HOURLY_START, timezone="UTC")
fx_reference_days = dg.DailyPartitionsDefinition(start_date=REFERENCE_START, timezone="UTC")
equities_reference_days = dg.DailyPartitionsDefinition(start_date=REFERENCE_START, timezone="UTC")

HOURLY_PARTITIONS = {"fx": fx_hourly_partitions, "equities": equities_hourly_partitions}
REFERENCE_PARTITIONS = {"fx": fx_reference_days, "equities": equities_reference_days}
REFERENCE_DAYS_MAPPING = dg.TimeWindowPartitionMapping(start_offset=-2)


def context_window(context) -> Window:
    """The run's partition (or partition range) as a half-open µs window."""
    tw = context.partition_time_window
    return Window.from_datetimes(tw.start, tw.end)


def partition_key(hour: Window) -> str:
    """The hourly partition key of an hour window."""
    return us_to_datetime(hour.start_us).strftime(PARTITION_FORMAT)


def backfill_policy() -> dg.BackfillPolicy:
    """One run per backfill by default; ``MKT_BACKFILL_PARTITIONS_PER_RUN=N`` splits it into runs of N hours.

    Hours are independent (time is stateless), so split runs can go to different workers (a run
    launcher such as dagster-docker's or dagster-k8s's), each writing its own time range.
    """
    hours = deployment_value("MKT_BACKFILL_PARTITIONS_PER_RUN", ALL)
    return dg.BackfillPolicy.single_run() if hours is None else dg.BackfillPolicy.multi_run(hours)

"""Partitions (SPEC §3.3): one hourly UTC definition per market, plus the reference-price days.

The hourly tables of a market depend on the reference closes of the day they fall in and of the
two days before (prices interpolate from the previous close, and the engines' look-back at midnight
reaches the previous day's last hour), hence ``REFERENCE_DAYS_MAPPING``.
"""

from __future__ import annotations

import dagster as dg

from mkt_pipeline.core.timeline import Window

HOURLY_START = "2024-01-01-00:00"
# The first hourly partition needs the closes of the two days before it.
REFERENCE_START = "2023-12-30"

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


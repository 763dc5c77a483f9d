"""Partitions (SPEC §3.3): one hourly UTC definition per market, plus the reference-price days.

The hourly tables of a market depend on the reference closes of the day they fall in and of the
two days before (prices interpolate from the previous close, and the engines' look-back at midnight
reaches the previous day's last hour), hence ``REFERENCE_DAYS_MAPPING``.
"""

from __future__ import annotations

import os

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



def backfill_policy() -> dg.BackfillPolicy:
    """One run per backfill by default; ``MKT_BACKFILL_PARTITIONS_PER_RUN=N`` splits it into runs of N hours.

    Hours are independent (time is stateless), so split runs can go to different workers (a run
    launcher such as dagster-docker's or dagster-k8s's), each writing its own time range.
    """
    raw = os.environ.get("MKT_BACKFILL_PARTITIONS_PER_RUN", "").strip()
    if not raw:
        return dg.BackfillPolicy.single_run()
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"MKT_BACKFILL_PARTITIONS_PER_RUN must be a whole number of hours > 0 (got {raw!r})")
    return dg.BackfillPolicy.multi_run(int(raw))

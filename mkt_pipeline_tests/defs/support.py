"""Helpers for the Dagster tests: light run config, a Parquet sink resource, hourly runs."""

from __future__ import annotations

import dagster as dg

from mkt_pipeline.definitions import defs
from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
from mkt_pipeline.defs.sink_resource import MarketSinkResource

# The seed's local-development FX rates with 10-level books, and a lighter one for multi-hour runs
# (core_min >= 60 keeps a core_price row at every pair's first and last book of each second).
LIGHT_FX = dict(
    market_data_min_eps=110, market_data_max_eps=150, core_min_eps=70, core_max_eps=100,
    orders_min_per_sec=5, orders_max_per_sec=30, min_levels=10, max_levels=10,
)  # fmt: skip
TINY_FX = dict(
    market_data_min_eps=70, market_data_max_eps=80, core_min_eps=60, core_max_eps=65,
    orders_min_per_sec=1, orders_max_per_sec=5, min_levels=5, max_levels=5,
)  # fmt: skip
LIGHT_EQUITIES = dict(
    market_data_min_eps=110, market_data_max_eps=150, trades_min_eps=20, trades_max_eps=40, min_levels=10, max_levels=10
)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def parquet_resource(root) -> MarketSinkResource:
    return MarketSinkResource(kind="parquet", questdb=QuestDBResource(), parquet=ParquetResource(root_dir=str(root)))


def run_hourly(
    market: str,
    root,
    instance: dg.DagsterInstance,
    config: dict,
    partition: str | None = None,
    partition_range: tuple[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute ``<market>_hourly_job`` (assets and checks) on one partition or a range, into Parquet at ``root``."""
    job = defs.resolve_job_def(f"{market}_hourly_job")
    tags = {RANGE_START_TAG: partition_range[0], RANGE_END_TAG: partition_range[1]} if partition_range else None
    return job.execute_in_process(
        run_config={"ops": {f"{market}_hourly": {"config": config}}},
        instance=instance,
        partition_key=partition,
        tags=tags,
        resources={"sink": parquet_resource(root)},
    )


def metadata(event) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def materializations(result, market: str) -> dict[tuple[str, str], dict]:
    """{(asset name, partition): metadata} of the run's table materializations."""
    return {
        (e.asset_key.path[-1], e.partition): metadata(e)
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == market and e.asset_key.path[-1] != "reference_prices"
    }


def checks(result) -> dict[tuple[str, str], object]:
    """{(asset name, check name): evaluation}."""
    return {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}


def assert_evaluated_while_writing(result, market: str) -> None:
    """Every check evaluation of the run's partitions is the one its ingest step computed as the hour
    was stored (the check step reported it instead of evaluating again); nothing else rides on the
    materializations."""
    from mkt_pipeline.defs.checks import WHILE_WRITING

    meta = materializations(result, market)
    evaluations = [e for e in result.get_asset_check_evaluations() if (e.asset_key.path[-1], e.partition) in meta]
    assert evaluations
    for e in evaluations:
        assert e.metadata["evaluated"].value == WHILE_WRITING, (e.check_name, e.partition)
        assert (
            "checks" not in meta[(e.asset_key.path[-1], e.partition)]
        )  # no copy of the results on the materialization

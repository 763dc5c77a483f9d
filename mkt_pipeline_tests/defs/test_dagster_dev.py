"""End to end through the Dagster UI's own path: ``dagster dev`` (webserver and daemon) on a temporary
DAGSTER_HOME, a 2-partition FX backfill launched with the webserver's GraphQL
``launchPartitionBackfill`` mutation (what the UI's Materialize -> partitions dialog sends), against
the real QuestDB. Checks the backfill's runs, the metadata of each partition, the asset-check
results, and the rows in QuestDB hour by hour."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from bench.dagster_dev import dagster_dev as start_dagster_dev
from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.defs.checks import CHECKS
from mkt_pipeline.defs.hourly import MARKET_TABLES
from mkt_pipeline_tests.defs.support import TINY_FX

pytestmark = pytest.mark.questdb

PARTITIONS = ["2025-11-11-03:00", "2025-11-11-04:00"]
HOURS = {
    "2025-11-11-03:00": ("2025-11-11T03:00:00.000000Z", "2025-11-11T04:00:00.000000Z"),
    "2025-11-11-04:00": ("2025-11-11T04:00:00.000000Z", "2025-11-11T05:00:00.000000Z"),
}


@pytest.fixture
def dagster_dev(questdb, qdb_suffix, tmp_path):
    """``dagster dev`` on the project's definitions with a fresh DAGSTER_HOME, pointed at the test server."""
    env = {
        **os.environ,
        **questdb.env(),
        "MKT_SINK": "questdb",
        "MKT_TABLE_SUFFIX": qdb_suffix,
        "MKT_OFFLINE": "1",
        "MKT_FX_CHUNK_SECONDS": "3600",  # one step per hour
        **{f"MKT_FX_{key.upper()}": str(value) for key, value in TINY_FX.items()},
    }
    with start_dagster_dev(tmp_path, env, port=3100, startup_s=180) as dev:
        yield dev


def test_backfill_of_two_partitions_through_the_webserver(dagster_dev, questdb, qdb_suffix):
    backfill_id = dagster_dev.launch_backfill(PARTITIONS, [["fx", name] for name in MARKET_TABLES["fx"]])
    backfill = dagster_dev.wait_backfill(backfill_id, 600)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    assert backfill["runs"] and all(run["status"] == "SUCCESS" for run in backfill["runs"]), backfill["runs"]

    # rows in QuestDB, hour by hour
    stored = {}
    for table in FX_TABLES:
        for partition, (start, end) in HOURS.items():
            name = f"{table.base_name}{qdb_suffix}"
            (count,) = questdb.query(
                f"SELECT count() FROM {name} WHERE timestamp >= '{start}' AND timestamp < '{end}'"
            )[0]
            assert count > 0, (name, partition)
            stored[table.base_name, partition] = count

    with dg.DagsterInstance.from_config(str(dagster_dev.home)) as instance:
        # each partition's materialization carries that partition's own rows
        for asset_name, table in MARKET_TABLES["fx"].items():
            for partition in PARTITIONS:
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(["fx", asset_name]), asset_partitions=[partition]),
                    limit=1,
                ).records
                assert records, (asset_name, partition)
                meta = records[0].asset_materialization.metadata
                assert meta["dagster/row_count"].value == stored[table.base_name, partition], (asset_name, partition)

        # every check evaluated, and none with something to compare failed
        run_ids = [run["runId"] for run in backfill["runs"]]
        evaluations = [
            entry.dagster_event.event_specific_data
            for run_id in run_ids
            for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
    evaluated = {(e.asset_key.path[-1], e.check_name) for e in evaluations}
    expected = {(asset, check) for asset, checks in CHECKS["fx"].items() for check in checks}
    assert expected <= evaluated, expected - evaluated
    for e in evaluations:
        if e.check_name != "continuous_at_edges":  # the outer edges have no stored neighbour to compare with
            assert e.passed, (
                e.asset_key.path[-1],
                e.check_name,
                {k: getattr(v, "value", v) for k, v in e.metadata.items()},
            )
    assert any(e.passed for e in evaluations if e.check_name == "continuous_at_edges")  # the inner edge

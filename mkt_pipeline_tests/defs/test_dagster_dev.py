"""End to end through the Dagster UI's own path: ``dagster dev`` (webserver and daemon) on a temporary
DAGSTER_HOME, a 2-partition FX backfill launched with the webserver's GraphQL
``launchPartitionBackfill`` mutation (what the UI's Materialize -> partitions dialog sends), against
the real QuestDB. Checks the backfill's runs, the metadata of each partition, the asset-check
results, and the rows in QuestDB hour by hour."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.defs.checks import CHECKS
from mkt_pipeline.defs.hourly import MARKET_TABLES
from mkt_pipeline_tests.defs.support import TINY_FX

pytestmark = pytest.mark.questdb

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = ["2025-11-11-03:00", "2025-11-11-04:00"]
HOURS = {
    "2025-11-11-03:00": ("2025-11-11T03:00:00.000000Z", "2025-11-11T04:00:00.000000Z"),
    "2025-11-11-04:00": ("2025-11-11T04:00:00.000000Z", "2025-11-11T05:00:00.000000Z"),
}
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 20) { runId status } }
    ... on PythonError { message }
  }
}
"""


def free_port(preferred: int = 3100) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def wait_for(predicate, timeout_s: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"dagster dev exited ({process.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}"
            )
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def dagster_dev(questdb, qdb_suffix, tmp_path):
    """``dagster dev`` on the project's definitions with a fresh DAGSTER_HOME, pointed at the test server."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {
        **os.environ,
        **questdb.env(),
        "DAGSTER_HOME": str(home),
        "MKT_SINK": "questdb",
        "MKT_TABLE_SUFFIX": qdb_suffix,
        "MKT_OFFLINE": "1",
        "MKT_FX_CHUNK_SECONDS": "3600",  # one step per hour
        **{f"MKT_FX_{key.upper()}": str(value) for key, value in TINY_FX.items()},
    }
    log = tmp_path / "dagster_dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(dagster), "dev", "-m", "mkt_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: graphql(port, "{ version }").get("version"), 180, "the webserver", process, log)
        yield port, home, process, log
    finally:
        # dagster dev stops its webserver, daemon and code server on SIGINT; its group is ours alone
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_backfill_of_two_partitions_through_the_webserver(dagster_dev, questdb, qdb_suffix):
    port, home, process, log = dagster_dev
    asset_keys = [{"path": ["fx", name]} for name in MARKET_TABLES["fx"]]
    launched = graphql(
        port, LAUNCH, {"params": {"partitionNames": PARTITIONS, "assetSelection": asset_keys, "fromFailure": False}}
    )
    answer = launched["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    backfill_id = answer["backfillId"]

    def finished():
        backfill = graphql(port, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        return (
            backfill
            if backfill["status"] in FINISHED
            and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in backfill["runs"])
            else None
        )

    backfill = wait_for(finished, 600, f"backfill {backfill_id}", process, log)
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

    with dg.DagsterInstance.from_config(str(home)) as instance:
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

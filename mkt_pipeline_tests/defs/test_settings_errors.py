"""Bad settings in Dagster: the code location always loads; the runs a bad variable affects fail at once
with one line naming it; configuration errors are never retried; unknown ops in run config are rejected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loads the code location under the given environment, runs one fx hour into Parquet and reports what happened.
RUN_ONE_HOUR = r"""
import json, sys, time
import dagster as dg
from mkt_pipeline.definitions import defs
from mkt_pipeline_tests.defs.support import TINY_FX, parquet_resource

root, job_name, op_key, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
keys = [k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()]
job = defs.resolve_job_def(job_name)
selection = [dg.AssetKey(["fx", "market_data"]), dg.AssetKey(["fx", "core_price"]), dg.AssetKey(["fx", "trades"])]
started = time.perf_counter()
result = job.execute_in_process(
    run_config={"ops": {op_key: {"config": {**TINY_FX, **extra}}}},
    instance=dg.DagsterInstance.ephemeral(),
    partition_key="2025-11-11-03:00",
    raise_on_error=False,
    # the implicit asset job takes the code location's sink (MKT_SINK=parquet below)
    **({"asset_selection": selection} if job_name == "__ASSET_JOB" else {"resources": {"sink": parquet_resource(root)}}),
)
failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
print(json.dumps({"loaded": len(keys), "success": result.success, "failures": failures, "retries": len(retries),
                  "seconds": time.perf_counter() - started}))
"""


def run_hour(tmp_path, env: dict, job: str = "fx_hourly_job", op_key: str = "fx_hourly", extra: dict | None = None) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MKT_") or k == "MKT_OFFLINE"}
    proc = subprocess.run(
        [sys.executable, "-c", RUN_ONE_HOUR, str(tmp_path / "data"), job, op_key, json.dumps(extra or {})],
        cwd=ROOT, env={**clean, "MKT_OFFLINE": "1", **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"MKT_FX_MIN_LEVELS": "abc"}, "MKT_FX_MIN_LEVELS: 'abc' is not an integer"),
        ({"MKT_PARTITIONS_START": "garbage"}, "MKT_PARTITIONS_START: 'garbage' is not an hour in the form YYYY-MM-DD-HH:00"),
        ({"MKT_SINK": "mysql"}, "MKT_SINK: 'mysql' is not one of questdb, parquet"),
        ({"MKT_TABLE_SUFFIX": "a b"}, "MKT_TABLE_SUFFIX: 'a b' is not a valid identifier part"),
        ({"MKT_BACKFILL_PARTITIONS_PER_RUN": "0"}, "MKT_BACKFILL_PARTITIONS_PER_RUN must be >= 1 (got 0)"),
    ],
)
def test_bad_variable_loads_and_fails_the_run_at_once_naming_it(tmp_path, env, needle):
    report = run_hour(tmp_path, env)
    assert report["loaded"] > 7  # the code location loaded: both markets, the views
    assert not report["success"] and report["retries"] == 0, report
    assert len(report["failures"]) == 1 and needle in report["failures"][0], report
    assert "\n" not in report["failures"][0].strip()  # one line
    assert not (tmp_path / "data").exists()  # nothing written


def test_live_variable_affects_only_the_live_runs(tmp_path):
    report = run_hour(tmp_path, {"MKT_LIVE_WINDOW_SECONDS": "7"})
    assert report["success"], report  # the hourly run does not read the live settings
    proc = subprocess.run(
        [sys.executable, "-c", "from mkt_pipeline.defs.config import deployment_problems; import mkt_pipeline.definitions; "
         "print(deployment_problems('fx', 'live'))"],
        cwd=ROOT, env={**os.environ, "MKT_LIVE_WINDOW_SECONDS": "7"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "MKT_LIVE_WINDOW_SECONDS must divide 3600 (got 7)" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "extra,needle",
    [({"seed": -1}, "config key seed must be >= 0 (got -1)"), ({"seed": 2**63}, "config key seed must be <= 9_223_372_036_854_775_807")],
)
def test_bad_run_config_names_the_key_and_is_not_retried(tmp_path, extra, needle):
    report = run_hour(tmp_path, {}, extra=extra)
    assert not report["success"] and report["retries"] == 0, report
    assert needle in report["failures"][0], report


def test_config_under_an_unknown_op_is_rejected(tmp_path):
    """The implicit asset job (the UI's Materialize) accepts config for ops it does not have: the run fails instead."""
    env = {"MKT_SINK": "parquet", "MKT_PARQUET_DIR": str(tmp_path / "data")}
    report = run_hour(tmp_path, env, job="__ASSET_JOB", op_key="fx_ingest")
    assert not report["success"] and report["retries"] == 0, report
    assert "ops.fx_ingest is not an op of this job" in report["failures"][0], report
    assert report["seconds"] < 30 and not list((tmp_path / "data").glob("*/hour=*"))

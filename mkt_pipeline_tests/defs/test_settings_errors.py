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
    **({"asset_selection": selection} if job_name == "__ASSET_JOB"
       else {"resources": {"sink": parquet_resource(root)}}),
)
failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
print(json.dumps({"loaded": len(keys), "success": result.success, "failures": failures, "retries": len(retries),
                  "seconds": time.perf_counter() - started}))
"""


def run_hour(
    tmp_path, env: dict, job: str = "fx_hourly_job", op_key: str = "fx_hourly", extra: dict | None = None
) -> dict:
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
        (
            {"MKT_PARTITIONS_START": "garbage"},
            "MKT_PARTITIONS_START: 'garbage' is not an hour in the form YYYY-MM-DD-HH:00",
        ),
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
        [sys.executable, "-c", "from mkt_pipeline.defs.config import deployment_problems; "
         "import mkt_pipeline.definitions; print(deployment_problems('fx', 'live'))"],
        cwd=ROOT, env={**os.environ, "MKT_LIVE_WINDOW_SECONDS": "7"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "MKT_LIVE_WINDOW_SECONDS must divide 3600 (got 7)" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "extra,needle",
    [
        ({"seed": -1}, "config key seed must be >= 0 (got -1)"),
        ({"seed": 2**63}, "config key seed must be <= 9_223_372_036_854_775_807"),
    ],
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


# --------------------------------------------------------------------------------------------
# faults: a refused login fails at once, an unreachable server is retried (real servers)

WRONG_PASSWORD = "not-the-Password-42"


def run_hour_into_questdb(tmp_path, questdb_resource, suffix: str | None = None) -> tuple[object, list[str], int]:
    import dagster as dg

    from mkt_pipeline.definitions import defs
    from mkt_pipeline.defs.resources import ParquetResource
    from mkt_pipeline.defs.sink_resource import MarketSinkResource
    from mkt_pipeline_tests.defs.support import TINY_FX

    sink = MarketSinkResource(
        kind="questdb",
        table_suffix=suffix or f"_s{os.urandom(3).hex()}",
        questdb=questdb_resource,
        parquet=ParquetResource(),
    )
    result = defs.resolve_job_def("fx_hourly_job").execute_in_process(
        run_config={"ops": {"fx_hourly": {"config": TINY_FX}}},
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2025-11-11-03:00",
        resources={"sink": sink},
        raise_on_error=False,
    )
    failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    for event in retried:  # the fault is the cause of the retry request
        error = event.event_specific_data.error
        while error is not None:
            failures.append(error.message)
            error = error.cause
    return result, failures, len(retried)


@pytest.mark.questdb
def test_refused_login_fails_at_once_without_retries(tmp_path, monkeypatch):
    """A wrong password fails at once; the client's connect string (QDB_CLIENT_CONF) with the right one writes
    the hour, its password never in the run's config or events, and a QUESTDB_* variable still wins over it."""
    from mkt_pipeline.defs.resources import QuestDBResource
    from mkt_pipeline_tests.questdb_server import own_server

    settings = ("http.user=admin", "http.password=Right-Pass-77", "pg.user=admin", "pg.password=Right-Pass-77")
    with own_server(*settings) as server:
        resource = QuestDBResource(
            host=server.host, http_port=server.http_port, pg_port=server.pg_port, password=WRONG_PASSWORD
        )
        result, failures, retries = run_hour_into_questdb(tmp_path, resource)
        assert not result.success and retries == 0, failures
        assert len(failures) == 1 and "authentication failed" in failures[0].lower(), failures
        assert f"{server.host}:" in failures[0] and WRONG_PASSWORD not in failures[0]
        with _pg(server, "Right-Pass-77") as conn:
            tables = [r[0] for r in conn.execute("SELECT table_name FROM tables()").fetchall()]
        assert not [t for t in tables if t.endswith(("market_data", "core_price", "fx_trades"))]  # nothing created

        for var in [v for v in os.environ if v.startswith("QUESTDB_")]:
            monkeypatch.delenv(var)
        conf = f"http::addr={server.host}:{server.http_port};username=admin;password=Right-Pass-77;"
        monkeypatch.setenv("QDB_CLIENT_CONF", conf)
        monkeypatch.setenv("QUESTDB_PG_PORT", str(server.pg_port))  # the connect string names the HTTP port only
        resource = QuestDBResource.from_env()
        assert "Right-Pass-77" not in repr(resource)
        suffix = f"_c{os.urandom(3).hex()}"
        result, failures, retries = run_hour_into_questdb(tmp_path, resource, suffix)
        assert result.success and retries == 0, failures
        recorded = repr(result.dagster_run) + "".join(repr(e) for e in result.all_events)
        assert f"{server.host}:{server.http_port}" in recorded and "Right-Pass-77" not in recorded  # metadata, logs
        with _pg(server, "Right-Pass-77") as conn:
            rows = conn.execute(f"SELECT count() FROM market_data{suffix}").fetchone()[0]
        assert rows > 0
        # a QUESTDB_* variable is read above the connect string: its wrong password is refused
        monkeypatch.setenv("QUESTDB_PASSWORD", WRONG_PASSWORD)
        result, failures, retries = run_hour_into_questdb(tmp_path, QuestDBResource.from_env())
        assert not result.success and retries == 0 and "authentication failed" in failures[0].lower(), failures


@pytest.mark.questdb
def test_unreachable_server_is_retried():
    """A transient fault (nothing listens) goes to the retry policy: retried, then failing with one line."""
    from mkt_pipeline.defs.resources import QuestDBResource
    from mkt_pipeline_tests.questdb_server import closed_port

    port = closed_port()
    result, failures, retries = run_hour_into_questdb(
        None, QuestDBResource(host="127.0.0.1", http_port=port, pg_port=port)
    )
    assert not result.success and retries >= 1, failures
    assert any(f"127.0.0.1:{port}" in m and "unreachable" in m for m in failures), failures


def _pg(server, password):
    import psycopg

    return psycopg.connect(
        host=server.host,
        port=server.pg_port,
        user="admin",
        password=password,
        dbname="qdb",
        autocommit=True,
        connect_timeout=5,
    )

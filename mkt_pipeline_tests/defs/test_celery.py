"""A backfill spread over Celery workers, for real: Redis, two worker processes (each with its own
working directory, home and environment, as two machines would have), ``dagster dev`` on a
temporary DAGSTER_HOME with ``MKT_EXECUTOR=celery``, and the real QuestDB.

The backfill of four FX hours is launched with the webserver's GraphQL ``launchPartitionBackfill``
(the UI's path); each hour is one step (``MKT_STEP_HOURS=1``). Its rows are compared, row for row,
with the CLI's single-process run of the same hours. Then the tables are emptied, the backfill is
launched again, and the worker running an ingest step is killed mid-step (the whole process group,
as a lost machine): the run still completes with the same rows and no duplicates.

Bad configuration (a broker nobody listens on, no workers) fails a run within seconds with one line
naming the broker URL, its password redacted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from bench.celery_fleet import (
    celery_engine_events,
    dagster_dev,
    redis_server,
    redis_server_binary,
    start_worker,
    wait_for_workers,
)
from mkt_pipeline.cli import main
from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.core.timeline import US_PER_S, Window, parse_timestamp
from mkt_pipeline.defs.checks import CHECKS
from mkt_pipeline.defs.distributed import CeleryPreflightError, CelerySettings, WorkerWatch, preflight
from mkt_pipeline.defs.hourly import MARKET_TABLES, block_key, step_blocks
from mkt_pipeline.settings import redact_url as redact
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline_tests.defs.support import TINY_FX
from mkt_pipeline_tests.questdb_server import closed_port

needs_redis = pytest.mark.skipif(
    redis_server_binary() is None, reason="redis-server is not installed (apt-get install -y redis-server)"
)

PARTITIONS = ["2025-11-11-03:00", "2025-11-11-04:00", "2025-11-11-05:00", "2025-11-11-06:00"]
START, END = "2025-11-11T03:00:00Z", "2025-11-11T07:00:00Z"
FX = {**TINY_FX, "min_levels": 2, "max_levels": 2}
CHUNK_S = 300


def test_step_blocks_cover_the_range_in_whole_hours():
    window = Window.from_iso(START, END)
    assert [(b.start_us, b.end_us) for b in step_blocks(window, 1)] == [(h.start_us, h.end_us) for h in window.hours()]
    blocks = step_blocks(window, 3)
    assert [b.seconds for b in blocks] == [3 * 3600, 3600] and blocks[-1].end_us == window.end_us
    assert [block_key(b) for b in blocks] == ["2025_11_11T03", "2025_11_11T06"]


def test_redacted_broker_urls():
    assert redact("redis://:s3cret@broker:6379/0") == "redis://:***@broker:6379/0"
    assert redact("amqp://dagster:s3cret@rabbit:5672//") == "amqp://dagster:***@rabbit:5672//"
    assert redact("redis://broker:6379/0") == "redis://broker:6379/0"


def test_a_lost_worker_is_judged_by_its_silence():
    class Control:
        answering = ["w1@a", "w2@b"]

        def ping(self, timeout):
            return [{name: {"ok": "pong"}} for name in self.answering]

    class App:
        control = Control()

    now = [0.0]
    watch = WorkerWatch(App(), lost_after_s=10, clock=lambda: now[0])
    assert not watch.lost("w1@a")
    App.control.answering = ["w2@b"]  # w1 stops answering
    for t in (4.0, 8.0):
        now[0] = t
        assert not watch.lost("w1@a")
    now[0] = 12.0
    assert watch.lost("w1@a") and not watch.lost("w2@b")


def stored_rows(questdb, suffix: str) -> dict[str, list]:
    return questdb.stored_rows(FX_TABLES, TableNaming(suffix=suffix))


def assert_same_rows(stored: dict[str, list], reference: dict[str, list]) -> None:
    """Every table's rows equal the reference's, row for row; otherwise the first row that differs."""
    for table, expected in reference.items():
        found = stored[table]
        if found != expected:
            i = next((i for i, (a, b) in enumerate(zip(found, expected)) if a != b), min(len(found), len(expected)))
            shown = (found[i] if i < len(found) else None, expected[i] if i < len(expected) else None)
            pytest.fail(
                f"{table}: {len(found)} rows stored, {len(expected)} in the single-process run; first difference at row {i}: {shown}"
            )


def hour_counts(rows: dict[str, list]) -> dict[tuple[str, str], int]:
    """Rows per (table, partition), from the first column (the designated timestamp as µs/ns since the epoch)."""
    out: dict[tuple[str, str], int] = {}
    window = Window.from_iso(START, END)
    for table, found in rows.items():
        for partition, hour in zip(PARTITIONS, window.hours()):
            lo, hi = hour.start_us, hour.end_us
            out[table, partition] = sum(1 for r in found if lo <= (r[0] if r[0] < 10**17 else r[0] // 1000) < hi)
    return out


@pytest.fixture
def fleet(questdb, qdb_suffix, tmp_path):
    """Redis, two workers and ``dagster dev``, all with the same deployment settings."""
    with redis_server(tmp_path / "redis") as redis:
        settings = {
            "MKT_EXECUTOR": "celery",
            "MKT_CELERY_BROKER_URL": redis.url,
            "MKT_STEP_HOURS": "1",
            "MKT_CELERY_WORKER_LOST_SECONDS": "10",
            "MKT_OFFLINE": "1",
            "MKT_SINK": "questdb",
            "MKT_TABLE_SUFFIX": qdb_suffix,
            "MKT_FX_CHUNK_SECONDS": str(CHUNK_S),
            **questdb.env(),
            **{f"MKT_FX_{key.upper()}": str(value) for key, value in FX.items()},
        }
        workers = [start_worker(name, tmp_path / name, settings) for name in ("w1", "w2")]
        try:
            wait_for_workers(redis.url, workers)
            with dagster_dev(tmp_path / "dev", settings) as dev:
                yield dev, workers, redis
        finally:
            for w in workers:
                w.stop()


def run_report(dev, backfill: dict) -> tuple[list[str], list[tuple[str, str]], list]:
    """(run ids, (step, worker) of every Celery step start, check evaluations) of a finished backfill."""
    run_ids = [run["runId"] for run in backfill["runs"]]
    with dg.DagsterInstance.from_config(str(dev.home)) as instance:
        steps = [s for run_id in run_ids for s in celery_engine_events(instance, run_id)]
        evaluations = [
            entry.dagster_event.event_specific_data
            for run_id in run_ids
            for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
    return run_ids, steps, evaluations


def assert_checks_passed(evaluations) -> None:
    evaluated = {(e.asset_key.path[-1], e.check_name, e.partition) for e in evaluations}
    expected = {(asset, check, p) for asset, checks in CHECKS["fx"].items() for check in checks for p in PARTITIONS}
    assert expected <= evaluated, expected - evaluated
    for e in evaluations:
        if e.check_name == "continuous_at_edges" and e.partition in (PARTITIONS[0], PARTITIONS[-1]):
            continue  # the outer edges have no stored neighbour (the check warns, never passes)
        assert e.passed, (
            e.asset_key.path[-1],
            e.check_name,
            e.partition,
            {k: getattr(v, "value", v) for k, v in e.metadata.items()},
        )


@needs_redis
@pytest.mark.questdb
def test_backfill_spread_over_two_workers_survives_a_lost_worker(fleet, questdb, qdb_suffix):
    dev, workers, redis = fleet
    assets = [["fx", name] for name in MARKET_TABLES["fx"]]

    # the single-process reference: the CLI over the same hours, into tables of its own
    reference_suffix = f"{qdb_suffix}_cli"
    flags = [f"--{k}={v}" for k, v in FX.items()]
    try:
        argv = ["fx", "--mode", "faster-than-life", *flags, "--sink", "questdb", *questdb.cli_flags(), "--suffix", reference_suffix,
                "--create_views", "false", "--start_ts", START, "--end_ts", END, "--processes", "1",
                "--total_market_data_events", str(10**10)]  # fmt: skip
        assert main(argv) == 0
        reference = stored_rows(questdb, reference_suffix)
    finally:
        questdb.drop_suffix(reference_suffix)
    expected_counts = hour_counts(reference)
    assert all(expected_counts.values())

    # 1. both workers write: every partition as the single process wrote it, checked and counted
    backfill = dev.wait_backfill(dev.launch_backfill(PARTITIONS, assets), 900)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS") and all(
        r["status"] == "SUCCESS" for r in backfill["runs"]
    ), backfill
    run_ids, steps, evaluations = run_report(dev, backfill)
    assert len(run_ids) == 1  # one run; its hours became steps
    ingest = [(step, worker) for step, worker in steps if "fx_ingest[" in step]
    assert {step for step, _ in ingest} == {
        f"fx_hourly.fx_ingest[{p[:10].replace('-', '_')}T{p[11:13]}]" for p in PARTITIONS
    }
    assert {worker for _, worker in ingest} == {"w1", "w2"}, ingest
    assert_same_rows(stored_rows(questdb, qdb_suffix), reference)
    assert_checks_passed(evaluations)
    with dg.DagsterInstance.from_config(str(dev.home)) as instance:
        for asset_name, table in MARKET_TABLES["fx"].items():
            for partition in PARTITIONS:
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(["fx", asset_name]), asset_partitions=[partition]),
                    limit=1,
                ).records
                assert records, (asset_name, partition)
                row_count = records[0].asset_materialization.metadata["dagster/row_count"].value
                assert row_count == expected_counts[table.base_name, partition], (asset_name, partition)

    # 2. a worker is lost mid-step: its step is handed to the other worker, the rows are the same
    for schema in FX_TABLES:
        questdb.execute(f"TRUNCATE TABLE {TableNaming(suffix=qdb_suffix).name(schema)}")
    backfill_id = dev.launch_backfill(PARTITIONS, assets)
    market_data = TableNaming(suffix=qdb_suffix).name(FX_TABLES[0])

    def writing():
        """(step, worker) of an ingest step whose hour has rows stored but is not complete yet."""
        runs = dev.backfill(backfill_id)["runs"]
        if not runs:
            return None
        with dg.DagsterInstance.from_config(str(dev.home)) as instance:
            started = [s for s in celery_engine_events(instance, runs[0]["runId"]) if "fx_ingest[" in s[0]]
        for step, worker in started:
            key = step.split("[")[1].rstrip("]")
            partition = f"{key[:10].replace('_', '-')}-{key[11:13]}:00"
            start_us = parse_timestamp(f"{key[:10].replace('_', '-')}T{key[11:13]}:00:00Z")
            (count,) = questdb.query(
                f"SELECT count() FROM {market_data} WHERE timestamp >= {start_us} AND timestamp < {start_us + 3600 * US_PER_S}"
            )[0]
            if 0 < count < expected_counts["market_data", partition] // 2:
                return step, worker
        return None

    step, victim = dev.wait_for(writing, 600, "an ingest step half written")
    next(w for w in workers if w.name == victim).kill()
    survivor = next(w.name for w in workers if w.name != victim)

    backfill = dev.wait_backfill(backfill_id, 900)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS") and all(
        r["status"] == "SUCCESS" for r in backfill["runs"]
    ), backfill
    run_ids, steps, evaluations = run_report(dev, backfill)
    assert (step, survivor) in steps[steps.index((step, victim)) + 1 :], steps  # the step ran again, elsewhere
    assert_same_rows(stored_rows(questdb, qdb_suffix), reference)  # the same rows, none twice
    assert_checks_passed(evaluations)
    with dg.DagsterInstance.from_config(str(dev.home)) as instance:
        warnings = [e.message for run_id in run_ids for e in instance.all_logs(run_id) if e.level >= 30 and e.message]
    assert any(f"Celery worker {victim}@" in m and step in m for m in warnings), warnings


def failed_run(tmp_path: Path, settings: dict[str, str]) -> subprocess.CompletedProcess:
    """``dagster job execute`` of one FX hour with the Celery executor and ``settings``."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MKT_EXECUTOR": "celery", "MKT_OFFLINE": "1", "MKT_SINK": "parquet",
           "MKT_PARQUET_DIR": str(tmp_path / "data"), **settings}  # fmt: skip
    dagster = Path(sys.executable).with_name("dagster")
    args = [
        str(dagster),
        "job",
        "execute",
        "-m",
        "mkt_pipeline.definitions",
        "-j",
        "fx_hourly_job",
        "--tags",
        '{"dagster/partition": "2025-11-11-03:00"}',
    ]
    # a hang would end in this timeout; the run itself gives up within seconds
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)


def test_unreachable_broker_fails_the_run_naming_it(tmp_path):
    port = closed_port()  # nothing listens there
    url = f"redis://:s3cret-pw@127.0.0.1:{port}/0"
    started = time.monotonic()
    done = failed_run(tmp_path, {"MKT_CELERY_BROKER_URL": url})
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"Celery broker redis://:***@127.0.0.1:{port}/0 unreachable" in out, out[-3000:]
    assert "s3cret-pw" not in out
    assert not (tmp_path / "data").exists()  # nothing written
    print(
        f"unreachable broker: run failed after {time.monotonic() - started:.1f}s (including loading the code location)"
    )

    # the check alone answers within seconds
    with pytest.raises(CeleryPreflightError, match=rf"^Celery broker redis://:\*\*\*@127.0.0.1:{port}/0 unreachable: "):
        from dagster_celery.make_app import make_app

        from mkt_pipeline.defs.distributed import worker_app_args

        settings = CelerySettings.from_env({"MKT_CELERY_BROKER_URL": url})
        preflight(make_app(worker_app_args(settings)), settings)


@needs_redis
def test_no_worker_listening_fails_the_run_naming_the_broker(tmp_path):
    with redis_server(tmp_path / "redis") as redis:
        done = failed_run(tmp_path, {"MKT_CELERY_BROKER_URL": redis.url, "MKT_CELERY_WORKER_WAIT": "2"})
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"no Celery worker listens on queue 'dagster' at broker {redis.url} (waited 2s)" in out, out[-3000:]
    assert "celery -A mkt_pipeline.defs.celery_worker worker" in out
    assert not (tmp_path / "data").exists()

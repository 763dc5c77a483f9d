"""A backfill spread over Celery workers against the same backfill in one process.

For each case, ``dagster dev`` on a fresh DAGSTER_HOME launches the same FX backfill through the
webserver's GraphQL ``launchPartitionBackfill`` (the UI's path) into a real QuestDB
(``QUESTDB_HOST``/``QUESTDB_HTTP_PORT``/``QUESTDB_PG_PORT``/``QUESTDB_ILP_TCP_PORT``), each case with
its own table suffix (dropped afterwards):

* ``in_process``: the default executor, the whole range in one ingest step;
* ``celery-N``: ``MKT_EXECUTOR=celery`` with N worker processes (a Redis broker started here on a
  free port), one ingest step per ``--step-hours`` hours.

Reported per case: the run's duration (Dagster's run start to end: seeding, ingest, report, checks),
the wall time from launch to the backfill's completion, rows committed (the partitions'
``dagster/row_count``) and rows/s over the run's duration, and for Celery the per-step overhead:
for each ingest step, the time from its submission to its STEP_START on a worker (queueing on a
free worker, loading the code location, building the plan) and from its end to the next step of
the run being submitted, beside the step's own duration.

Workers on one machine share its cores: on a 2-core machine two workers cannot double the rate
(each ingest step already keeps two processes busy), so this measures the distributed path's
overhead and correctness, not a many-machine speed-up.

    QUESTDB_HTTP_PORT=9000 QUESTDB_PG_PORT=8812 QUESTDB_ILP_TCP_PORT=9009 \\
        .venv/bin/python bench/bench_celery.py --hours 4 --cases in_process celery-1 celery-2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from bench.celery_fleet import dagster_dev, redis_server, start_worker, wait_for_workers  # noqa: E402
from bench.common import drop_suffix, questdb_connect, questdb_env  # noqa: E402
from mkt_pipeline.core.timeline import SECONDS_PER_HOUR, US_PER_S, Window, parse_timestamp  # noqa: E402
from mkt_pipeline.defs.partitions import partition_key  # noqa: E402

# light FX rates with 2-level books (about 0.5 M rows an hour)
FX = dict(
    market_data_min_eps=70, market_data_max_eps=80, core_min_eps=60, core_max_eps=65,
    orders_min_per_sec=1, orders_max_per_sec=5, min_levels=2, max_levels=2,
)  # fmt: skip


def measure(dev, partitions: list[str]) -> dict:
    assets = [["fx", n] for n in ("market_data", "core_price", "trades")]
    launched = time.perf_counter()
    backfill = dev.wait_backfill(dev.launch_backfill(partitions, assets), 7200)
    wall = time.perf_counter() - launched
    if backfill["status"] not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise RuntimeError(f"backfill failed: {backfill}")
    with dg.DagsterInstance.from_config(str(dev.home)) as instance:
        run_id = backfill["runs"][0]["runId"]
        stats = instance.get_run_stats(run_id)
        rows = 0
        for name in ("market_data", "core_price", "trades"):
            for p in partitions:
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(["fx", name]), asset_partitions=[p]), limit=1
                ).records
                rows += records[0].asset_materialization.metadata["dagster/row_count"].value
        events = instance.all_logs(run_id)
    submitted, started, ended, workers = {}, {}, {}, {}
    for e in events:
        if not e.dagster_event or not e.step_key or "fx_ingest[" not in e.step_key:
            continue
        kind = e.dagster_event.event_type_value
        if kind == "ENGINE_EVENT" and (e.message or "").startswith("Submitting celery task"):
            submitted[e.step_key] = e.timestamp
        elif kind == "ENGINE_EVENT" and "Celery worker" in (e.dagster_event.event_specific_data.metadata or {}):
            workers[e.step_key] = e.dagster_event.event_specific_data.metadata["Celery worker"].value
        elif kind == "STEP_START":
            started[e.step_key] = e.timestamp
        elif kind == "STEP_SUCCESS":
            ended[e.step_key] = e.timestamp
    run_s = stats.end_time - stats.start_time
    out = {
        "partitions": len(partitions),
        "rows": rows,
        "run_s": round(run_s, 1),
        "wall_s": round(wall, 1),
        "rows_per_s": round(rows / run_s),
    }
    steps = sorted(started)
    out["ingest_steps"] = len(steps)
    out["step_s_median"] = round(statistics.median(ended[s] - started[s] for s in steps), 1) if steps else None
    if submitted:
        # submission to STEP_START: broker, a free worker, loading the code location, planning the step
        out["start_overhead_s"] = [round(started[s] - submitted[s], 1) for s in steps]
        out["workers"] = sorted({str(w).split("@")[0] for w in workers.values()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=4)
    parser.add_argument("--start", default="2025-11-11T03:00")
    parser.add_argument("--step-hours", type=int, default=1)
    parser.add_argument("--cases", nargs="+", default=["in_process", "celery-1", "celery-2"])
    args = parser.parse_args()
    first = parse_timestamp(args.start)
    partitions = [partition_key(h) for h in Window(first, first + args.hours * SECONDS_PER_HOUR * US_PER_S).hours()]
    results = {}
    for case in args.cases:
        suffix = f"_bc{uuid.uuid4().hex[:6]}"
        base = {
            "MKT_OFFLINE": "1", "MKT_SINK": "questdb", "MKT_TABLE_SUFFIX": suffix, "MKT_FX_CHUNK_SECONDS": "600",
            **questdb_env(), **{f"MKT_FX_{k.upper()}": str(v) for k, v in FX.items()},
        }  # fmt: skip
        folder = Path(tempfile.mkdtemp(prefix=f"bench-celery-{case}-"))
        try:
            if case == "in_process":
                with dagster_dev(folder / "dev", base) as dev:
                    results[case] = measure(dev, partitions)
            else:
                n = int(case.split("-")[1])
                with redis_server(folder / "redis") as redis:
                    settings = {
                        **base,
                        "MKT_EXECUTOR": "celery",
                        "MKT_CELERY_BROKER_URL": redis.url,
                        "MKT_STEP_HOURS": str(args.step_hours),
                    }
                    workers = [start_worker(f"w{i + 1}", folder / f"w{i + 1}", settings) for i in range(n)]
                    try:
                        wait_for_workers(redis.url, workers)
                        with dagster_dev(folder / "dev", settings) as dev:
                            results[case] = measure(dev, partitions)
                    finally:
                        for w in workers:
                            w.stop()
            print(json.dumps({case: results[case]}), flush=True)
        finally:
            with questdb_connect() as conn:
                drop_suffix(conn, suffix)
    print(
        json.dumps(
            {
                "hours": args.hours,
                "step_hours": args.step_hours,
                "cpus": os.cpu_count(),
                "load_avg": os.getloadavg(),
                "results": results,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

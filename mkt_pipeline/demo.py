"""``make demo``: one FX hour and one equities hour through the Dagster hourly jobs, then a summary.

Runs the same jobs as the UI (``fx_hourly_job``, ``equities_hourly_job``, checks included) on the
Dagster instance of ``DAGSTER_HOME`` (``make demo`` sets the one ``make dev`` opens, so the demo's
runs, partitions and checks are there afterwards; without it, on an ephemeral instance); the sink and the rates come from the
environment (the Makefile sets ``MKT_SINK=parquet`` and the light profile through the
``MKT_FX_*``/``MKT_EQUITIES_*`` variables).
"""

import argparse
import os
import sys
import time

import dagster as dg

from mkt_pipeline.core.timeline import parse_timestamp, us_to_datetime


def partition_key(hour: str) -> str:
    """``2025-11-11T03:00:00Z`` (or any ISO-8601 time) -> the hourly partition containing it."""
    return us_to_datetime(parse_timestamp(hour)).strftime("%Y-%m-%d-%H:00")


def run_job(defs: dg.Definitions, job_name: str, partition: str, instance: dg.DagsterInstance) -> bool:
    """Execute one partition of a job and print rows, rows/s and check outcomes; True on success."""
    started = time.perf_counter()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def(job_name).execute_in_process(
        partition_key=partition, instance=instance, run_config=quiet, raise_on_error=False
    )
    elapsed = time.perf_counter() - started
    events = result.get_asset_materialization_events() if result.success else []
    tables = [e for e in events if e.asset_key.path[-1] != "reference_prices"]
    checks = result.get_asset_check_evaluations() if result.success else []
    print(f"{job_name} {partition}: {'ok' if result.success else 'FAILED'} in {elapsed:.1f}s")
    sink = ""
    for event in tables:
        meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
        sink = meta.get("sink", sink)
        print(
            f"  {event.asset_key.to_user_string():<22} {meta['dagster/row_count']:>12,} rows {meta['rows_per_second']:>12,.0f} rows/s  refs: {meta['reference_source']}"
        )
    failed = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    warned = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN]
    # a lone hour has no stored neighbour: its edge check compares nothing and is not evaluated
    skipped = checks_not_evaluated(result, job_name.split("_")[0]) if result.success else []
    print(
        f"  checks: {len(checks) - len(failed) - len(warned)}/{len(checks)} passed"
        + "".join(f"\n    FAILED {c.asset_key.to_user_string()} {c.check_name}" for c in failed)
        + "".join(
            f"\n    warning {c.asset_key.to_user_string()} {c.check_name}: {c.metadata['status'].value}"
            for c in warned
            if "status" in c.metadata
        )
        + "".join(f"\n    not evaluated: {name} (no neighbouring hour stored, nothing to compare)" for name in skipped)
    )
    if sink:
        print(f"  written to {sink}")
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_failure_data is not None:
                print(f"  error: {event.step_failure_data.error.message.strip()}")
    return result.success and not failed


def checks_not_evaluated(result, market: str) -> list[str]:
    """Checks of the run that recorded no evaluation (the edge check of a lone hour)."""
    from mkt_pipeline.defs.checks import CHECKS

    evaluated = {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()}
    expected = [(f"{market}/{table}", check) for table, names in CHECKS[market].items() for check in names]
    return [f"{asset} {check}" for asset, check in expected if (asset, check) not in evaluated]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mkt_pipeline.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--fx_hour", default="2025-11-11T03:00:00Z", help="any time inside the FX hour to materialize")
    parser.add_argument(
        "--equities_hour",
        default="2025-11-11T15:00:00Z",
        help="any time inside the equities hour (15:00Z is 10:00 New York)",
    )
    args = parser.parse_args(argv)
    from mkt_pipeline.definitions import defs  # after the environment is final: config defaults read it

    with dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral() as instance:
        ok = run_job(defs, "fx_hourly_job", partition_key(args.fx_hour), instance)
        ok = run_job(defs, "equities_hourly_job", partition_key(args.equities_hour), instance) and ok
        if os.environ.get("DAGSTER_HOME"):
            print(f"runs recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}: `make dev` shows them")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Dagster against the CLI: a ranged backfill as one Dagster run versus ``mkt-pipeline`` over the same hours.

For each case, against a real QuestDB (``QUESTDB_HOST``/``QUESTDB_HTTP_PORT``/``QUESTDB_PG_PORT``/
``QUESTDB_ILP_TCP_PORT``), with the same ``MKT_<MARKET>_*`` rates for both drivers:

* CLI: ``mkt-pipeline <market> --mode faster-than-life --start_ts A --end_ts B`` with no row limit
  (wall time of the whole command);
* Dagster: ``dagster job execute -j <market>_hourly_job`` with the partition range as tags, on a
  fresh SQLite ``DAGSTER_HOME`` (the asset checks of every partition are part of the run). Reported:
  the run's own duration (Dagster's run start to run end: seeding prices, ingest, checks), the
  ingest and check steps, and the command's wall time (which adds loading the code location).

``ratio`` = Dagster run / CLI wall (goal <= 1.10); ``CLI+WAL`` adds the wait until QuestDB has applied the
CLI's rows (the Dagster run waits for its own before checking them), and the Dagster half starts only
after that, so it does not pay for the CLI's backlog. Each driver writes its own table suffix; every
table and view of both is dropped after the case (40-level books at default rates take > 30 GB an
hour: the cases use 10-level light rates or 3-level default rates). Reference prices come from the
built-in table (``MKT_OFFLINE=1``) so both drivers use the same closes without the network.

    QUESTDB_HTTP_PORT=9000 QUESTDB_PG_PORT=8812 .venv/bin/python bench/bench_dagster.py [--cases fx-light-3h ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))  # run as a script: the bench package beside it

from bench.common import drop_suffix, questdb_connect  # noqa: E402
from mkt_pipeline.core.timeline import SECONDS_PER_HOUR, US_PER_S, Window, format_us, parse_timestamp  # noqa: E402
from mkt_pipeline.defs.partitions import partition_key  # noqa: E402

# The Makefile's demo profile (the seed's local-development rates, 10 levels)
LIGHT = {
    "fx": dict(
        market_data_min_eps=110,
        market_data_max_eps=150,
        core_min_eps=70,
        core_max_eps=100,
        orders_min_per_sec=5,
        orders_max_per_sec=30,
        min_levels=10,
        max_levels=10,
    ),
    "equities": dict(
        market_data_min_eps=800,
        market_data_max_eps=2000,
        trades_min_eps=300,
        trades_max_eps=800,
        min_levels=10,
        max_levels=10,
    ),
}
CASES = {
    "fx-light-3h": ("fx", "2025-11-11T00:00:00Z", 3, LIGHT["fx"]),
    "fx-default-3lvl-1h": ("fx", "2025-11-11T03:00:00Z", 1, dict(min_levels=3, max_levels=3)),
    # 10:00-13:00 in New York: the session is trading
    "equities-light-3h": ("equities", "2025-11-11T15:00:00Z", 3, LIGHT["equities"]),
}


def wait_applied(suffix: str, timeout_s: float = 1800.0) -> float:
    """Seconds until QuestDB has applied every WAL transaction of the tables ending in ``suffix``."""
    started = time.perf_counter()
    with questdb_connect() as conn:
        while time.perf_counter() - started < timeout_s:
            rows = conn.execute("SELECT name, writerTxn, sequencerTxn FROM wal_tables()").fetchall()
            if all(w >= q for name, w, q in rows if name.endswith(suffix)):
                break
            time.sleep(0.1)
    return time.perf_counter() - started


def drop_suffix_tables(suffix: str) -> None:
    with questdb_connect() as conn:
        drop_suffix(conn, suffix)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it waited for)."""
    started, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, _children_cpu() - cpu


def dagster_run_facts(home: str) -> dict:
    """The run's duration, its steps' durations and whether every check passed, from the instance."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(home)
    run = instance.get_runs(limit=1)[0]
    stats = instance.get_run_stats(run.run_id)
    steps = {}
    checks = []
    for record in instance.all_logs(run.run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_SUCCESS":
            steps[event.step_key] = event.event_specific_data.duration_ms / 1000
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            checks.append(event.event_specific_data)
    return {
        "status": run.status.value,
        "run_s": stats.end_time - stats.start_time,
        "ingest_s": next((v for k, v in steps.items() if k.endswith("_ingest")), None),
        "checks_s": next((v for k, v in steps.items() if k.endswith("_partition_checks")), None),
        "checks": len(checks),
        "checks_failed": sum(1 for c in checks if not c.passed and c.severity.value == "ERROR"),
        "checks_warned": sum(1 for c in checks if not c.passed and c.severity.value == "WARN"),
    }


def run_case(name: str, dagster_first: bool = False) -> dict:
    market, start, hours, rates = CASES[name]
    first = parse_timestamp(start)
    window = Window(first, first + hours * SECONDS_PER_HOUR * US_PER_S)
    end = format_us(window.end_us)
    partitions = [partition_key(hour) for hour in window.hours()]
    env = {
        **os.environ,
        "MKT_OFFLINE": "1",
        "MKT_SINK": "questdb",
        **{f"MKT_{market.upper()}_{k.upper()}": str(v) for k, v in rates.items()},
    }
    tag = f"_b{os.getpid()}"
    cli_suffix, dg_suffix = f"{tag}c", f"{tag}d"
    measured: dict = {}

    def run_cli() -> None:
        # no row limit: the CLI's default stops after 1,000,000 market_data rows
        cli = [
            str(BIN / "mkt-pipeline"),
            market,
            "--mode",
            "faster-than-life",
            "--start_ts",
            start,
            "--end_ts",
            end,
            "--suffix",
            cli_suffix,
            "--total_market_data_events",
            str(10**10),
        ]
        measured["cli_s"], measured["cli_cpu"] = timed(cli, env)
        # the CLI returns once QuestDB has committed its rows; the Dagster run's checks also wait
        # for them to be applied. The server finishes the CLI's backlog before the other half starts.
        measured["cli_apply_s"] = wait_applied(cli_suffix)
        drop_suffix_tables(cli_suffix)

    def run_dagster() -> None:
        with tempfile.TemporaryDirectory() as home:
            tags = json.dumps(
                {
                    "dagster/asset_partition_range_start": partitions[0],
                    "dagster/asset_partition_range_end": partitions[-1],
                }
            )
            dg_env = {**env, "DAGSTER_HOME": home, "MKT_TABLE_SUFFIX": dg_suffix}
            cmd = [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-m",
                "mkt_pipeline.definitions",
                "-j",
                f"{market}_hourly_job",
                "--tags",
                tags,
            ]
            measured["wall_s"], measured["dg_cpu"] = timed(cmd, dg_env)
            measured["facts"] = dagster_run_facts(home)
        drop_suffix_tables(dg_suffix)

    try:
        for half in (run_dagster, run_cli) if dagster_first else (run_cli, run_dagster):
            half()
    finally:
        drop_suffix_tables(cli_suffix)
        drop_suffix_tables(dg_suffix)
    cli_s, facts, wall_s = measured["cli_s"], measured["facts"], measured["wall_s"]
    return {"case": name, "first": "dagster" if dagster_first else "cli", "cli_s": round(cli_s, 1), "cli_applied_s": round(cli_s + measured["cli_apply_s"], 1),
            "dagster_run_s": round(facts["run_s"], 1), "dagster_wall_s": round(wall_s, 1), "ratio": round(facts["run_s"] / cli_s, 3),
            "cli_cpu_s": round(measured["cli_cpu"], 1), "dagster_cpu_s": round(measured["dg_cpu"], 1), "wall_ratio": round(wall_s / cli_s, 3),
            **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in facts.items() if k != "run_s"}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(
        f"{'case':<22} {'first':>7} {'CLI s':>7} {'CLI+WAL s':>9} {'Dagster run s':>14} {'ratio':>6} {'wall s':>7} {'ingest s':>9} {'checks s':>9} {'CPU CLI/Dagster':>16} {'checks':>7} {'failed':>6} {'warned':>6}"
    )
    for name in args.cases:
        for i in range(args.repeat):
            r = run_case(name, dagster_first=i % 2 == 1)  # alternate which driver meets the server first
            print(
                f"{r['case']:<22} {r['first']:>7} {r['cli_s']:>7} {r['cli_applied_s']:>9} {r['dagster_run_s']:>14} {r['ratio']:>6} {r['dagster_wall_s']:>7} {r['ingest_s']:>9} {r['checks_s']:>9} {str(r['cli_cpu_s']) + '/' + str(r['dagster_cpu_s']):>16} "
                f"{r['checks']:>7} {r['checks_failed']:>6} {r['checks_warned']:>6}",
                flush=True,
            )
            print(json.dumps(r), file=sys.stderr, flush=True)
    print(f"peak RSS of the drivers' processes: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()

"""The Dagster side of the hourly checks: one multi-asset check per market, evaluated per partition.

What each check verifies and how (SQL in QuestDB, bounded Arrow slices on Parquet) is in
``sinks/checks.py``; here the checks become partitioned check specs and per-partition evaluations.

In a materializing run the ingest step evaluates each hour as soon as it is stored, while later
hours are still being written, and hands the results to the run's check step (both run in one
process); run on their own, the checks evaluate the stored rows here.

Continuity at the edges: when a run stores an hour, the edges it shares with stored neighbouring
hours are checked, and the neighbours' own ``continuous_at_edges`` evaluations are brought up to
date in the same step. An hour with no stored neighbour has nothing to compare: no evaluation is
recorded for it (the UI shows it as not evaluated), never a pass and never a failure.
"""

import warnings
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import numpy as np

from mkt_pipeline.core.timeline import SECONDS_PER_HOUR, US_PER_S, Window
from mkt_pipeline.defs.config import MARKET_TABLES, engine_for_run
from mkt_pipeline.defs.partitions import HOURLY_PARTITIONS, context_window, partition_key
from mkt_pipeline.defs.sink_resource import MarketSinkResource
from mkt_pipeline.markets import market_references
from mkt_pipeline.sinks.checks import (
    CHECKS,
    DESCRIPTIONS,
    EDGE_CHECK,
    NOT_EVALUATED,
    Outcome,
    Results,
    checks_for,
    evaluate_partition,
    run_tables,
)
from mkt_pipeline.sinks.stored_rows import QuestDBRows

__all__ = ["CHECKS", "DESCRIPTIONS", "PARTITION_CHECKS", "hand_over", "planned_per_second"]


def _specs(market: str) -> list[dg.AssetCheckSpec]:
    with warnings.catch_warnings():
        # partitioned check specs are a preview feature of this Dagster version: say so here, not on every load
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name,
                asset=dg.AssetKey([market, table]),
                description=DESCRIPTIONS[name],
                partitions_def=HOURLY_PARTITIONS[market],
            )
            for table, names in CHECKS[market].items()
            for name in names
        ]


def latest_record(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str):
    """The latest materialization record of ``key`` for ``partition`` (None when there is none)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records and records[0].asset_materialization is not None else None


def record_metadata(record) -> dict:
    return {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}


def planned_per_second(market: str, settings: dict, window: Window) -> dict[str, np.ndarray]:
    """The engine's planned rows of each second of ``window``, per planned table (counts need no real references)."""
    engine = engine_for_run(market, settings, market_references(market, window, offline=True))
    return {
        name: np.asarray(n, dtype=np.int64)
        for name, n in engine.planned_per_second(window.first_second, window.end_second).items()
    }


HOUR_US = SECONDS_PER_HOUR * US_PER_S
WHILE_WRITING = "by the ingest step, as soon as the hour was stored"
BY_CHECK_STEP = "by the check step, on the stored rows"
# Results the ingest step of a run evaluated while writing, waiting for that run's check step
# (runs execute in one process): (run id, market, partition key) -> results.
_WRITTEN: dict[tuple[str, str, str], Results] = {}


def hand_over(run_id: str, market: str, partition: str, results: Results) -> None:
    _WRITTEN[(run_id, market, partition)] = results


def _taken_over(run_id: str, market: str, partition: str, records: dict) -> Results | None:
    """The hour's results this run's ingest step evaluated, when every table's latest
    materialization is that run's and they cover every check (else None: evaluate here)."""
    results = _WRITTEN.pop((run_id, market, partition), None)
    if results is None or any(r is None or r.run_id != run_id for r in records.values()):
        return None
    every = {(table, check) for table, names in CHECKS[market].items() for check in names}
    if set(results) != every:
        return None
    return {k: o._replace(metadata={**o.metadata, "evaluated": WHILE_WRITING}) for k, o in results.items()}


def _stored(market: str, instance: dg.DagsterInstance, hour: Window) -> dict:
    return {n: latest_record(instance, dg.AssetKey([market, n]), partition_key(hour)) for n in MARKET_TABLES[market]}


def _evaluation(market: str, table: str, check: str, outcome: Outcome, key: str, record) -> dg.AssetCheckEvaluation:
    passed, severity, meta = outcome
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey([market, table]),
        check_name=check,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity(severity),
        metadata={**meta, "partition": key, **({"materialization_run": record.run_id} if record is not None else {})},
        description=DESCRIPTIONS[check],
        partition=key,
    )


def build_partition_checks(market: str) -> dg.AssetChecksDefinition:
    specs = _specs(market)

    @dg.multi_asset_check(name=f"{market}_partition_checks", specs=specs, can_subset=False)
    def partition_checks(context: dg.AssetCheckExecutionContext, sink: MarketSinkResource):
        """Evaluate every check for each partition of the run, one evaluation per partition, and bring
        the edge checks of the stored neighbouring hours up to date."""
        op_context = context.op_execution_context
        window = context_window(op_context)
        hours = list(window.hours())
        found = {partition_key(h): _stored(market, context.instance, h) for h in hours}
        run_id = op_context.run_id
        evaluated = {key: _taken_over(run_id, market, key, records) for key, records in found.items()}
        # the hours either side of the run: their edge with the run's window changed
        neighbours = [
            Window(window.start_us - HOUR_US, window.start_us),
            Window(window.end_us, window.end_us + HOUR_US),
        ]
        stored_neighbours = {}
        for hour in neighbours:
            records = _stored(market, context.instance, hour)
            if all(r is not None for r in records.values()) and "settings" in record_metadata(records["market_data"]):
                stored_neighbours[hour.start_us] = (hour, records)
        with ThreadPoolExecutor(max_workers=1) as planner, sink.stored_rows(market) as rows:
            # the plan is pure Python while QuestDB answers the SQL: compute it alongside
            plans = {}
            for hour in hours:
                records = found[partition_key(hour)]
                if (
                    evaluated[partition_key(hour)] is None
                    and all(r is not None for r in records.values())
                    and "settings" in record_metadata(records["market_data"])
                ):
                    plans[hour.start_us] = planner.submit(
                        planned_per_second, market, record_metadata(records["market_data"])["settings"], hour
                    )
            if (plans or stored_neighbours) and isinstance(rows, QuestDBRows):  # QuestDB applies WAL asynchronously
                written = [record_metadata(r) for records in found.values() for r in records.values() if r is not None]
                tables = run_tables(market, {"any": written[0]}) if written else MARKET_TABLES[market]
                rows.wait_applied(tables.values())
            runner = checks_for(rows)
            events = []
            for hour in hours:
                key = partition_key(hour)
                records = found[key]
                if evaluated[key] is not None:
                    results = evaluated[key]
                elif hour.start_us not in plans:
                    status = (
                        "partition not materialized: nothing to check"
                        if any(r is None for r in records.values())
                        else "materialization carries no settings"
                    )
                    results = {
                        (s.asset_key.path[-1], s.name): Outcome(False, "WARN", {"status": status}) for s in specs
                    }
                else:
                    metas = {name: record_metadata(r) for name, r in records.items()}
                    results = evaluate_partition(market, runner, hour, metas, plans[hour.start_us].result())
                    results = {
                        k: o._replace(metadata={**o.metadata, "evaluated": BY_CHECK_STEP}) for k, o in results.items()
                    }
                events.extend(
                    (table, check, outcome, key, records.get(table)) for (table, check), outcome in results.items()
                )
            for hour, records in stored_neighbours.values():
                metas = {name: record_metadata(r) for name, r in records.items()}
                results = evaluate_partition(market, runner, hour, metas, {}, only=[EDGE_CHECK])
                note = f"again by the check step of run {run_id}, which stored a neighbouring hour"
                results = {k: o._replace(metadata={**o.metadata, "evaluated": note}) for k, o in results.items()}
                events.extend(
                    (table, check, outcome, partition_key(hour), records[table])
                    for (table, check), outcome in results.items()
                )
        for table, check, outcome, key, record in events:
            if outcome.passed is None:
                op_context.log.info(f"{market}/{table} {check} {key}: {NOT_EVALUATED}")
                continue
            op_context.log_event(_evaluation(market, table, check, outcome, key, record))
        # every result went out above as its partition's evaluation; a check result yielded here
        # would be recorded once for the whole range, so only the (empty) check outputs follow
        layer = op_context.get_step_execution_context().job_def.asset_layer
        for spec in specs:
            yield dg.Output(None, output_name=layer.get_op_output_name(spec.key))

    return partition_checks


fx_partition_checks = build_partition_checks("fx")
equities_partition_checks = build_partition_checks("equities")
PARTITION_CHECKS = {"fx": fx_partition_checks, "equities": equities_partition_checks}

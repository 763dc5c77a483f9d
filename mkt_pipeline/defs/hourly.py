"""The hourly multi-asset of a market, built from ops: seed prices -> plan chunks -> ingest -> publish.

Only small descriptors travel between ops (the window, the settings, the reference closes, row
counts); every chunk step generates its rows and writes them itself, so nothing large is pickled.
Chunks never straddle an hour and are independent (time is stateless), so they run as parallel
steps of one run, each holding a slot of the ``questdb`` pool, and any of them can be retried:
writes are idempotent.
"""


import time
from dataclasses import dataclass, field

import dagster as dg

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.defs.config import GENERATION_CONFIG
from mkt_pipeline.markets import build_engine, engine_settings
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.defs.partitions import HOURLY_PARTITIONS, REFERENCE_DAYS_MAPPING, backfill_policy, context_window
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.defs.reference_records import references_for_window
from mkt_pipeline.defs.sink_resource import MarketSinkResource
from mkt_pipeline.core.tables import (
    EQUITIES_MARKET_DATA,
    EQUITIES_TRADES,
    FX_CORE_PRICE,
    FX_MARKET_DATA,
    FX_TRADES,
    TableSchema,
)
from mkt_pipeline.core.timeline import Window, format_us, us_to_datetime

QUESTDB_POOL = "questdb"

# asset name (under the market prefix) -> table it materializes
MARKET_TABLES: dict[str, dict[str, TableSchema]] = {
    "fx": {"market_data": FX_MARKET_DATA, "core_price": FX_CORE_PRICE, "trades": FX_TRADES},
    "equities": {"market_data": EQUITIES_MARKET_DATA, "trades": EQUITIES_TRADES},
}


@dataclass(frozen=True)
class ChunkTask:
    """One chunk to generate and write: everything a step needs, and nothing large."""

    market: str
    start_us: int
    end_us: int
    settings: dict
    references: dict

    @property
    def window(self) -> Window:
        return Window(self.start_us, self.end_us)


@dataclass(frozen=True)
class ChunkResult:
    start_us: int
    end_us: int
    rows: dict[str, int]  # by table base name
    bytes: dict[str, int]
    planned: dict[str, int]
    started_at: float
    finished_at: float
    settings: dict = field(default_factory=dict)
    wal_lag: int | None = None


def _failure(exc: Exception) -> dg.Failure:
    return dg.Failure(description=str(exc))


def make_engine(market: str, settings: dict, references: ReferencePrices):
    try:
        return build_engine(market, settings, references)
    except ConfigError as exc:
        raise _failure(exc) from None


def plan_chunks(window: Window, chunk_seconds: int) -> list[Window]:
    """Chunks of at most ``chunk_seconds`` that never straddle an hour (so per-hour counts are exact)."""
    return [chunk for hour in window.hours() for chunk in hour.split(chunk_seconds)]


def ingest_chunk(task: ChunkTask, sink_resource: MarketSinkResource, log=None) -> ChunkResult:
    """Generate one chunk into the configured sink; rows/bytes per table base name."""
    started = time.time()
    engine = make_engine(task.market, task.settings, ReferencePrices.from_json(task.references))
    window = task.window
    with sink_resource.get_sink(task.market) as sink:
        sink.prepare(engine.schemas)
        result = run_window(engine, sink, window, chunk_seconds=window.seconds)
        # run_window counts rows as they are queued; the sink counts rows and bytes it committed
        written = sink.stats
        monitor = getattr(sink, "monitor", None)
        wal_lag = monitor.max_lag_seen if monitor is not None else None
    by_name = {sink.naming.name(s): s.base_name for s in engine.schemas}
    planned = engine.planned_counts(window.first_second, window.end_second) if hasattr(engine, "planned_counts") else {}
    if log is not None:
        log.info(f"{task.market} {window}: {result.total_rows:,} rows in {result.elapsed_s:.1f}s ({result.rows_per_second:,.0f} rows/s)")
    return ChunkResult(
        start_us=window.start_us,
        end_us=window.end_us,
        # a retried step skips chunks the ledger records as stored; the partition still holds their rows
        rows={by_name[k]: int(v) for k, v in result.window_rows.items()},
        bytes={by_name[k]: int(v) for k, v in written.bytes.items()},
        planned={k: int(v) for k, v in planned.items()},
        started_at=started,
        finished_at=time.time(),
        settings=task.settings,
        wal_lag=wal_lag,
    )


def table_metadata(market: str, table: TableSchema, results: list[ChunkResult], context_meta: dict) -> dict:
    """SPEC §8 materialization metadata of one table for the chunks of a run."""
    rows = sum(r.rows.get(table.base_name, 0) for r in results)
    wall = max(r.finished_at for r in results) - min(r.started_at for r in results)
    start, end = min(r.start_us for r in results), max(r.end_us for r in results)
    lags = [r.wal_lag for r in results if r.wal_lag is not None]
    hours = sorted({us_to_datetime(r.start_us).strftime("%Y-%m-%d-%H:00") for r in results})
    meta = {
        "rows": rows,
        "rows_per_second": round(rows / wall, 1) if wall > 0 else 0.0,
        "bytes": sum(r.bytes.get(table.base_name, 0) for r in results),
        "window": f"[{format_us(start)}, {format_us(end)})",
        "window_start_us": start,
        "window_end_us": end,
        "partitions": len(hours),
        "chunks": len(results),
        "wal_lag_max": max(lags) if lags else "n/a (parquet sink)",
        **context_meta,
    }
    if len(hours) == 1:
        # one partition: the count is that partition's; for a range Dagster would repeat it on each
        meta["dagster/row_count"] = rows
    else:
        per_hour: dict[str, int] = {}
        for r in results:
            key = us_to_datetime(r.start_us).strftime("%Y-%m-%d-%H:00")
            per_hour[key] = per_hour.get(key, 0) + r.rows.get(table.base_name, 0)
        meta["rows_per_partition"] = dg.MetadataValue.json(per_hour)
    planned = {}
    for r in results:
        for k, v in r.planned.items():
            planned[k] = planned.get(k, 0) + v
    if planned:
        meta["planned"] = dg.MetadataValue.json(planned)
    return meta


def build_hourly_asset(market: str) -> dg.AssetsDefinition:
    """``<market>/<table>`` for each table of the market, one hourly partitioned graph multi-asset."""
    tables = MARKET_TABLES[market]
    config_cls = GENERATION_CONFIG[market]

    @dg.op(name=f"{market}_seed_prices", ins={"after": dg.In(dg.Nothing)}, tags={"kind": "prices"})
    def seed_prices(context: dg.OpExecutionContext) -> dict:
        """Reference closes for the run's window: recorded ones, seeding (and recording) missing days."""
        window = context_window(context)
        references, seeded = references_for_window(context, market, window)
        if seeded:
            context.log.info(f"seeded {market} reference closes for {', '.join(seeded)} ({references.source})")
        return {"references": references.to_json(), "source": references.source, "seeded": seeded}

    @dg.op(name=f"{market}_plan_chunks", out=dg.DynamicOut(ChunkTask))
    def plan(context: dg.OpExecutionContext, config: config_cls, sink: MarketSinkResource, prices: dict):
        """Validate settings, create tables once (before parallel writers), fan out the chunks."""
        values = config.model_dump()
        references = ReferencePrices.from_json(prices["references"])
        engine = make_engine(market, values, references)
        with sink.get_sink(market) as s:
            s.prepare(engine.schemas)
        window = context_window(context)
        settings = engine_settings(market, values)
        for chunk in plan_chunks(window, values["chunk_seconds"]):
            key = us_to_datetime(chunk.start_us).strftime("%Y%m%dT%H%M%S")
            yield dg.DynamicOutput(ChunkTask(market, chunk.start_us, chunk.end_us, settings, prices["references"]), mapping_key=key)

    @dg.op(name=f"{market}_ingest_chunk", pool=QUESTDB_POOL, retry_policy=dg.RetryPolicy(max_retries=2, delay=5))
    def ingest(context: dg.OpExecutionContext, sink: MarketSinkResource, task: ChunkTask) -> ChunkResult:
        """Generate one chunk and write it (idempotent, so a retry is safe)."""
        return ingest_chunk(task, sink, context.log)

    @dg.op(name=f"{market}_publish", out={name: dg.Out(dg.Nothing) for name in tables})
    def publish(context: dg.OpExecutionContext, sink: MarketSinkResource, prices: dict, results: list[ChunkResult]):
        """Report what each table received."""
        refs = ReferencePrices.from_json(prices["references"])
        settings = results[0].settings
        common = {
            "seed": settings["seed"],
            "reference_source": prices["source"],
            "reference_days": ", ".join(refs.days()),
            "sink": sink.location(),
            "settings": dg.MetadataValue.json(settings),
        }
        for name, table in tables.items():
            yield dg.Output(None, output_name=name, metadata=table_metadata(market, table, results, common))

    @dg.graph_multi_asset(
        name=f"{market}_hourly",
        outs={
            name: dg.AssetOut(key=[market, name], group_name=market, description=f"{market} `{table.base_name}` rows of the hour (SPEC §4.2/§5.2).", kinds={"questdb"})
            for name, table in tables.items()
        },
        ins={"reference_prices": dg.AssetIn(key=[market, "reference_prices"], partition_mapping=REFERENCE_DAYS_MAPPING, dagster_type=dg.Nothing)},
        partitions_def=HOURLY_PARTITIONS[market],
        backfill_policy=backfill_policy(),
        config=dg.ConfigMapping(
            config_schema=config_cls.to_config_schema(),
            config_fn=lambda values: {f"{market}_plan_chunks": {"config": values}},
        ),
    )
    def hourly(reference_prices):
        prices = seed_prices(reference_prices)
        results = plan(prices).map(ingest).collect()
        return publish(prices, results)

    return hourly


"""The hourly multi-asset of a market, built from two ops: seed prices -> ingest.

The ingest op drives the same loop as the CLI (``run.faster.iter_chunks``: chunked windows, the
child-process generator, optional worker processes), over the run's whole partition or partition
range, in one step: no process per chunk and nothing large pickled (only the reference closes
travel between the ops). Chunks never straddle an hour, so the rows committed by each chunk add up
to exact per-partition counts, and each partition of a ranged run gets its own materialization
metadata (``add_asset_metadata(partition_key=...)``).
"""

import dataclasses
import socket
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import partial

import dagster as dg

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.tables import (
    BOOK,
    BOOLEAN,
    DOUBLE,
    LONG,
    SYMBOL,
    TIMESTAMP,
    TIMESTAMP_NS,
    UUID,
    TableSchema,
)
from mkt_pipeline.core.timeline import Window, hour_start_us, us_to_datetime
from mkt_pipeline.defs.checks import hand_over, planned_per_second
from mkt_pipeline.defs.config import (
    GENERATION_CONFIG,
    MARKET_TABLES,
    config_error,
    engine_for_run,
    fail_on_deployment_problems,
    reject_unknown_ops,
)
from mkt_pipeline.defs.distributed import deployment_step_hours
from mkt_pipeline.defs.partitions import (
    HOURLY_PARTITIONS,
    REFERENCE_DAYS_MAPPING,
    backfill_policy,
    context_window,
    partition_key,
)
from mkt_pipeline.defs.reference_records import references_for_window
from mkt_pipeline.defs.sink_resource import MarketSinkResource, permanent_faults_fail_at_once
from mkt_pipeline.markets import build_engine, engine_settings
from mkt_pipeline.run.faster import WorkerFactories, iter_chunks
from mkt_pipeline.run.progress import Progress
from mkt_pipeline.sinks.base import TableNaming, WriteStats
from mkt_pipeline.sinks.checks import ChecksWhileWriting

QUESTDB_POOL = "questdb"
OWNERS = ["team:market-data"]
HOUR_S = 3600

# What each table holds, for the catalog ({name}: the stored table name, with the deployment's prefix/suffix).
TABLE_DESCRIPTIONS = {
    ("fx", "market_data"): "FX order-book snapshots in table `{name}`: one row per book update of each currency pair, "
    "with best bid/ask and the full book (prices and volumes per level).",
    ("fx", "core_price"): "FX core prices in table `{name}`: the indicative bid/ask stream of each currency pair.",
    ("fx", "trades"): "FX trades in table `{name}`: orders and their fills (with LEI counterparties), "
    "each after the quote it executed against.",
    (
        "equities",
        "market_data",
    ): "U.S.-equities quotes in table `{name}`: one row per book update of each symbol on each venue "
    "(nanosecond timestamps), with level 1 and the full book; the NBBO across venues is never crossed.",
    (
        "equities",
        "trades",
    ): "U.S.-equities trades in table `{name}`: prints of each symbol on each venue during the NYSE session, "
    "each after the quote in force.",
}

_KIND_TYPES = {
    TIMESTAMP: "timestamp (µs, UTC)",
    TIMESTAMP_NS: "timestamp (ns, UTC)",
    SYMBOL: "symbol",
    DOUBLE: "double",
    LONG: "long",
    BOOLEAN: "boolean",
    UUID: "uuid",
    BOOK: "double[2][levels]",
}


# What each column holds, for the catalog (every column of every table has one).
COLUMN_DESCRIPTIONS = {
    "timestamp": "When the event happened (UTC).",
    "timestamp_ns": "When the event happened (UTC, nanoseconds).",
    "symbol": "The instrument: a currency pair (FX) or a stock ticker (equities).",
    "venue": "The exchange the quote or print comes from.",
    "bids": "The bid side of the book: [prices, volumes], best level first.",
    "asks": "The ask side of the book: [prices, volumes], best level first.",
    "best_bid": "The best (highest) bid price: level 1 of bids.",
    "best_ask": "The best (lowest) ask price: level 1 of asks; always above best_bid.",
    "ecn": "The electronic trading venue (ECN) of the price or trade.",
    "bid_price": "The core bid price.",
    "bid_volume": "The volume available at the core bid.",
    "ask_price": "The core ask price; always above bid_price.",
    "ask_volume": "The volume available at the core ask.",
    "reason": "Why the price moved: normal, news_event or liquidity_event.",
    "indicator1": "Short-term momentum of the mid against 10 s earlier, squashed to [0, 1].",
    "indicator2": "Level-1 order-book imbalance: bid volume / (bid volume + ask volume).",
    "trade_id": "Unique id of the fill.",
    "side": "The aggressor's side: buy or sell.",
    "passive": "Whether the order rested in the book (true) or crossed the spread (false).",
    "price": "The traded price.",
    "quantity": "The traded amount (base currency).",
    "counterparty": "The counterparty's LEI.",
    "order_id": "The order the fill belongs to (an order may fill in several trades).",
    "size": "The traded shares.",
    "cond": "Sale condition: T regular, O opening cross, C closing cross, H halt.",
}


def column_schema(table: TableSchema) -> dg.TableSchema:
    """The table's columns for ``dagster/column_schema``: what each holds (designated timestamp and DEDUP keys noted)."""
    columns = []
    for col in table.columns:
        notes = [COLUMN_DESCRIPTIONS[col.name].rstrip(".")]
        if col.name == table.timestamp:
            notes.append("designated timestamp")
        if col.name in table.dedup_keys:
            notes.append("DEDUP UPSERT key")
        columns.append(
            dg.TableColumn(col.name, _KIND_TYPES.get(col.kind, col.kind.lower()), description="; ".join(notes) or None)
        )
    return dg.TableSchema(columns=columns)


def readable_window(window: Window) -> str:
    """``2025-11-11 03:00:00 → 04:00:00 UTC`` (the date repeated only when the window crosses a day)."""
    a, b = us_to_datetime(window.start_us), us_to_datetime(window.end_us)
    end = b.strftime("%H:%M:%S") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M:%S")
    return f"{a:%Y-%m-%d %H:%M:%S} → {end} UTC"


@dataclass
class HourTally:
    """Rows, bytes and write time of one partition hour, summed over its committed chunks."""

    rows: dict[str, int] = field(default_factory=dict)  # by table base name
    bytes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class PartitionTally:
    """Per-hour totals of the chunks ``iter_chunks`` reports committed."""

    def __init__(self, window: Window, base_names: dict[str, str], sink):
        self.hours = {h.start_us: HourTally() for h in window.hours()}
        self.base_names = base_names  # stored table name -> base name
        self.sink = sink
        self.last = time.perf_counter()
        self.bytes_seen = dict(sink.stats.bytes)

    def add(self, chunk: Window, rows: dict) -> HourTally:
        """Count a committed chunk in its hour; that hour's totals so far."""
        hour = self.hours[hour_start_us(chunk.start_us)]
        for name, n in rows.items():
            base = self.base_names[name]
            hour.rows[base] = hour.rows.get(base, 0) + int(n)
        # the sink counts committed bytes in this process (single-process runs); workers do not report them
        now_bytes = dict(self.sink.stats.bytes)
        for name, n in now_bytes.items():
            base = self.base_names[name]
            hour.bytes[base] = hour.bytes.get(base, 0) + int(n - self.bytes_seen.get(name, 0))
        self.bytes_seen = now_bytes
        now = time.perf_counter()
        hour.seconds += now - self.last
        self.last = now
        return hour


def partition_metadata(table: TableSchema, hour: Window, tally: HourTally, common: dict) -> dict:
    """What one partition of one table received: its own rows, window, rate and size."""
    rows = tally.rows.get(table.base_name, 0)
    meta = {
        "dagster/row_count": rows,
        "rows_per_second": round(rows / tally.seconds, 1) if tally.seconds > 0 else 0.0,
        "window": readable_window(hour),
        "window_start": dg.MetadataValue.timestamp(hour.start_us / 1e6),
        "window_end": dg.MetadataValue.timestamp(hour.end_us / 1e6),
        **common,
    }
    if table.base_name in tally.bytes:
        # what the run handed to the sink (QuestDB: ILP/QWP payload; Parquet: Arrow bytes before
        # compression), an int with its unit in the name, so the catalog can plot it across partitions
        meta["bytes_sent"] = dg.MetadataValue.int(int(tally.bytes[table.base_name]))
    return meta


def deployment_sink(market: str) -> tuple[str, TableNaming]:
    """The sink kind and table naming the deployment selects (``MKT_SINK``, suffix, prefix), for the catalog.

    The same read and rules as the sink resource's ``from_env`` (``deployment_sink_read``); a bad value
    is recorded (the runs fail naming it) and the catalog shows the defaults."""
    from mkt_pipeline.defs.sink_resource import deployment_sink_settings

    kind, suffix, prefix = deployment_sink_settings()
    return kind, TableNaming(suffix=suffix, prefix=prefix if market == "equities" else "")


@dataclass
class Written:
    """What writing a window left: per-hour tallies, check results evaluated while writing, and the run's facts."""

    hours: dict[int, HourTally]
    checked: dict
    wal_lag: float | None
    table_names: dict[str, str]  # asset name -> stored table name
    settings: dict
    elapsed: float
    total: int
    workers: int


INGEST_RETRIES = 2
INGEST_RETRY_DELAY_S = 5


def cancel_requested(context: dg.OpExecutionContext) -> bool:
    """Whether someone asked the run to stop (Terminate in the UI, a backfill's cancel)."""
    run = context.instance.get_run_by_id(context.run_id)
    return run is not None and run.status in (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)


@contextmanager
def retried_unless_interrupted(context: dg.OpExecutionContext) -> Iterator[None]:
    """Around a step's work: a fault retries the step (writes are idempotent), an interrupt never does.

    One form for the step that yields its outputs (``with`` around the ``yield``s) and the step that
    returns one. An op ``RetryPolicy`` would also turn Terminate's interrupt into a retry that writes
    the window again; here the interrupt propagates, so the run ends CANCELED and nothing more is
    written. A fault seen while the run is being cancelled (a writer torn down by the interrupt)
    stops the step the same way. Settings errors (``Failure(allow_retries=False)``) fail at once.
    """
    try:
        yield
    except dg.Failure as failure:
        if not failure.allow_retries:
            raise
        raise dg.RetryRequested(max_retries=INGEST_RETRIES, seconds_to_wait=INGEST_RETRY_DELAY_S) from failure
    except (dg.RetryRequested, dg.DagsterExecutionInterruptedError):
        raise
    except Exception as exc:
        if cancel_requested(context):
            raise dg.DagsterExecutionInterruptedError(f"run {context.run_id} cancelled") from exc
        raise dg.RetryRequested(max_retries=INGEST_RETRIES, seconds_to_wait=INGEST_RETRY_DELAY_S) from exc


def write_window(
    context,
    market: str,
    values: dict,
    sink: MarketSinkResource,
    references: ReferencePrices,
    window: Window,
    checks: bool = True,
) -> Written:
    """Generate and write ``window`` with the CLI's loop (idempotent: a re-run or a retry leaves the same rows),
    evaluating each hour's checks as it completes when ``checks`` (the run's check step, in the same process,
    reports them; a distributed step leaves them to the check step, which evaluates the stored rows)."""
    tables = MARKET_TABLES[market]
    fail_on_deployment_problems(market)
    chunk_seconds, processes = values["chunk_seconds"], values["processes"]
    if HOUR_S % chunk_seconds:
        raise config_error(
            ConfigError(
                f"{{chunk_seconds}}: {chunk_seconds} must divide 3600 (chunks never straddle an hourly partition)",
                "chunk_seconds",
            )
        )
    if processes < 1:
        raise config_error(ConfigError(f"{{processes}}: {processes} must be >= 1", "processes"))
    settings = engine_settings(market, values)
    engine = engine_for_run(market, settings, references)
    workers = min(processes, len(list(window.split(chunk_seconds))))
    factories = WorkerFactories(partial(build_engine, market, settings), sink.sink_opener(market), sink.scrubber())
    started = time.perf_counter()
    with (
        permanent_faults_fail_at_once(),
        sink.get_sink(market, logger=context.log) as s,
        ChecksWhileWriting(
            market,
            partial(sink.stored_rows, market),
            partial(planned_per_second, market),
            settings,
            window,
            chunk_seconds,
            context.log,
            enabled=checks,
        ) as checker,
    ):
        s.prepare(engine.schemas)
        tally = PartitionTally(window, {s.naming.name(t): t.base_name for t in engine.schemas}, s)
        stats = WriteStats()
        with Progress(market, window) as progress, closing(iter_chunks(
            engine, s, window, chunk_seconds=chunk_seconds, progress=progress, workers=workers,
            factories=factories, references=references,
            # materializing a partition regenerates all of it (idempotent), so each hour's count is complete
            overwrite=True,
        )) as committed:  # fmt: skip
            for chunk, rows in committed:
                stats.add(WriteStats(rows=defaultdict(int, rows)))
                checker.committed(chunk, tally.add(chunk, rows).rows)
        checked = checker.results()
        wal_lag = s.wal_lag_max
        table_names = {name: s.naming.name(table) for name, table in tables.items()}
    elapsed = time.perf_counter() - started
    total = sum(stats.rows.values())
    context.log.info(
        f"{market} {window}: {total:,} rows in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} rows/s, {workers} process(es))"
    )
    return Written(tally.hours, checked, wal_lag, table_names, settings, elapsed, total, workers)


def report_partitions(
    context,
    market: str,
    window: Window,
    written: Written,
    prices: dict,
    references: ReferencePrices,
    sink: MarketSinkResource,
):
    """Each partition's metadata (its own rows, window, rate, check results), then the run-wide outputs."""
    tables = MARKET_TABLES[market]
    common = {"reference_source": prices["source"]}
    if written.wal_lag is not None:  # QuestDB only: the most WAL transactions seen waiting to be applied
        common["wal_lag_max_txns"] = dg.MetadataValue.int(int(written.wal_lag))
    # the plan is compared with what was stored by the rows_match_plan checks, second by second;
    # each hour's results, evaluated while later hours were written, go to the check step here
    for hour in window.hours():
        if hour.start_us in written.checked:  # the run's check step reports them (the same process runs both steps)
            hand_over(context.run_id, market, partition_key(hour), written.checked[hour.start_us])
        for name, table in tables.items():
            meta = partition_metadata(table, hour, written.hours[hour.start_us], common)
            context.get_step_execution_context().add_asset_metadata(
                meta, asset_key=dg.AssetKey([market, name]), partition_key=partition_key(hour)
            )
    run_wide = {
        "seed": dg.MetadataValue.text(str(written.settings["seed"])),  # an identifier, not a quantity to plot
        "reference_days": ", ".join(references.days()),
        "sink": sink.location(),
        "settings": dg.MetadataValue.json(written.settings),
        "run_window": readable_window(window),
        "run_seconds": round(written.elapsed, 1),
    }
    for name in tables:
        yield dg.Output(None, output_name=name, metadata={**run_wide, "table": written.table_names[name]})


def step_blocks(window: Window, hours: int) -> list[Window]:
    """``window`` cut into blocks of ``hours`` whole hours (the last may be shorter)."""
    return list(window.split(hours * HOUR_S))


def block_key(block: Window) -> str:
    """A dynamic mapping key naming the block's first hour (``2025_11_11T03``)."""
    return us_to_datetime(block.start_us).strftime("%Y_%m_%dT%H")


def build_hourly_asset(market: str, hours_per_step: int | None = None) -> dg.AssetsDefinition:
    """``<market>/<table>`` for each table of the market, one hourly partitioned graph multi-asset.

    One machine (default): seed prices -> ingest, one step for the run's whole range. With
    ``hours_per_step`` (a distributed executor, ``MKT_STEP_HOURS``): seed prices fans out one ingest
    step per block of that many hours, which workers run side by side, and a report step gathers
    their small per-hour summaries into each partition's metadata.
    """
    tables = MARKET_TABLES[market]
    config_cls = GENERATION_CONFIG[market]
    if hours_per_step is None:
        hours_per_step = deployment_step_hours()

    def run_prices(context: dg.OpExecutionContext) -> dict:
        """Reference closes for the run's window: recorded ones, seeding (and recording) missing days."""
        fail_on_deployment_problems(market)
        reject_unknown_ops(context)
        references, seeded = references_for_window(context, market, context_window(context))
        if seeded:
            context.log.info(f"seeded {market} reference closes for {', '.join(seeded)} ({references.source})")
        return {"references": references.to_json(), "source": references.source, "seeded": seeded}

    @dg.op(name=f"{market}_seed_prices", ins={"after": dg.In(dg.Nothing)}, tags={"kind": "prices"})
    def seed_prices(context: dg.OpExecutionContext) -> dict:
        """Reference closes for the run's window: recorded ones, seeding (and recording) missing days."""
        return run_prices(context)

    @dg.op(
        name=f"{market}_ingest",
        out={name: dg.Out(dg.Nothing) for name in tables},
        pool=QUESTDB_POOL,
    )
    def ingest(context: dg.OpExecutionContext, config: config_cls, sink: MarketSinkResource, prices: dict):
        """Generate and write the run's window with the CLI's loop; report each partition (writes are
        idempotent, so a retry is safe; an interrupt is never retried)."""
        reject_unknown_ops(context)
        references = ReferencePrices.from_json(prices["references"])
        window = context_window(context)

        with retried_unless_interrupted(context):
            written = write_window(context, market, config.model_dump(), sink, references, window)
            yield from report_partitions(context, market, window, written, prices, references, sink)

    @dg.op(
        name=f"{market}_seed_prices", ins={"after": dg.In(dg.Nothing)}, out=dg.DynamicOut(dict), tags={"kind": "prices"}
    )
    def seed_and_split(context: dg.OpExecutionContext):
        """Reference closes for the run's window (as ``seed_prices``), and one ingest step per block of hours."""
        prices = run_prices(context)
        window = context_window(context)
        blocks = step_blocks(window, hours_per_step)
        context.log.info(f"{market} {window}: {len(blocks)} step(s) of up to {hours_per_step} hour(s) for the workers")
        for block in blocks:
            yield dg.DynamicOutput(
                {"start_us": block.start_us, "end_us": block.end_us, "prices": prices}, mapping_key=block_key(block)
            )

    @dg.op(name=f"{market}_ingest", pool=QUESTDB_POOL)
    def ingest_block(context: dg.OpExecutionContext, config: config_cls, sink: MarketSinkResource, block: dict):
        """Generate and write one block of hours; a small per-hour summary for the report step (idempotent).
        The checks are left to the run's check step, which may run on another worker."""
        started = time.time()
        window = Window(block["start_us"], block["end_us"])
        references = ReferencePrices.from_json(block["prices"]["references"])

        with retried_unless_interrupted(context):
            written = write_window(context, market, config.model_dump(), sink, references, window, checks=False)
        yield dg.Output(
            {
                "start_us": window.start_us,
                "end_us": window.end_us,
                "hours": {h: dataclasses.asdict(t) for h, t in written.hours.items()},
                "wal_lag": written.wal_lag,
                "table_names": written.table_names,
                "settings": written.settings,
                "seconds": written.elapsed,
                "rows": written.total,
                "started": started,
                "host": socket.gethostname(),
                "prices": block["prices"],
            }
        )

    @dg.op(name=f"{market}_report", out={name: dg.Out(dg.Nothing) for name in tables})
    def report(context: dg.OpExecutionContext, sink: MarketSinkResource, blocks: list[dict]):
        """Each partition's metadata from the blocks' summaries (the check step then evaluates every hour,
        and every edge, on the stored rows)."""
        window = context_window(context)
        hours: dict[int, HourTally] = {}
        for b in blocks:
            hours.update({int(h): HourTally(**t) for h, t in b["hours"].items()})
        first = blocks[0]
        settings = first["settings"]
        checked: dict[int, dict] = {}
        lags = [b["wal_lag"] for b in blocks if b["wal_lag"] is not None]
        hosts = sorted({b["host"] for b in blocks})
        total = sum(b["rows"] for b in blocks)
        elapsed = time.time() - min(b["started"] for b in blocks)
        written = Written(
            hours, checked, max(lags) if lags else None, first["table_names"], settings, elapsed, total, len(blocks)
        )
        context.log.info(f"{market} {window}: {total:,} rows in {len(blocks)} step(s) written on {', '.join(hosts)}")
        references = ReferencePrices.from_json(first["prices"]["references"])
        yield from report_partitions(context, market, window, written, first["prices"], references, sink)

    if hours_per_step is None:

        def compose(reference_prices):
            return ingest(seed_prices(reference_prices))

    else:

        def compose(reference_prices):
            return report(seed_and_split(reference_prices).map(ingest_block).collect())

    sink_kind, naming = deployment_sink(market)
    outs = {
        name: dg.AssetOut(
            key=[market, name],
            description=TABLE_DESCRIPTIONS[(market, name)].format(name=naming.name(table))
            + (
                f" Stored as Parquet files under `{naming.name(table)}/hour=YYYY-MM-DDTHH/`."
                if sink_kind == "parquet"
                else ""
            ),
            kinds={"python", sink_kind},
            owners=OWNERS,
            metadata={"dagster/column_schema": column_schema(table), "dagster/table_name": naming.name(table)},
        )
        for name, table in tables.items()
    }

    @dg.graph_multi_asset(
        name=f"{market}_hourly",
        outs=outs,
        group_name=market,
        ins={
            "reference_prices": dg.AssetIn(
                key=[market, "reference_prices"], partition_mapping=REFERENCE_DAYS_MAPPING, dagster_type=dg.Nothing
            )
        },
        partitions_def=HOURLY_PARTITIONS[market],
        backfill_policy=backfill_policy(),
        config=dg.ConfigMapping(
            config_schema=config_cls.to_config_schema(),
            config_fn=lambda values: {f"{market}_ingest": {"config": values}},
        ),
    )
    def hourly(reference_prices):
        return compose(reference_prices)

    return hourly

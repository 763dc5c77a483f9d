"""Asset checks on what a run stored for its partitions (SPEC §8), on either sink.

One multi-asset check per market reads the stored rows back through the sink resource, in time
slices of bounded size, and verifies: row counts against the plan and against what the run
reported writing, books/quotes never crossed, prices continuous across the partition's edges
(when the neighbouring hour is stored), and every trade after the quote it executed against.
The window checked is the one recorded by the latest materialization of the run's partition, so
plan and written counts always describe the same rows.
"""

import dataclasses

import dagster as dg
import pyarrow as pa

from mkt_pipeline.core import invariants as inv
from mkt_pipeline.defs.hourly import MARKET_TABLES
from mkt_pipeline.core.invariants import CheckResult
from mkt_pipeline.defs.partitions import context_window
from mkt_pipeline.defs.sink_resource import MarketSinkResource
from mkt_pipeline.sinks.stored_rows import time_slices
from mkt_pipeline.core.tables import TableSchema, market_tables
from mkt_pipeline.core.timeline import US_PER_S, Window, us_to_datetime

SLICE_ROWS = 200_000  # rows of the densest table read at once
EDGE_S = 1  # seconds read either side of a partition edge
LOOKBACK_S = 60  # quotes read before the window so the first trades find the quote in force

CHECKS = {
    "fx": {
        "market_data": ("rows_match_plan", "no_crossed_books", "continuous_at_edges"),
        "core_price": ("rows_match_plan", "no_crossed_quotes"),
        "trades": ("rows_match_plan", "trades_after_quotes"),
    },
    "equities": {
        "market_data": ("rows_match_plan", "nbbo_never_crossed", "continuous_at_edges"),
        "trades": ("rows_match_plan", "trades_after_quotes"),
    },
}


def _specs(market: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=dg.AssetKey([market, table])) for table, names in CHECKS[market].items() for name in names]


def latest_record_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> dict | None:
    """Metadata of the latest materialization of ``key`` (of ``partition`` when given)."""
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(records_filter, limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    return {k: getattr(v, "value", v) for k, v in records[0].asset_materialization.metadata.items()}


def checked_window(context: dg.AssetCheckExecutionContext, market: str) -> tuple[Window, dict[str, dict]] | None:
    """The window to check and each table's materialization metadata (None: nothing written yet)."""
    try:
        partition = us_to_datetime(context_window(context.op_execution_context).start_us).strftime("%Y-%m-%d-%H:%M")
    except Exception:  # the check runs on its own, outside a partitioned run: check the latest write
        partition = None
    metas = {name: latest_record_metadata(context.instance, dg.AssetKey([market, name]), partition) for name in MARKET_TABLES[market]}
    if any(m is None or "window_start_us" not in m for m in metas.values()):
        return None
    first = next(iter(metas.values()))
    return Window(int(first["window_start_us"]), int(first["window_end_us"])), metas


def run_tables(market: str, metas: dict[str, dict]) -> dict[str, TableSchema]:
    """The market's tables (by asset name) as the checked run wrote them: its recorded settings
    name the equities timestamp column."""
    settings = next(iter(metas.values())).get("settings") or {}
    written = {s.base_name: s for s in market_tables(market, settings.get("timestamp_column"))}
    return {name: written[table.base_name] for name, table in MARKET_TABLES[market].items()}


def _result(market: str, table: str, check: str, result: CheckResult, **extra) -> dg.AssetCheckResult:
    meta = {"rule": result.name, "checked": result.checked, "violations": result.violations, **extra}
    if result.example:
        meta["example"] = result.example
    return dg.AssetCheckResult(asset_key=dg.AssetKey([market, table]), check_name=check, passed=result.passed, metadata=meta)


def _concat(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def count_check(rows, table, window: Window, meta: dict, planned_key: str | None) -> CheckResult:
    """Stored rows equal what the run reported writing and, when the engine plans it, the plan."""
    stored = rows.count(table, window)
    written = int(meta.get("rows", -1))
    planned = (meta.get("planned") or {}).get(planned_key) if planned_key else None
    bad = stored != written or (planned is not None and stored != planned)
    example = f"stored {stored:,}, written {written:,}" + ("" if planned is None else f", planned {planned:,}")
    return CheckResult("stored rows == written" + ("" if planned is None else " == planned"), stored, int(bad), example if bad else "")


def edge_continuity(rows, table, window: Window, price: str, keys: tuple[str, ...], min_rows: int) -> tuple[CheckResult, int]:
    """Continuity across the window's start and end; (result, edges whose neighbour hour is stored)."""
    parts, edges = [], 0
    for edge in (window.start_us, window.end_us):
        around = rows.read(table, Window(edge - EDGE_S * US_PER_S, edge + EDGE_S * US_PER_S), [*keys, price])
        ts = around.column(table.timestamp).cast(pa.int64()).to_numpy()
        edge_ts = edge * (1000 if table.timestamp_kind == "TIMESTAMP_NS" else 1)
        if (ts < edge_ts).any() and (ts >= edge_ts).any():
            edges += 1
            parts.append(inv.candle_continuity(around, table.timestamp, price, keys=keys, min_rows=min_rows))
    return (inv.combine(parts) if parts else CheckResult("close(N) == open(N+1) at the edges", 0, 0)), edges


class TradesAfterQuotes:
    """Trades of each slice against the quotes of that slice plus the latest earlier quote of each instrument."""

    def __init__(self, rows, window: Window, quote_tables, keys: tuple[str, ...], min_gap_ns: int, allow_unmatched: bool):
        self.keys, self.min_gap_ns = keys, min_gap_ns
        lookback = Window(window.start_us - LOOKBACK_S * US_PER_S, window.start_us)
        self.carry = {q.base_name: rows.read(q, lookback, list(keys)) for q in quote_tables}
        # a quote in force older than the stored data cannot be verified: allowed only when the
        # previous hour is absent, and only for trades that early in the window
        stored_before = any(c.num_rows for c in self.carry.values())
        self.unmatched_before = (window.start_us + LOOKBACK_S * US_PER_S) * 1000 if allow_unmatched and not stored_before else None
        self.results: list[CheckResult] = []

    def add(self, trades_table, trades: pa.Table, quote_table, quotes: pa.Table) -> None:
        """Check one slice against one quote table (``quotes`` holds only the slice's own rows)."""
        quotes = _concat([self.carry[quote_table.base_name], quotes.select([quote_table.timestamp, *self.keys])])
        if trades.num_rows:
            self.results.append(
                inv.trades_after_quotes(
                    trades,
                    quotes,
                    quote_table.timestamp,
                    self.min_gap_ns,
                    keys=self.keys,
                    trades_ts_column=trades_table.timestamp,
                    unmatched_before_ns=self.unmatched_before,
                )
            )
        self.carry[quote_table.base_name] = inv.latest_per_key(quotes, self.keys, quote_table.timestamp)

    def result(self) -> CheckResult:
        return inv.combine(self.results) if self.results else CheckResult("trades after the latest quote", 0, 0)


def fx_results(rows, window: Window, metas: dict[str, dict]) -> list[dg.AssetCheckResult]:
    t = run_tables("fx", metas)
    md, core, trades = t["market_data"], t["core_price"], t["trades"]
    books, quotes = [], []
    after = TradesAfterQuotes(rows, window, (md, core), ("symbol",), 1_000, allow_unmatched=False)
    # one pass: each slice of each table is read once
    for piece in time_slices(window, rows.count(md, window), SLICE_ROWS):
        md_rows = rows.read(md, piece, ["symbol", "best_bid", "best_ask", "bid_px1", "ask_px1"])
        core_rows = rows.read(core, piece, ["symbol", "bid_price", "ask_price"])
        trade_rows = rows.read(trades, piece, ["symbol"])
        books.append(inv.top_of_book_consistent(md_rows))
        quotes.append(inv.quotes_not_crossed(core_rows, "bid_price", "ask_price"))
        after.add(trades, trade_rows, md, md_rows)
        after.add(trades, trade_rows, core, core_rows)
    continuity, edges = edge_continuity(rows, md, window, "best_bid", ("symbol",), 1)
    orders = rows.count_distinct(trades, "order_id", window)
    planned_orders = (metas["trades"].get("planned") or {}).get("orders")
    trade_count = count_check(rows, trades, window, metas["trades"], None)
    if planned_orders is not None and orders != planned_orders:
        trade_count = dataclasses.replace(trade_count, violations=trade_count.violations + 1, example=f"{orders:,} orders stored, {planned_orders:,} planned")
    return [
        _result("fx", "market_data", "rows_match_plan", count_check(rows, md, window, metas["market_data"], "market_data")),
        _result("fx", "market_data", "no_crossed_books", inv.combine(books)),
        _result("fx", "market_data", "continuous_at_edges", continuity, edges_checked=edges),
        _result("fx", "core_price", "rows_match_plan", count_check(rows, core, window, metas["core_price"], "core_price")),
        _result("fx", "core_price", "no_crossed_quotes", inv.combine(quotes)),
        _result("fx", "trades", "rows_match_plan", trade_count, orders_stored=orders, orders_planned=planned_orders if planned_orders is not None else "n/a"),
        _result("fx", "trades", "trades_after_quotes", after.result(), compared_with="market_data and core_price"),
    ]


def equities_results(rows, window: Window, metas: dict[str, dict]) -> list[dg.AssetCheckResult]:
    t = run_tables("equities", metas)
    md, trades = t["market_data"], t["trades"]
    keys = ("symbol", "venue")
    columns = [*keys, "bid_px1", "ask_px1"]
    in_force = rows.read(md, Window(window.start_us - LOOKBACK_S * US_PER_S, window.start_us), columns)
    in_force = inv.latest_per_key(in_force, keys, md.timestamp)
    nbbo = []
    after = TradesAfterQuotes(rows, window, (md,), keys, 1, allow_unmatched=True)
    for piece in time_slices(window, rows.count(md, window), SLICE_ROWS):
        quotes = rows.read(md, piece, columns)
        both = _concat([in_force, quotes])
        nbbo.append(inv.nbbo_never_crossed(both, md.timestamp, checked_from=in_force.num_rows))
        in_force = inv.latest_per_key(both, keys, md.timestamp)
        after.add(trades, rows.read(trades, piece, list(keys)), md, quotes)
    continuity, edges = edge_continuity(rows, md, window, "bid_px1", keys, 2)
    return [
        _result("equities", "market_data", "rows_match_plan", count_check(rows, md, window, metas["market_data"], "market_data")),
        _result("equities", "market_data", "nbbo_never_crossed", inv.combine(nbbo)),
        _result("equities", "market_data", "continuous_at_edges", continuity, edges_checked=edges),
        _result("equities", "trades", "rows_match_plan", count_check(rows, trades, window, metas["trades"], "trades")),
        _result("equities", "trades", "trades_after_quotes", after.result()),
    ]


RESULTS = {"fx": fx_results, "equities": equities_results}


def build_partition_checks(market: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(name=f"{market}_partition_checks", specs=_specs(market), can_subset=False)
    def partition_checks(context: dg.AssetCheckExecutionContext, sink: MarketSinkResource):
        found = checked_window(context, market)
        if found is None:
            for spec in _specs(market):
                # nothing to verify is not a pass: warn, so an empty partition never looks checked
                yield dg.AssetCheckResult(
                    asset_key=spec.asset_key,
                    check_name=spec.name,
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"status": "nothing written yet"},
                )
            return
        window, metas = found
        with sink.stored_rows(market) as rows:
            if hasattr(rows, "wait_applied"):  # QuestDB applies WAL asynchronously: count what landed
                rows.wait_applied(run_tables(market, metas).values())
            for r in RESULTS[market](rows, window, metas):
                yield dg.AssetCheckResult(asset_key=r.asset_key, check_name=r.check_name, passed=r.passed, metadata={**r.metadata, "window": str(window)})

    return partition_checks


fx_partition_checks = build_partition_checks("fx")
equities_partition_checks = build_partition_checks("equities")

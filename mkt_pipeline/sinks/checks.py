"""The checks of one stored partition hour, computed on either sink, independent of Dagster.

- ``rows_match_plan``: stored rows per second equal the engine's plan for that second (tables the
  engine plans), and the stored total equals the rows the run reported for the partition;
- ``no_crossed_books`` / ``no_crossed_quotes`` / ``nbbo_never_crossed``: quotes never crossed or locked;
- ``continuous_at_edges``: each instrument's last price before an edge of the hour equals its first
  price after it, where the neighbouring hour is stored (with none stored there is nothing to
  compare: the check is *not evaluated*, which is neither a pass nor a failure);
- ``trades_after_quotes``: every trade comes after the quote in force (ASOF).

With QuestDB the work is SQL over the partition's time range (``SqlChecks``), so no rows come back
to Python; with Parquet the same checks run on the partition's files in bounded slices
(``ArrowChecks``). ``ChecksWhileWriting`` evaluates each hour of a run as soon as it is stored,
while later hours are still being written. The Dagster check specs that report these results live
in ``defs/checks.py``.
"""

import dataclasses
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from mkt_pipeline.core import invariants as inv
from mkt_pipeline.core.invariants import CheckResult
from mkt_pipeline.core.secrets import first_line
from mkt_pipeline.core.tables import (
    EQUITIES_MARKET_DATA,
    EQUITIES_TRADES,
    FX_CORE_PRICE,
    FX_MARKET_DATA,
    FX_TRADES,
    TIMESTAMP_NS,
    TableSchema,
    market_tables,
)
from mkt_pipeline.core.timeline import NS_PER_US, US_PER_S, Window, format_us, hour_start_us, us_to_datetime
from mkt_pipeline.sinks.stored_rows import QuestDBRows, time_slices

SLICE_ROWS = 200_000  # rows of the densest table read at once (Parquet)
EDGE_S = 1  # seconds read either side of a partition edge
LOOKBACK_S = 60  # quotes before the hour, so its first trades and NBBO find the quotes in force
DENSE_QUOTES_PER_TRADE = 100  # fewer quotes than this per trade: the ASOF join scans forward (SQL)

DESCRIPTIONS = {
    "rows_match_plan": "Rows stored in the partition's hour, second by second, equal what the generator planned, "
    "and the hour's total equals the rows its materialization reported.",
    "no_crossed_books": "No FX book is crossed or locked (best_ask > best_bid) and best_bid/best_ask equal level 1 of the book arrays.",
    "no_crossed_quotes": "No core price is crossed or locked (ask_price > bid_price).",
    "nbbo_never_crossed": "Across venues, the best bid of each symbol's quotes in force stays below the best ask "
    "(evaluated at the end of every second of the hour).",
    "continuous_at_edges": "Each instrument's last price before the hour's start and end equals its first price after it, "
    "wherever the neighbouring hour is stored; with no neighbour stored there is nothing to compare and no evaluation is recorded.",
    "trades_after_quotes": "Every trade of the hour comes after the latest quote of its instrument (as an ASOF join finds it).",
}

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


# asset name (under the market prefix) -> the table it holds
CHECKED_TABLES: dict[str, dict[str, TableSchema]] = {
    "fx": {"market_data": FX_MARKET_DATA, "core_price": FX_CORE_PRICE, "trades": FX_TRADES},
    "equities": {"market_data": EQUITIES_MARKET_DATA, "trades": EQUITIES_TRADES},
}
EDGE_CHECK = "continuous_at_edges"
ERROR, WARN = "ERROR", "WARN"  # severities, named as Dagster's AssetCheckSeverity values
NOT_EVALUATED = "no neighbouring hour stored: nothing to compare, not evaluated"
# what the ``checked`` count of each check counts
CHECKED_UNITS = {
    "rows_match_plan": "seconds of the hour compared with the plan (trades: stored rows compared with the reported total)",
    "no_crossed_books": "book rows",
    "no_crossed_quotes": "core price rows",
    "nbbo_never_crossed": "symbol-seconds with a bid and an ask in force",
    "continuous_at_edges": "instruments compared across the hour's edges (each stored edge counts once per instrument)",
    "trades_after_quotes": "trade-quote table pairs: each trade is checked against each quote table "
    "(FX: market_data and core_price, so twice the trades)",
}


class Outcome(NamedTuple):
    """One check of one partition: passed (None: not evaluated), severity of a failure, metadata."""

    passed: bool | None
    severity: str
    metadata: dict


def run_tables(market: str, metas: dict[str, dict]) -> dict[str, TableSchema]:
    """The market's tables (by asset name) as the checked run wrote them: its recorded settings
    name the equities timestamp column."""
    settings = next(iter(metas.values())).get("settings") or {}
    written = {s.base_name: s for s in market_tables(market, settings.get("timestamp_column"))}
    return {name: written[table.base_name] for name, table in CHECKED_TABLES[market].items()}


def per_second_result(
    stored: np.ndarray, planned: np.ndarray, window: Window, total_reported: int | None
) -> CheckResult:
    """Seconds whose stored count differs from the plan, plus the hour's total against what was reported."""
    bad = stored != planned
    violations = int(bad.sum())
    example = ""
    if violations:
        i = int(np.flatnonzero(bad)[0])
        example = f"second {format_us(window.start_us + i * US_PER_S)}: stored {stored[i]:,}, planned {planned[i]:,}"
    total = int(stored.sum())
    if total_reported is not None and total != total_reported:
        violations += 1
        example = example or f"stored {total:,} rows, the materialization reported {total_reported:,}"
    return CheckResult("stored rows per second == planned", len(stored), violations, example)


def total_result(stored: int, reported: int | None) -> CheckResult:
    if reported is None:
        return CheckResult("stored rows == reported", 0, 1, "the materialization reported no row count")
    bad = stored != reported
    return CheckResult(
        "stored rows == reported", stored, int(bad), f"stored {stored:,}, reported {reported:,}" if bad else ""
    )


class ArrowChecks:
    """The checks on rows read back in bounded time slices (the Parquet dataset; works on any reader)."""

    def __init__(self, rows):
        self.rows = rows

    def counts_per_second(self, table: TableSchema, window: Window) -> np.ndarray:
        counts = np.zeros(window.seconds, dtype=np.int64)
        for piece in time_slices(window, self.rows.count(table, window), SLICE_ROWS * 5):
            ts = inv.timestamps_ns(self.rows.read(table, piece, []), table.timestamp)
            counts += np.bincount(
                (ts // 1_000_000_000 - window.first_second).astype(np.int64), minlength=window.seconds
            )[: window.seconds]
        return counts

    def count(self, table: TableSchema, window: Window) -> int:
        return self.rows.count(table, window)

    def count_distinct(self, table: TableSchema, column: str, window: Window) -> int:
        return self.rows.count_distinct(table, column, window)

    def fx_books(self, md: TableSchema, window: Window) -> CheckResult:
        parts = [
            inv.top_of_book_consistent(self.rows.read(md, p, ["symbol", "best_bid", "best_ask", "bid_px1", "ask_px1"]))
            for p in self._slices(md, window)
        ]
        return inv.combine(parts)

    def quotes(self, table: TableSchema, window: Window, bid: str, ask: str) -> CheckResult:
        return inv.combine(
            inv.quotes_not_crossed(self.rows.read(table, p, ["symbol", bid, ask]), bid, ask)
            for p in self._slices(table, window)
        )

    def nbbo(self, md: TableSchema, window: Window) -> CheckResult:
        keys, columns = ("symbol", "venue"), ["symbol", "venue", "bid_px1", "ask_px1"]
        in_force = inv.latest_per_key(
            self.rows.read(md, Window(window.start_us - LOOKBACK_S * US_PER_S, window.start_us), columns),
            keys,
            md.timestamp,
        )
        parts = []
        for piece in self._slices(md, window):
            both = _concat([in_force, self.rows.read(md, piece, columns)])
            parts.append(inv.nbbo_never_crossed(both, md.timestamp, checked_from=in_force.num_rows))
            in_force = inv.latest_per_key(both, keys, md.timestamp)
        return inv.combine(parts)

    def edges(
        self, table: TableSchema, window: Window, price: str, keys: tuple[str, ...], min_rows: int
    ) -> tuple[CheckResult, int]:
        parts, edges = [], 0
        for edge in (window.start_us, window.end_us):
            around = self.rows.read(table, Window(edge - EDGE_S * US_PER_S, edge + EDGE_S * US_PER_S), [*keys, price])
            ts = inv.timestamps_ns(around, table.timestamp)
            if (ts < edge * NS_PER_US).any() and (ts >= edge * NS_PER_US).any():
                edges += 1
                parts.append(inv.candle_continuity(around, table.timestamp, price, keys=keys, min_rows=min_rows))
        return (inv.combine(parts) if parts else CheckResult("close == open at the edges", 0, 0)), edges

    def trades_after(
        self,
        trades: TableSchema,
        quote_tables: tuple[TableSchema, ...],
        window: Window,
        keys: tuple[str, ...],
        min_gap_ns: int,
        allow_unmatched: bool,
    ) -> CheckResult:
        lookback = Window(window.start_us - LOOKBACK_S * US_PER_S, window.start_us)
        carry = {q.base_name: self.rows.read(q, lookback, list(keys)) for q in quote_tables}
        # a quote in force older than the stored data cannot be verified: allowed only when the
        # previous hour is absent, and only for trades that early in the hour
        unmatched_before = (
            (window.start_us + LOOKBACK_S * US_PER_S) * NS_PER_US
            if allow_unmatched and not any(c.num_rows for c in carry.values())
            else None
        )
        results = []
        for piece in self._slices(quote_tables[0], window):
            trade_rows = self.rows.read(trades, piece, list(keys))
            for q in quote_tables:
                quotes = _concat([carry[q.base_name], self.rows.read(q, piece, list(keys))])
                if trade_rows.num_rows:
                    results.append(
                        inv.trades_after_quotes(
                            trade_rows,
                            quotes,
                            q.timestamp,
                            min_gap_ns,
                            keys=keys,
                            trades_ts_column=trades.timestamp,
                            unmatched_before_ns=unmatched_before,
                        )
                    )
                carry[q.base_name] = inv.latest_per_key(quotes, keys, q.timestamp)
        return inv.combine(results) if results else CheckResult("trades after the latest quote", 0, 0)

    def _slices(self, table: TableSchema, window: Window) -> list[Window]:
        return time_slices(window, self.rows.count(table, window), SLICE_ROWS)


def _concat(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def checks_for(rows):
    """The checks that suit a reader: SQL for QuestDB, bounded Arrow slices for anything else."""
    return SqlChecks(rows) if isinstance(rows, QuestDBRows) else ArrowChecks(rows)


class SqlChecks:
    """The same checks as SQL over the hour, computed by QuestDB (aggregates only come back)."""

    def __init__(self, rows: QuestDBRows):
        self.rows = rows

    def _one(self, sql: str, table: TableSchema) -> tuple:
        _, found = self.rows.query(sql, self.rows.table_name(table))
        return found[0] if found else ()

    def _where(self, table: TableSchema, window: Window) -> str:
        return self.rows.time_filter(table, window)

    def counts_per_second(self, table: TableSchema, window: Window) -> np.ndarray:
        name = self.rows.table_name(table)
        unit = 1_000_000_000 if table.timestamp_kind == TIMESTAMP_NS else US_PER_S
        sql = f"SELECT cast(timestamp_floor('s', {table.timestamp}) AS long) s, count() n FROM {name} WHERE {self._where(table, window)} GROUP BY 1"
        counts = np.zeros(window.seconds, dtype=np.int64)
        for second, n in self.rows.query(sql, name)[1]:
            counts[int(second) // unit - window.first_second] = int(n)
        return counts

    def count(self, table: TableSchema, window: Window) -> int:
        return self.rows.count(table, window)

    def count_distinct(self, table: TableSchema, column: str, window: Window) -> int:
        return self.rows.count_distinct(table, column, window)

    def _violations(self, table: TableSchema, window: Window, bad: str, shown: str, rule: str) -> CheckResult:
        name = self.rows.table_name(table)
        checked, violations = self._one(
            f"SELECT count(), sum(CASE WHEN {bad} THEN 1 ELSE 0 END) FROM {name} WHERE {self._where(table, window)}",
            table,
        )
        violations = int(violations or 0)
        example = ""
        if violations:
            row = self._one(
                f"SELECT {table.timestamp}, {shown} FROM {name} WHERE {self._where(table, window)} AND ({bad}) LIMIT 1",
                table,
            )
            example = " ".join(str(v) for v in row)
        return CheckResult(rule, int(checked or 0), violations, example)

    def fx_books(self, md: TableSchema, window: Window) -> CheckResult:
        bad = "NOT (best_ask > best_bid) OR bids[1][1] != best_bid OR asks[1][1] != best_ask"
        return self._violations(md, window, bad, "symbol, best_bid, best_ask", "no crossed or locked books")

    def quotes(self, table: TableSchema, window: Window, bid: str, ask: str) -> CheckResult:
        table.column(bid), table.column(ask)  # KeyError for anything that is not a column
        return self._violations(table, window, f"NOT ({ask} > {bid})", f"symbol, {bid}, {ask}", f"{ask} > {bid}")

    def nbbo(self, md: TableSchema, window: Window) -> CheckResult:
        name, ts = self.rows.table_name(md), md.timestamp
        lookback = Window(window.start_us - LOOKBACK_S * US_PER_S, window.end_us)
        # each venue's latest quote at every second's end (FILL(PREV) carries it), then best across venues
        per_venue = (
            f"SELECT {ts}, symbol, venue, last(bids[1][1]) b, last(asks[1][1]) a FROM {name} "
            f"WHERE {self._where(md, lookback)} SAMPLE BY 1s FILL(PREV)"
        )
        nbbo = f"SELECT {ts}, symbol, max(b) nb, min(a) na FROM ({per_venue})"
        start = f"'{format_us(window.start_us)}'"
        checked, crossed = self._one(
            f"SELECT count(), sum(CASE WHEN nb >= na THEN 1 ELSE 0 END) FROM ({nbbo}) WHERE {ts} >= {start} AND nb IS NOT NULL AND na IS NOT NULL",
            md,
        )
        crossed = int(crossed or 0)
        example = ""
        if crossed:
            row = self._one(f"SELECT {ts}, symbol, nb, na FROM ({nbbo}) WHERE {ts} >= {start} AND nb >= na LIMIT 1", md)
            example = f"{row[1]} at {row[0]}: bid {row[2]} >= ask {row[3]}"
        return CheckResult(
            "NBBO of the quotes in force never crossed or locked (each second's end)",
            int(checked or 0),
            crossed,
            example,
        )

    def edges(
        self, table: TableSchema, window: Window, price: str, keys: tuple[str, ...], min_rows: int
    ) -> tuple[CheckResult, int]:
        label, price = price, self.rows.column_expression(table, price)
        name, key_list = self.rows.table_name(table), ", ".join(keys)
        checked = violations = edges = 0
        example = ""
        for edge in (window.start_us, window.end_us):
            before = Window(edge - EDGE_S * US_PER_S, edge)
            after = Window(edge, edge + EDGE_S * US_PER_S)
            side = "SELECT {keys}, count() n, {agg}({price}) p FROM {name} WHERE {where}"
            b = side.format(keys=key_list, agg="last", price=price, name=name, where=self._where(table, before))
            a = side.format(keys=key_list, agg="first", price=price, name=name, where=self._where(table, after))
            on = " AND ".join(f"x.{k} = y.{k}" for k in keys)
            sql = (
                f"SELECT count(), sum(CASE WHEN x.p != y.p THEN 1 ELSE 0 END), first(x.{keys[0]}), first(x.p), first(y.p) "
                f"FROM ({b}) x JOIN ({a}) y ON {on} WHERE x.n >= {min_rows} AND y.n >= {min_rows}"
            )
            pairs, bad, *_ = self._one(sql, table) or (0, 0)
            if int(pairs or 0):
                edges += 1
                checked += int(pairs)
                violations += int(bad or 0)
                if bad and not example:
                    row = self._one(sql.replace("WHERE x.n", "WHERE x.p != y.p AND x.n"), table)
                    example = f"{row[2]} at {format_us(edge)}: {row[3]} != {row[4]}"
        return CheckResult(f"close == open on {label} at the edges", checked, violations, example), edges

    def trades_after(
        self,
        trades: TableSchema,
        quote_tables: tuple[TableSchema, ...],
        window: Window,
        keys: tuple[str, ...],
        min_gap_ns: int,
        allow_unmatched: bool,
    ) -> CheckResult:
        tname = self.rows.table_name(trades)
        t_ns = 1 if trades.timestamp_kind == TIMESTAMP_NS else NS_PER_US
        n_trades = self.rows.count(trades, window)
        checked = violations = 0
        example = ""
        for q in quote_tables:
            qname = self.rows.table_name(q)
            q_ns = 1 if q.timestamp_kind == TIMESTAMP_NS else NS_PER_US
            lookback = Window(window.start_us - LOOKBACK_S * US_PER_S, window.end_us)
            stored_before = self.rows.count(q, Window(lookback.start_us, window.start_us)) > 0
            pairs = (
                f"SELECT {_asof_hint(n_trades, self.rows.count(q, window))}t.{keys[0]} k, cast(t.{trades.timestamp} AS long) * {t_ns} tt, cast(q.{q.timestamp} AS long) * {q_ns} qt "
                f"FROM (SELECT * FROM {tname} WHERE {self._where(trades, window)}) t "
                f"ASOF JOIN (SELECT {q.timestamp}, {', '.join(keys)} FROM {qname} WHERE {self._where(q, lookback)}) q ON ({', '.join(keys)})"
            )
            early_ok = (window.start_us + LOOKBACK_S * US_PER_S) * NS_PER_US
            # an unmatched trade is excused only when the hour before is not stored and the trade is that early
            excused = f"qt IS NULL AND tt < {early_ok}" if allow_unmatched and not stored_before else "false"
            bad = f"NOT ({excused}) AND (qt IS NULL OR tt - qt < {min_gap_ns})"
            n, b = self._one(
                f"SELECT sum(CASE WHEN {excused} THEN 0 ELSE 1 END), sum(CASE WHEN {bad} THEN 1 ELSE 0 END) FROM ({pairs})",
                trades,
            )
            checked += int(n or 0)
            violations += int(b or 0)
            if b and not example:
                row = self._one(f"SELECT k, tt, qt FROM ({pairs}) WHERE {bad} LIMIT 1", trades)
                example = f"{row[0]} trade {row[1]} ns, quote {row[2]} ns in {q.base_name}"
        return CheckResult(f"trades >= {min_gap_ns} ns after the latest quote", checked, violations, example)


def _asof_hint(n_trades: int, n_quotes: int) -> str:
    """QuestDB's ASOF strategy for trades against quotes: its default (binary search, then a backward
    scan for the key) suits trades that are sparse against the quotes, like FX at the default rates;
    when trades interleave densely (equities: about one trade per three quotes, 150 symbol-venue
    keys), the backward scans cost ~8x the Dense strategy's forward scan (5.7 s against 0.7 s for a
    light equities hour; same result)."""
    return "/*+ asof_dense(t q) */ " if n_trades * DENSE_QUOTES_PER_TRADE >= n_quotes else ""


Thunk = Callable[[], "CheckResult | tuple"]


def fx_checks(c, window: Window, meta: dict[str, dict], planned: dict[str, np.ndarray]) -> dict[tuple[str, str], Thunk]:
    """Each FX check of one hour, to evaluate when called."""
    t = run_tables("fx", meta)
    md, core, trades = t["market_data"], t["core_price"], t["trades"]

    def trade_count() -> tuple:
        result = total_result(c.count(trades, window), meta["trades"].get("dagster/row_count"))
        orders, planned_orders = c.count_distinct(trades, "order_id", window), int(planned["orders"].sum())
        if orders != planned_orders:
            result = dataclasses.replace(
                result,
                violations=result.violations + 1,
                example=f"{orders:,} orders stored, {planned_orders:,} planned",
            )
        return result, {"orders_stored": orders, "orders_planned": planned_orders}

    return {
        ("market_data", "rows_match_plan"): lambda: per_second_result(
            c.counts_per_second(md, window),
            planned["market_data"],
            window,
            meta["market_data"].get("dagster/row_count"),
        ),
        ("market_data", "no_crossed_books"): lambda: c.fx_books(md, window),
        ("market_data", "continuous_at_edges"): lambda: c.edges(md, window, "best_bid", ("symbol",), 1),
        ("core_price", "rows_match_plan"): lambda: per_second_result(
            c.counts_per_second(core, window),
            planned["core_price"],
            window,
            meta["core_price"].get("dagster/row_count"),
        ),
        ("core_price", "no_crossed_quotes"): lambda: c.quotes(core, window, "bid_price", "ask_price"),
        ("trades", "rows_match_plan"): trade_count,
        ("trades", "trades_after_quotes"): lambda: c.trades_after(
            trades, (md, core), window, ("symbol",), 1_000, allow_unmatched=False
        ),
    }


def equities_checks(
    c, window: Window, meta: dict[str, dict], planned: dict[str, np.ndarray]
) -> dict[tuple[str, str], Thunk]:
    """Each equities check of one hour, to evaluate when called."""
    t = run_tables("equities", meta)
    md, trades = t["market_data"], t["trades"]
    keys = ("symbol", "venue")
    return {
        ("market_data", "rows_match_plan"): lambda: per_second_result(
            c.counts_per_second(md, window),
            planned["market_data"],
            window,
            meta["market_data"].get("dagster/row_count"),
        ),
        ("market_data", "nbbo_never_crossed"): lambda: c.nbbo(md, window),
        ("market_data", "continuous_at_edges"): lambda: c.edges(md, window, "bid_px1", keys, 2),
        ("trades", "rows_match_plan"): lambda: total_result(
            c.count(trades, window), meta["trades"].get("dagster/row_count")
        ),
        ("trades", "trades_after_quotes"): lambda: c.trades_after(trades, (md,), window, keys, 1, allow_unmatched=True),
    }


MARKET_CHECKS = {"fx": fx_checks, "equities": equities_checks}


Results = dict[tuple[str, str], Outcome]  # (table, check) -> outcome


def evaluate_partition(
    market: str,
    c,
    hour: Window,
    metas: dict[str, dict],
    planned: dict[str, np.ndarray],
    only: Collection[str] | None = None,
) -> Results:
    """The outcome of every check of one partition hour (or of the checks named in ``only``)."""
    out = {}
    for (table, check), evaluate in MARKET_CHECKS[market](c, hour, metas, planned).items():
        if only is not None and check not in only:
            continue
        found = evaluate()
        result, extra = found if isinstance(found, tuple) else (found, {})
        meta = {
            "rule": result.name,
            "checked": result.checked,
            "checked_counts": CHECKED_UNITS[check],
            "violations": result.violations,
        }
        if isinstance(extra, dict):
            meta.update(extra)
        if result.example:
            meta["example"] = result.example
        passed, severity = result.passed, ERROR
        if check == EDGE_CHECK:
            meta["edges_checked"] = extra
            if extra == 0:  # no neighbouring hour stored: nothing was compared, so neither pass nor fail
                passed, severity = None, WARN
                meta["status"] = NOT_EVALUATED
        elif result.checked == 0:
            passed, severity = False, WARN
            meta["status"] = "no rows to check"
        out[(table, check)] = Outcome(passed, severity, meta)
    return out


class ChecksWhileWriting:
    """Each hour's checks, evaluated in a background thread once the run has committed all of that
    hour's chunks, so the checks of a ranged run overlap the ingestion of its later hours.

    The ingest step feeds ``committed(chunk, rows by table of its hour)`` and, after the last
    chunk, ``results()`` returns each complete hour's results, which the check step reports instead
    of evaluating again. Continuity at the edges waits until the end, when both sides of every edge
    the run wrote are stored. An hour whose checks fail to run here is left for the check step.

    ``open_rows()``: a context manager giving the stored rows (QuestDBRows or a Parquet reader);
    ``planner(settings, hour)``: the engine's planned rows per second of the hour, by table. Not
    ``enabled`` (a distributed step, whose run's check step may run elsewhere), it evaluates nothing
    and ``results()`` is empty: the check step evaluates the stored rows itself.
    """

    def __init__(
        self,
        market: str,
        open_rows: Callable,
        planner: Callable,
        settings: dict,
        window: Window,
        chunk_seconds: int,
        log,
        enabled: bool = True,
    ):
        self.enabled = enabled
        self.market, self.open_rows, self.planner, self.settings, self.log = market, open_rows, planner, settings, log
        self.chunks_left = {h.start_us: len(list(h.split(chunk_seconds))) for h in window.hours()}
        self.hours = {h.start_us: h for h in window.hours()}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checks")
        self.futures: dict[int, object] = {}
        self.metas: dict[int, dict[str, dict]] = {}
        self._reader = None  # (context manager, rows), opened and used by the checks thread only

    def __enter__(self) -> "ChecksWhileWriting":
        return self

    def __exit__(self, *exc) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.submit(self._close).result()
        self.pool.shutdown(wait=True)

    def committed(self, chunk: Window, hour_rows: dict[str, int]) -> None:
        """A chunk is committed; ``hour_rows``: rows of its hour so far, by table base name."""
        hour = hour_start_us(chunk.start_us)
        self.chunks_left[hour] -= 1
        if self.enabled and self.chunks_left[hour] == 0:
            self.metas[hour] = {
                name: {"dagster/row_count": int(hour_rows.get(table.base_name, 0)), "settings": self.settings}
                for name, table in CHECKED_TABLES[self.market].items()
            }
            self.futures[hour] = self.pool.submit(
                self._evaluate, self.hours[hour], self.metas[hour], lambda check: check != EDGE_CHECK
            )

    def results(self) -> dict[int, Results]:
        """Every complete hour's results (hour start -> results); hours whose checks failed to run are left out."""
        main = self._gather(self.futures)
        # every hour of the run is stored now: its edges can be compared with both neighbours
        edges = self._gather(
            {
                hour: self.pool.submit(
                    self._evaluate, self.hours[hour], self.metas[hour], lambda check: check == EDGE_CHECK
                )
                for hour in main
            }
        )
        return {hour: {**main[hour], **found} for hour, found in edges.items()}

    def _gather(self, futures: dict) -> dict[int, Results]:
        out = {}
        for hour, future in futures.items():
            try:
                out[hour] = future.result()
            except Exception as exc:
                self.log.warning(
                    f"checks of {us_to_datetime(hour):%Y-%m-%d-%H:%M} left to the check step: {first_line(exc)}"
                )
        return out

    def _rows(self):
        if self._reader is None:
            manager = self.open_rows()
            self._reader = (manager, manager.__enter__())
        return self._reader[1]

    def _close(self) -> None:
        if self._reader is not None:
            manager, self._reader = self._reader[0], None
            manager.__exit__(None, None, None)

    def _evaluate(self, hour: Window, metas: dict[str, dict], wanted: Callable[[str], bool]) -> Results:
        rows = self._rows()
        tables = run_tables(self.market, metas)
        if isinstance(rows, QuestDBRows):  # QuestDB applies WAL asynchronously: what this run committed so far
            rows.wait_applied(tables.values())
        runner = checks_for(rows)
        checks = [check for names in CHECKS[self.market].values() for check in names if wanted(check)]
        planned = self.planner(self.settings, hour) if "rows_match_plan" in checks else {}
        return evaluate_partition(self.market, runner, hour, metas, planned, only=checks)

"""Checks on stored rows of both markets, shared by the tests and the Dagster asset checks.

They take ``pyarrow`` tables (what the Parquet sink reads back and what a QuestDB query returns
once converted), so the same code verifies either sink.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mkt_pipeline.core.tables import book_from_arrow


@dataclass
class CheckResult:
    name: str
    checked: int
    violations: int
    example: str = ""

    @property
    def passed(self) -> bool:
        return self.violations == 0

    def __str__(self) -> str:
        status = "ok" if self.passed else f"{self.violations} violations, e.g. {self.example}"
        return f"{self.name}: {self.checked} checked, {status}"


def timestamps_ns(table: pa.Table, column: str) -> np.ndarray:
    """A timestamp column as int64 nanoseconds, whatever its stored unit."""
    col = table.column(column)
    unit = col.type.unit if pa.types.is_timestamp(col.type) else "us"
    values = col.cast(pa.int64()).to_numpy()
    return values * {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]


def _strings(table: pa.Table, column: str) -> np.ndarray:
    return np.asarray(table.column(column).cast(pa.string()).to_pylist(), dtype=object)


def key_codes(tables: Sequence[pa.Table], columns: Sequence[str]) -> list[np.ndarray]:
    """Integer instrument codes (e.g. of symbol, or symbol and venue), consistent across ``tables``."""
    codes = [np.zeros(t.num_rows, dtype=np.int64) for t in tables]
    for column in columns:
        strings = [t.column(column).cast(pa.string()) for t in tables]
        categories = pc.unique(pa.chunked_array([c for s in strings for c in s.chunks], type=pa.string()))
        for i, values in enumerate(strings):
            index = pc.index_in(values, value_set=categories).to_numpy(zero_copy_only=False)
            codes[i] = codes[i] * max(len(categories), 1) + np.nan_to_num(index, nan=0).astype(np.int64)
    return codes


def _label(table: pa.Table, columns: Sequence[str], row: int) -> str:
    return "/".join(str(table.column(c)[row].as_py()) for c in columns)


def _example(mask: np.ndarray, describe) -> str:
    hits = np.flatnonzero(mask)
    return describe(int(hits[0])) if len(hits) else ""


def no_crossed_books(md: pa.Table) -> CheckResult:
    """Every stored quote has ask > bid (never locked or crossed) and best_* match the arrays."""
    bid = md.column("best_bid").to_numpy()
    ask = md.column("best_ask").to_numpy()
    bids, asks = book_from_arrow(md.column("bids")), book_from_arrow(md.column("asks"))
    bad = ~(ask > bid) | (bids.level(0) != bid) | (asks.level(0) != ask)
    syms = _strings(md, "symbol")
    return CheckResult(
        "no crossed or locked books",
        len(bid),
        int(bad.sum()),
        _example(bad, lambda i: f"{syms[i]} bid {bid[i]} ask {ask[i]}"),
    )


def book_grid(md: pa.Table, pips_per_unit: dict[str, int]) -> CheckResult:
    """Every level is a whole pip, one pip from the next, and every volume is positive."""
    syms = _strings(md, "symbol")
    ppu = np.array([pips_per_unit[s] for s in syms], dtype=np.float64)
    bad = np.zeros(len(syms), dtype=bool)
    for column, direction in (("bids", -1), ("asks", 1)):
        book = book_from_arrow(md.column(column))
        row = np.repeat(np.arange(len(book)), 2 * book.depth)
        within = np.arange(len(book.values)) - np.repeat(book.offsets[:-1], 2 * book.depth)
        is_price = within < np.repeat(book.depth, 2 * book.depth)
        ticks = book.values[is_price] * ppu[row[is_price]]
        whole = np.abs(ticks - np.rint(ticks)) < 1e-6
        level = within[is_price]
        touch = np.rint(book.values[book.offsets[:-1]] * ppu)
        on_grid = np.rint(ticks) == touch[row[is_price]] + direction * level
        bad |= np.bincount(row[is_price], weights=~(whole & on_grid), minlength=len(book)) > 0
        bad |= np.bincount(row[~is_price], weights=book.values[~is_price] <= 0, minlength=len(book)) > 0
    return CheckResult(
        "whole-pip contiguous book grid", len(syms), int(bad.sum()), _example(bad, lambda i: f"{syms[i]} row {i}")
    )


def candle_continuity(
    table: pa.Table, ts_column: str, price_column: str, keys: Sequence[str] = ("symbol",), min_rows: int = 1
) -> CheckResult:
    """For each instrument, the last price of second N equals the first price of second N+1.

    Only pairs of adjacent seconds that both hold at least ``min_rows`` rows of the instrument
    are compared (equities venues join their candles when both seconds hold two quotes).
    """
    ts = timestamps_ns(table, ts_column)
    sym_idx = key_codes([table], keys)[0]
    price = table.column(price_column).to_numpy(zero_copy_only=False)
    order = np.lexsort((ts, sym_idx))
    sec = ts[order] // 1_000_000_000
    sym = sym_idx[order]
    p = price[order]
    new_cell = np.r_[True, (sym[1:] != sym[:-1]) | (sec[1:] != sec[:-1])] if len(p) else np.array([], dtype=bool)
    first = np.flatnonzero(new_cell)
    last = np.r_[first[1:] - 1, len(p) - 1] if len(first) else first
    size = last - first + 1
    # consecutive cells of the same instrument in adjacent seconds, both dense enough
    pair = (
        (sym[first[1:]] == sym[first[:-1]])
        & (sec[first[1:]] == sec[first[:-1]] + 1)
        & (size[1:] >= min_rows)
        & (size[:-1] >= min_rows)
    )
    close, open_ = p[last[:-1]][pair], p[first[1:]][pair]
    bad = close != open_
    secs = sec[first[1:]][pair]
    rows = order[first[1:]][pair]
    return CheckResult(
        f"close(N) == open(N+1) on {price_column}",
        int(pair.sum()),
        int(bad.sum()),
        _example(bad, lambda i: f"{_label(table, keys, rows[i])} second {secs[i]}: {close[i]} != {open_[i]}"),
    )


def _in_force(trade_key: np.ndarray, trade_ns: np.ndarray, quote_key: np.ndarray, quote_ns: np.ndarray) -> np.ndarray:
    """Index of the latest quote with the same key code at or before each trade (-1 if none)."""
    if len(quote_ns) == 0 or len(trade_ns) == 0:
        return np.full(len(trade_ns), -1, dtype=np.int64)
    order = np.lexsort((quote_ns, quote_key))
    base = min(int(quote_ns.min()), int(trade_ns.min()))
    bits = int(max(quote_key.max(), trade_key.max())).bit_length()
    span = np.int64(1) << np.int64(62 - bits)  # key code in the high bits of a sortable integer
    if max(int(quote_ns.max()), int(trade_ns.max())) - base >= span:
        raise ValueError("time range too long for one in-force lookup; check it in slices")
    qkey = quote_key[order] * span + (quote_ns[order] - base)
    tkey = trade_key * span + (trade_ns - base)
    pos = np.searchsorted(qkey, tkey, side="right") - 1
    ok = (pos >= 0) & (quote_key[order][np.maximum(pos, 0)] == trade_key)
    return np.where(ok, order[np.maximum(pos, 0)], -1)


def trades_after_quotes(
    trades: pa.Table,
    quotes: pa.Table,
    quotes_ts_column: str = "timestamp",
    min_gap_ns: int = 1_000,
    keys: Sequence[str] = ("symbol",),
    trades_ts_column: str = "timestamp",
    unmatched_before_ns: int | None = None,
) -> CheckResult:
    """Every trade is at least ``min_gap_ns`` after the latest quote of its instrument (ASOF joins find it).

    A trade with no earlier quote at all before ``unmatched_before_ns`` is not counted: its quote in
    force lies before the rows given (e.g. in an hour that was never stored).
    """
    tns = timestamps_ns(trades, trades_ts_column)
    qns = timestamps_ns(quotes, quotes_ts_column)
    tkey, qkey = key_codes([trades, quotes], keys)
    idx = _in_force(tkey, tns, qkey, qns)
    gap = np.where(idx >= 0, tns - qns[np.maximum(idx, 0)], -1)
    counted = np.ones(len(tns), dtype=bool)
    if unmatched_before_ns is not None:
        counted = ~((idx < 0) & (tns < unmatched_before_ns))
    bad = counted & (gap < min_gap_ns)
    unit = "µs" if min_gap_ns >= 1_000 else "ns"
    return CheckResult(
        f"trades >= {min_gap_ns if unit == 'ns' else min_gap_ns // 1000} {unit} after the latest quote",
        int(counted.sum()),
        int(bad.sum()),
        _example(bad, lambda i: f"{_label(trades, keys, i)} trade {tns[i]} gap {gap[i]} ns"),
    )


def trades_executable(trades: pa.Table, md: pa.Table) -> CheckResult:
    """Each fill prints at a level of the stored book in force, on the side it takes or rests on,
    and the fills of an order at one level never exceed that level's displayed volume."""
    tns = timestamps_ns(trades, "timestamp")
    tsym = _strings(trades, "symbol")
    tkey, qkey = key_codes([trades, md], ("symbol",))
    idx = _in_force(tkey, tns, qkey, timestamps_ns(md, "timestamp"))
    buy = _strings(trades, "side") == "buy"
    passive = trades.column("passive").to_numpy(zero_copy_only=False).astype(bool)
    price = trades.column("price").to_numpy()
    qty = trades.column("quantity").to_numpy()
    order_ids = _strings(trades, "order_id")
    bids, asks = book_from_arrow(md.column("bids")), book_from_arrow(md.column("asks"))
    on_ask = buy ^ passive
    bad = idx < 0
    level_of = np.full(len(tns), -1)
    for i in np.flatnonzero(~bad):
        book = (asks if on_ask[i] else bids).row(int(idx[i]))
        hit = np.flatnonzero(np.abs(book[0] - price[i]) < 1e-9)
        if len(hit) == 0 or qty[i] > book[1][hit[0]] or qty[i] <= 0:
            bad[i] = True
        else:
            level_of[i] = hit[0]
    # fills of one order at one level share that level's volume
    for (_oid, lvl), rows in _group_rows(order_ids, level_of).items():
        if lvl >= 0 and len(rows) > 1:
            book = (asks if on_ask[rows[0]] else bids).row(int(idx[rows[0]]))
            if qty[rows].sum() > book[1][lvl]:
                bad[rows] = True
    return CheckResult(
        "fills executable against the stored book",
        len(tns),
        int(bad.sum()),
        _example(bad, lambda i: f"{tsym[i]} {price[i]} x {qty[i]}"),
    )


def _group_rows(*keys: np.ndarray) -> dict[tuple, np.ndarray]:
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*keys)):
        groups.setdefault(key, []).append(i)
    return {k: np.array(v) for k, v in groups.items()}


def order_consistency(trades: pa.Table) -> CheckResult:
    """Fills of one order share symbol, ECN, counterparty, side and passivity, and walk away from the touch in time."""
    cols = {c: _strings(trades, c) for c in ("order_id", "symbol", "ecn", "counterparty", "side")}
    passive = trades.column("passive").to_numpy(zero_copy_only=False)
    tns = timestamps_ns(trades, "timestamp")
    price = trades.column("price").to_numpy()
    bad_orders = 0
    groups = _group_rows(cols["order_id"])
    example = ""
    for oid, rows in groups.items():
        rows = rows[np.argsort(tns[rows], kind="stable")]
        same = (
            all(len(set(cols[c][rows])) == 1 for c in ("symbol", "ecn", "counterparty", "side"))
            and len(set(passive[rows])) == 1
        )
        steps = np.diff(price[rows])
        buy_aggr = cols["side"][rows[0]] == "buy" and not passive[rows[0]]
        sell_aggr = cols["side"][rows[0]] == "sell" and not passive[rows[0]]
        walks = (
            (not buy_aggr or np.all(steps > 0))
            and (not sell_aggr or np.all(steps < 0))
            and (not passive[rows[0]] or np.all(steps == 0))
        )
        if not (same and walks and len(set(tns[rows])) == len(rows)):
            bad_orders += 1
            example = example or str(oid)
    return CheckResult("fills of an order consistent and time-ordered by level", len(groups), bad_orders, example)


def top_of_book_consistent(md: pa.Table) -> CheckResult:
    """FX rows read as top of book (best_bid, best_ask, bid_px1, ask_px1): ask > bid, best_* = level 1."""
    bid, ask = md.column("best_bid").to_numpy(), md.column("best_ask").to_numpy()
    bad = ~(ask > bid) | (md.column("bid_px1").to_numpy() != bid) | (md.column("ask_px1").to_numpy() != ask)
    return CheckResult(
        "no crossed or locked books",
        len(bid),
        int(bad.sum()),
        _example(bad, lambda i: f"{_label(md, ['symbol'], i)} bid {bid[i]} ask {ask[i]}"),
    )


def quotes_not_crossed(table: pa.Table, bid_column: str, ask_column: str) -> CheckResult:
    """Every row has ask > bid."""
    bid, ask = table.column(bid_column).to_numpy(), table.column(ask_column).to_numpy()
    bad = ~(ask > bid)
    return CheckResult(
        f"{ask_column} > {bid_column}",
        len(bid),
        int(bad.sum()),
        _example(bad, lambda i: f"{_label(table, ['symbol'], i)} bid {bid[i]} ask {ask[i]}"),
    )


def nbbo_never_crossed(quotes: pa.Table, ts_column: str = "timestamp_ns", checked_from: int = 0) -> CheckResult:
    """Across venues, the best bid of the quotes in force stays below the best ask (never crossed or locked).

    ``quotes`` holds (ts, symbol, venue, bid_px1, ask_px1) in any order. The NBBO is evaluated after
    the last update of each instant; rows before index ``checked_from`` (quotes carried in from an
    earlier slice) set the state but are not themselves counted.
    """
    ts = timestamps_ns(quotes, ts_column)
    sym_idx = key_codes([quotes], ("symbol",))[0]
    venue_idx = key_codes([quotes], ("venue",))[0]
    bid, ask = (
        quotes.column("bid_px1").to_numpy(zero_copy_only=False),
        quotes.column("ask_px1").to_numpy(zero_copy_only=False),
    )
    counted = np.arange(len(ts)) >= checked_from
    order = np.lexsort((np.arange(len(ts)), ts, sym_idx))
    s, t, v = sym_idx[order], ts[order], venue_idx[order]
    sorted_bid, sorted_ask = bid[order], ask[order]
    n, nv = len(order), int(venue_idx.max()) + 1 if len(venue_idx) else 0
    best_bid, best_ask = np.full(n, -np.inf), np.full(n, np.inf)
    # forward-fill each venue's quote within its symbol, then take the best across venues
    group_start = np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, dtype=bool)
    for k in range(nv):
        mine = v == k
        pos = np.where(mine, np.arange(n), -1)
        start = np.where(group_start, np.arange(n), 0)
        np.maximum.accumulate(pos, out=pos)
        np.maximum.accumulate(start, out=start)
        live = pos >= start
        best_bid = np.where(live, np.maximum(best_bid, sorted_bid[np.maximum(pos, 0)]), best_bid)
        best_ask = np.where(live, np.minimum(best_ask, sorted_ask[np.maximum(pos, 0)]), best_ask)
    last_of_instant = np.r_[(s[1:] != s[:-1]) | (t[1:] != t[:-1]), True] if n else np.zeros(0, dtype=bool)
    check = last_of_instant & counted[order]
    bad = check & ~(best_ask > best_bid)
    return CheckResult(
        "NBBO of the quotes in force never crossed or locked",
        int(check.sum()),
        int(bad.sum()),
        _example(
            bad, lambda i: f"{_label(quotes, ['symbol'], order[i])} at {t[i]}: bid {best_bid[i]} >= ask {best_ask[i]}"
        ),
    )


def combine(results: Iterable[CheckResult]) -> CheckResult:
    """One result for a check run slice by slice (the first example found is kept)."""
    results = list(results)
    name = results[0].name if results else "no rows"
    example = next((r.example for r in results if r.example), "")
    return CheckResult(name, sum(r.checked for r in results), sum(r.violations for r in results), example)


def latest_per_key(table: pa.Table, keys: Sequence[str], ts_column: str) -> pa.Table:
    """The latest row of each instrument (carries the quotes in force from one slice to the next)."""
    if table.num_rows == 0:
        return table
    ts = timestamps_ns(table, ts_column)
    key = key_codes([table], keys)[0]
    order = np.lexsort((np.arange(len(ts)), ts, key))
    last = np.r_[key[order][1:] != key[order][:-1], True]
    return table.take(pa.array(order[last]))

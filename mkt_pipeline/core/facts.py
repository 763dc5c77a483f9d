"""The stylised facts (docs/data-model.md#realism-bands), measured on a tape: every row with its band and a pass/fail.

Pure numpy/pyarrow, no IO. A tape (``FxTape``, ``EquitiesTape``) is fed the stored rows one slice of
time at a time (``add``, slices in time order, e.g. an hour each) and keeps only compact per-second
summaries, so memory grows with the window's seconds (a day: tens of MB), never with its rows.
``facts`` then turns the summaries into ``Fact`` rows; ``format_table`` prints them.

Conventions a reader of the numbers should know:

* Prices are mids; FX mids come from the books (``market_data``), equities mids from the NBBO, built
  each second from every venue's latest quote.
* 1-minute returns are log changes of the mid at the last quote of each minute; equities use the
  regular session only (09:30–16:00 New York, from the sessions the caller passes).
* "In force" means the latest row at or before the event's timestamp (ties count, as in an ASOF join).
* Per-symbol facts are shown as the range over the symbol group (FX majors, equities mega-caps);
  a fact either has to hold for each symbol ("each") or is measured on the group's mean.
* A fact that cannot be measured on the window (no trading session, too few rows) fails: an
  unmeasured fact must not read as a pass.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NS_PER_S = 1_000_000_000
NS_PER_US = 1_000
MINUTE_S = 60
HALF_HOUR_S = 1800
MAX_WINDOW_S = 7 * 86400  # per-second summaries of a week: ~200 MB for 30 symbols
# counts are divided by their half-hour's mean before the autocorrelation, so the intraday profile
# (a deterministic seasonality) does not pass for clustering
COUNT_BUCKET_S = HALF_HOUR_S
ACF_LAGS = tuple(range(1, 61))

FX_MINUTES_PER_YEAR = 1440 * 260  # FX trades around the clock on weekdays
FX_DAYS_PER_YEAR = 260
EQUITIES_MINUTES_PER_YEAR = 390 * 252
EQUITIES_DAYS_PER_YEAR = 252

# London/New York overlap and the late Asian hours, UTC hours [start, end)
FX_OVERLAP_HOURS = (12, 16)
FX_LATE_ASIA_HOURS = (3, 6)
FX_JUMP_PIPS = 10.0
ROUND_TICKET = 100_000.0  # an FX order is a round ticket when its fills add up to whole 100k
PRINT_LOT = 1_000.0

_NAN = float("nan")


# --------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Band:
    """A closed interval (either end open when None) and how it reads in the table."""

    low: float | None
    high: float | None
    text: str

    def holds(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Fact:
    """One row of the §11 table: what was measured, the band, and whether it holds."""

    key: str  # stable identifier, e.g. "fat_tails.kurtosis"
    fact: str
    measure: str
    measured: str  # the number(s) as printed
    band: str
    passed: bool
    value: float  # the number the band is applied to
    details: Mapping[str, float] = field(default_factory=dict)  # per symbol / per lag numbers


def _fact(
    key: str, fact: str, measure: str, value: float, band: Band, measured: str | None = None, details=None, passed=None
) -> Fact:
    ok = band.holds(value) if passed is None else bool(passed) and math.isfinite(value)
    return Fact(
        key,
        fact,
        measure,
        measured if measured is not None else _num(value),
        band.text,
        ok,
        float(value),
        dict(details or {}),
    )


def _num(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f} %"


def _span(values: Iterable[float], fmt=_num) -> str:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return "n/a"
    lo, hi = min(vals), max(vals)
    return fmt(lo) if len(vals) == 1 or fmt(lo) == fmt(hi) else f"{fmt(lo)} … {fmt(hi)}"


def format_table(facts: Sequence[Fact], title: str = "") -> str:
    """The facts as a Markdown table: fact, measure, measured, band, pass/fail."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| fact | measure | measured | band | result |", "|---|---|---|---|---|"]
    for f in facts:
        lines.append(f"| {f.fact} | {f.measure} | {f.measured} | {f.band} | {'pass' if f.passed else 'FAIL'} |")
    passed = sum(f.passed for f in facts)
    lines += ["", f"{passed} of {len(facts)} facts within their band"]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# statistics


def excess_kurtosis(x: np.ndarray) -> float:
    """Excess kurtosis of the finite values (0 for a normal); NaN with fewer than 8 values."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 8:
        return _NAN
    m = x - x.mean()
    var = np.mean(m * m)
    return float(np.mean(m**4) / var**2 - 3.0) if var > 0 else _NAN


def autocorrelation(x: np.ndarray, lag: int) -> float:
    """Sample autocorrelation at ``lag`` over the pairs where both values are finite."""
    x = np.asarray(x, dtype=np.float64)
    if lag <= 0 or len(x) <= lag + 2:
        return _NAN
    finite = np.isfinite(x)
    if finite.sum() < lag + 3:
        return _NAN
    mean = x[finite].mean()
    var = np.mean((x[finite] - mean) ** 2)
    a, b = x[:-lag], x[lag:]
    both = np.isfinite(a) & np.isfinite(b)
    if var <= 0 or both.sum() < 3:
        return _NAN
    return float(np.mean((a[both] - mean) * (b[both] - mean)) / var)


def minute_log_returns(
    second_mids: np.ndarray, first_s: int, seconds: Sequence[tuple[int, int]] | None = None
) -> np.ndarray:
    """1-minute log returns of per-second mids (``[symbol, second]`` from ``first_s``).

    The mid of a minute is the last one seen up to its last second. With ``seconds`` (spans of
    absolute seconds, e.g. trading sessions) only the minutes inside them count, and no return
    spans two of them. Rows: symbols; a missing value is NaN.
    """
    n_sym, n_sec = second_mids.shape
    filled = _forward_fill(second_mids)
    spans = seconds if seconds is not None else [(first_s, first_s + n_sec)]
    out = []
    for a, b in spans:
        # minute boundaries inside the span, aligned on absolute minutes
        first_edge = -(-a // MINUTE_S) * MINUTE_S
        edges = np.arange(first_edge, b + 1, MINUTE_S)
        edges = edges[(edges - 1 >= first_s) & (edges - 1 < first_s + n_sec)]
        if len(edges) < 2:
            continue
        closes = filled[:, edges - 1 - first_s]
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.diff(np.log(closes), axis=1))
    return np.concatenate(out, axis=1) if out else np.empty((n_sym, 0))


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Each row's NaNs replaced by the row's previous finite value (leading NaNs stay)."""
    valid = np.isfinite(values)
    idx = np.where(valid, np.arange(values.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(values, idx, axis=1)
    out[~np.maximum.accumulate(valid, axis=1)] = np.nan
    return out


def mean_abs_return_acf(returns: np.ndarray, lags: Sequence[int] = ACF_LAGS) -> np.ndarray:
    """Autocorrelation of |returns| at each lag, averaged over the rows (symbols) that have it."""
    acf = (
        np.array([[autocorrelation(np.abs(r), lag) for lag in lags] for r in returns])
        if len(returns)
        else np.empty((0, len(lags)))
    )
    if not len(acf) or not np.isfinite(acf).any():
        return np.full(len(lags), np.nan)
    with warnings.catch_warnings():  # a lag no symbol reaches is NaN, as it should be
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(acf, axis=0)


def annualised_vol(log_returns: np.ndarray, periods_per_year: float) -> float:
    """Root mean square of the finite log returns, annualised."""
    r = np.asarray(log_returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    return float(np.sqrt(np.mean(r * r) * periods_per_year)) if len(r) > 1 else _NAN


def daily_vol(closes: np.ndarray, days_per_year: float) -> float:
    """Annualised volatility of daily closes (business days only, in order)."""
    closes = np.asarray(closes, dtype=np.float64)
    if len(closes) < 3:
        return _NAN
    return annualised_vol(np.diff(np.log(closes)), days_per_year)


def relative_range(closes: np.ndarray) -> float:
    """(max − min) / min of a series of closes."""
    closes = np.asarray(closes, dtype=np.float64)
    return float((closes.max() - closes.min()) / closes.min()) if len(closes) else _NAN


def normalised_count_acf(
    counts: np.ndarray, include: np.ndarray, bucket_s: int = COUNT_BUCKET_S, first_s: int = 0
) -> float:
    """Lag-1 autocorrelation of per-second counts divided by their (absolute) half-hour's mean.

    ``include`` marks the seconds that count (e.g. the regular session); the others are left out
    of the buckets and the pairs.
    """
    counts = np.asarray(counts, dtype=np.float64)
    bucket = (np.arange(len(counts)) + first_s) // bucket_s
    bucket -= bucket.min() if len(bucket) else 0
    use = include & np.isfinite(counts)
    total = np.bincount(bucket[use], counts[use], minlength=bucket.max() + 1 if len(bucket) else 0)
    n = np.bincount(bucket[use], minlength=len(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        ratio = np.where(use & (mean[bucket] > 0), counts / mean[bucket], np.nan)
    return autocorrelation(ratio, 1)


# --------------------------------------------------------------------------------------------
# per-chunk helpers


def symbol_codes(column: pa.Array | pa.ChunkedArray, symbols: Sequence[str]) -> np.ndarray:
    """Index of each row's symbol in ``symbols`` (−1 for anything else), dictionary-encoded or not."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        lookup = np.array(
            [symbols.index(s) if s in symbols else -1 for s in column.dictionary.to_pylist()] + [-1], dtype=np.int64
        )
        idx = column.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return lookup[idx] if len(lookup) > 1 else np.full(len(column), -1, dtype=np.int64)
    return (
        pc.index_in(column, value_set=pa.array(list(symbols)))
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )


def timestamps_ns(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A timestamp column (µs or ns, or plain integers of that unit) as int64 nanoseconds."""
    unit = getattr(column.type, "unit", "ns")
    values = (
        column.cast(pa.int64()).to_numpy() if not pa.types.is_integer(column.type) else np.asarray(column.to_numpy())
    )
    return values.astype(np.int64) * (NS_PER_US if unit == "us" else 1)


def _float(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)


def _group_order(codes: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """The permutation that sorts rows by (code, time): a stable radix sort of small codes over time order."""
    if len(ts_ns) > 1 and (np.diff(ts_ns) < 0).any():
        by_time = np.argsort(ts_ns, kind="stable")
        return by_time[np.argsort(codes[by_time].astype(np.int16), kind="stable")]
    return np.argsort(codes.astype(np.int16), kind="stable")


class _InForce:
    """Rows grouped by instrument code, time-ordered within each: finds the latest row at or before a time.

    Grouping is a stable radix sort on small integer codes and each lookup a ``searchsorted`` inside
    one instrument's times, so both stay linear-ish and cache-friendly on millions of rows.
    """

    def __init__(self, codes: np.ndarray, ts_ns: np.ndarray, n_codes: int):
        if n_codes >= 2**15:
            raise ValueError(f"{n_codes} instruments: at most {2**15 - 1}")
        self.order = _group_order(codes, ts_ns)
        self.codes = codes[self.order]
        self.ts = ts_ns[self.order]
        self.n_codes = n_codes
        self.bounds = np.searchsorted(self.codes, np.arange(n_codes + 1))

    def find(self, codes: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
        """Position (in the grouped order) of the latest row of each code at or before each time; −1 if none."""
        out = np.full(len(ts_ns), -1, dtype=np.int64)
        qorder = np.argsort(codes.astype(np.int16), kind="stable")
        qbounds = np.searchsorted(codes[qorder], np.arange(self.n_codes + 1))
        for c in range(self.n_codes):
            a, b = qbounds[c], qbounds[c + 1]
            lo, hi = self.bounds[c], self.bounds[c + 1]
            if a == b or lo == hi:
                continue
            rows = qorder[a:b]
            p = np.searchsorted(self.ts[lo:hi], ts_ns[rows], side="right") - 1
            out[rows] = np.where(p >= 0, p + lo, -1)
        return out

    def last_of_each(self) -> np.ndarray:
        """Positions (grouped order) of each code's latest row."""
        return _last_per_group(self.codes)


def _last_per_group(group: np.ndarray) -> np.ndarray:
    """Positions of the last element of each run in a sorted ``group`` array."""
    if not len(group):
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.r_[group[1:] != group[:-1], True])


class _Arrivals:
    """Per-second event counts and the within-second inter-arrival spread of one stream."""

    def __init__(self, first_s: int, seconds: int):
        self.first_s = first_s
        self.counts = np.zeros(seconds, dtype=np.float64)
        self.gaps = np.zeros(seconds, dtype=np.float64)  # gaps inside the second
        self.gap_sq = np.zeros(seconds, dtype=np.float64)  # Σ (gap / that second's mean gap)²

    def add(self, ts_ns: np.ndarray) -> None:
        if not len(ts_ns):
            return
        ts_ns = np.sort(ts_ns)
        sec = ts_ns // NS_PER_S - self.first_s
        inside = (sec >= 0) & (sec < len(self.counts))
        ts_ns, sec = ts_ns[inside], sec[inside]
        self.counts += np.bincount(sec, minlength=len(self.counts))
        same = sec[1:] == sec[:-1]
        gap = np.diff(ts_ns).astype(np.float64)[same]
        gsec = sec[1:][same]
        n = np.bincount(gsec, minlength=len(self.counts)).astype(np.float64)
        total = np.bincount(gsec, gap, minlength=len(self.counts))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, total / n, np.nan)
        norm = gap / mean[gsec]
        ok = np.isfinite(norm)
        self.gaps += np.bincount(gsec[ok], minlength=len(self.counts))
        self.gap_sq += np.bincount(gsec[ok], norm[ok] ** 2, minlength=len(self.counts))

    def cv(self, include: np.ndarray) -> float:
        """Coefficient of variation of inter-arrival gaps, each divided by its second's mean gap."""
        use = include & (self.gaps >= 2)
        n = self.gaps[use].sum()
        if n < 10:
            return _NAN
        # the normalised gaps have mean 1 by construction
        return float(np.sqrt(max(self.gap_sq[use].sum() / n - 1.0, 0.0)))

    def count_acf(self, include: np.ndarray) -> float:
        return normalised_count_acf(self.counts, include, first_s=self.first_s)


@dataclass
class _Window:
    start_s: int
    end_s: int

    @property
    def seconds(self) -> int:
        return self.end_s - self.start_s


def _window(start_us: int, end_us: int) -> _Window:
    start_s, end_s = start_us // 1_000_000, -(-end_us // 1_000_000)
    if end_s - start_s > MAX_WINDOW_S:
        raise ValueError(
            f"facts window: {end_s - start_s} s is longer than {MAX_WINDOW_S // 86400} days (measure a day or a few)"
        )
    return _Window(start_s, end_s)


# --------------------------------------------------------------------------------------------
# FX


FX_COLUMNS = {
    "market_data": ("symbol", "bid_px1", "ask_px1", "bid_sz1", "bid_sz2", "bid_sz3", "ask_sz1", "ask_sz2", "ask_sz3"),
    "core_price": ("symbol", "bid_price", "ask_price", "bid_volume", "ask_volume"),
    "fx_trades": ("symbol", "price", "quantity", "order_id"),
}
# the rows ``FxTape.facts`` measures, in the table's order (the realism-band tests hold it to them)
FX_FACT_KEYS = (
    "fat_tails.kurtosis",
    "fat_tails.jumps",
    "clustering.short",
    "clustering.lag30",
    "bounce",
    "vol_ratio",
    "vol_level.EURUSD",
    "vol_level.USDJPY",
    "activity.quotes_acf",
    "activity.orders_acf",
    "activity.quotes_cv",
    "activity.orders_cv",
    "seasonality.fx_quotes",
    "seasonality.fx_orders",
    "fx_prints.touch",
    "fx_prints.lots",
    "core_vs_book",
    "long_run_level",
)


class FxTape:
    """Summaries of an FX window for the §11 facts; feed ``add`` the stored rows slice by slice."""

    def __init__(
        self,
        symbols: Sequence[str],
        pips: Sequence[float],
        majors: Sequence[str],
        start_us: int,
        end_us: int,
        timestamp: str = "timestamp",
    ):
        self.symbols = tuple(symbols)
        self.pips = np.asarray(pips, dtype=np.float64)
        self.majors = [self.symbols.index(m) for m in majors]
        self.window = _window(start_us, end_us)
        self.timestamp = timestamp
        n, secs = len(self.symbols), self.window.seconds
        self.mids = np.full((n, secs), np.nan)  # last mid of each second
        self.quotes = _Arrivals(self.window.start_s, secs)
        self.orders = _Arrivals(self.window.start_s, secs)
        # lag-1 autocorrelation of successive quote mid changes, per symbol: n, Σd, Σd², Σd·d_prev
        self.bounce = np.zeros((n, 4))
        self._bounce_pairs = np.zeros(n)
        self._last_mid = np.full(n, np.nan)
        self._last_change = np.full(n, np.nan)
        self.prints = self.prints_at_touch = self.prints_matched = self.prints_round = 0
        self.orders_total = self.orders_round = 0
        self.core_levels = np.zeros(
            5, dtype=np.int64
        )  # book level reaching the core volume: 1, 2, 3, deeper; [0] unmatched
        self.core_copies = self.core_rows = 0
        self._carry: dict[str, np.ndarray] | None = None  # the last book of each symbol so far

    def add(self, market_data: pa.Table, core_price: pa.Table, trades: pa.Table) -> None:
        """One slice of time (slices in order): books, core rows and trades of that slice."""
        md = self._books(market_data)
        self._add_mids(md)
        books = md if self._carry is None else {k: np.concatenate([self._carry[k], v]) for k, v in md.items()}
        # The books stay in stored order: core rows and prints are far fewer than books, so mapping
        # their matches through the grouping is cheaper than regrouping every book column.
        index = _InForce(books["code"], books["ts"], len(self.symbols))
        self._add_core(core_price, books, index)
        self._add_trades(trades, books, index)
        last = index.order[index.last_of_each()]
        self._carry = {k: v[last] for k, v in books.items()}

    def _books(self, table: pa.Table) -> dict[str, np.ndarray]:
        ts = timestamps_ns(table.column(self.timestamp))
        out = {
            "ts": ts,
            "code": symbol_codes(table.column("symbol"), self.symbols),
            "bid": _float(table, "bid_px1"),
            "ask": _float(table, "ask_px1"),
        }
        for side in ("bid", "ask"):
            out[f"{side}_sz"] = (
                np.stack([_float(table, f"{side}_sz{k}") for k in (1, 2, 3)], axis=1) if len(ts) else np.empty((0, 3))
            )
        keep = out["code"] >= 0
        return out if keep.all() else {k: v[keep] for k, v in out.items()}

    def _add_mids(self, md: dict[str, np.ndarray]) -> None:
        ts, code = md["ts"], md["code"]
        self.quotes.add(ts)
        mid = (md["bid"] + md["ask"]) / 2
        order = _group_order(code, ts)
        ts, code, mid = ts[order], code[order], mid[order]
        sec = ts // NS_PER_S - self.window.start_s
        inside = (sec >= 0) & (sec < self.window.seconds)
        group = code * self.window.seconds + sec
        last = _last_per_group(group)
        last = last[inside[last]]
        self.mids[code[last], sec[last]] = mid[last]
        # successive mid changes per symbol, carried across slices
        starts = np.r_[0, np.flatnonzero(code[1:] != code[:-1]) + 1]
        ends = np.r_[starts[1:], len(code)]
        for a, b in zip(starts, ends):
            s = code[a]
            m = np.r_[self._last_mid[s], mid[a:b]] if math.isfinite(self._last_mid[s]) else mid[a:b]
            d = np.diff(m)
            d = d[d != 0]  # a quote that repeats the mid is no change: repeats would dilute the measure towards 0
            self._last_mid[s] = m[-1] if len(m) else self._last_mid[s]
            if not len(d):
                continue
            prev = np.r_[self._last_change[s], d[:-1]]
            pair = np.isfinite(prev)
            self.bounce[s] += (len(d), d.sum(), (d * d).sum(), 0.0)
            self.bounce[s, 3] += (d[pair] * prev[pair]).sum()
            self._bounce_pairs[s] += pair.sum()
            self._last_mid[s], self._last_change[s] = m[-1], d[-1]

    def _add_core(self, table: pa.Table, books: dict[str, np.ndarray], index: _InForce) -> None:
        if not table.num_rows:
            return
        ts = timestamps_ns(table.column(self.timestamp))
        code = symbol_codes(table.column("symbol"), self.symbols)
        keep = code >= 0
        pos = index.find(code[keep], ts[keep])
        found = pos >= 0
        self.core_levels[0] += int((~found).sum())
        p = index.order[pos[found]]
        for side in ("bid", "ask"):
            volume = _float(table, f"{side}_volume")[keep][found]
            ladder = books[f"{side}_sz"][p]
            cum = np.cumsum(np.nan_to_num(ladder, nan=0.0), axis=1)
            reached = cum >= volume[:, None] - 0.5
            level = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, 4)
            self.core_levels[1:] += np.bincount(level - 1, minlength=4)[:4]
            self.core_copies += int((np.abs(ladder[:, 0] - volume) < 0.5).sum())
            self.core_rows += len(volume)

    def _add_trades(self, table: pa.Table, books: dict[str, np.ndarray], index: _InForce) -> None:
        if not table.num_rows:
            return
        ts = timestamps_ns(table.column(self.timestamp))
        code = symbol_codes(table.column("symbol"), self.symbols)
        price, qty = _float(table, "price"), _float(table, "quantity")
        oid = table.column("order_id")
        oid = (oid.combine_chunks() if isinstance(oid, pa.ChunkedArray) else oid).dictionary_encode()
        okey = oid.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        # orders: arrival at the first fill; round when the fills add up to whole tickets
        uniq, first = np.unique(okey, return_index=True)
        self.orders.add(ts[first])
        filled = np.bincount(okey, qty, minlength=len(uniq))[uniq]
        self.orders_total += len(uniq)
        self.orders_round += int((np.abs(filled / ROUND_TICKET - np.round(filled / ROUND_TICKET)) < 1e-6).sum())
        self.prints += len(qty)
        self.prints_round += int((np.abs(qty / PRINT_LOT - np.round(qty / PRINT_LOT)) < 1e-6).sum())
        keep = code >= 0
        pos = index.find(code[keep], ts[keep])
        found = pos >= 0
        p = index.order[pos[found]]
        px = price[keep][found]
        half_pip = self.pips[code[keep][found]] / 2
        at_touch = (np.abs(px - books["bid"][p]) < half_pip) | (np.abs(px - books["ask"][p]) < half_pip)
        self.prints_matched += int(found.sum())
        self.prints_at_touch += int(at_touch.sum())

    # -- the facts ------------------------------------------------------------------------
    def minute_returns(self) -> np.ndarray:
        return minute_log_returns(self.mids, self.window.start_s)

    def one_second_jumps(self) -> np.ndarray:
        """Per symbol: one-second mid moves larger than 10 pips, per day of the window."""
        filled = _forward_fill(self.mids)
        moves = np.abs(np.diff(filled, axis=1)) / self.pips[:, None]
        days = max(self.window.seconds / 86400, 1e-9)
        seen = np.isfinite(moves).any(axis=1)
        return np.where(seen, np.nansum(moves > FX_JUMP_PIPS, axis=1) / max(days, 1.0), np.nan)

    def bounce_acf(self) -> np.ndarray:
        n, s1, s2, cross = self.bounce.T
        pairs = self._bounce_pairs
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = s1 / n
            var = s2 / n - mean**2
            return (cross / pairs - mean**2) / var

    def hourly_activity(self) -> dict[str, np.ndarray]:
        """Mean quotes and orders per second by UTC hour of day (NaN for hours not in the window)."""
        hour = ((np.arange(self.window.seconds) + self.window.start_s) // 3600) % 24
        n = np.bincount(hour, minlength=24).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {
                "quotes": np.bincount(hour, self.quotes.counts, minlength=24) / n,
                "orders": np.bincount(hour, self.orders.counts, minlength=24) / n,
            }

    def facts(
        self, daily_closes: Mapping[str, np.ndarray], rate_spans: Mapping[str, float] | None = None
    ) -> list[Fact]:
        """The FX rows of §11. ``daily_closes``: business-day closes per symbol (e.g. 120 days);
        ``rate_spans``: max/min of the configured ``quotes`` and ``orders`` rates (seasonality band)."""
        majors = self.majors
        names = [self.symbols[i] for i in majors]
        returns = self.minute_returns()
        facts = []
        kurt = [excess_kurtosis(returns[i]) for i in majors]
        facts.append(
            _fact(
                "fat_tails.kurtosis",
                "fat tails",
                "excess kurtosis of 1-min log returns, each major",
                min(kurt, default=_NAN),
                Band(3, 30, "3 … 30"),
                _span(kurt),
                dict(zip(names, kurt)),
                passed=all(Band(3, 30, "").holds(k) for k in kurt),
            )
        )
        jumps = self.one_second_jumps()[majors]
        worst = float(jumps.max()) if len(jumps) and np.isfinite(jumps).all() else _NAN
        facts.append(
            _fact(
                "fat_tails.jumps",
                "fat tails",
                "one-second moves > 10 pips per major per day (max)",
                worst,
                Band(None, 3, "≤ 3"),
                _num(worst, 1),
                dict(zip(names, jumps)),
            )
        )
        acf = mean_abs_return_acf(returns[majors])
        facts += _clustering_facts(acf, "majors")
        bounce = self.bounce_acf()[majors]
        band = Band(-0.35, -0.05, "−0.35 … −0.05")
        facts.append(
            _fact(
                "bounce",
                "bid-ask bounce",
                "lag-1 autocorrelation of successive non-zero quote mid changes, each major",
                float(np.nanmax(bounce)) if np.isfinite(bounce).any() else _NAN,
                band,
                _span(bounce),
                dict(zip(names, bounce)),
                passed=all(band.holds(b) for b in bounce),
            )
        )
        facts += _vol_ratio_facts(
            returns,
            self.symbols,
            majors,
            daily_closes,
            FX_MINUTES_PER_YEAR,
            FX_DAYS_PER_YEAR,
            {"EURUSD": (0.05, 0.10), "USDJPY": (0.07, 0.12)},
        )
        everywhere = np.ones(self.window.seconds, dtype=bool)
        facts += _activity_facts(self.quotes, self.orders, everywhere, "orders")
        hourly = self.hourly_activity()
        spans = dict(rate_spans or {})
        for stream in ("quotes", "orders"):
            by_hour = hourly[stream]
            overlap = (
                np.nanmean(by_hour[slice(*FX_OVERLAP_HOURS)])
                if np.isfinite(by_hour[slice(*FX_OVERLAP_HOURS)]).any()
                else _NAN
            )
            asia = (
                np.nanmean(by_hour[slice(*FX_LATE_ASIA_HOURS)])
                if np.isfinite(by_hour[slice(*FX_LATE_ASIA_HOURS)]).any()
                else _NAN
            )
            ratio = overlap / asia if asia and math.isfinite(asia) and asia > 0 else _NAN
            span = spans.get(stream, 2.0)
            need = 2.0 if span >= 2.0 else 0.9 * span  # a narrow configured range caps the ratio at max/min
            facts.append(
                _fact(
                    f"seasonality.fx_{stream}",
                    "intraday seasonality, FX",
                    f"{stream} per second, London/NY overlap (12–16 UTC) ÷ late Asia (03–06 UTC)",
                    ratio,
                    Band(need, None, f"≥ {need:.2f}" + ("" if span >= 2.0 else " (90 % of max/min)")),
                    f"{_num(ratio)}×",
                )
            )
        share = self.prints_at_touch / self.prints_matched if self.prints_matched else _NAN
        facts.append(
            _fact(
                "fx_prints.touch",
                "FX prints",
                "prints at the touch of the book in force",
                share,
                Band(0.70, 1.0, "≥ 70 %"),
                _pct(share),
            )
        )
        # an order's ticket is not on the tape (a partly filled order prints less than it asked for):
        # the share of orders filled to a whole 100k is shown with the lot rule, not banded
        round_orders = self.orders_round / self.orders_total if self.orders_total else _NAN
        lots = self.prints_round / self.prints if self.prints else _NAN
        facts.append(
            _fact(
                "fx_prints.lots",
                "FX prints",
                "prints in multiples of 1,000 (orders filled to a whole 100k)",
                lots,
                Band(1.0, 1.0, "100 %"),
                f"{_pct(lots)} ({_pct(round_orders)})",
                {"orders_whole_100k": round_orders},
            )
        )
        matched = self.core_levels[1:].sum()
        shares = self.core_levels[1:] / matched if matched else np.full(4, np.nan)
        varied = matched > 0 and shares[3] == 0 and (shares[:3] >= 0.05).sum() >= 2
        copies = self.core_copies / self.core_rows if self.core_rows else _NAN
        facts.append(
            _fact(
                "core_vs_book",
                "core_price vs book",
                "book level where cumulative volume reaches the core volume (share at L1/L2/L3/deeper)",
                float((shares[:3] >= 0.05).sum()) if matched else _NAN,
                Band(2, 3, "varies within 1–3"),
                " / ".join(_pct(s) for s in shares) + f"; L1 copies {_pct(copies)}",
                {
                    "L1": shares[0],
                    "L2": shares[1],
                    "L3": shares[2],
                    "deeper": shares[3],
                    "copies": copies,
                    "unmatched": float(self.core_levels[0]),
                },
                passed=varied,
            )
        )
        eurusd = daily_closes.get("EURUSD")
        wander = relative_range(eurusd) if eurusd is not None and len(eurusd) else _NAN
        facts.append(
            _fact(
                "long_run_level",
                "long-run level",
                f"range of EURUSD daily closes over {0 if eurusd is None else len(eurusd)} business days",
                wander,
                Band(0.03, None, "≥ 3 %"),
                _pct(wander),
            )
        )
        return facts


def _clustering_facts(acf: np.ndarray, group: str) -> list[Fact]:
    short = acf[:5]
    band = Band(0.10, 0.40, "0.10 … 0.40")
    return [
        _fact(
            "clustering.short",
            "volatility clustering",
            f"autocorrelation of |1-min returns|, lags 1–5 (mean over {group})",
            float(np.nanmin(short)) if np.isfinite(short).any() else _NAN,
            band,
            _span(short),
            {f"lag{i + 1}": v for i, v in enumerate(short)},
            passed=bool(len(short)) and all(band.holds(v) for v in short),
        ),
        _fact(
            "clustering.lag30",
            "volatility clustering",
            f"autocorrelation of |1-min returns|, lag 30 (mean over {group})",
            float(acf[29]) if len(acf) >= 30 else _NAN,
            Band(0.03, None, "> 0.03"),
            _num(float(acf[29]) if len(acf) >= 30 else _NAN, 3),
        ),
    ]


def _vol_ratio_facts(
    returns, symbols, group, daily_closes, minutes_per_year, days_per_year, absolute: Mapping[str, tuple[float, float]]
) -> list[Fact]:
    realised = {symbols[i]: annualised_vol(returns[i], minutes_per_year) for i in group}
    daily = {s: daily_vol(daily_closes[s], days_per_year) if s in daily_closes else _NAN for s in realised}
    ratios = {
        s: realised[s] / daily[s] if daily[s] and math.isfinite(daily[s]) and daily[s] > 0 else _NAN for s in realised
    }
    finite = [r for r in ratios.values() if math.isfinite(r)]
    median = float(np.median(finite)) if finite else _NAN
    facts = [
        _fact(
            "vol_ratio",
            "realised vs daily volatility",
            "annualised vol from 1-min returns ÷ from daily closes (median, range)",
            median,
            Band(0.7, 1.5, "0.7 … 1.5"),
            f"{_num(median)} ({_span(ratios.values())})",
            ratios,
        )
    ]
    for sym, (lo, hi) in absolute.items():
        v = realised.get(sym, _NAN)
        facts.append(
            _fact(
                f"vol_level.{sym}",
                "realised vs daily volatility",
                f"{sym} annualised vol from 1-min returns (daily closes: {_pct(daily.get(sym, _NAN))})",
                v,
                Band(lo, hi, f"{lo * 100:.0f} … {hi * 100:.0f} %"),
                _pct(v),
            )
        )
    return facts


def _activity_facts(quotes: _Arrivals, trades: _Arrivals, include: np.ndarray, trade_name: str) -> list[Fact]:
    out = []
    for name, stream in (("quotes", quotes), (trade_name, trades)):
        acf = stream.count_acf(include)
        out.append(
            _fact(
                f"activity.{name}_acf",
                "activity clustering",
                f"lag-1 autocorrelation of {name} per second (÷ half-hour mean)",
                acf,
                Band(0.3, None, "≥ 0.3"),
            )
        )
    for name, stream in (("quotes", quotes), (trade_name, trades)):
        cv = stream.cv(include)
        out.append(
            _fact(
                f"activity.{name}_cv",
                "activity clustering",
                f"inter-arrival CV of {name} within seconds",
                cv,
                Band(1.5, None, "≥ 1.5"),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# equities


EQUITIES_COLUMNS = {
    "equities_market_data": ("symbol", "venue", "bid_px1", "ask_px1"),
    "equities_trades": ("symbol", "venue", "price", "size", "side", "cond"),
}
TICK = 0.01
# the rows ``EquitiesTape.facts`` measures, in the table's order (the one-market rows follow them:
# ``cross_facts_equities.MARKET_FACT_KEYS``)
EQUITIES_FACT_KEYS = (
    "fat_tails.kurtosis",
    "clustering.short",
    "clustering.lag30",
    "bounce",
    "vol_ratio",
    "vol_level.AAPL",
    "activity.quotes_acf",
    "activity.trades_acf",
    "activity.quotes_cv",
    "activity.trades_cv",
    "seasonality.first30",
    "seasonality.last30",
    "seasonality.opening_cross",
    "seasonality.closing_cross",
    "seasonality.open_vol",
    "nbbo.at_or_inside",
    "nbbo.inside",
    "spreads.one_tick",
)


@dataclass(frozen=True)
class Session:
    """One regular trading session, epoch seconds: pre-open start, open, close, post-close end."""

    pre_open_s: int
    open_s: int
    close_s: int
    post_end_s: int

    @property
    def full_day(self) -> bool:
        return self.close_s - self.open_s >= 6 * 3600


class EquitiesTape:
    """Summaries of an equities window for the §11 facts; feed ``add`` the stored rows slice by slice."""

    def __init__(
        self,
        symbols: Sequence[str],
        venues: Sequence[str],
        mega_caps: Sequence[str],
        sessions: Sequence[Session],
        start_us: int,
        end_us: int,
        timestamp: str = "timestamp_ns",
        market=None,
    ):
        """``market``: an optional ``cross_facts_equities.EquitiesMarketTape`` fed the same slices (the
        one-market facts)."""
        self.market = market
        self.symbols, self.venues = tuple(symbols), tuple(venues)
        self.mega = [self.symbols.index(s) for s in mega_caps]
        self.sessions = list(sessions)
        self.window = _window(start_us, end_us)
        self.timestamp = timestamp
        n, secs = len(self.symbols), self.window.seconds
        self.nbbo_bid = np.full((n, secs), np.nan)  # NBBO at the end of each second
        self.nbbo_ask = np.full((n, secs), np.nan)
        self.quotes = _Arrivals(self.window.start_s, secs)
        self.trades = _Arrivals(self.window.start_s, secs)
        self.volume = {c: np.zeros(secs) for c in ("T", "O", "C", "H")}
        self.regular = self.at_or_inside = self.inside = 0
        self._carry: dict[str, np.ndarray] | None = None

    def add(self, market_data: pa.Table, trades: pa.Table, start_us: int, end_us: int) -> None:
        """One slice ``[start_us, end_us)`` of time (slices in order): venue quotes and trades."""
        ts = timestamps_ns(market_data.column(self.timestamp))
        sym = symbol_codes(market_data.column("symbol"), self.symbols)
        ven = symbol_codes(market_data.column("venue"), self.venues)
        keep = (sym >= 0) & (ven >= 0)
        q = {
            "ts": ts[keep],
            "code": (sym * len(self.venues) + ven)[keep],
            "bid": _float(market_data, "bid_px1")[keep],
            "ask": _float(market_data, "ask_px1")[keep],
        }
        self.quotes.add(q["ts"])
        if self._carry is not None:
            q = {k: np.concatenate([self._carry[k], v]) for k, v in q.items()}
        index = _InForce(q["code"], q["ts"], len(self.symbols) * len(self.venues))
        q = {k: v[index.order] for k, v in q.items()}
        self._nbbo_seconds(q, index, start_us, end_us)
        self._add_trades(trades, q, index)
        last = index.last_of_each()
        self._carry = {k: v[last] for k, v in q.items()}

    def _nbbo_at(self, q, index: _InForce, sym: np.ndarray, ts_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """NBBO (best bid, best ask over venues) in force at each (symbol, time)."""
        bid = np.full(len(ts_ns), -np.inf)
        ask = np.full(len(ts_ns), np.inf)
        for v in range(len(self.venues)):
            pos = index.find(sym * len(self.venues) + v, ts_ns)
            ok = pos >= 0
            p = pos[ok]
            bid[ok] = np.fmax(bid[ok], q["bid"][p])
            ask[ok] = np.fmin(ask[ok], q["ask"][p])
        bid[~np.isfinite(bid)] = np.nan
        ask[~np.isfinite(ask)] = np.nan
        return bid, ask

    def _nbbo_seconds(self, q, index: _InForce, start_us: int, end_us: int) -> None:
        first = max(start_us // 1_000_000, self.window.start_s)
        end = min(-(-end_us // 1_000_000), self.window.end_s)
        if end <= first:
            return
        secs = np.arange(first, end)
        n = len(self.symbols)
        sym = np.repeat(np.arange(n), len(secs))
        at = np.tile((secs + 1) * NS_PER_S - 1, n)
        bid, ask = self._nbbo_at(q, index, sym, at)
        cols = np.tile(secs - self.window.start_s, n)
        self.nbbo_bid[sym, cols] = bid
        self.nbbo_ask[sym, cols] = ask
        if self.market is not None:
            bids, asks = np.full((len(self.venues), len(at)), np.nan), np.full((len(self.venues), len(at)), np.nan)
            for v in range(len(self.venues)):
                pos = index.find(sym * len(self.venues) + v, at)
                ok = pos >= 0
                bids[v, ok], asks[v, ok] = q["bid"][pos[ok]], q["ask"][pos[ok]]
            self.market.add_venue_quotes(sym, cols, bids, asks, self.session_mask())

    def _add_trades(self, table: pa.Table, q, index: _InForce) -> None:
        if not table.num_rows:
            return
        ts = timestamps_ns(table.column(self.timestamp))
        sym = symbol_codes(table.column("symbol"), self.symbols)
        cond = table.column("cond").cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
        size = _float(table, "size")
        price = _float(table, "price")
        keep = sym >= 0
        ts, sym, cond, size, price = ts[keep], sym[keep], cond[keep], size[keep], price[keep]
        sec = ts // NS_PER_S - self.window.start_s
        inside = (sec >= 0) & (sec < self.window.seconds)
        for c, vol in self.volume.items():
            m = inside & (cond == c)
            vol += np.bincount(sec[m], size[m], minlength=self.window.seconds)
        regular = cond == "T"
        self.trades.add(ts[regular])
        bid, ask = self._nbbo_at(q, index, sym[regular], ts[regular])
        if self.market is not None and "side" in table.column_names:
            side = table.column("side").cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)[keep]
            venue = symbol_codes(table.column("venue"), self.venues)[keep]
            self.market.add_trades(
                sym[regular], ts[regular], venue[regular], side[regular] == "B", size[regular], bid, ask
            )
        ok = np.isfinite(bid) & np.isfinite(ask)
        p, b, a = price[regular][ok], bid[ok], ask[ok]
        tol = TICK * 1e-3
        self.regular += int(ok.sum())
        self.at_or_inside += int(((p >= b - tol) & (p <= a + tol)).sum())
        self.inside += int(((p > b + tol) & (p < a - tol)).sum())

    # -- the facts ------------------------------------------------------------------------
    def _session_spans(self) -> list[tuple[int, int]]:
        w = self.window
        return [
            (max(s.open_s, w.start_s), min(s.close_s, w.end_s))
            for s in self.sessions
            if s.open_s < w.end_s and s.close_s > w.start_s
        ]

    def session_mask(self) -> np.ndarray:
        mask = np.zeros(self.window.seconds, dtype=bool)
        for a, b in self._session_spans():
            mask[a - self.window.start_s : b - self.window.start_s] = True
        return mask

    def _full_sessions(self) -> list[Session]:
        """Full-length sessions the window covers from the open through the closing cross (a minute after the close)."""
        w = self.window
        return [s for s in self.sessions if s.full_day and s.open_s >= w.start_s and s.close_s + MINUTE_S <= w.end_s]

    def mids(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (self.nbbo_bid + self.nbbo_ask) / 2

    def minute_returns(self) -> np.ndarray:
        return minute_log_returns(self.mids(), self.window.start_s, self._session_spans())

    def volume_profile(self, bucket_s: int = HALF_HOUR_S) -> tuple[np.ndarray, np.ndarray]:
        """Continuous-trading volume per bucket of the session (minutes from the open), averaged over full sessions."""
        sessions = [s for s in self._full_sessions()]
        if not sessions:
            return np.empty(0), np.empty(0)
        length = min(s.close_s - s.open_s for s in sessions)
        n = length // bucket_s
        total = np.zeros(n)
        cont = self.volume["T"] + self.volume["H"]
        for s in sessions:
            a = s.open_s - self.window.start_s
            total += cont[a : a + n * bucket_s].reshape(n, bucket_s).sum(axis=1)
        return np.arange(n) * bucket_s / 60, total / len(sessions)

    def facts(self, daily_closes: Mapping[str, np.ndarray]) -> list[Fact]:
        """The equities rows of §11 (``daily_closes``: trading-day closes per symbol, e.g. 120 days)."""
        mega = self.mega
        names = [self.symbols[i] for i in mega]
        returns = self.minute_returns()
        facts = []
        kurt = [excess_kurtosis(returns[i]) for i in mega]
        band = Band(3, 30, "3 … 30")
        facts.append(
            _fact(
                "fat_tails.kurtosis",
                "fat tails",
                "excess kurtosis of 1-min log returns in the session, each mega-cap",
                min(kurt, default=_NAN),
                band,
                _span(kurt),
                dict(zip(names, kurt)),
                passed=all(band.holds(k) for k in kurt),
            )
        )
        facts += _clustering_facts(mean_abs_return_acf(returns[mega]), "mega-caps")
        session = self.session_mask()
        mids = self.mids()
        changes = np.diff(mids, axis=1)
        changes[:, ~(session[1:] & session[:-1])] = np.nan
        bounce = [autocorrelation(changes[i], 1) for i in mega]
        mean_bounce = float(np.nanmean(bounce)) if np.isfinite(bounce).any() else _NAN
        facts.append(
            _fact(
                "bounce",
                "bid-ask bounce",
                "lag-1 autocorrelation of 1-second NBBO mid changes (mean over mega-caps)",
                mean_bounce,
                Band(None, 0.0, "≤ 0"),
                f"{_num(mean_bounce)} ({_span(bounce)})",
                dict(zip(names, bounce)),
            )
        )
        facts += _vol_ratio_facts(
            returns,
            self.symbols,
            mega,
            daily_closes,
            EQUITIES_MINUTES_PER_YEAR,
            EQUITIES_DAYS_PER_YEAR,
            {"AAPL": (0.20, 0.35)},
        )
        facts += _activity_facts(self.quotes, self.trades, session, "trades")
        facts += self._seasonality_facts(returns)
        share = self.at_or_inside / self.regular if self.regular else _NAN
        facts.append(
            _fact(
                "nbbo.at_or_inside",
                "equities trades vs NBBO",
                "regular trades at or inside the NBBO in force",
                share,
                Band(0.99, 1.0, "≥ 99 %"),
                _pct(share),
            )
        )
        inside = self.inside / self.regular if self.regular else _NAN
        facts.append(
            _fact(
                "nbbo.inside",
                "equities trades vs NBBO",
                "regular trades strictly inside the spread",
                inside,
                Band(0.05, 0.30, "5 … 30 %"),
                _pct(inside),
            )
        )
        spread = self.nbbo_ask - self.nbbo_bid
        one_tick = []
        for i in mega:
            s = spread[i, session]
            s = s[np.isfinite(s)]
            one_tick.append(float(np.mean(np.abs(s - TICK) < TICK / 2)) if len(s) else _NAN)
        facts.append(
            _fact(
                "spreads.one_tick",
                "equities spreads",
                "share of session seconds at a one-tick NBBO spread, each mega-cap",
                min(one_tick, default=_NAN),
                Band(0.60, 1.0, "≥ 60 %"),
                _span(one_tick, _pct),
                dict(zip(names, one_tick)),
                passed=all(Band(0.6, 1, "").holds(v) for v in one_tick),
            )
        )
        if self.market is not None:
            spans = [(a - self.window.start_s, b - self.window.start_s) for a, b in self._session_spans()]
            facts += self.market.facts(mids, spread, session, spans)
        return facts

    def _seasonality_facts(self, returns: np.ndarray) -> list[Fact]:
        sessions = self._full_sessions()
        first = last = open_share = close_share = vol_ratio = _NAN
        if sessions:
            cont = self.volume["T"] + self.volume["H"]
            f, l, o, c, ratios = [], [], [], [], []
            mids = self.mids()
            for s in sessions:
                a, b = s.open_s - self.window.start_s, s.close_s - self.window.start_s
                midday = cont[a + 4 * HALF_HOUR_S : b - 4 * HALF_HOUR_S].sum() / (
                    (b - a - 8 * HALF_HOUR_S) / HALF_HOUR_S
                )
                f.append(cont[a : a + HALF_HOUR_S].sum() / midday)
                l.append(cont[b - HALF_HOUR_S : b].sum() / midday)
                # the day's volume: every trade of the session day the window holds
                day = slice(max(s.pre_open_s - self.window.start_s, 0), max(s.post_end_s - self.window.start_s, 0))
                total = sum(v[day].sum() for v in self.volume.values())
                o.append(self.volume["O"][day].sum() / total)
                c.append(self.volume["C"][day].sum() / total)
                r = minute_log_returns(mids[self.mega], self.window.start_s, [(s.open_s, s.close_s)])
                minutes = r.shape[1]
                opening = r[:, :30]
                mid_r = r[:, 120 : minutes - 120]
                with np.errstate(invalid="ignore"):
                    rms_open = np.sqrt(np.nanmean(opening**2, axis=1))
                    rms_mid = np.sqrt(np.nanmean(mid_r**2, axis=1))
                ratios.append(float(np.nanmean(rms_open / rms_mid)))
            first, last, open_share, close_share, vol_ratio = (float(np.mean(x)) for x in (f, l, o, c, ratios))
        name = "intraday seasonality, equities"
        return [
            _fact(
                "seasonality.first30",
                name,
                "volume of the first 30 min ÷ midday 30-min average",
                first,
                Band(1.5, None, "≥ 1.5×"),
                f"{_num(first)}×",
            ),
            _fact(
                "seasonality.last30",
                name,
                "volume of the last 30 min ÷ midday 30-min average",
                last,
                Band(2.0, None, "≥ 2×"),
                f"{_num(last)}×",
            ),
            _fact(
                "seasonality.opening_cross",
                name,
                "opening cross share of daily volume",
                open_share,
                Band(0.01, 0.03, "1 … 3 %"),
                _pct(open_share),
            ),
            _fact(
                "seasonality.closing_cross",
                name,
                "closing cross share of daily volume",
                close_share,
                Band(0.05, 0.10, "5 … 10 %"),
                _pct(close_share),
            ),
            _fact(
                "seasonality.open_vol",
                name,
                "1-min volatility in the first 30 min ÷ midday (mean over mega-caps)",
                vol_ratio,
                Band(1.5, None, "≥ 1.5×"),
                f"{_num(vol_ratio)}×",
            ),
        ]

"""How FX instruments move together and how order flow moves prices: the one-market FX facts.

Pure numpy measures on what a tape of stored rows holds (last mid of every pair in every second;
per order its arrival, pair, aggressor sign and filled size), and ``FxMarketTape``, the FX tape of
``core.facts`` that also keeps the orders and adds these rows to its table:

* triangular consistency: every cross's 1-second mid against the one its two USD legs imply
  (gap in the cross's pips: median and 99th percentile of |gap|, hourly median drift, correlation of
  5-minute returns of cross and implied rate);
* co-movement: correlation of 5-minute mid returns of the majors;
* order-flow memory: autocorrelation of the aggressor sign per order (within each pair's sequence);
* price impact: signed mid move 10 s after an order and 5 s before it, by order size group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from mkt_pipeline.core.facts import (
    NS_PER_S,
    Band,
    Fact,
    FxTape,
    _fact,
    _forward_fill,
    _num,
    _span,
    symbol_codes,
    timestamps_ns,
)

COMOVEMENT_S = 300
COMOVEMENT_BANDS = {  # pair of majors: band of the correlation of their 5-minute mid returns
    ("EURUSD", "GBPUSD"): (0.5, 0.85),
    ("EURUSD", "USDCHF"): (-0.95, -0.6),
    ("AUDUSD", "NZDUSD"): (0.6, 0.92),
    ("EURUSD", "USDJPY"): (-0.6, -0.1),
}
# The band needs at least 12 hours of 5-minute returns: over whole days of the underlying currency paths
# (4 days x 3 seeds) EURUSD/USDJPY's correlation spreads sd 0.30 between 1-hour windows (-0.93 … +0.54),
# 0.20 between 3-hour ones, 0.11 between 12-hour ones and 0.07 between whole days (mean -0.37)
COMOVEMENT_MIN_RETURNS = 144
HEATMAP_PAIRS = ("EURUSD", "GBPUSD", "AUDUSD", "NZDUSD", "USDCAD", "USDCHF", "USDJPY")
SIGN_LAGS = np.unique(np.round(np.logspace(0, 2, 40)).astype(int))  # 1 … 100, log-spaced
IMPACT_AFTER_S = 10
IMPACT_BEFORE_S = 5
SIZE_GROUPS = 4  # orders grouped by quantiles of their filled size
_NAN = float("nan")


# --- measures on arrays -------------------------------------------------------------------------
Implied = Mapping[str, Sequence[tuple[str, int]]]


def implied_mids(mids: np.ndarray, symbols: Sequence[str], implied: Implied) -> dict[str, np.ndarray]:
    """Per cross: the mid its legs imply at every second, ``Π leg ** power`` (NaN where a leg has none)."""
    index = {s: i for i, s in enumerate(symbols)}
    out = {}
    for cross, legs in implied.items():
        out[cross] = np.prod([mids[index[leg]] ** float(power) for leg, power in legs], axis=0)
    return out


def log_returns(series: np.ndarray, step: int) -> np.ndarray:
    """Log returns over consecutive ``step``-second intervals of a forward-filled per-second series (last axis)."""
    n = series.shape[-1] // step
    if n < 2:
        return np.full(series.shape[:-1] + (0,), np.nan)
    points = series[..., step - 1 : n * step : step]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.diff(np.log(points), axis=-1)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return _NAN
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def correlation_matrix(returns: np.ndarray) -> np.ndarray:
    """Pairwise correlation of rows (NaN-aware: each pair over the intervals both have)."""
    n = len(returns)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = _corr(returns[i], returns[j])
    return out


def triangular_gaps(mids: np.ndarray, symbols: Sequence[str], pips: Sequence[float], implied: Implied) -> dict:
    """Per cross: |gap| median and p99 in pips, hourly median gaps, and the 5-min return correlation."""
    filled = _forward_fill(mids)
    index = {s: i for i, s in enumerate(symbols)}
    out = {}
    for cross, imp in implied_mids(filled, symbols, implied).items():
        i = index[cross]
        gap = (filled[i] - imp) / pips[i]
        ok = np.isfinite(gap)
        hours = len(gap) // 3600
        hourly = np.full(hours, np.nan)
        for h in range(hours):
            part = gap[h * 3600 : (h + 1) * 3600]
            if np.isfinite(part).any():
                hourly[h] = np.nanmedian(part)
        out[cross] = {
            "median": float(np.median(np.abs(gap[ok]))) if ok.any() else _NAN,
            "p99": float(np.percentile(np.abs(gap[ok]), 99)) if ok.any() else _NAN,
            "hourly": hourly,
            "gap": gap,
            "drift": float(np.nanmax(np.abs(hourly))) if np.isfinite(hourly).any() else _NAN,
            "corr": _corr(log_returns(filled[i], COMOVEMENT_S), log_returns(imp, COMOVEMENT_S)),
        }
    return out


def sign_acf(codes: np.ndarray, signs: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """Autocorrelation of ±1 signs at each lag, within each code's time-ordered sequence, pooled
    over codes (each code's own mean removed)."""
    out = np.full(len(lags), np.nan)
    num = np.zeros(len(lags))
    den = np.zeros(len(lags))
    var_num = var_den = 0.0
    for c in np.unique(codes):
        x = signs[codes == c].astype(np.float64)
        if len(x) < 3:
            continue
        x = x - x.mean()
        var_num += float(x @ x)
        var_den += len(x)
        for k, lag in enumerate(lags):
            if lag < len(x):
                num[k] += float(x[:-lag] @ x[lag:])
                den[k] += len(x) - lag
    if var_den and var_num > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (num / den) / (var_num / var_den)
    return out


def impact_by_size(
    filled_mids: np.ndarray,
    first_s: int,
    ts_ns: np.ndarray,
    codes: np.ndarray,
    signs: np.ndarray,
    sizes: np.ndarray,
    groups: int = SIZE_GROUPS,
    after_s: int = IMPACT_AFTER_S,
    before_s: int = IMPACT_BEFORE_S,
) -> dict[str, np.ndarray]:
    """Signed mid moves in basis points after (``after_s``) and before (``before_s``) each order, from
    per-second last mids: the mid an order finds is the last one of the second before its own.

    Returns per size group (and ``all``): mean after, its standard error, mean before, order count."""
    sec = ts_ns // NS_PER_S - first_s
    n_sec = filled_mids.shape[1]
    ok = (sec - before_s - 1 >= 0) & (sec + after_s < n_sec)
    sec, codes, signs, sizes = sec[ok], codes[ok], signs[ok].astype(np.float64), sizes[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        at = np.log(filled_mids[codes, sec - 1])
        after = signs * (np.log(filled_mids[codes, sec + after_s]) - at) * 1e4
        before = signs * (at - np.log(filled_mids[codes, sec - 1 - before_s])) * 1e4
    good = np.isfinite(after) & np.isfinite(before)
    after, before, sizes = after[good], before[good], sizes[good]
    # quantile groups of the filled size within each pair, so every group holds the same mix of pairs
    # (a pair's liquidity sets both its fills and its moves in bp)
    codes = codes[good]
    group = np.zeros(len(sizes), dtype=np.int64)
    for c in np.unique(codes):
        at = np.flatnonzero(codes == c)
        rank = np.argsort(np.argsort(sizes[at], kind="stable"), kind="stable")
        group[at] = (rank * groups) // len(at)
    edges = np.zeros(groups + 1)
    res = {"after": [], "se": [], "before": [], "count": [], "size": []}
    for g in list(range(len(edges) - 1)) + [-1]:
        m = np.ones(len(after), dtype=bool) if g < 0 else group == g
        n = int(m.sum())
        res["after"].append(float(after[m].mean()) if n else _NAN)
        res["se"].append(float(after[m].std() / np.sqrt(n)) if n > 1 else _NAN)
        res["before"].append(float(before[m].mean()) if n else _NAN)
        res["count"].append(n)
        res["size"].append(float(np.median(sizes[m])) if n else _NAN)
    return {k: np.array(v) for k, v in res.items()}  # the last entry of each is every order


# --- the tape ---------------------------------------------------------------------------------------
class FxMarketTape(FxTape):
    """``FxTape`` that also keeps every order (arrival, pair, aggressor sign, filled size) and adds the
    one-market rows (triangular consistency, co-movement, sign memory, impact) to ``facts``."""

    def __init__(self, *args, implied: Implied | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.implied = dict(implied or {})
        self._orders: list[tuple[np.ndarray, ...]] = []

    def _add_trades(self, table: pa.Table, books: dict[str, np.ndarray], index) -> None:
        super()._add_trades(table, books, index)
        if not table.num_rows:
            return
        ts = timestamps_ns(table.column(self.timestamp))
        code = symbol_codes(table.column("symbol"), self.symbols)
        price = table.column("price").to_numpy().astype(np.float64)
        qty = table.column("quantity").to_numpy().astype(np.float64)
        oid = table.column("order_id")
        oid = (oid.combine_chunks() if isinstance(oid, pa.ChunkedArray) else oid).dictionary_encode()
        okey = oid.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.lexsort((ts, okey))
        okey_s = okey[order]
        first = order[np.r_[0, np.flatnonzero(okey_s[1:] != okey_s[:-1]) + 1]]
        filled = np.bincount(okey, qty)[okey[first]]
        keep = code[first] >= 0
        first, filled = first[keep], filled[keep]
        pos = index.find(code[first], ts[first])
        found = pos >= 0
        p = index.order[pos[found]]
        mid = (books["bid"][p] + books["ask"][p]) / 2
        sign = np.where(price[first][found] > mid, 1, -1).astype(np.int8)
        self._orders.append((ts[first][found], code[first][found].astype(np.int16), sign, filled[found]))

    def order_table(self) -> dict[str, np.ndarray]:
        """Every order seen, in arrival order: ts (ns), code, sign (aggressor, ±1), size (filled)."""
        if not self._orders:
            empty = (np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int8), np.zeros(0))
            return dict(zip(("ts", "code", "sign", "size"), empty))
        ts, code, sign, size = (np.concatenate(x) for x in zip(*self._orders))
        o = np.argsort(ts, kind="stable")
        return {"ts": ts[o], "code": code[o], "sign": sign[o], "size": size[o]}

    # -- measures --------------------------------------------------------------------------------
    def triangular(self) -> dict:
        return triangular_gaps(self.mids, self.symbols, self.pips, self.implied)

    def comovement(self, names: Sequence[str] = HEATMAP_PAIRS) -> np.ndarray:
        idx = [self.symbols.index(s) for s in names]
        return correlation_matrix(log_returns(_forward_fill(self.mids[idx]), COMOVEMENT_S))

    def sign_acf(self, lags: Sequence[int] = SIGN_LAGS) -> np.ndarray:
        o = self.order_table()
        return sign_acf(o["code"], o["sign"], lags)

    def impact(self) -> dict[str, np.ndarray]:
        o = self.order_table()
        mids = _forward_fill(self.mids)
        return impact_by_size(mids, self.window.start_s, o["ts"], o["code"].astype(np.int64), o["sign"], o["size"])

    def market_facts(self) -> list[Fact]:
        """The one-market FX rows: triangular consistency, co-movement, order-flow memory, impact."""
        facts = []
        tri = self.triangular()
        if tri:
            names = list(tri)

            def each(key: str) -> np.ndarray:
                return np.array([tri[c][key] for c in names])

            med, p99, corr, drift = each("median"), each("p99"), each("corr"), each("drift")
            worst = names[int(np.nanargmax(p99))] if np.isfinite(p99).any() else ""
            group = "FX triangular consistency"
            rows = (
                (
                    "median",
                    "|cross mid − implied by its USD legs|, median (pips), each cross",
                    med,
                    Band(None, 1.0, "≤ 1 pip"),
                    _span(med),
                ),
                (
                    "p99",
                    "|cross mid − implied|, 99th percentile (pips), each cross",
                    p99,
                    Band(None, 5.0, "≤ 5 pips"),
                    f"{_span(p99)} (worst {worst})",
                ),
                (
                    "returns",
                    "5-min returns, cross vs implied: correlation, each cross",
                    corr,
                    Band(0.95, None, "≥ 0.95"),
                    _span(corr),
                ),
                (
                    "drift",
                    "hourly median gap, largest |value| (pips), each cross",
                    drift,
                    Band(None, 1.0, "≤ 1 pip (no drift)"),
                    _span(drift),
                ),
            )
            for key, measure, values, band, shown in rows:
                finite = np.isfinite(values)
                worst_value = (
                    (float(np.nanmin(values)) if band.low is not None else float(np.nanmax(values)))
                    if finite.any()
                    else _NAN
                )
                ok = bool(finite.all() and all(band.holds(float(v)) for v in values))
                facts.append(
                    _fact(
                        f"fx_triangular.{key}",
                        group,
                        measure,
                        worst_value,
                        band,
                        shown,
                        dict(zip(names, values)),
                        passed=ok,
                    )
                )
        returns = log_returns(_forward_fill(self.mids), COMOVEMENT_S)
        for (a, b), (lo, hi) in COMOVEMENT_BANDS.items():
            if a in self.symbols and b in self.symbols:
                ra, rb = returns[self.symbols.index(a)], returns[self.symbols.index(b)]
                n = int((np.isfinite(ra) & np.isfinite(rb)).sum())
                c = _corr(ra, rb)
                band = Band(lo, hi, f"{_num(lo)} … {_num(hi)}")
                shown = _num(c)
                if n < COMOVEMENT_MIN_RETURNS:  # a few hours' correlation is mostly sampling noise
                    shown = f"{shown} (unmeasured: {n} returns, the band needs ≥ {COMOVEMENT_MIN_RETURNS}, 12 h)"
                facts.append(
                    _fact(
                        f"fx_comovement.{a}_{b}",
                        "FX co-movement",
                        f"correlation of 5-min mid returns, {a}/{b}",
                        c,
                        band,
                        shown,
                        {"returns": n},
                        passed=band.holds(c) and n >= COMOVEMENT_MIN_RETURNS,
                    )
                )
        acf = self.sign_acf(np.arange(1, 51))
        lag1 = float(acf[0]) if len(acf) else _NAN
        tail = float(np.nanmean(acf[10:50])) if np.isfinite(acf[10:50]).any() else _NAN
        facts.append(
            _fact(
                "fx_sign_memory.lag1",
                "order-flow memory",
                "aggressor sign per order (each pair's sequence), lag-1 autocorrelation",
                lag1,
                Band(0.15, 0.7, "0.15 … 0.7"),
                _num(lag1),
            )
        )
        facts.append(
            _fact(
                "fx_sign_memory.tail",
                "order-flow memory",
                "aggressor sign per order, mean autocorrelation over lags 11–50",
                tail,
                Band(0.02, None, "≥ 0.02"),
                _num(tail, 3),
            )
        )
        imp = self.impact()
        after, se, before = imp["after"], imp["se"], imp["before"]
        t = after[-1] / se[-1] if se[-1] and np.isfinite(se[-1]) else _NAN
        facts.append(
            _fact(
                "fx_impact.after",
                "price impact",
                f"signed mid move {IMPACT_AFTER_S} s after an order (bp), all orders",
                float(after[-1]),
                Band(0.0, None, "> 0, t ≥ 3"),
                f"{_num(after[-1], 3)} bp (t = {_num(t, 1)})",
                {"t": t},
                passed=bool(np.isfinite(t) and t >= 3.0 and after[-1] > 0),
            )
        )
        ratio = before[-1] / after[-1] if after[-1] else _NAN
        facts.append(
            _fact(
                "fx_impact.before",
                "price impact",
                f"move in the {IMPACT_BEFORE_S} s before an order ÷ move after",
                ratio,
                Band(None, 0.3, "< 30 %"),
                f"{_num(100 * ratio, 0)} %",
            )
        )
        groups = after[:-1]
        size_ratio = groups[-1] / groups[0] if groups[0] and np.isfinite(groups[0]) and groups[0] > 0 else _NAN
        shown = f"{_num(size_ratio)} ({' / '.join(_num(g, 3) for g in groups)} bp)"
        facts.append(
            _fact(
                "fx_impact.size",
                "price impact",
                "largest size quartile's move ÷ smallest's (filled size, quartiles within each pair)",
                size_ratio,
                Band(1.3, None, "≥ 1.3"),
                shown,
                {"groups_bp": groups.tolist(), "median_sizes": imp["size"][:-1].tolist()},
            )
        )
        return facts

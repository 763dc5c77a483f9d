"""One equities market: how the symbols move together, and how order flow moves prices (pure numpy).

``EquitiesMarketTape`` collects, slice by slice, what these facts need beyond the single-series tape
of ``core.facts`` (which feeds it): each regular trade's symbol and aggressor side, the first trade
of every (symbol, second) with the NBBO in force at its instant, regular volume per symbol, second
and venue, and how often each venue's quote is at the NBBO at the end of each second. ``facts``
then measures, over the session's continuous trading:

* co-movement: average pairwise correlation of 5-minute NBBO mid log returns, the first principal
  component's share of the variance, same-sector minus cross-sector correlation, and the market betas
  (regression on the equal-weighted market return) of high- against low-beta names;
* the Epps effect: average pairwise correlation at 1 s against 5 min (and the curve in between);
* order-flow memory: autocorrelation of the aggressor sign per trade (lag 1, mean over lags 21-100)
  and per first trade of each second (lag 1);
* price impact: the NBBO mid move in the aggressor's direction from the trade to the end of the
  tenth second after it, in quoted spreads; the move over the five seconds before it; by size group;
* volume and volatility: per symbol, correlation of 5-minute volume and of the mean spread with
  5-minute realised volatility (from 1-second mid returns);
* venues: each venue's share of the regular-trade volume of NYSE- and Nasdaq-listed names, and of
  session seconds at the NBBO.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NS_PER_S = 1_000_000_000
FIVE_MIN_S = 300
EPPS_HORIZONS = (1, 2, 5, 10, 30, 60, 120, 300)
SIGN_LAGS = 100
IMPACT_AFTER_S = 10
IMPACT_BEFORE_S = 5
SIZE_GROUPS = ((1, 99, "odd lots 1-99"), (100, 999, "round lots 100-999"), (1000, 10**9, "blocks 1,000+"))
HIGH_BETA = ("NVDA", "TSLA")
LOW_BETA = ("JNJ", "WMT")

# the rows ``EquitiesMarketTape.facts`` measures, by group; MARKET_FACT_KEYS in the table's order
CO_MOVEMENT_KEYS = ("market.corr5", "market.pc1", "market.sector_gap", "market.betas", "market.epps")
FLOW_KEYS = (
    "flow.sign_acf1",
    "flow.sign_acf_tail",
    "flow.sign_acf_first",
    "impact.after",
    "impact.before",
    "impact.size",
)
VOLUME_KEYS = ("market.volume_vol", "market.spread_vol")
VENUE_KEYS = ("venues.listing", "venues.iex")
MARKET_FACT_KEYS = CO_MOVEMENT_KEYS + FLOW_KEYS + VOLUME_KEYS + VENUE_KEYS


def correlation_matrix(returns: np.ndarray) -> np.ndarray:
    """(n, n) Pearson correlations of the rows of ``returns`` over the columns where every row is finite."""
    ok = np.all(np.isfinite(returns), axis=0)
    x = returns[:, ok]
    if x.shape[1] < 3:
        return np.full((len(returns), len(returns)), np.nan)
    x = x - x.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.sum(x * x, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x @ x.T) / np.outer(sd, sd)


def mean_pairwise(corr: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean of the off-diagonal correlations (of the pairs ``mask`` selects)."""
    n = len(corr)
    pairs = ~np.eye(n, dtype=bool) if mask is None else mask & ~np.eye(n, dtype=bool)
    vals = corr[pairs]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else math.nan


def first_component_share(corr: np.ndarray) -> float:
    """Share of the total variance of standardised returns on the first principal component."""
    if not np.all(np.isfinite(corr)):
        return math.nan
    return float(np.linalg.eigvalsh(corr)[-1] / len(corr))


def horizon_returns(log_mids: np.ndarray, spans: Sequence[tuple[int, int]], horizon: int) -> np.ndarray:
    """(n, k) log returns over consecutive ``horizon``-second steps inside each span (column offsets of
    ``log_mids``, end-of-second values: the step from the end of second a-1 to the end of a+h-1)."""
    out = []
    for a, b in spans:
        idx = np.arange(a - 1, b, horizon)
        idx = idx[(idx >= 0) & (idx < log_mids.shape[1])]
        if len(idx) >= 2:
            out.append(np.diff(log_mids[:, idx], axis=1))
    return np.concatenate(out, axis=1) if out else np.empty((len(log_mids), 0))


def pooled_acf(sequences: Sequence[np.ndarray], lags: int) -> np.ndarray:
    """Autocorrelation at lags 1..``lags`` pooled over sequences (each centred on its own mean)."""
    num, den = np.zeros(lags), 0.0
    for x in sequences:
        x = np.asarray(x, dtype=np.float64)
        if len(x) <= lags + 1:
            continue
        x = x - x.mean()
        den += float(np.dot(x, x))
        for k in range(1, lags + 1):
            num[k - 1] += float(np.dot(x[:-k], x[k:]))
    return num / den if den > 0 else np.full(lags, np.nan)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 5 or a[ok].std() == 0 or b[ok].std() == 0:
        return math.nan
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


class EquitiesMarketTape:
    """What the one-market facts need, fed by ``core.facts.EquitiesTape`` slice by slice."""

    def __init__(
        self,
        symbols: Sequence[str],
        venues: Sequence[str],
        sectors: Sequence[str],
        listing: Sequence[str],
        start_s: int,
        seconds: int,
    ):
        self.symbols, self.venues = tuple(symbols), tuple(venues)
        self.sectors, self.listing = tuple(sectors), tuple(listing)
        self.start_s, self.seconds = start_s, seconds
        n, v = len(self.symbols), len(self.venues)
        self.volume = np.zeros((n, seconds), dtype=np.float32)
        self.venue_volume = np.zeros((n, v))
        self.venue_at_best = np.zeros((n, v))  # session seconds each venue's quote was at the NBBO (either side)
        self.venue_seconds = np.zeros(n)
        self._signs: list[tuple[np.ndarray, np.ndarray]] = []  # (symbol, sign) per slice, time order
        self._first: list[dict[str, np.ndarray]] = []  # first trade of each (symbol, second)

    # -- feeding -----------------------------------------------------------------------------
    def add_trades(
        self,
        sym: np.ndarray,
        ts_ns: np.ndarray,
        venue: np.ndarray,
        buy: np.ndarray,
        size: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
    ) -> None:
        """Regular trades of one slice with the NBBO in force at each (NaN where none)."""
        # every field a key: trades at the same nanosecond come in the reader's order (a Parquet part's, or
        # QuestDB's ORDER BY timestamp), so ties are broken by value, not by position
        order = np.lexsort((buy, size, venue, ts_ns, sym))
        sym, ts_ns, venue, buy, size, bid, ask = (a[order] for a in (sym, ts_ns, venue, buy, size, bid, ask))
        sec = ts_ns // NS_PER_S - self.start_s
        inside = (sec >= 0) & (sec < self.seconds)
        np.add.at(self.volume, (sym[inside], sec[inside]), size[inside])
        ok_venue = inside & (venue >= 0)
        np.add.at(self.venue_volume, (sym[ok_venue], venue[ok_venue]), size[ok_venue])
        self._signs.append((sym.astype(np.int16), np.where(buy, 1, -1).astype(np.int8)))
        first = np.r_[True, (sym[1:] != sym[:-1]) | (sec[1:] != sec[:-1])] & inside
        self._first.append(
            {
                "sym": sym[first].astype(np.int16),
                "sec": sec[first].astype(np.int32),
                "sign": np.where(buy[first], 1, -1).astype(np.int8),
                "size": size[first].astype(np.int32),
                "mid": ((bid + ask) / 2)[first],
                "spread": (ask - bid)[first],
            }
        )

    def add_venue_quotes(
        self, sym: np.ndarray, cols: np.ndarray, bids: np.ndarray, asks: np.ndarray, session: np.ndarray
    ) -> None:
        """Each venue's quote in force at the end of seconds ``cols`` (``bids``/``asks``: (venues, k), NaN
        where none); counts, over session seconds, how often each venue is at the NBBO on either side."""
        keep = session[cols]
        if not keep.any():
            return
        b, a, s = bids[:, keep], asks[:, keep], sym[keep]
        with np.errstate(invalid="ignore"):
            best_b, best_a = (
                np.nanmax(np.where(np.isfinite(b), b, -np.inf), axis=0),
                np.nanmin(np.where(np.isfinite(a), a, np.inf), axis=0),
            )
            at = (np.abs(b - best_b) < 1e-9) | (np.abs(a - best_a) < 1e-9)
        for v in range(len(self.venues)):
            np.add.at(self.venue_at_best[:, v], s, at[v])
        np.add.at(self.venue_seconds, s, 1.0)

    # -- measures ----------------------------------------------------------------------------------
    def sign_sequences(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per symbol: aggressor signs of every regular trade, and of the first trade of each second."""
        sym = np.concatenate([s for s, _ in self._signs]) if self._signs else np.zeros(0, np.int16)
        sign = np.concatenate([x for _, x in self._signs]) if self._signs else np.zeros(0, np.int8)
        first = self._first_trades()
        return (
            [sign[sym == i] for i in range(len(self.symbols))],
            [first["sign"][first["sym"] == i] for i in range(len(self.symbols))],
        )

    def _first_trades(self) -> dict[str, np.ndarray]:
        if not self._first:
            return {k: np.zeros(0) for k in ("sym", "sec", "sign", "size", "mid", "spread")}
        return {k: np.concatenate([f[k] for f in self._first]) for k in self._first[0]}

    def impact(self, mids: np.ndarray, session: np.ndarray) -> dict[str, np.ndarray]:
        """Per first trade of each (symbol, second) in the session: the mid move in its direction to the end
        of the tenth second after it and over the five seconds before it, in quoted spreads, and its size."""
        f = self._first_trades()
        sec, sym = f["sec"].astype(np.int64), f["sym"].astype(np.int64)
        after_i, before_i = sec + IMPACT_AFTER_S, sec - IMPACT_BEFORE_S - 1
        ok = (before_i >= 0) & (after_i < self.seconds) & (f["spread"] > 0) & np.isfinite(f["mid"])
        ok &= session[np.clip(sec, 0, self.seconds - 1)] & session[np.clip(after_i, 0, self.seconds - 1)]
        ok &= session[np.clip(before_i, 0, self.seconds - 1)]
        sec, sym, after_i, before_i = sec[ok], sym[ok], after_i[ok], before_i[ok]
        sign, mid, spread = f["sign"][ok].astype(np.float64), f["mid"][ok], f["spread"][ok]
        after = sign * (mids[sym, after_i] - mid) / spread
        before = sign * (mid - mids[sym, before_i]) / spread
        good = np.isfinite(after) & np.isfinite(before)
        return {"after": after[good], "before": before[good], "size": f["size"][ok][good], "sym": sym[good]}

    def facts(
        self, mids: np.ndarray, spreads: np.ndarray, session: np.ndarray, spans: Sequence[tuple[int, int]]
    ) -> list:
        """The one-market rows: ``mids``/``spreads`` (symbols, seconds) NBBO at the end of each second of the
        window, ``session`` the continuous-trading seconds, ``spans`` their runs as column offsets."""
        from mkt_pipeline.core.facts import Band, _fact, _num, _pct, _span  # the table's row type

        n = len(self.symbols)
        with np.errstate(invalid="ignore", divide="ignore"):
            log_mids = np.log(_forward_fill(mids))
        self.measured = m = {}
        facts = []
        r5 = horizon_returns(log_mids, spans, FIVE_MIN_S)
        corr5 = correlation_matrix(r5)
        m["corr5"] = corr5
        avg5 = mean_pairwise(corr5)
        sector = np.array(self.sectors)
        same = sector[:, None] == sector[None, :]
        gap = mean_pairwise(corr5, same) - mean_pairwise(corr5, ~same)
        pc1 = first_component_share(corr5)
        name = "equities co-movement"
        facts.append(
            _fact(
                "market.corr5",
                name,
                "average pairwise correlation of 5-min NBBO mid returns",
                avg5,
                Band(0.2, 0.55, "0.2 … 0.55"),
            )
        )
        facts.append(
            _fact(
                "market.pc1",
                name,
                "first principal component's share of the variance (5-min returns)",
                pc1,
                Band(0.25, 0.55, "25 … 55 %"),
                _pct(pc1),
            )
        )
        facts.append(
            _fact(
                "market.sector_gap",
                name,
                "same-sector minus cross-sector average correlation (5 min)",
                gap,
                Band(0.1, None, "≥ 0.1"),
                f"+{_num(gap)}" if math.isfinite(gap) and gap >= 0 else _num(gap),
            )
        )
        market = np.nanmean(r5, axis=0)
        betas = {}
        for s in HIGH_BETA + LOW_BETA:
            if s in self.symbols:
                y = r5[self.symbols.index(s)]
                ok = np.isfinite(y) & np.isfinite(market)
                betas[s] = float(
                    np.dot(y[ok] - y[ok].mean(), market[ok] - market[ok].mean())
                    / max(np.var(market[ok]) * ok.sum(), 1e-300)
                )
        high, low = [betas[s] for s in HIGH_BETA if s in betas], [betas[s] for s in LOW_BETA if s in betas]
        margin = min(high) - max(low) if high and low else math.nan
        facts.append(
            _fact(
                "market.betas",
                name,
                "market beta (5 min, on the equal-weighted market): high-beta minus low-beta names",
                margin,
                Band(0.0, None, f"{'/'.join(HIGH_BETA)} above {'/'.join(LOW_BETA)}"),
                ", ".join(f"{s} {_num(b)}" for s, b in betas.items()),
                betas,
                passed=math.isfinite(margin) and margin > 0,
            )
        )
        epps = {}
        for h in EPPS_HORIZONS:
            epps[h] = mean_pairwise(correlation_matrix(horizon_returns(log_mids, spans, h)))
        m["epps"] = epps
        ratio = epps[1] / epps[FIVE_MIN_S] if epps[FIVE_MIN_S] > 0 else math.nan
        facts.append(
            _fact(
                "market.epps",
                "Epps effect",
                "average pairwise correlation at 1 s ÷ at 5 min (5 min ≥ 0.2)",
                ratio,
                Band(None, 0.5, "≤ 0.5"),
                f"{_num(epps[1])} → {_num(epps[FIVE_MIN_S])} ({_num(ratio)})",
                epps,
                passed=math.isfinite(ratio) and ratio <= 0.5 and epps[FIVE_MIN_S] >= 0.2,
            )
        )

        every, first = self.sign_sequences()
        acf = pooled_acf(every, SIGN_LAGS)
        acf_first = pooled_acf(first, 1)
        m["sign_acf"] = acf
        name = "order-flow memory"
        facts.append(
            _fact(
                "flow.sign_acf1",
                name,
                "lag-1 autocorrelation of the aggressor sign, per trade",
                acf[0],
                Band(0.2, 0.7, "0.2 … 0.7"),
            )
        )
        tail = float(np.mean(acf[20:SIGN_LAGS])) if len(acf) >= SIGN_LAGS else math.nan
        facts.append(
            _fact(
                "flow.sign_acf_tail",
                name,
                "mean sign autocorrelation over lags 21-100, per trade",
                tail,
                Band(0.01, None, "≥ 0.01"),
                _num(tail, 3),
            )
        )
        facts.append(
            _fact(
                "flow.sign_acf_first",
                name,
                "lag-1 sign autocorrelation of the first trade of each second",
                acf_first[0],
                Band(0.1, None, "≥ 0.1"),
            )
        )

        imp = self.impact(_forward_fill(mids), session)
        m["impact"] = imp
        after = float(np.mean(imp["after"])) if len(imp["after"]) else math.nan
        before = float(np.mean(imp["before"])) if len(imp["before"]) else math.nan
        stderr = float(np.std(imp["after"]) / math.sqrt(len(imp["after"]))) if len(imp["after"]) > 1 else math.nan
        name = "price impact"
        facts.append(
            _fact(
                "impact.after",
                name,
                "mid move 10 s after a trade in the aggressor's direction, in quoted spreads",
                after,
                Band(0.1, 0.6, "0.1 … 0.6"),
                f"{_num(after)} (± {_num(2 * stderr, 3)})",
                passed=0.1 <= after <= 0.6 and after > 2 * stderr,
            )
        )
        pre = before / after if after > 0 else math.nan
        facts.append(
            _fact(
                "impact.before",
                name,
                "mid move in the 5 s before a trade ÷ the move after",
                pre,
                Band(None, 0.3, "< 30 %"),
                f"{_pct(pre)} ({_num(before)} spreads)",
                passed=math.isfinite(pre) and pre < 0.3,
            )
        )
        by_size = {}
        for lo, hi, label in SIZE_GROUPS:
            sel = (imp["size"] >= lo) & (imp["size"] <= hi)
            by_size[label] = float(np.mean(imp["after"][sel])) if sel.sum() >= 30 else math.nan
        m["impact_by_size"] = by_size
        vals = list(by_size.values())
        size_ratio = vals[-1] / vals[0] if vals[0] > 0 else math.nan
        facts.append(
            _fact(
                "impact.size",
                name,
                "impact of the largest size group ÷ the smallest",
                size_ratio,
                Band(1.3, None, "≥ 1.3×"),
                f"{_num(size_ratio)}× ({', '.join(_num(v) for v in vals)})",
                by_size,
            )
        )

        vv, sv = [], []
        for i in range(n):
            rv, vol, spr = [], [], []
            for a, b in spans:
                for c in range(a, b - FIVE_MIN_S + 1, FIVE_MIN_S):
                    r = (
                        np.diff(log_mids[i, c - 1 : c + FIVE_MIN_S])
                        if c >= 1
                        else np.diff(log_mids[i, c : c + FIVE_MIN_S])
                    )
                    rv.append(math.sqrt(np.nansum(r * r)))
                    vol.append(float(self.volume[i, c : c + FIVE_MIN_S].sum()))
                    spr.append(
                        float(np.nanmean(spreads[i, c : c + FIVE_MIN_S]))
                        if np.isfinite(spreads[i, c : c + FIVE_MIN_S]).any()
                        else math.nan
                    )
            vv.append(_corr(np.array(vol), np.array(rv)))
            sv.append(_corr(np.array(spr), np.array(rv)))
        m["volume_vol"], m["spread_vol"] = vv, sv
        name = "volume and volatility"
        mean_vv, mean_sv = (
            float(np.nanmean(vv)) if np.isfinite(vv).any() else math.nan,
            float(np.nanmean(sv)) if np.isfinite(sv).any() else math.nan,
        )
        facts.append(
            _fact(
                "market.volume_vol",
                name,
                "per-symbol correlation of 5-min volume with 5-min realised volatility (mean; span)",
                mean_vv,
                Band(0.4, None, "≥ 0.4"),
                f"{_num(mean_vv)} ({_span(vv)})",
                dict(zip(self.symbols, vv)),
            )
        )
        facts.append(
            _fact(
                "market.spread_vol",
                name,
                "per-symbol correlation of 5-min mean spread with realised volatility (mean; span)",
                mean_sv,
                Band(0.3, None, "≥ 0.3"),
                f"{_num(mean_sv)} ({_span(sv)})",
                dict(zip(self.symbols, sv)),
            )
        )

        listing = np.array(self.listing)
        shares = {}
        ok_all = True
        for lst in ("NYSE", "NASDAQ"):
            sel = listing == lst
            vol = self.venue_volume[sel].sum(axis=0)
            if vol.sum() <= 0:
                ok_all = False
                continue
            share = vol / vol.sum()
            shares[lst] = dict(zip(self.venues, share.tolist()))
            ok_all &= int(np.argmax(share)) == self.venues.index(lst)
            at = self.venue_at_best[sel].sum(axis=0) / max(self.venue_seconds[sel].sum(), 1.0)
            shares[lst + " at NBBO"] = dict(zip(self.venues, at.tolist()))
            ok_all &= int(np.argmax(at)) == self.venues.index(lst)
        m["venues"] = shares
        text = "; ".join(
            f"{lst}-listed: " + ", ".join(f"{v} {_pct(x)}" for v, x in shares[lst].items())
            for lst in ("NYSE", "NASDAQ")
            if lst in shares
        )
        lead = shares.get("NYSE", {}).get("NYSE", math.nan)
        facts.append(
            _fact(
                "venues.listing",
                "venues",
                "share of regular-trade volume by venue, per listing market (listing venue largest, "
                "and most often at the NBBO)",
                lead,
                Band(None, None, "listing venue leads"),
                text,
                passed=ok_all,
            )
        )
        total = self.venue_volume.sum()
        iex = (
            float(self.venue_volume[:, self.venues.index("IEX")].sum() / total)
            if "IEX" in self.venues and total > 0
            else math.nan
        )
        facts.append(
            _fact(
                "venues.iex", "venues", "IEX share of regular-trade volume", iex, Band(None, 0.08, "≤ 8 %"), _pct(iex)
            )
        )
        return facts


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Each row's NaNs replaced by the row's last finite value before them."""
    out = np.array(values, dtype=np.float64, copy=True)
    n = out.shape[1]
    idx = np.where(np.isfinite(out), np.arange(n)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(out, idx, axis=1)
    return out

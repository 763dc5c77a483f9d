"""The 30 FX pairs (docs/data-model.md#fx-universe): liquidity rank, pip, built-in reference level and
microstructure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pair:
    symbol: str
    rank: int  # 1 = most liquid; 10 for every pair after the top nine
    level: float  # built-in reference (late 2025 / 2026 levels)
    spread_pips: tuple[int, int]  # normal quoted spread range
    annual_vol: float
    liquidity: float  # scales the displayed volume ladder

    @property
    def pip(self) -> float:
        return 0.01 if self.symbol.endswith("JPY") else 0.0001

    @property
    def pips_per_unit(self) -> int:
        return 100 if self.symbol.endswith("JPY") else 10_000

    @property
    def yahoo_ticker(self) -> str:
        return f"{self.symbol}=X"


PAIRS: tuple[Pair, ...] = (
    Pair("EURUSD", 1, 1.1600, (1, 3), 0.075, 1.0),
    Pair("USDJPY", 2, 154.50, (1, 3), 0.095, 1.0),
    Pair("GBPUSD", 3, 1.3150, (1, 4), 0.080, 0.9),
    Pair("USDCHF", 4, 0.7980, (1, 4), 0.080, 0.8),
    Pair("AUDUSD", 5, 0.6520, (1, 3), 0.095, 0.8),
    Pair("USDCAD", 6, 1.4020, (1, 4), 0.065, 0.8),
    Pair("EURGBP", 7, 0.8820, (1, 4), 0.060, 0.7),
    Pair("EURJPY", 8, 179.40, (1, 5), 0.095, 0.7),
    Pair("NZDUSD", 9, 0.5700, (1, 5), 0.100, 0.6),
    Pair("GBPJPY", 10, 203.20, (2, 8), 0.110, 0.5),
    Pair("EURCHF", 10, 0.9270, (2, 6), 0.055, 0.5),
    Pair("EURAUD", 10, 1.7780, (3, 9), 0.085, 0.4),
    Pair("GBPCHF", 10, 1.0500, (3, 10), 0.085, 0.4),
    Pair("AUDJPY", 10, 100.80, (2, 7), 0.120, 0.4),
    Pair("NZDJPY", 10, 88.10, (3, 9), 0.120, 0.3),
    Pair("USDSEK", 10, 9.4600, (20, 60), 0.100, 0.3),
    Pair("USDNOK", 10, 10.120, (20, 70), 0.105, 0.3),
    Pair("USDMXN", 10, 18.420, (25, 90), 0.120, 0.3),
    Pair("USDSGD", 10, 1.3020, (2, 8), 0.045, 0.4),
    Pair("USDHKD", 10, 7.7780, (2, 8), 0.010, 0.4),
    Pair("USDZAR", 10, 17.350, (60, 180), 0.150, 0.25),
    Pair("USDTRY", 10, 42.350, (150, 600), 0.090, 0.15),
    Pair("EURCAD", 10, 1.6260, (3, 10), 0.070, 0.35),
    Pair("EURNZD", 10, 2.0350, (5, 16), 0.090, 0.3),
    Pair("GBPAUD", 10, 2.0160, (5, 14), 0.090, 0.3),
    Pair("GBPNZD", 10, 2.3080, (7, 20), 0.100, 0.25),
    Pair("AUDCAD", 10, 0.9140, (3, 9), 0.075, 0.35),
    Pair("AUDNZD", 10, 1.1440, (3, 9), 0.060, 0.35),
    Pair("NZDCAD", 10, 0.7990, (4, 11), 0.085, 0.3),
    Pair("CADJPY", 10, 110.20, (2, 8), 0.105, 0.35),
)
SYMBOLS: tuple[str, ...] = tuple(p.symbol for p in PAIRS)
FALLBACK_LEVELS: dict[str, float] = {p.symbol: p.level for p in PAIRS}
FALLBACK_VOLS: dict[str, float] = {p.symbol: p.annual_vol for p in PAIRS}  # how far offline closes wander
YAHOO_TICKERS: dict[str, str] = {p.symbol: p.yahoo_ticker for p in PAIRS}


def column(attr: str, dtype=np.float64) -> np.ndarray:
    """One attribute of every pair as an array in universe order."""
    return np.array([getattr(p, attr) for p in PAIRS], dtype=dtype)


def _implied_crosses() -> dict[str, tuple[tuple[str, int], tuple[str, int]]]:
    """Every cross → its two USD legs as ((pair, power), (pair, power)): cross = Π pair ** power."""
    usd = {}
    for s in SYMBOLS:
        if s.endswith("USD"):
            usd[s[:3]] = (s, 1)
        elif s.startswith("USD"):
            usd[s[3:]] = (s, -1)
    out = {}
    for s in SYMBOLS:
        base, quote = s[:3], s[3:]
        if "USD" not in (base, quote):
            (bp, be), (qp, qe) = usd[base], usd[quote]
            out[s] = ((bp, be), (qp, -qe))
    return out


IMPLIED_CROSSES = _implied_crosses()  # reference closes of crosses are implied by their USD legs

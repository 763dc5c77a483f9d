"""The equities universe (docs/data-model.md#equities-universe): 30 U.S. symbols on 5 venues, with built-in reference
levels.

Fallback levels are realistic late-2025 closes (used when Yahoo is unreachable, and by tests);
volatility, activity weight and typical spread shape each symbol's microstructure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VENUES = ("NASDAQ", "NYSE", "ARCA", "BATS", "IEX")
VENUE_SIZE_MULTIPLIERS = np.array([1.0, 1.0, 0.9, 0.9, 0.8])


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    listing: str  # venue of the opening/closing/halt crosses
    fallback_price: float  # realistic late-2025 level, used when Yahoo is unreachable
    annual_vol: float  # intraday volatility, annualised
    weight: float  # share of quote and trade activity
    spread_ticks: float  # typical reference spread in continuous trading
    sector: str  # the sector factor its returns load on
    beta: float  # market beta: its return per unit return of the market factor


UNIVERSE: tuple[SymbolSpec, ...] = (
    # tech / mega-cap
    SymbolSpec("AAPL", "NASDAQ", 270.0, 0.27, 9.0, 1.0, "tech", 1.15),
    SymbolSpec("MSFT", "NASDAQ", 480.0, 0.22, 8.0, 1.0, "tech", 1.05),
    SymbolSpec("NVDA", "NASDAQ", 185.0, 0.42, 10.0, 1.0, "tech", 1.75),
    SymbolSpec("AMZN", "NASDAQ", 230.0, 0.30, 8.0, 1.0, "tech", 1.3),
    SymbolSpec("GOOGL", "NASDAQ", 300.0, 0.28, 7.0, 1.0, "tech", 1.15),
    SymbolSpec("META", "NASDAQ", 640.0, 0.30, 7.0, 1.1, "tech", 1.35),
    SymbolSpec("TSLA", "NASDAQ", 430.0, 0.55, 9.0, 1.6, "tech", 2.0),
    SymbolSpec("AVGO", "NASDAQ", 350.0, 0.42, 6.0, 1.7, "tech", 1.6),
    SymbolSpec("ADBE", "NASDAQ", 330.0, 0.32, 3.0, 2.0, "tech", 1.2),
    SymbolSpec("ORCL", "NYSE", 220.0, 0.45, 4.0, 1.8, "tech", 1.4),
    SymbolSpec("CRM", "NYSE", 240.0, 0.32, 3.0, 2.0, "tech", 1.2),
    SymbolSpec("NFLX", "NASDAQ", 110.0, 0.35, 4.0, 1.2, "tech", 1.2),  # after the 10-for-1 split of Nov 2025
    SymbolSpec("AMD", "NASDAQ", 220.0, 0.50, 7.0, 1.3, "tech", 1.8),
    SymbolSpec("INTC", "NASDAQ", 38.0, 0.48, 6.0, 1.0, "tech", 1.3),
    # finance / market infrastructure
    SymbolSpec("JPM", "NYSE", 310.0, 0.22, 5.0, 1.6, "finance", 1.0),
    SymbolSpec("BAC", "NYSE", 52.0, 0.25, 5.0, 1.0, "finance", 1.15),
    SymbolSpec("GS", "NYSE", 800.0, 0.28, 2.5, 4.0, "finance", 1.25),
    SymbolSpec("MS", "NYSE", 160.0, 0.28, 3.0, 1.4, "finance", 1.25),
    SymbolSpec("V", "NYSE", 335.0, 0.20, 3.5, 1.8, "finance", 0.9),
    SymbolSpec("MA", "NYSE", 560.0, 0.20, 2.5, 2.5, "finance", 0.95),
    SymbolSpec("CME", "NASDAQ", 270.0, 0.20, 1.5, 2.2, "finance", 0.45),
    SymbolSpec("ICE", "NYSE", 155.0, 0.22, 1.5, 1.8, "finance", 0.75),
    SymbolSpec("NDAQ", "NASDAQ", 88.0, 0.25, 1.5, 1.3, "finance", 0.9),
    # healthcare
    SymbolSpec("LLY", "NYSE", 1000.0, 0.35, 3.0, 5.0, "healthcare", 0.7),
    SymbolSpec("JNJ", "NYSE", 200.0, 0.16, 3.0, 1.3, "healthcare", 0.5),
    SymbolSpec("UNH", "NYSE", 330.0, 0.35, 3.5, 2.0, "healthcare", 0.65),
    # energy
    SymbolSpec("XOM", "NYSE", 117.0, 0.22, 4.0, 1.1, "energy", 0.7),
    SymbolSpec("CVX", "NYSE", 152.0, 0.22, 3.0, 1.4, "energy", 0.75),
    # consumer
    SymbolSpec("COST", "NASDAQ", 910.0, 0.20, 2.5, 4.0, "consumer", 0.75),
    # WMT moved its listing from NYSE to Nasdaq in Dec 2025
    SymbolSpec("WMT", "NASDAQ", 105.0, 0.20, 4.0, 1.1, "consumer", 0.55),
)
SYMBOLS: tuple[str, ...] = tuple(s.symbol for s in UNIVERSE)
MEGA_CAPS: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META")
YAHOO_TICKERS: dict[str, str] = {s: s for s in SYMBOLS}
FALLBACK_LEVELS: dict[str, float] = {s.symbol: s.fallback_price for s in UNIVERSE}
SECTORS: tuple[str, ...] = ("tech", "finance", "healthcare", "energy", "consumer")
MARKET_ANNUAL_VOL = 0.17  # intraday volatility of the market factor, annualised
SECTOR_LOADING = {"tech": 0.40, "finance": 0.45, "healthcare": 0.40, "energy": 0.60, "consumer": 0.35}
FALLBACK_VOLS: dict[str, float] = {s.symbol: s.annual_vol for s in UNIVERSE}  # how far offline closes wander


def factor_loadings() -> np.ndarray:
    """(symbols, 1 + sectors) loadings of each symbol's unit-variance return on the market factor and its
    sector's factor; the rest of its variance (at least 15 %) is its own.

    The market loading is the correlation the beta implies, ``beta * MARKET_ANNUAL_VOL / annual_vol``:
    a high-beta name moves more per unit market move (its beta), whatever share of its variance that is.
    """
    out = np.zeros((len(UNIVERSE), 1 + len(SECTORS)))
    for i, s in enumerate(UNIVERSE):
        market = min(0.85, s.beta * MARKET_ANNUAL_VOL / s.annual_vol)
        out[i, 0] = market
        out[i, 1 + SECTORS.index(s.sector)] = min(SECTOR_LOADING[s.sector], np.sqrt(max(0.0, 0.85 - market**2)))
    return out

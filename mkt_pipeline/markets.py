"""Per-market facts the drivers need without knowing engine internals: universe and references."""

from __future__ import annotations

from mkt_pipeline.reference_prices import ReferencePrices, load_reference_prices, reference_days
from mkt_pipeline.timeline import Window


def universe(market: str) -> tuple[tuple[str, ...], dict[str, str], dict[str, float]]:
    """(symbols, Yahoo tickers by symbol, built-in fallback levels by symbol) of a market."""
    if market == "fx":
        from mkt_pipeline import fx_universe as u
    elif market == "equities":
        from mkt_pipeline import equities_universe as u
    else:
        raise ValueError(f"unknown market {market!r}")
    return u.SYMBOLS, u.YAHOO_TICKERS, u.FALLBACK_LEVELS


def market_references(market: str, window: Window, offline: bool | None = None) -> ReferencePrices:
    """Reference closes for every day the window needs (Yahoo, cached; fallback when offline)."""
    symbols, tickers, fallback = universe(market)
    days = window.days()
    return load_reference_prices(symbols, tickers, fallback, reference_days(days[0], days[-1]), offline=offline)

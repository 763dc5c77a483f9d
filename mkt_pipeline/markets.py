"""Per-market facts the drivers need without knowing engine internals: universe and references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mkt_pipeline.core.reference_prices import ReferencePrices, load_reference_prices, reference_days
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.settings import GENERATION_FLAGS


def universe(market: str) -> tuple[tuple[str, ...], dict[str, str], dict[str, float]]:
    """(symbols, Yahoo tickers by symbol, built-in fallback levels by symbol) of a market."""
    if market == "fx":
        from mkt_pipeline.fx import universe as u
    elif market == "equities":
        from mkt_pipeline.equities import universe as u
    else:
        raise ValueError(f"unknown market {market!r}")
    return u.SYMBOLS, u.YAHOO_TICKERS, u.FALLBACK_LEVELS


def fallback_vols(market: str) -> dict[str, float]:
    """Annual vol by symbol: how far the built-in closes wander day to day when Yahoo is not used."""
    if market == "fx":
        from mkt_pipeline.fx import universe as u
    else:
        from mkt_pipeline.equities import universe as u
    return u.FALLBACK_VOLS


def implied_symbols(market: str):
    """Symbols whose reference close is implied by others' (FX crosses by their USD legs), or None."""
    if market != "fx":
        return None
    from mkt_pipeline.fx import universe as u

    return u.IMPLIED_CROSSES


def market_references(market: str, window: Window, offline: bool | None = None) -> ReferencePrices:
    """Reference closes for every day the window needs (Yahoo, cached; fallback when offline).

    ``offline`` None means the deployment's ``MKT_OFFLINE``."""
    days = window.days()
    return references_for_days(market, reference_days(days[0], days[-1]), offline)


def references_for_days(market: str, days, offline: bool | None = None) -> ReferencePrices:
    """Closes for exactly ``days``, with the deployment's ``MKT_OFFLINE`` and ``MKT_CACHE_DIR`` unless told."""
    from pathlib import Path

    from mkt_pipeline.settings import deployment

    symbols, tickers, fallback = universe(market)
    offline = deployment("MKT_OFFLINE") if offline is None else offline
    cache_dir = Path(deployment("MKT_CACHE_DIR")).expanduser()
    return load_reference_prices(
        symbols,
        tickers,
        fallback,
        sorted(days),
        offline=offline,
        cache_dir=cache_dir,
        fallback_vols=fallback_vols(market),
        implied=implied_symbols(market),
    )


def engine_settings(market: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The engine-config part of a set of settings (drops run-only fields such as chunk_seconds)."""
    return {flag.name: values[flag.name] for flag in GENERATION_FLAGS[market]}


def validated_config(market: str, values: Mapping[str, Any]):
    """The market's validated engine configuration (``ConfigError`` names the flag)."""
    if market == "fx":
        from mkt_pipeline.fx.engine import FxConfig as Config
    else:
        from mkt_pipeline.equities.engine import EquitiesConfig as Config
    return Config(**engine_settings(market, values)).validate()


def build_engine(market: str, values: Mapping[str, Any], references: ReferencePrices):
    """The market's engine for these settings and reference prices; every driver builds it here."""
    config = validated_config(market, values)
    if market == "fx":
        from mkt_pipeline.fx.engine import FxEngine as Engine
    else:
        from mkt_pipeline.equities.engine import EquitiesEngine as Engine
    return Engine(config, references)

"""FX built from currencies, not pairs: each currency's value against the dollar, and the pairs as ratios of two legs.

``x_c = log(value of currency c in USD)`` follows a correlated process (``core.price_path`` with a
factor ``mixing`` matrix): a dollar factor every currency loads on, plus blocs (Europe, commodity
currencies, risk-on/safe-haven, the antipodean pair). A pair BASE/QUOTE is ``x_BASE - x_QUOTE``
(``x_USD = 0``), so crosses are consistent with their USD legs by construction; each pair then adds
its own small, mean-reverting microstructure noise in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mkt_pipeline.fx import universe as fxu

# Each currency's annual volatility against USD (its USD pair's), and its loadings on the factors.
FACTORS = ("dollar", "europe", "commodity", "risk", "antipodes")
CURRENCIES: dict[str, tuple[float, tuple[float, float, float, float, float]]] = {
    # currency: (annual vol vs USD, loadings on FACTORS; the rest of each variance is its own)
    "EUR": (0.075, (0.80, 0.50, 0.00, 0.00, 0.00)),
    "JPY": (0.095, (0.55, 0.00, 0.00, -0.55, 0.00)),
    "GBP": (0.080, (0.65, 0.45, 0.00, 0.00, 0.00)),
    "CHF": (0.080, (0.80, 0.50, 0.00, -0.20, 0.00)),
    "AUD": (0.095, (0.55, 0.00, 0.55, 0.35, 0.45)),
    "CAD": (0.065, (0.45, 0.00, 0.40, 0.20, 0.00)),
    "NZD": (0.100, (0.50, 0.00, 0.50, 0.35, 0.45)),
    "SEK": (0.100, (0.60, 0.50, 0.00, 0.15, 0.00)),
    "NOK": (0.105, (0.50, 0.40, 0.35, 0.15, 0.00)),
    "MXN": (0.120, (0.35, 0.00, 0.20, 0.55, 0.00)),
    "SGD": (0.045, (0.70, 0.00, 0.00, 0.15, 0.00)),
    "HKD": (0.010, (0.20, 0.00, 0.00, 0.00, 0.00)),
    "ZAR": (0.150, (0.40, 0.00, 0.35, 0.55, 0.00)),
    "TRY": (0.090, (0.15, 0.00, 0.00, 0.30, 0.00)),
}
CODES: tuple[str, ...] = tuple(CURRENCIES)
ANNUAL_VOL = np.array([v for v, _ in CURRENCIES.values()])
LOADINGS = np.array([b for _, b in CURRENCIES.values()])


def _legs(symbol: str) -> tuple[str, str]:
    return symbol[:3], symbol[3:]


def leg_matrix(symbols=fxu.SYMBOLS) -> np.ndarray:
    """(pairs, currencies): +1 at the base currency, -1 at the quote currency (USD has no column)."""
    out = np.zeros((len(symbols), len(CODES)))
    for i, s in enumerate(symbols):
        base, quote = _legs(s)
        if base != "USD":
            out[i, CODES.index(base)] += 1.0
        if quote != "USD":
            out[i, CODES.index(quote)] -= 1.0
    return out


class LegMap:
    """Pairs from currency rows, element by element (no matrix products: the same second gives the
    same bits whatever the window's length, so windows stay additive to the last bit)."""

    def __init__(self, symbols=fxu.SYMBOLS):
        legs = leg_matrix(symbols)
        self.base = np.array([int(np.flatnonzero(row > 0)[0]) if (row > 0).any() else -1 for row in legs])
        self.quote = np.array([int(np.flatnonzero(row < 0)[0]) if (row < 0).any() else -1 for row in legs])

    def combine(self, x: np.ndarray) -> np.ndarray:
        """(pairs, t) ``x_base - x_quote`` from (currencies, t) rows (``x_USD = 0``)."""
        padded = np.concatenate([x, np.zeros((1,) + x.shape[1:])])  # row -1: USD
        return padded[self.base] - padded[self.quote]

    def either(self, flags: np.ndarray) -> np.ndarray:
        """(pairs, t) True where either leg's (currencies, t) flag is set."""
        padded = np.concatenate([flags, np.zeros((1,) + flags.shape[1:], dtype=bool)])
        return padded[self.base] | padded[self.quote]

    def vol(self, v: np.ndarray, corr: np.ndarray) -> np.ndarray:
        """(pairs, t) volatility of each pair from its legs' (currencies, t) volatility and their correlation."""
        padded = np.concatenate([v, np.zeros((1,) + v.shape[1:])])
        a, b = padded[self.base], padded[self.quote]
        rho = np.where((self.base >= 0) & (self.quote >= 0), corr[self.base, self.quote], 0.0)
        rho = rho.reshape((-1,) + (1,) * (v.ndim - 1))
        return np.sqrt(np.maximum(a * a + b * b - 2.0 * rho * a * b, 0.0))


def usd_pairs() -> dict[str, tuple[int, int]]:
    """Currency → (index of its USD pair in the universe, +1 if XXXUSD else -1 for USDXXX)."""
    out = {}
    for c in CODES:
        if f"{c}USD" in fxu.SYMBOLS:
            out[c] = (fxu.SYMBOLS.index(f"{c}USD"), 1)
        else:
            out[c] = (fxu.SYMBOLS.index(f"USD{c}"), -1)
    return out


def currency_closes(pair_closes: np.ndarray) -> np.ndarray:
    """Each currency's value in USD from the USD pairs' closes (universe order)."""
    legs = usd_pairs()
    return np.array([pair_closes[i] ** e for i, e in (legs[c] for c in CODES)])


class CurrencyReferences:
    """The reference closes of the currencies (against USD), read from a pair ``ReferencePrices``."""

    def __init__(self, pairs):
        self.pairs = pairs
        self.symbols = CODES

    def close(self, day) -> np.ndarray:
        return currency_closes(self.pairs.close(day))


def consistent_closes(closes: Mapping[str, float] | np.ndarray) -> np.ndarray:
    """Pair closes (universe order) with every cross replaced by the one its USD legs imply."""
    values = np.array([closes[s] for s in fxu.SYMBOLS] if isinstance(closes, Mapping) else closes, dtype=np.float64)
    return np.exp(leg_matrix() @ np.log(currency_closes(values)))

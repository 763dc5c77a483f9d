"""Keyed factor processes: correlated instruments from a few shared drivers plus their own noise.

A factor model is a loadings matrix ``B`` (instruments × factors, each row's squares summing to at
most 1). ``mixing_matrix(B)`` appends one idiosyncratic column per instrument so that ``M @ z`` for
independent unit normals ``z`` gives unit-variance instrument shocks with correlation ``M @ M.T``.
``PricePath`` takes such a matrix (``mixing``): every keyed normal it draws (hourly anchors,
per-minute volatility, per-second steps) is drawn per source and mixed, so the correlation is a
pure function of the keys, like everything else.
"""

from __future__ import annotations

import numpy as np


def mixing_matrix(loadings: np.ndarray) -> np.ndarray:
    """``[B | diag(sqrt(1 - Σ B²))]``: (n, k + n) weights giving unit-variance, correlated shocks."""
    b = np.asarray(loadings, dtype=np.float64)
    common = np.sum(b * b, axis=1)
    if np.any(common > 1.0 + 1e-12):
        raise ValueError("factor loadings: each row's squares must sum to at most 1")
    return np.concatenate([b, np.diag(np.sqrt(np.clip(1.0 - common, 0.0, None)))], axis=1)


def correlation(mixing: np.ndarray) -> np.ndarray:
    """The instruments' correlation matrix implied by a mixing matrix."""
    return mixing @ mixing.T


def combined_vol(weights: np.ndarray, vol: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """Volatility of linear combinations ``weights @ x`` of instruments with per-column vol and correlation.

    ``weights``: (m, n); ``vol``: (n,) or (n, t) per-instrument volatility (per time column);
    returns (m,) or (m, t).
    """
    if vol.ndim == 1:
        scaled = weights * vol[None, :]
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", scaled, corr, scaled), 0.0))
    scaled = weights[:, :, None] * vol[None, :, :]  # (m, n, t)
    return np.sqrt(np.maximum(np.einsum("ijt,jk,ikt->it", scaled, corr, scaled, optimize=True), 0.0))

"""Order flow with memory, and the price impact through which it moves prices, as keyed functions of time.

* ``ParentOrders``: large parent ("meta") orders, each with a group (symbol, pair, ...), a sign
  and a heavy-tailed (Pareto) lifetime in seconds, are born in fixed blocks of absolute time,
  every block from its own keyed generator. The state of the flow at a second (net sign and number
  of the parents alive) is recomputed from the blocks of a bounded look-back (the longest
  lifetime), never carried over, so it does not depend on where a run started. Child orders take
  the sign of a parent alive at their second with a probability that grows with the number of
  parents (``buy_probability``): the aggressor sign then has a long, power-law-like memory
  (Lillo-Mike-Farmer), because lifetimes are power-law distributed.
* ``ImpactKernel``: a transient propagator ``G(k)`` over a bounded horizon. The impact at a second
  boundary is ``Σ_k A(b - delay - k) G(k)`` over the signed, size-scaled contributions ``A`` of
  the orders of the previous seconds (``propagate``); a window re-derives the contributions of its
  look-back from their keys, so impacts are additive row for row like the rest of the path.
"""

from __future__ import annotations

import numpy as np

from mkt_pipeline.core.keyed_random import keyed_rng

BLOCK_S = 60  # parents are drawn per block of 60 absolute seconds


class ParentOrders:
    """Keyed parent orders over ``len(rates)`` groups; ``rates[g]``: parents born per second in group ``g``."""

    def __init__(self, seed: int, stream: str, rates: np.ndarray, min_life_s: int, max_life_s: int, tail: float):
        """Lifetimes are Pareto with exponent ``tail`` from ``min_life_s``, capped at ``max_life_s``
        (the look-back a window re-draws)."""
        self.seed, self.stream = seed, stream
        self.rates = np.asarray(rates, dtype=np.float64)
        self.groups = len(self.rates)
        self.cdf = np.cumsum(self.rates) / self.rates.sum()
        self.min_life_s, self.max_life_s, self.tail = int(min_life_s), int(max_life_s), float(tail)
        self._blocks: dict[int, tuple[np.ndarray, ...]] = {}

    def block(self, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(group, birth second, lifetime s, sign ±1) of the parents born in block ``b``."""
        got = self._blocks.get(b)
        if got is None:
            while len(self._blocks) >= 4 + self.max_life_s // BLOCK_S * 2:
                self._blocks.pop(next(iter(self._blocks)))
            rng = keyed_rng(self.seed, self.stream, b)
            n = int(rng.poisson(self.rates.sum() * BLOCK_S))
            group = np.minimum(np.searchsorted(self.cdf, rng.random(n), side="right"), self.groups - 1)
            birth = b * BLOCK_S + rng.integers(0, BLOCK_S, n)
            life = np.minimum(np.floor(self.min_life_s * (1.0 - rng.random(n)) ** (-1.0 / self.tail)), self.max_life_s)
            sign = np.where(rng.random(n) < 0.5, -1, 1)
            got = self._blocks[b] = (group, birth.astype(np.int64), life.astype(np.int64), sign)
        return got

    def state(self, first_second: int, end_second: int) -> tuple[np.ndarray, np.ndarray]:
        """(net sign, count) of the parents alive in each second: two (groups, end - first) int arrays."""
        n = end_second - first_second
        diff_net = np.zeros((self.groups, n + 1), dtype=np.int64)
        diff_count = np.zeros((self.groups, n + 1), dtype=np.int64)
        for b in range((first_second - self.max_life_s) // BLOCK_S, (end_second - 1) // BLOCK_S + 1):
            group, birth, life, sign = self.block(b)
            start = np.maximum(birth, first_second) - first_second
            stop = np.minimum(birth + life, end_second) - first_second
            alive = stop > start
            g, start, stop, sg = group[alive], start[alive], stop[alive], sign[alive]
            np.add.at(diff_net, (g, start), sg)
            np.add.at(diff_net, (g, stop), -sg)
            np.add.at(diff_count, (g, start), 1)
            np.add.at(diff_count, (g, stop), -1)
        return np.cumsum(diff_net, axis=1)[:, :n], np.cumsum(diff_count, axis=1)[:, :n]


def buy_probability(net: np.ndarray, count: np.ndarray, independent: float) -> np.ndarray:
    """Probability that a child order is a buy: it follows a random live parent with probability
    ``count / (count + independent)``, else it is an independent coin flip."""
    return 0.5 + 0.5 * net / (count + independent)


class ImpactKernel:
    """Transient impact ``G(k) = exp(-k / timescale) * (1 - k / horizon)`` for ``k`` seconds after it is fully in.

    A kernel that decays faster than the order signs decorrelate keeps prices efficient: the flow
    an order follows is already in the price before it, and what moves after it is mostly its own
    impact (a slowly decaying kernel would make the move before an order as large as the one after).
    """

    def __init__(self, horizon_s: int, timescale_s: float, delay_s: int = 2):
        """``delay_s``: an order in second ``s`` reaches the boundary ``s + delay_s`` fully (with
        ``delay_s = 2`` the price moves during the second after the order, never before it)."""
        self.horizon_s, self.delay_s = int(horizon_s), int(delay_s)
        k = np.arange(self.horizon_s)
        self.weights = np.exp(-k / float(timescale_s)) * (1.0 - k / self.horizon_s)

    @property
    def lookback_s(self) -> int:
        """Seconds of contributions before the first boundary that a window must re-derive."""
        return self.horizon_s + self.delay_s - 1

    def propagate(self, contributions: np.ndarray) -> np.ndarray:
        """Impact at boundaries ``b0 .. b0 + m - 1`` from the ``contributions`` of seconds
        ``b0 - lookback_s .. b0 + m - 1 - delay_s``.

        ``contributions``: (rows, m + horizon_s - 1), column ``j`` belonging to second ``b0 - lookback_s + j``.
        """
        rows, cols = contributions.shape
        m = cols - self.horizon_s + 1
        out = np.empty((rows, m))
        for r in range(rows):
            out[r] = np.convolve(contributions[r], self.weights, mode="valid")
        return out

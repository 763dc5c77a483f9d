"""Stateless market activity: how busy and how volatile a market is at every absolute second.

Real tapes cluster: a busy second is followed by busy seconds, a volatile minute by volatile
minutes, and both follow the clock (the London/New York overlap, the equities open and close).
Here the activity of a market at second ``t`` is a log-level

    L(t) = profile(t) + sum_k sigma_k * C_k(t)

where ``profile`` is a deterministic function of the time of day (the intraday seasonality) and
each ``C_k`` is a stationary, unit-variance moving average of keyed normals over a bounded
look-back (the clustering). Every term is a pure function of the seed and the absolute second, so
a window generated alone equals the same window inside a longer one (docs/data-model.md#stateless-time).

Engines read ``L`` two ways: ``counts`` places each second's event count inside the configured
``[low, high]`` range (busier seconds nearer ``high``, never outside it), and
``volatility`` scales the per-second price volatility.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mkt_pipeline.core.keyed_random import keyed_rng
from mkt_pipeline.core.timeline import SECONDS_PER_DAY

_BLOCK_STEPS = 3600  # keyed draws come in blocks of this many steps, one generator per block


@dataclass(frozen=True)
class Cluster:
    """One clustering component: exponentially weighted moving average of keyed normals.

    ``step_s`` is the spacing of the draws (1 for second-scale bursts, 60 for minute-scale
    regimes), ``decay`` the weight ratio per step and ``taps`` the bounded look-back in steps.
    Values between draws are interpolated linearly, so the component is continuous in time.
    ``count_sigma`` and ``vol_sigma`` are its loadings on the count and volatility levels.
    """

    step_s: int
    decay: float
    taps: int
    count_sigma: float
    vol_sigma: float

    @property
    def weights(self) -> np.ndarray:
        w = self.decay ** np.arange(self.taps)
        return w / np.sqrt(np.sum(w * w))


class HourlyProfile:
    """A periodic time-of-day profile from 24 values, one per UTC hour (centred on the half hour).

    Between hour centres the profile is interpolated with a cosine, so it is smooth and periodic.
    A class rather than a closure so engines holding one can be pickled into a child process.
    """

    def __init__(self, levels: Sequence[float]):
        values = np.asarray(levels, dtype=np.float64)
        if values.shape != (24,):
            raise ValueError("an hourly profile needs 24 values, one per UTC hour")
        self.knots = np.concatenate((values, values[:1]))

    def __call__(self, seconds: np.ndarray) -> np.ndarray:
        pos = ((np.asarray(seconds, dtype=np.float64) % SECONDS_PER_DAY) / 3600.0 - 0.5) % 24.0
        lo = np.floor(pos).astype(np.int64)
        frac = 0.5 - 0.5 * np.cos(np.pi * (pos - lo))
        return self.knots[lo] * (1.0 - frac) + self.knots[lo + 1] * frac


class Activity:
    """Count positions and volatility multipliers of one market, per absolute second."""

    def __init__(
        self,
        seed: int,
        stream: str,
        profile: Callable[[np.ndarray], np.ndarray],
        clusters: Sequence[Cluster],
        count_gain: float = 1.0,
        count_jitter: float = 0.15,
        vol_exponent: float = 0.5,
    ):
        """``profile`` maps absolute seconds to a log-level (0 = an average second).

        ``count_gain`` scales the level before it is squashed into the count range,
        ``count_jitter`` is the share of the range left to independent per-second noise, and
        ``vol_exponent`` is how strongly the seasonal profile moves volatility.
        """
        self.seed = seed
        self.stream = stream
        self.profile = profile
        self.clusters = tuple(clusters)
        self.count_gain = count_gain
        self.count_jitter = count_jitter
        self.vol_exponent = vol_exponent
        self._blocks: dict[tuple[int, int], np.ndarray] = {}
        self._weights = [c.weights for c in self.clusters]
        # the mean of exp(sum of vol loadings * unit normals): divided out so volatility averages 1
        self._vol_var = float(sum(c.vol_sigma**2 for c in self.clusters))

    # --- keyed building blocks -------------------------------------------------------------
    def _block(self, k: int, block: int) -> np.ndarray:
        key = (k, block)
        draws = self._blocks.get(key)
        if draws is None:
            while len(self._blocks) >= 8 * max(1, len(self.clusters)):  # bounded: memory must not grow with time
                self._blocks.pop(next(iter(self._blocks)))
            draws = keyed_rng(self.seed, f"{self.stream}/cluster{k}", block).standard_normal(_BLOCK_STEPS)
            self._blocks[key] = draws
        return draws

    def _draws(self, k: int, first_step: int, end_step: int) -> np.ndarray:
        out = np.empty(end_step - first_step)
        s = first_step
        while s < end_step:
            block, off = divmod(s, _BLOCK_STEPS)
            take = min(_BLOCK_STEPS - off, end_step - s)
            out[s - first_step : s - first_step + take] = self._block(k, block)[off : off + take]
            s += take
        return out

    def cluster(self, k: int, first_second: int, end_second: int) -> np.ndarray:
        """Component ``k`` (unit variance) at seconds ``[first_second, end_second)``."""
        c = self.clusters[k]
        w = self._weights[k]
        # the value at step point j averages the draws j, j-1, ..., j-taps+1
        first_point = first_second // c.step_s
        end_point = (end_second - 1) // c.step_s + 2  # one point past the last second to interpolate
        draws = self._draws(k, first_point - c.taps + 1, end_point)
        points = np.convolve(draws, w, mode="valid")  # points[i] = step point first_point + i
        seconds = np.arange(first_second, end_second)
        if c.step_s == 1:
            return points[: len(seconds)]
        pos = seconds / c.step_s - first_point
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        return points[lo] * (1.0 - frac) + points[lo + 1] * frac

    # --- what engines read -----------------------------------------------------------------
    def levels(self, first_second: int, end_second: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seasonal profile, count clustering, volatility clustering) log-levels per second."""
        seasonal = self.profile(np.arange(first_second, end_second))
        count = np.zeros(end_second - first_second)
        vol = np.zeros(end_second - first_second)
        for k, c in enumerate(self.clusters):
            if c.count_sigma == 0.0 and c.vol_sigma == 0.0:
                continue
            x = self.cluster(k, first_second, end_second)
            count += c.count_sigma * x
            vol += c.vol_sigma * x
        return seasonal, count, vol

    def count_position(self, first_second: int, end_second: int) -> np.ndarray:
        """Where each second sits in its count range, in (0, 1): 0.5 for an average second."""
        seasonal, count, _ = self.levels(first_second, end_second)
        return 1.0 / (1.0 + np.exp(-self.count_gain * (seasonal + count)))

    def counts(self, first_second: int, end_second: int, low: int, high: int, uniforms: np.ndarray) -> np.ndarray:
        """Event counts per second inside ``[low, high]``, one keyed uniform per second.

        The busy share of the range follows the activity level; ``count_jitter`` of it is left to
        the second's own uniform, so neighbouring seconds are alike but never identical.
        """
        q = self.count_position(first_second, end_second)
        x = (1.0 - self.count_jitter) * q + self.count_jitter * np.asarray(uniforms)
        return low + np.minimum(np.floor(x * (high - low + 1)).astype(np.int64), high - low)

    def volatility(self, first_second: int, end_second: int) -> np.ndarray:
        """Per-second volatility multipliers (mean about 1 over a day)."""
        seasonal, _, vol = self.levels(first_second, end_second)
        return np.exp(self.vol_exponent * seasonal + vol - 0.5 * self._vol_var)


@lru_cache(maxsize=64)
def _uniform_block(seed: int, stream: str, block: int) -> np.ndarray:
    """One hour of keyed uniforms (cached and read-only: consecutive batches read the same hour)."""
    out = keyed_rng(seed, stream, block).random(_BLOCK_STEPS)
    out.flags.writeable = False
    return out


def second_uniforms(seed: int, stream: str, first_second: int, end_second: int) -> np.ndarray:
    """One keyed uniform per absolute second (drawn in hour blocks, so any split agrees)."""
    out = np.empty(end_second - first_second)
    s = first_second
    while s < end_second:
        block, off = divmod(s, _BLOCK_STEPS)
        take = min(_BLOCK_STEPS - off, end_second - s)
        out[s - first_second : s - first_second + take] = _uniform_block(seed, stream, block)[off : off + take]
        s += take
    return out

"""Stateless, continuous per-second price paths for a set of instruments.

The log price of every instrument at the start of every absolute second is a pure function of the
seed, the path parameters, the reference prices and the second itself:

* hour anchors: ``log(reference(t)) + Y_h`` where ``Y_h`` is a moving average of keyed hourly
  normals, i.e. a stationary, autocorrelated deviation that mean-reverts to the reference (with
  ``anchor_memory_hours`` a linearly tapered one: locally a random walk, so hour-to-hour moves are
  as large as the per-second volatility implies, reverting over that many hours);
* inside an hour, a Brownian bridge from one anchor to the next whose per-second volatility
  clusters (a moving average of keyed per-minute normals, exponentiated, times an optional
  market-wide multiplier such as ``Activity.volatility``) and which carries occasional jumps
  ("shocks"); the bridge pulls every shock back toward the anchors.

With ``loadings``, every normal behind the anchors and the steps is a mix of shared factor normals
(keyed by the same hour or day) and the instrument's own, so instruments move together at every
horizon while each keeps its own variance.

Because the value at second ``s`` is always read from the block of hour ``s // 3600``, the end of
one second is the start of the next across any chunk, partition or process boundary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mkt_pipeline.core.keyed_random import keyed_rng
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.timeline import SECONDS_PER_DAY, SECONDS_PER_HOUR

_ANCHOR_TAPS = 48  # hours in the anchor moving average
_ANCHOR_DECAY = 0.9  # per hour: deviations from the reference half-life ≈ 6.6 h
_VOL_TAPS = 60  # minutes in the volatility moving average
_VOL_DECAY = 0.93  # per minute: volatility regimes last ≈ 10-20 min
_VOL_OF_VOL = 0.45  # std of log volatility multiplier


def _bounded(cache: dict, size: int) -> None:
    """Drop the oldest entries so a long run's caches stay small (memory must not grow with time)."""
    while len(cache) >= size:
        cache.pop(next(iter(cache)))


def _unit_weights(taps: int, decay: float) -> np.ndarray:
    w = decay ** np.arange(taps)
    return w / np.sqrt(np.sum(w * w))


@dataclass(frozen=True)
class PathParams:
    """Per-instrument dynamics, each an array aligned with the instrument list."""

    vol_per_second: np.ndarray  # base log-volatility per second
    anchor_sigma: np.ndarray  # stationary std of the log deviation from the reference
    shock_log_size: np.ndarray  # typical jump, in log units
    shock_probability: float  # per instrument per second
    vol_of_vol: float = _VOL_OF_VOL  # std of the per-instrument log volatility multiplier
    anchor_memory_hours: int | None = None  # None: exponential anchor weights; else a linear taper this long
    shocks_per_hour: int = 0  # > 0: instead of per-second coin flips, exactly this many per hour across all instruments
    # (instruments, factors) loadings of each unit-variance step and anchor normal on shared keyed factors
    # (a market, its sectors); the rest of the variance, 1 - sum of squares, is the instrument's own
    loadings: np.ndarray | None = None
    vol_taps: int = _VOL_TAPS  # minutes in the volatility moving average (its look-back)
    vol_decay: float = _VOL_DECAY  # per minute: how long a volatility regime lasts
    # (first, end) UTC hours: each instrument's own volatility multiplier is divided by its root mean square over
    # these hours of its UTC day, so regimes move volatility within a day but every day's level there is the
    # instrument's (times any market_vol); None: no such normalisation
    vol_level_hours: tuple[int, int] | None = None
    # the per-second volatility (own multiplier times market_vol) is capped at this many times vol_per_second:
    # volatility regimes that coincide never stack into a handful of extreme minutes (None: no cap)
    vol_cap: float | None = None


@dataclass
class PathSlice:
    """Path values over ``[first_second, end_second)``.

    ``log_price[:, i]`` is the log price at the start of second ``first_second + i``; it has one
    extra column so ``log_price[:, i + 1]`` is the close of second ``i``.
    """

    first_second: int
    log_price: np.ndarray  # (n_sym, n + 1)
    vol: np.ndarray  # (n_sym, n) per-second volatility (log units)
    shock: np.ndarray  # (n_sym, n) bool: a jump happened in this second


class PricePath:
    """Per-second price paths for ``len(params.vol_per_second)`` instruments, cached by hour."""

    def __init__(
        self,
        seed: int,
        stream: str,
        params: PathParams,
        references: ReferencePrices,
        market_vol: Callable[[int, int], np.ndarray] | None = None,
        mixing: np.ndarray | None = None,
    ):
        """``market_vol(first, end)`` gives per-second volatility multipliers shared by every instrument (or,
        as an (instruments, seconds) array, one per instrument);
        ``mixing`` (n_instruments × n_sources, see ``core.factors.mixing_matrix``) correlates the
        instruments: every keyed normal is drawn per source and mixed (None: independent instruments)."""
        self.seed = seed
        self.mixing = mixing
        self.sources = len(params.vol_per_second) if mixing is None else mixing.shape[1]
        self.stream = stream
        self.params = params
        self.references = references
        self.n = len(params.vol_per_second)
        self._hour_blocks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._day_normals: dict[int, np.ndarray] = {}
        self._hour_minute_normals: dict[int, np.ndarray] = {}
        self.market_vol = market_vol
        if params.anchor_memory_hours is None:
            self._anchor_w = _unit_weights(_ANCHOR_TAPS, _ANCHOR_DECAY)
        else:
            taper = 1.0 - np.arange(params.anchor_memory_hours) / params.anchor_memory_hours
            self._anchor_w = taper / np.sqrt(np.sum(taper * taper))
        self._vol_w = _unit_weights(params.vol_taps, params.vol_decay)
        self._day_rms: dict[int, np.ndarray] = {}
        self._own = None
        if params.loadings is not None:
            self._own = np.sqrt(np.maximum(0.0, 1.0 - np.sum(params.loadings**2, axis=1)))

    def _mix(self, own: np.ndarray, stream: str, part: int) -> np.ndarray:
        """(rows, sources) keyed normals as (rows, n) correlated unit normals: through the ``mixing`` matrix
        (every source drawn here), else the ``loadings`` on factor normals drawn from ``stream`` plus the
        instrument's own share; with neither, as they are."""
        if self.mixing is not None:
            return own @ self.mixing.T
        if self._own is None:
            return own
        shape = (own.shape[0], self.params.loadings.shape[1])
        factors = keyed_rng(self.seed, self.stream + stream, part).standard_normal(shape)
        return factors @ self.params.loadings.T + own * self._own

    # --- keyed building blocks -------------------------------------------------------------
    def _hour_normal(self, hour: int) -> np.ndarray:
        day = hour // 24
        if day not in self._day_normals:
            _bounded(self._day_normals, 4 + len(self._anchor_w) // 24)  # every day the anchor look-back spans
            own = keyed_rng(self.seed, self.stream + "/anchor", day).standard_normal((24, self.sources))
            self._day_normals[day] = self._mix(own, "/anchor_factor", day)
        return self._day_normals[day][hour % 24]

    def _minute_normals(self, hour: int) -> np.ndarray:
        if hour not in self._hour_minute_normals:
            _bounded(self._hour_minute_normals, 8 + len(self._vol_w) // 60)
            normals = keyed_rng(self.seed, self.stream + "/vol", hour).standard_normal((60, self.sources))
            # with a mixing matrix volatility regimes are shared too (FX currencies); loadings leave them own
            self._hour_minute_normals[hour] = normals if self.mixing is None else normals @ self.mixing.T
        return self._hour_minute_normals[hour]

    def _reference_log(self, second: int) -> np.ndarray:
        """Log reference at an absolute second: log-linear from the previous day's close to this day's."""
        day_index, into = divmod(second, SECONDS_PER_DAY)
        day = dt.date(1970, 1, 1) + dt.timedelta(days=int(day_index))
        prev = np.log(self.references.close(day - dt.timedelta(days=1)))
        cur = np.log(self.references.close(day))
        return prev + (cur - prev) * (into / SECONDS_PER_DAY)

    def hour_anchor(self, hour: int) -> np.ndarray:
        """Log price of every instrument at the start of ``hour`` (hours since the epoch)."""
        y = np.zeros(self.n)
        for j in range(len(self._anchor_w)):
            y += self._anchor_w[j] * self._hour_normal(hour - j)
        return self._reference_log(hour * SECONDS_PER_HOUR) + self.params.anchor_sigma * y

    def _vol_multiplier(self, hour: int) -> np.ndarray:
        """(n_sym, 3600) clustered volatility multipliers for one hour, mean ≈ 1."""
        # minute points m0-1 .. m0+60 so every second can interpolate between two of them
        minutes = np.arange(hour * 60 - 1, hour * 60 + 61)
        taps = len(self._vol_w)
        first = minutes[0] - (taps - 1)
        normals = np.concatenate([self._minute_normals(h) for h in range(first // 60, minutes[-1] // 60 + 1)])
        base = (first // 60) * 60
        stacked = np.stack([normals[minutes - base - j] for j in range(taps)])  # (taps, 62, n)
        level = np.tensordot(self._vol_w, stacked, axes=1)  # (62, n)
        vov = self.params.vol_of_vol
        points = np.exp(vov * level - 0.5 * vov**2)
        if self.params.vol_level_hours is not None:
            points = points / self._day_vol_rms(hour // 24)
        # second t of the hour sits at minute offset (t + 0.5) / 60 past points[1]
        pos = (np.arange(SECONDS_PER_HOUR) + 0.5) / 60.0 + 0.5
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        return (points[lo] * (1 - frac)[:, None] + points[lo + 1] * frac[:, None]).T

    def _day_vol_rms(self, day: int) -> np.ndarray:
        """(n,) root mean square of the own volatility multiplier over ``vol_level_hours`` of a UTC day (cached)."""
        got = self._day_rms.get(day)
        if got is None:
            _bounded(self._day_rms, 4)
            taps = len(self._vol_w)
            h0, h1 = self.params.vol_level_hours
            first_hour = (day * 1440 + h0 * 60 - taps + 1) // 60
            normals = np.concatenate(
                [
                    keyed_rng(self.seed, self.stream + "/vol", h).standard_normal((60, self.n))
                    for h in range(first_hour, day * 24 + h1)
                ]
            )
            minutes = np.arange(day * 1440 + h0 * 60, day * 1440 + h1 * 60) - first_hour * 60
            level = np.zeros((len(minutes), self.n))
            for j in range(taps):
                level += self._vol_w[j] * normals[minutes - j]
            vov = self.params.vol_of_vol
            got = self._day_rms[day] = np.sqrt(np.mean(np.exp(2 * (vov * level - 0.5 * vov**2)), axis=0))
        return got

    def _hour_block(self, hour: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        block = self._hour_blocks.get(hour)
        if block is not None:
            return block
        _bounded(self._hour_blocks, 8)
        p = self.params
        vol = p.vol_per_second[:, None] * self._vol_multiplier(hour)
        if self.market_vol is not None:
            shared = self.market_vol(hour * SECONDS_PER_HOUR, (hour + 1) * SECONDS_PER_HOUR)
            vol = vol * (shared if shared.ndim == 2 else shared[None, :])
        if p.vol_cap is not None:
            vol = np.minimum(vol, p.vol_cap * p.vol_per_second[:, None])
        rng = keyed_rng(self.seed, self.stream + "/path", hour)
        if self.mixing is None:
            steps = self._mix(rng.standard_normal((self.n, SECONDS_PER_HOUR)).T, "/factor", hour).T * vol
        else:
            steps = (self.mixing @ rng.standard_normal((self.sources, SECONDS_PER_HOUR))) * vol
        shock = rng.random((self.n, SECONDS_PER_HOUR)) < p.shock_probability
        jump_sign = np.where(rng.random((self.n, SECONDS_PER_HOUR)) < 0.5, -1.0, 1.0)
        jump = jump_sign * (0.5 + rng.random((self.n, SECONDS_PER_HOUR))) * p.shock_log_size[:, None]
        if p.shocks_per_hour > 0:  # a steady news flow: every hour has its shocks, at keyed instruments and seconds
            shock = np.zeros_like(shock)
            shock[rng.integers(0, self.n, p.shocks_per_hour), rng.integers(0, SECONDS_PER_HOUR, p.shocks_per_hour)] = (
                True
            )
        steps = np.where(shock, steps + jump, steps)
        walk = np.cumsum(steps, axis=1)  # walk[:, t] = W(t + 1)
        frac = np.arange(SECONDS_PER_HOUR) / SECONDS_PER_HOUR
        w_before = np.concatenate([np.zeros((self.n, 1)), walk[:, :-1]], axis=1)  # W(t), t = 0..3599
        bridge = w_before - frac[None, :] * walk[:, -1:]
        a0, a1 = self.hour_anchor(hour), self.hour_anchor(hour + 1)
        log_price = a0[:, None] + frac[None, :] * (a1 - a0)[:, None] + bridge
        block = (log_price, vol, shock)
        self._hour_blocks[hour] = block
        return block

    def slice(self, first_second: int, end_second: int) -> PathSlice:
        """Path over ``[first_second, end_second)`` (log price also at ``end_second``)."""
        n = end_second - first_second
        log_price = np.empty((self.n, n + 1))
        vol = np.empty((self.n, n))
        shock = np.empty((self.n, n), dtype=bool)
        s = first_second
        while s <= end_second:
            hour, off = divmod(s, SECONDS_PER_HOUR)
            take = min(SECONDS_PER_HOUR - off, end_second + 1 - s)
            lp, v, sh = self._hour_block(hour)
            i = s - first_second
            log_price[:, i : i + take] = lp[:, off : off + take]
            k = min(take, n - i)
            if k > 0:
                vol[:, i : i + k] = v[:, off : off + k]
                shock[:, i : i + k] = sh[:, off : off + k]
            s += take
        return PathSlice(first_second, log_price, vol, shock)

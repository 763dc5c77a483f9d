"""FX engine: L2 books (market_data), top of book (core_price) and trades (fx_trades):
docs/data-model.md#fx-generation.

For every absolute second the engine draws, from generators keyed by that second alone:
* how many market_data, core_price and order events it holds: inside the configured U[min, max],
  placed by the market's ``Activity`` (busy around the London/New York overlap, quiet in the late
  Asian hours, busy seconds clustered together);
* which pair each quote belongs to (every pair quoted at least twice a second, the rest weighted by
  liquidity) and where in the second it falls (in bursts, not as a Poisson stream);
* the orders: pair by liquidity rank, side, passive/aggressive, round-ticket size, limit, ECN,
  counterparty.

Prices come from the shared ``PricePath``, whose volatility follows the same activity: the first
quote of a pair in a second sits on the path's open anchor and the last on its close anchor, so
``close(N) == open(N+1)`` for every pair; quotes between them follow a Brownian bridge plus
microstructure noise that is a continuous function of absolute time (so successive quotes share
most of it: a bounce, not white noise), and spreads persist from second to second. core_price rows
are one ECN's top of a subset of the stored books (always including each pair's first and last book
of the second), and orders execute against the stored book in force, mostly at its touch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mkt_pipeline.core.activity import Activity, Cluster, HourlyProfile, second_uniforms
from mkt_pipeline.core.arrivals import Layout, build_layout, draw_second, weights_cdf
from mkt_pipeline.core.books import MAX_BOOK_LEVELS, VolumeLadder, build_books, log_ladder
from mkt_pipeline.core.engine import ConfigError, Engine, book_batch_rows, check_positive, check_range, check_seed
from mkt_pipeline.core.factors import correlation, mixing_matrix
from mkt_pipeline.core.keyed_random import keyed_rng, uuid4_words
from mkt_pipeline.core.lei import MAX_POOL_SIZE, lei_pool
from mkt_pipeline.core.order_flow import ImpactKernel, ParentOrders, buy_probability
from mkt_pipeline.core.price_path import PathParams, PricePath
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.tables import (
    FX_CORE_PRICE,
    FX_MARKET_DATA,
    FX_TABLES,
    FX_TRADES,
    SymbolColumn,
    TableBatch,
    UuidColumn,
)
from mkt_pipeline.core.timeline import NS_PER_US, SECONDS_PER_HOUR, US_PER_S
from mkt_pipeline.fx import currencies as fxc
from mkt_pipeline.fx import universe as fxu

ECNS = ("LMAX", "EBS", "Hotspot", "Currenex")
ECN_WEIGHTS = np.array([0.35, 0.30, 0.20, 0.15])
REASONS = ("normal", "news_event", "liquidity_event")
SIDES = ("buy", "sell")

QUOTES_PER_PAIR_PER_SECOND = 2  # guaranteed: a first (open) and a last (close) book per pair
MOMENTUM_LOOKBACK_S = 10
NEWS_PERSISTENCE_S = 5  # core rows keep reason=news_event this long after a shock
STRESS_PROBABILITY = 0.0005  # ≈0.05% of seconds per pair have a liquidity-stress spread
# one shock an hour across the 30 pairs (under one per pair per day): a jump of 10+ pips is rare
# news, and a day's 1-minute returns are fat-tailed through volatility clustering instead
SHOCKS_PER_HOUR = 1
MAJOR_SHOCK_PIPS = 8.0  # typical jump of a major; each shock is 0.5-1.5x this
LADDER_REFERENCE_LEVELS = 50  # the ladder's shape is defined on 50 levels whatever the depth
MAX_AGGRESSIVE_LEVELS = 11  # a limit 3-10 pips through the touch reaches at most 11 levels
MAX_FILLS_PER_ORDER = 16
MAKERS_PER_PASSIVE = 3  # a resting order fills against 1-3 takers, each fill its own print
AT_TOUCH_TAKER_SHARE = 0.85  # aggressive orders that take only what the touch shows (IOC at the touch)
PASSIVE_LEVEL_WEIGHTS = np.array([0.8, 0.15, 0.05])  # passive orders join the touch, or rest 1-2 pips behind
CORE_REACH_WEIGHTS = np.array([0.5, 0.3, 0.2])  # book level (1-3) whose cumulative volume an ECN's top reaches
_ORDER_SIZE_MEDIAN = 500_000.0
_ORDER_SIZE_SIGMA = 1.0
_ORDER_SIZE_BOUNDS = (100_000.0, 100_000_000.0)

# Activity by UTC hour, as the logit of where a second sits in its count range: the London/New York
# overlap (12-16) near the top, London and New York around it, Tokyo in between, and the late
# Asian hours / the gap after the New York close near the bottom.
HOURLY_ACTIVITY = (
    -1.2,
    -0.8,
    -1.4,
    -3.0,
    -3.4,
    -3.4,
    -1.8,
    0.6,  # 00-07 Tokyo, then the late Asian lull, London opens
    1.6,
    1.8,
    1.6,
    1.6,
    2.8,
    3.4,
    3.4,
    3.0,  # 08-15 London; from 12 the overlap with New York
    1.4,
    0.6,
    0.0,
    -0.8,
    -1.8,
    -3.4,
    -3.6,
    -2.4,  # 16-23 New York afternoon, then the evening gap
)
ACTIVITY_CLUSTERS = (
    Cluster(step_s=1, decay=0.9, taps=60, count_sigma=0.7, vol_sigma=0.0),  # bursts of busy seconds
    Cluster(step_s=60, decay=0.7, taps=15, count_sigma=0.2, vol_sigma=0.5),  # volatile minutes
    Cluster(step_s=60, decay=0.97, taps=180, count_sigma=0.3, vol_sigma=0.35),  # busy, volatile half-hours
)
ACTIVITY_VOL_EXPONENT = 0.15  # volatility across the day: exp(0.15 * activity), ~2.7x overlap vs late Asia
ACTIVITY_JITTER = 0.05  # share of a second's count range left to its own uniform draw
ARRIVAL_BURSTINESS = 1.4  # sigma of a second's log intensity profile (inter-arrival CV ~2)
PAIR_VOL_OF_VOL = 0.3  # per-pair volatility regimes on top of the market-wide ones
ANCHOR_MEMORY_HOURS = 120  # the path reverts to the reference over about five days
ANCHOR_HOURLY_SHARE = 0.5  # hour-to-hour anchor moves, as a share of what the per-second vol implies
PAIR_NOISE_PIPS = 0.1  # each pair's own small, mean-reverting deviation from the ratio of its legs
NOISE_KNOT_US = 30_000_000  # pair noise: keyed knots every 30 s, interpolated in between
# Dealers re-quote when the price has moved, not on every tick of the fair value: a currency's quoted
# value holds until its fair value (path + impact) is STICKY_PIPS of its USD pair away, then jumps to
# it (and the pair's spread is re-set with it). Rounding a finely sampled fair value instead would make
# mids flicker across a pip boundary and back (a bounce near -1). The hold restarts every
# STICKY_EPOCH_S (so a window re-derives at most that much of it, and of the order flow behind it).
STICKY_PIPS = 0.5
STICKY_OVERSHOOT = 0.15  # a re-quote overshoots the move by this share, so the next one leans back (a bounce)
# The touch is taken or pulled and then refilled: at FADE_SHARE of second boundaries (keyed, per
# pair) both sides of the book stand one pip out. The mid holds (no bounce); the bid and ask move
# within most seconds, so 1-second candles are real candles even when the price has not moved.
FADE_SHARE = 0.25
STICKY_EPOCH_S = 300
SPREAD_PERSISTENCE = 0.95  # per second: a pair's spread regime lasts ~20 s
# order flow with memory: parent orders per pair, born at PARENT_RATE per second, live a Pareto
# (tail PARENT_TAIL) number of seconds from PARENT_MIN_LIFE_S, capped at PARENT_MAX_LIFE_S (the
# look-back a window re-draws); a child order follows a live parent with probability N / (N + PARENT_INDEPENDENT)
PARENT_RATE = 1.0 / 30.0
PARENT_MIN_LIFE_S = 10
PARENT_MAX_LIFE_S = 900
PARENT_TAIL = 1.5
PARENT_INDEPENDENT = 0.5
# price impact (``FxEngine._push``): an order moves its pair by IMPACT_SCALE x the pair's per-second vol x
# (filled / (IMPACT_SIZE_UNIT x the pair's liquidity)) ** IMPACT_SIZE_POWER (concave in what it took) x its
# surprise (its sign less the sign the live parents predict), applied to its currency legs, decaying over
# IMPACT_TIMESCALE_S (gone after IMPACT_HORIZON_S)
IMPACT_SCALE = 0.4
IMPACT_SIZE_UNIT = 100_000.0  # the typical touch of a pair of liquidity 1 (scaled by each pair's liquidity)
IMPACT_SIZE_POWER = 0.5
IMPACT_TIMESCALE_S = 60.0
IMPACT_HORIZON_S = 300
IMPACT_LEVELS = 3  # the impact counts what an order takes from the book's first 3 levels (the smallest usual depth)
IMPACT_CACHE_SECONDS = 4 * 3600  # pushes kept ahead of a run (a window's own); older ones are dropped


@dataclass(frozen=True)
class FxConfig:
    """Generation settings; field names are the seed script's flag names."""

    seed: int = 42
    market_data_min_eps: int = 1200
    market_data_max_eps: int = 15000
    core_min_eps: int = 700
    core_max_eps: int = 1000
    orders_min_per_sec: int = 5
    orders_max_per_sec: int = 30
    lei_pool_size: int = 2000
    min_levels: int = 40
    max_levels: int = 40

    def validate(self) -> FxConfig:
        check_seed(self.seed)
        for flag in ("market_data_min_eps", "core_min_eps", "lei_pool_size", "min_levels"):
            check_positive(flag, getattr(self, flag))
        check_positive("orders_min_per_sec", self.orders_min_per_sec, allow_zero=True)
        check_range("market_data_min_eps", self.market_data_min_eps, "market_data_max_eps", self.market_data_max_eps)
        check_range("core_min_eps", self.core_min_eps, "core_max_eps", self.core_max_eps)
        check_range("orders_min_per_sec", self.orders_min_per_sec, "orders_max_per_sec", self.orders_max_per_sec)
        check_range("min_levels", self.min_levels, "max_levels", self.max_levels)
        if self.market_data_min_eps <= self.core_max_eps:
            raise ConfigError(
                f"{{market_data_min_eps}} ({self.market_data_min_eps}) must be > {{core_max_eps}} ({self.core_max_eps}): "
                "books update faster than top-of-book snapshots",
                "market_data_min_eps",
                "core_max_eps",
            )
        if self.core_min_eps <= self.orders_max_per_sec:
            raise ConfigError(
                f"{{core_min_eps}} ({self.core_min_eps}) must be > {{orders_max_per_sec}} ({self.orders_max_per_sec}): "
                "prices update more often than orders arrive",
                "core_min_eps",
                "orders_max_per_sec",
            )
        floor = QUOTES_PER_PAIR_PER_SECOND * len(fxu.PAIRS)
        for flag in ("market_data_min_eps", "core_min_eps"):
            if getattr(self, flag) < floor:
                raise ConfigError(
                    f"{{{flag}}} ({getattr(self, flag)}) must be >= {floor}: every pair needs its open and close "
                    "row each second for continuous 1-second candles",
                    flag,
                )
        if self.max_levels > MAX_BOOK_LEVELS:
            raise ConfigError(f"{{max_levels}} must be <= {MAX_BOOK_LEVELS} (got {self.max_levels})", "max_levels")
        if self.lei_pool_size > MAX_POOL_SIZE:
            raise ConfigError(
                f"{{lei_pool_size}} must be <= {MAX_POOL_SIZE:_} (got {self.lei_pool_size:_})", "lei_pool_size"
            )
        if self.market_data_max_eps >= US_PER_S // 2:
            raise ConfigError(
                f"{{market_data_max_eps}} ({self.market_data_max_eps}) must be < {US_PER_S // 2} (µs timestamps)",
                "market_data_max_eps",
            )
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def _multiplier_rms() -> float:
    """Root mean square over a day of the market-wide times the per-pair volatility multiplier."""
    seasonal = HourlyProfile(HOURLY_ACTIVITY)(np.arange(0, 86400, 60))
    clustered = sum(c.vol_sigma**2 for c in ACTIVITY_CLUSTERS)
    # E[exp(2aX - a^2)] = exp(a^2) for a unit normal X, for each lognormal factor
    return float(
        np.sqrt(np.mean(np.exp(2 * ACTIVITY_VOL_EXPONENT * seasonal)) * np.exp(clustered + PAIR_VOL_OF_VOL**2))
    )


def _path_params() -> PathParams:
    """The currencies' paths (against USD): each currency's vol and jumps are its USD pair's."""
    usd = [i for i, _ in fxc.usd_pairs().values()]
    level = fxu.column("level")[usd]
    pip = np.array([fxu.PAIRS[i].pip for i in usd])
    spread_hi = fxu.column("spread_pips")[usd, 1]
    annual = fxc.ANNUAL_VOL
    # majors jump ~8 pips; proportionally more where spreads are wide
    shock_pips = np.maximum(MAJOR_SHOCK_PIPS, 2.0 * spread_hi)
    # ``annual_vol`` is the realised vol: divide out the RMS of the volatility multipliers
    per_second = annual / np.sqrt(260 * 86400.0) / _multiplier_rms()
    # stationary deviation of a tapered anchor whose hourly steps are ANCHOR_HOURLY_SHARE of the
    # per-second vol over an hour (the unit-variance taper has hourly steps of sqrt(3 / taps))
    hourly = ANCHOR_HOURLY_SHARE * per_second * np.sqrt(3600.0)
    return PathParams(
        vol_per_second=per_second,
        anchor_sigma=hourly * np.sqrt(ANCHOR_MEMORY_HOURS / 3.0),
        shock_log_size=shock_pips * pip / level,
        shock_probability=0.0,
        shocks_per_hour=SHOCKS_PER_HOUR,
        vol_of_vol=PAIR_VOL_OF_VOL,
        anchor_memory_hours=ANCHOR_MEMORY_HOURS,
    )


class FxEngine(Engine):
    """Pure function from (config, seed, reference prices, window) to the three FX tables."""

    market = "fx"
    schemas = FX_TABLES
    dense_schemas = (FX_MARKET_DATA, FX_CORE_PRICE)

    def __init__(self, config: FxConfig, references: ReferencePrices, batch_rows: int | None = None):
        self.config = config.validate()
        if tuple(references.symbols) != fxu.SYMBOLS:
            raise ValueError("reference prices must cover the FX universe in its order")
        # ~8 MB of market_data per batch: arrays that size also stay in cache
        super().__init__(book_batch_rows(config.max_levels, 8 << 20) if batch_rows is None else batch_rows)
        self.references = references
        seed = config.seed
        self.n = len(fxu.PAIRS)
        self.pips_per_unit = np.array([p.pips_per_unit for p in fxu.PAIRS], dtype=np.int64)
        self.spread_lo = fxu.column("spread_pips", np.int64)[:, 0]
        self.spread_hi = fxu.column("spread_pips", np.int64)[:, 1]
        self.liquidity = fxu.column("liquidity")
        self.activity = Activity(
            seed,
            "fx/activity",
            HourlyProfile(HOURLY_ACTIVITY),
            ACTIVITY_CLUSTERS,
            count_jitter=ACTIVITY_JITTER,
            vol_exponent=ACTIVITY_VOL_EXPONENT,
        )
        # currencies against USD, correlated through the factor blocs; pairs are differences of legs
        self.legs = fxc.leg_matrix()
        self.leg_map = fxc.LegMap()
        mixing = mixing_matrix(fxc.LOADINGS)
        self.corr = correlation(mixing)
        self.path = PricePath(
            seed,
            "fx/currency_path",
            _path_params(),
            fxc.CurrencyReferences(references),
            market_vol=self.activity.volatility,
            mixing=mixing,
        )
        self.base_vol = self.leg_map.vol(self.path.params.vol_per_second, self.corr)  # each pair's, per second
        self.impact_legs = self.legs / np.abs(self.legs).sum(axis=1, keepdims=True)  # a cross moves each leg by half
        self.impact_scale = IMPACT_SCALE * fxu.column("annual_vol") / np.sqrt(260 * 86400.0)
        self.parents = ParentOrders(
            seed, "fx/parents", np.full(self.n, PARENT_RATE), PARENT_MIN_LIFE_S, PARENT_MAX_LIFE_S, PARENT_TAIL
        )
        self.kernel = ImpactKernel(IMPACT_HORIZON_S, IMPACT_TIMESCALE_S)
        self._impact_cache: dict[int, np.ndarray] = {}
        # quotes: majors update ~3x as often as the rest; orders: top pairs ~10x exotics
        rank = fxu.column("rank", np.int64)
        self.quote_cdf = weights_cdf(np.where(rank < 10, 3.0, 1.0))
        self.order_cdf = weights_cdf(np.where(rank < 10, 10.0, 1.0))
        self.ecn_cdf = weights_cdf(ECN_WEIGHTS)
        low, high = log_ladder(
            max(LADDER_REFERENCE_LEVELS, config.max_levels), 5e4, 1e5, 5e8, 1e9, LADDER_REFERENCE_LEVELS, shape=0.6
        )
        self.ladder = VolumeLadder(seed, "fx", low, high, granularity=1000.0)
        self.leis = lei_pool(config.lei_pool_size)
        self._spread_blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._spread_normals: dict[int, np.ndarray] = {}
        self._noise_blocks: dict[int, np.ndarray] = {}
        w = SPREAD_PERSISTENCE ** np.arange(60)
        self._spread_w = w / np.sqrt(np.sum(w * w))
        self.noise_pips = np.full(self.n, PAIR_NOISE_PIPS)
        usd = [i for i, _ in fxc.usd_pairs().values()]
        self.sticky_log = STICKY_PIPS / (fxu.column("level")[usd] * self.pips_per_unit[usd])
        self._sticky_epochs: dict[int, list] = {}
        self.passive_level_cdf = weights_cdf(PASSIVE_LEVEL_WEIGHTS)
        self.core_reach_cdf = weights_cdf(CORE_REACH_WEIGHTS)

    @property
    def max_rows_per_second(self) -> int:
        return self.config.market_data_max_eps

    # --- per-second counts ------------------------------------------------------------------
    def _md_rng(self, s: int) -> np.random.Generator:
        return keyed_rng(self.config.seed, "fx/md", s)

    def _core_rng(self, s: int) -> np.random.Generator:
        return keyed_rng(self.config.seed, "fx/core", s)

    def _orders_rng(self, s: int) -> np.random.Generator:
        return keyed_rng(self.config.seed, "fx/orders", s)

    def _counts(self, first_second: int, end_second: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """market_data, core_price and order counts per second, each inside its configured range."""
        c, seed = self.config, self.config.seed

        def count(stream: str, low: int, high: int) -> np.ndarray:
            u = second_uniforms(seed, stream, first_second, end_second)
            return self.activity.counts(first_second, end_second, low, high, u)

        return (
            self._md_counts(first_second, end_second),
            count("fx/core_count", c.core_min_eps, c.core_max_eps),
            self._order_counts(first_second, end_second),
        )

    def _order_counts(self, first_second: int, end_second: int) -> np.ndarray:
        c = self.config
        u = second_uniforms(c.seed, "fx/orders_count", first_second, end_second)
        return self.activity.counts(first_second, end_second, c.orders_min_per_sec, c.orders_max_per_sec, u)

    def planned_per_second(self, first_second: int, end_second: int) -> dict[str, np.ndarray]:
        """market_data, core_price and order counts of each whole second, without generating rows."""
        md, core, orders = self._counts(first_second, end_second)
        return {"market_data": md, "core_price": core, "orders": orders}

    # --- spreads ------------------------------------------------------------------------------
    def _spread_block(self, hour: int) -> tuple[np.ndarray, np.ndarray]:
        block = self._spread_blocks.get(hour)
        if block is None:
            if len(self._spread_blocks) > 8:
                self._spread_blocks.pop(next(iter(self._spread_blocks)))
            # a moving average of keyed normals (the previous hour supplies the look-back), squashed
            # to (0, 1): a pair's spread regime persists for tens of seconds instead of flickering
            taps = len(self._spread_w)
            normals = np.concatenate(
                [self._spread_normal_block(hour - 1)[:, -(taps - 1) :], self._spread_normal_block(hour)], axis=1
            )
            smooth = np.stack([np.convolve(row, self._spread_w, mode="valid") for row in normals])
            u = 1.0 / (1.0 + np.exp(-1.7 * smooth))
            rng = keyed_rng(self.config.seed, "fx/stress", hour)
            stress = rng.random((self.n, SECONDS_PER_HOUR)) < STRESS_PROBABILITY
            widen = np.where(stress, rng.integers(3, 6, (self.n, SECONDS_PER_HOUR)), 1)
            fade = ((rng.random((self.n, SECONDS_PER_HOUR)) < FADE_SHARE) & ~stress).astype(np.int64)
            block = self._spread_blocks[hour] = (u, widen, fade)
        return block

    def _spread_normal_block(self, hour: int) -> np.ndarray:
        block = self._spread_normals.get(hour)
        if block is None:
            if len(self._spread_normals) > 8:
                self._spread_normals.pop(next(iter(self._spread_normals)))
            block = self._spread_normals[hour] = keyed_rng(self.config.seed, "fx/spread", hour).standard_normal(
                (self.n, SECONDS_PER_HOUR)
            )
        return block

    def _noise_knots(self, first_knot: int, end_knot: int) -> np.ndarray:
        """(n_pairs, knots) keyed unit normals of the microstructure noise, on the absolute knot grid."""
        per_hour = SECONDS_PER_HOUR * US_PER_S // NOISE_KNOT_US
        out = np.empty((self.n, end_knot - first_knot))
        k = first_knot
        while k < end_knot:
            hour, off = divmod(k, per_hour)
            take = min(per_hour - off, end_knot - k)
            block = self._noise_blocks.get(hour)
            if block is None:
                if len(self._noise_blocks) > 4:
                    self._noise_blocks.pop(next(iter(self._noise_blocks)))
                block = self._noise_blocks[hour] = keyed_rng(self.config.seed, "fx/noise", hour).standard_normal(
                    (self.n, per_hour)
                )
            out[:, k - first_knot : k - first_knot + take] = block[:, off : off + take]
            k += take
        return out

    def _stress(self, first_boundary: int, end_boundary: int) -> tuple[np.ndarray, np.ndarray]:
        """(pairs, boundaries) spread multiplier (several times wider in a rare liquidity-stress second)
        and fade (1: both sides one pip out; never with stress)."""
        widen = np.empty((self.n, end_boundary - first_boundary), dtype=np.int64)
        fades = np.empty_like(widen)
        b = first_boundary
        while b < end_boundary:
            hour, off = divmod(b, SECONDS_PER_HOUR)
            take = min(SECONDS_PER_HOUR - off, end_boundary - b)
            _, bw, bf = self._spread_block(hour)
            widen[:, b - first_boundary : b - first_boundary + take] = bw[:, off : off + take]
            fades[:, b - first_boundary : b - first_boundary + take] = bf[:, off : off + take]
            b += take
        return widen, fades

    def _sticky_epoch(self, epoch: int, upto: int) -> tuple[np.ndarray, np.ndarray]:
        """Quoted (sticky) currency values and pair base spreads at the first ``upto`` boundaries of ``epoch``.

        A sequential pass from the epoch's start (the hold restarts there, so it is a pure function of
        the epoch); kept per epoch and extended, so a run moving forward does each boundary once.
        """
        entry = self._sticky_epochs.get(epoch)
        if entry is None:
            while len(self._sticky_epochs) >= 2 + 2 * SECONDS_PER_HOUR // STICKY_EPOCH_S:
                self._sticky_epochs.pop(next(iter(self._sticky_epochs)))
            entry = self._sticky_epochs[epoch] = [
                np.empty((len(fxc.CODES), STICKY_EPOCH_S)),
                np.empty((self.n, STICKY_EPOCH_S), dtype=np.int64),
                0,
            ]
        values, spreads, done = entry
        if done < upto:
            h0 = epoch * STICKY_EPOCH_S
            hour, into = divmod(h0, SECONDS_PER_HOUR)
            path = self.path.slice(h0 + done, h0 + upto)
            fair = path.log_price[:, : upto - done] + self._impact(h0 + done, h0 + upto)
            ratio = self.leg_map.vol(path.vol, self.corr) / self.base_vol[:, None]
            u = self._spread_block(hour)[0][:, into + done : into + upto]
            lo, hi = self.spread_lo[:, None], self.spread_hi[:, None]
            # mostly tight, wider when volatility clusters
            target = np.maximum(lo, np.rint((lo + (hi - lo) * u * u) * np.clip(ratio, 1.0, 1.5)).astype(np.int64))
            h = self.sticky_log
            for j in range(upto - done):
                k = done + j
                if k == 0:
                    values[:, 0], spreads[:, 0] = fair[:, 0], target[:, 0]
                    continue
                prev = values[:, k - 1]
                moved = np.abs(fair[:, j] - prev) > h
                values[:, k] = np.where(moved, fair[:, j] + STICKY_OVERSHOOT * (fair[:, j] - prev), prev)
                spreads[:, k] = np.where(self.leg_map.either(moved[:, None])[:, 0], target[:, j], spreads[:, k - 1])
            entry[2] = upto
        return values, spreads

    def _quoted(self, first_boundary: int, end_boundary: int) -> tuple[np.ndarray, np.ndarray]:
        """(currencies, boundaries) quoted log values and (pairs, boundaries) base spreads in ``[first, end)``."""
        values = np.empty((len(fxc.CODES), end_boundary - first_boundary))
        spreads = np.empty((self.n, end_boundary - first_boundary), dtype=np.int64)
        b = first_boundary
        while b < end_boundary:
            epoch, off = divmod(b, STICKY_EPOCH_S)
            take = min(STICKY_EPOCH_S - off, end_boundary - b)
            v, sp = self._sticky_epoch(epoch, off + take)
            values[:, b - first_boundary : b - first_boundary + take] = v[:, off : off + take]
            spreads[:, b - first_boundary : b - first_boundary + take] = sp[:, off : off + take]
            b += take
        return values, spreads

    def _pair_noise(self, first_boundary: int, end_boundary: int) -> np.ndarray:
        """(pairs, boundaries) each pair's own deviation in pips: keyed knots every 30 s, interpolated."""
        per_knot = NOISE_KNOT_US // US_PER_S
        b = np.arange(first_boundary, end_boundary)
        knot, frac = np.divmod(b, per_knot)
        knots = self._noise_knots(int(knot[0]), int(knot[-1]) + 2)
        w = frac / per_knot
        return (knots[:, knot - knot[0]] * (1.0 - w) + knots[:, knot - knot[0] + 1] * w) * self.noise_pips[:, None]

    # --- generation ---------------------------------------------------------------------------
    def generate_seconds(self, first_second: int, end_second: int) -> list[TableBatch]:
        lookback = MOMENTUM_LOOKBACK_S
        md_counts, core_counts, order_counts = self._counts(first_second, end_second)
        md_draws, coin, ladder_rows, depth = self._md_draws(first_second, end_second, md_counts)
        layout = build_layout(first_second, md_draws)
        # the orders and what they fill are price-free (the books' volumes and which book is in force):
        # their impact on this window's own prices is stored before the prices are derived
        orders = self._orders(
            first_second, end_second, order_counts, layout.cell_first, layout.cell_size, ladder_rows, depth
        )
        self._store_contributions(first_second, end_second, orders)

        path = self.path.slice(first_second - lookback, end_second + 1)
        # each currency's quoted log value in USD (its path plus the impact of recent order flow, held
        # until it moves), then the pairs as differences of their legs plus their own small noise:
        # pips-space anchors, column j is second first_second - lookback + j
        legs, base_spreads = self._quoted(first_second - lookback, end_second + 2)
        anchor = np.exp(self.leg_map.combine(legs)) * self.pips_per_unit[:, None]
        anchor += self._pair_noise(first_second - lookback, end_second + 2)
        pair_vol = self.leg_map.vol(path.vol, self.corr)
        pair_shock = self.leg_map.either(path.shock)  # a jump of either leg

        vol_pips = pair_vol * anchor[:, :-1]
        widen, fades = self._stress(first_second, end_second + 1)
        spreads = base_spreads[:, lookback:-1] * widen

        sym = layout.group
        sec = layout.second - first_second
        col = sec + lookback
        size = layout.size
        first = layout.rank == 0
        last = layout.rank == size - 1
        f = np.where(size > 1, layout.rank / np.maximum(size - 1, 1), 1.0)
        cell_of = layout.cell
        # the first quote of a second sits on its open anchor, the last on its close anchor; a re-quote
        # (new mid and spread) happens once, at a point of the second, when the two differ
        switch = coin[layout.cell_first[cell_of]]
        after = ~first & (last | (f >= switch))
        mid = np.where(after, anchor[sym, col + 1], anchor[sym, col])
        spread = np.where(after, spreads[sym, sec + 1], spreads[sym, sec])
        # a dealer centres the quote: of the spread and one pip wider, the one whose mid is nearer the
        # price (a whole-pip grid of bids and asks puts mids on half pips, so within a quarter pip)
        bid = np.floor(mid - spread / 2.0 + 0.5).astype(np.int64)
        wider = np.floor(mid - (spread + 1) / 2.0 + 0.5).astype(np.int64)
        use_wider = np.abs(wider + (spread + 1) / 2.0 - mid) < np.abs(bid + spread / 2.0 - mid) - 1e-9
        bid = np.where(use_wider, wider, bid)
        spread = spread + use_wider
        fade = np.where(after, fades[sym, sec + 1], fades[sym, sec])
        bid = bid - fade
        ask = bid + spread + 2 * fade

        quotes = _Quotes(layout, sym, bid, ask, depth, ladder_rows, mid)
        md = self._market_data(quotes)
        core = self._core_price(quotes, first_second, end_second, core_counts, anchor, vol_pips, pair_shock, lookback)
        trades = self._trades(quotes, first_second, orders)
        return [md, core, trades]

    def _volume_scale(self, sym: np.ndarray) -> np.ndarray:
        return self.liquidity[sym]

    def _market_data(self, q: _Quotes) -> TableBatch:
        order = np.argsort(q.layout.time_us, kind="stable")
        sym, bid, ask, depth, rows = q.sym[order], q.bid[order], q.ask[order], q.depth[order], q.ladder_rows[order]
        ppu = self.pips_per_unit[sym]
        scale = self._volume_scale(sym)
        bids = build_books(bid, depth, -1, ppu, self.ladder, rows[:, 0], scale)
        asks = build_books(ask, depth, +1, ppu, self.ladder, rows[:, 1], scale)
        return TableBatch(
            FX_MARKET_DATA,
            {
                "timestamp": q.layout.time_us[order],
                "symbol": SymbolColumn(sym.astype(np.int32), fxu.SYMBOLS),
                "bids": bids,
                "asks": asks,
                "best_bid": bid / ppu,
                "best_ask": ask / ppu,
            },
        )

    def _core_price(
        self, q: _Quotes, first_second, end_second, core_counts, anchor, vol_pips, shock, lookback
    ) -> TableBatch:
        layout = q.layout
        n_groups = layout.n_groups
        last = layout.rank == layout.size - 1
        boundary = (layout.rank == 0) | last
        picks, ecn_parts, reach_parts, share_parts = [], [], [], []
        for i, (s, n_core) in enumerate(zip(range(first_second, end_second), core_counts.tolist())):
            rng = self._core_rng(s)
            lo, hi = (
                layout.cell_first[i * n_groups],
                layout.cell_first[i * n_groups] + layout.cell_size[i * n_groups : (i + 1) * n_groups].sum(),
            )
            in_second = np.arange(lo, hi)
            mandatory = in_second[boundary[lo:hi]]
            if len(mandatory) > n_core:  # too few core events to pin every open and close
                mandatory = mandatory[:0]
            candidates = np.setdiff1d(in_second, mandatory, assume_unique=True)
            extra = n_core - len(mandatory)
            # systematic sampling: exactly `extra` distinct candidates, evenly spread in the second
            pos = np.floor((np.arange(extra) + rng.random()) * (len(candidates) / max(extra, 1))).astype(np.int64)
            chosen = np.sort(np.concatenate((mandatory, candidates[pos])))
            picks.append(chosen)
            ecn_parts.append(np.searchsorted(self.ecn_cdf, rng.random(n_core), side="right"))
            reach_parts.append(np.searchsorted(self.core_reach_cdf, rng.random((n_core, 2)), side="right"))
            share_parts.append(rng.random((n_core, 2)))
        idx = np.concatenate(picks)
        ecn = np.concatenate(ecn_parts)
        # ``chosen`` is sorted by layout index; the per-row draws follow it
        reach, share = np.concatenate(reach_parts), np.concatenate(share_parts)
        order = np.argsort(layout.time_us[idx], kind="stable")
        idx, ecn, reach, share = idx[order], ecn[order], reach[order], share[order]

        sym = q.sym[idx]
        sec = layout.second[idx] - first_second
        col = sec + lookback
        ppu = self.pips_per_unit[sym]
        scale = self._volume_scale(sym)
        bid_vol = self._core_volume(q.ladder_rows[idx, 0], q.depth[idx], scale, reach[:, 0], share[:, 0])
        ask_vol = self._core_volume(q.ladder_rows[idx, 1], q.depth[idx], scale, reach[:, 1], share[:, 1])
        # indicator1: short-term momentum of the mid against the path 10 s earlier, squashed to [0, 1]
        move = q.mid[idx] - anchor[sym, col - MOMENTUM_LOOKBACK_S]
        norm = vol_pips[sym, col] * np.sqrt(MOMENTUM_LOOKBACK_S) * 1.5 + 0.5
        indicator1 = 0.5 + 0.5 * np.tanh(move / norm)
        # indicator2: L1 order-book imbalance
        indicator2 = bid_vol / (bid_vol + ask_vol)
        recent_shock = np.zeros(len(idx), dtype=bool)
        for back in range(NEWS_PERSISTENCE_S):
            recent_shock |= shock[sym, col - back]
        stressed = (q.ask[idx] - q.bid[idx]) > self.spread_hi[sym]
        reason = np.where(recent_shock, 1, np.where(stressed, 2, 0)).astype(np.int32)
        return TableBatch(
            FX_CORE_PRICE,
            {
                "timestamp": layout.time_us[idx],
                "symbol": SymbolColumn(sym.astype(np.int32), fxu.SYMBOLS),
                "ecn": SymbolColumn(ecn.astype(np.int32), ECNS),
                "bid_price": q.bid[idx] / ppu,
                "bid_volume": bid_vol.astype(np.int64),
                "ask_price": q.ask[idx] / ppu,
                "ask_volume": ask_vol.astype(np.int64),
                "reason": SymbolColumn(reason, REASONS),
                "indicator1": indicator1,
                "indicator2": indicator2,
            },
        )

    def _core_volume(
        self, rows: np.ndarray, depth: np.ndarray, scale: np.ndarray, reach: np.ndarray, share: np.ndarray
    ) -> np.ndarray:
        """One ECN's size at the top: all of the book's levels before ``reach`` (0-2) and a share of
        that level, in whole thousands, so the level where the book's cumulative volume reaches it varies."""
        vols = self.ladder.volumes(rows, len(CORE_REACH_WEIGHTS), scale)
        reach = np.minimum(reach, np.minimum(depth, len(CORE_REACH_WEIGHTS)) - 1)
        cum = np.cumsum(vols, axis=1)
        rows_ = np.arange(len(rows))
        before = np.where(reach > 0, cum[rows_, np.maximum(reach - 1, 0)], 0.0)
        g = self.ladder.granularity
        part = np.maximum(g, np.ceil(share * vols[rows_, reach] / g) * g)  # (0, level]: in that level
        return before + part

    # --- order flow and its impact ----------------------------------------------------------
    def _md_counts(self, first_second: int, end_second: int) -> np.ndarray:
        c = self.config
        u = second_uniforms(c.seed, "fx/md_count", first_second, end_second)
        return self.activity.counts(first_second, end_second, c.market_data_min_eps, c.market_data_max_eps, u)

    def _md_draws(
        self, first_second: int, end_second: int, md_counts: np.ndarray
    ) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
        """Each second's quote draws (keyed by the second): arrivals, re-quote coin, ladder rows and depth
        of every quote, in layout order."""
        c = self.config
        draws, coin, rows, depths = [], [], [], []
        for s, n in zip(range(first_second, end_second), md_counts.tolist()):
            rng = self._md_rng(s)
            draws.append(draw_second(rng, n, self.quote_cdf, QUOTES_PER_PAIR_PER_SECOND, ARRIVAL_BURSTINESS))
            coin.append(rng.random(n))
            rows.append(rng.integers(0, self.ladder.rows, (n, 2)))
            if c.min_levels < c.max_levels:
                depths.append(rng.integers(c.min_levels, c.max_levels + 1, n))
        coin, ladder_rows = np.concatenate(coin), np.concatenate(rows)
        depth = np.concatenate(depths) if depths else np.full(len(coin), c.max_levels, dtype=np.int64)
        return draws, coin, ladder_rows, depth

    def _buy_probability(self, first_second: int, end_second: int) -> np.ndarray:
        """(pairs, seconds): probability that an order's aggressor buys, from the parent orders alive."""
        net, count = self.parents.state(first_second, end_second)
        return buy_probability(net, count, PARENT_INDEPENDENT)

    def _order_draws(self, s: int, n: int, p_buy: np.ndarray) -> dict[str, np.ndarray]:
        """The ``n`` orders of second ``s`` (keyed by ``s``); ``p_buy``: per pair, that second."""
        rng = self._orders_rng(s)
        sym = np.searchsorted(self.order_cdf, rng.random(n), side="right")
        u_time = rng.random(n) ** 2
        aggressor_buy = rng.random(n) < p_buy[sym]
        passive = rng.random(n) < 0.4
        size = np.clip(
            np.exp(np.log(_ORDER_SIZE_MEDIAN) + _ORDER_SIZE_SIGMA * rng.standard_normal(n)), *_ORDER_SIZE_BOUNDS
        )
        return dict(
            second=np.full(n, s, dtype=np.int64),
            index=np.arange(n, dtype=np.int64),
            sym=sym,
            u_time=u_time,
            buy=aggressor_buy ^ passive,  # a passive order is filled by a taker on the other side
            passive=passive,
            size=size,
            limit=np.where(rng.random(n) < AT_TOUCH_TAKER_SHARE, 0, rng.integers(3, 11, n)),
            passive_level=np.searchsorted(self.passive_level_cdf, rng.random(n), side="right"),
            maker_fills=rng.integers(1, MAKERS_PER_PASSIVE + 1, n),
            maker_split=rng.random((n, MAKERS_PER_PASSIVE)),
            ecn=np.searchsorted(self.ecn_cdf, rng.random(n), side="right"),
            cpty=np.floor(self.config.lei_pool_size * rng.random(n) ** 2).astype(np.int64),
            jitter=rng.integers(0, 40, (n, MAX_FILLS_PER_ORDER)),
        )

    def _orders(
        self,
        first_second: int,
        end_second: int,
        order_counts: np.ndarray,
        cell_first: np.ndarray,
        cell_size: np.ndarray,
        ladder_rows: np.ndarray,
        depth: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """The orders of ``[first, end)`` and what each fills, without prices: the book in force and,
        per level, the quantity taken (aggressive) or made (passive). ``cell_first``/``cell_size``: the
        quotes of each (second, pair) cell in layout order; ``ladder_rows``, ``depth``: per quote."""
        p_buy = self._buy_probability(first_second, end_second)
        parts = [
            self._order_draws(s, n, p_buy[:, i])
            for i, (s, n) in enumerate(zip(range(first_second, end_second), order_counts.tolist()))
        ]
        o = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        o["size"] = round_ticket(o["size"])
        cell = (o["second"] - first_second) * self.n + o["sym"]
        has_book = cell_size[cell] > 0
        o = {k: v[has_book] for k, v in o.items()}
        cell = cell[has_book]
        # orders arrive with the quotes (in the second's bursts): just after a random quote of the pair,
        # which is the stored book in force (a pair's quotes are at least 2 µs apart)
        snap = cell_first[cell] + np.floor(o["u_time"] * cell_size[cell]).astype(np.int64)
        o["snap"], o["cell_last"] = snap, cell_first[cell] + cell_size[cell] - 1
        o["p_buy"] = p_buy[o["sym"], o["second"] - first_second]
        n_orders = len(snap)
        book_depth = depth[snap]
        # side of the book the fills print on: aggressive buys lift asks, passive buys rest on bids
        on_ask = o["buy"] ^ o["passive"]
        rows = np.where(on_ask, ladder_rows[snap, 1], ladder_rows[snap, 0])
        vols = self.ladder.volumes(rows, MAX_AGGRESSIVE_LEVELS, self._volume_scale(o["sym"]))
        level = np.arange(MAX_AGGRESSIVE_LEVELS)[None, :]
        # aggressive: take only what the touch shows (most takers), or walk levels up to a limit
        # 3-10 pips through it and the book's depth, one print per level
        reachable = (level <= o["limit"][:, None]) & (level < book_depth[:, None])
        avail = np.where(reachable, vols, 0.0)
        before = np.cumsum(avail, axis=1) - avail
        aggressive_fill = np.clip(o["size"][:, None] - before, 0.0, avail)
        # passive: join the touch or rest 1-2 pips behind it; makers fill up to that level's volume
        p_level = np.minimum(o["passive_level"], book_depth - 1)
        p_total = np.minimum(o["size"], vols[np.arange(n_orders), p_level])
        passive_fill = np.zeros_like(aggressive_fill)
        passive_fill[:, :MAKERS_PER_PASSIVE] = self._split_among_makers(p_total, o["maker_fills"], o["maker_split"])
        passive = o["passive"][:, None]
        o["fill"] = np.where(passive, passive_fill, aggressive_fill)
        o["fill_level"] = np.where(passive, p_level[:, None], level)
        # what moves the price is the liquidity taken in the market, whatever depth the feed displays:
        # the same order against the book's first IMPACT_LEVELS levels (equal to the stored fills for
        # books at least that deep), so a 3-level and a 40-level feed carry the same prices
        market_avail = np.where((level <= o["limit"][:, None]) & (level < IMPACT_LEVELS), vols, 0.0)
        market_taken = np.clip(o["size"][:, None] - (np.cumsum(market_avail, axis=1) - market_avail), 0.0, market_avail)
        market_made = np.minimum(o["size"], vols[np.arange(n_orders), o["passive_level"]])
        o["taken"] = np.where(o["passive"], market_made, market_taken.sum(axis=1))
        return o

    def _push(self, first_second: int, end_second: int, o: dict[str, np.ndarray]) -> np.ndarray:
        """(seconds, currencies): how far each second's orders push each leg (log).

        An order pushes its pair by ``IMPACT_SCALE`` x the pair's per-second vol x the square root of
        what it took from (or made in) the market's book against the pair's typical touch (concave in size) x its surprise: its aggressor
        sign less the sign its live parents predict (foreseeable flow is already in the price). The
        push goes to the currency legs (a cross moves each leg by half), so crosses stay consistent.
        """
        sym = o["sym"]
        sign = np.where(o["buy"] ^ o["passive"], 1.0, -1.0)
        surprise = sign - (2.0 * o["p_buy"] - 1.0)
        filled = o["taken"] / (IMPACT_SIZE_UNIT * self.liquidity[sym])
        push = surprise * self.impact_scale[sym] * filled**IMPACT_SIZE_POWER
        out = np.zeros((end_second - first_second, len(fxc.CODES)))
        # sequential per second, in order: a second's sum never depends on the batch it is drawn in
        np.add.at(out, o["second"] - first_second, push[:, None] * self.impact_legs[sym])
        return out

    def _contributions(self, first_second: int, end_second: int) -> np.ndarray:
        """(seconds, currencies): the pushes of the orders of ``[first, end)``, re-drawn from their keys
        (quote arrivals and ladder rows for the books in force, then the orders), a minute at a time."""
        out = []
        for lo in range(first_second, end_second, 60):
            hi = min(lo + 60, end_second)
            draws, _, ladder_rows, depth = self._md_draws(lo, hi, self._md_counts(lo, hi))
            cell_size = np.concatenate([d.counts for d in draws]).astype(np.int64)
            cell_first = np.zeros_like(cell_size)
            np.cumsum(cell_size[:-1], out=cell_first[1:])
            o = self._orders(lo, hi, self._order_counts(lo, hi), cell_first, cell_size, ladder_rows, depth)
            out.append(self._push(lo, hi, o))
        return np.concatenate(out)

    def _store_contributions(self, first_second: int, end_second: int, o: dict[str, np.ndarray]) -> None:
        """Keep the pushes of a window's own orders, so its prices (and later windows') need not re-draw them."""
        for j, push in enumerate(self._push(first_second, end_second, o)):
            self._impact_cache[first_second + j] = push

    def _impact(self, first_boundary: int, end_boundary: int) -> np.ndarray:
        """(currencies, boundaries): the log move of every leg from recent order flow at each second
        boundary in ``[first, end)``; the orders of the kernel's look-back that no window has drawn yet
        are re-drawn from their keys (a run that moves forward draws each second's orders once)."""
        first = first_boundary - self.kernel.lookback_s
        end = end_boundary - self.kernel.delay_s
        cache = self._impact_cache
        stale = [s for s in cache if s < first or len(cache) > IMPACT_CACHE_SECONDS and s >= end]
        for s in stale:
            del cache[s]
        missing = [s for s in range(first, end) if s not in cache]
        if missing:
            lo, hi = missing[0], missing[-1] + 1
            for j, push in enumerate(self._contributions(lo, hi)):
                cache[lo + j] = push
        contributions = np.stack([cache[s] for s in range(first, end)], axis=1)
        return self.kernel.propagate(contributions)

    def _trades(self, q: _Quotes, first_second: int, o: dict[str, np.ndarray]) -> TableBatch:
        """The prints of the orders ``o`` (``_orders``) against the stored books in force."""
        c = self.config
        layout = q.layout
        snap = o["snap"]
        sec_start = o["second"] * US_PER_S
        t_snap = layout.time_us[snap]
        t_next = np.where(
            snap < o["cell_last"], layout.time_us[np.minimum(snap + 1, len(layout) - 1)], sec_start + US_PER_S
        )
        trade_us = np.minimum(t_snap + 1, t_next - 1)
        buy, passive, sym = o["buy"], o["passive"], o["sym"]
        on_ask = buy ^ passive
        touch = np.where(on_ask, q.ask[snap], q.bid[snap])
        direction = np.where(on_ask, 1, -1)
        fill, fill_level = o["fill"], o["fill_level"]

        oi, k = np.nonzero(fill > 0)
        qty = fill[oi, k]
        lvl = fill_level[oi, k]
        price_ticks = touch[oi] + direction[oi] * lvl
        ts = trade_us[oi] * NS_PER_US + 10 + k * 60 + o["jitter"][oi, k]
        order_counter = (o["second"][oi].astype(np.uint64) << np.uint64(24)) | o["index"][oi].astype(np.uint64)
        trade_counter = (
            (o["second"][oi].astype(np.uint64) << np.uint64(28))
            | (o["index"][oi].astype(np.uint64) << np.uint64(4))
            | k.astype(np.uint64)
        )
        order_hi, order_lo = uuid4_words(c.seed, "fx/order_id", order_counter)
        trade_hi, trade_lo = uuid4_words(c.seed, "fx/trade_id", trade_counter)
        srt = np.argsort(ts, kind="stable")
        tsym = sym[oi][srt]
        return TableBatch(
            FX_TRADES,
            {
                "timestamp": ts[srt],
                "symbol": SymbolColumn(tsym.astype(np.int32), fxu.SYMBOLS),
                "ecn": SymbolColumn(o["ecn"][oi][srt].astype(np.int32), ECNS),
                "trade_id": UuidColumn(trade_hi[srt], trade_lo[srt]),
                "side": SymbolColumn(np.where(buy[oi], 0, 1)[srt].astype(np.int32), SIDES),
                "passive": passive[oi][srt],
                "price": price_ticks[srt] / self.pips_per_unit[tsym],
                "quantity": qty[srt],
                "counterparty": SymbolColumn(o["cpty"][oi][srt].astype(np.int32), self.leis),
                "order_id": UuidColumn(order_hi[srt], order_lo[srt]),
            },
        )

    def _split_among_makers(self, total: np.ndarray, makers: np.ndarray, split: np.ndarray) -> np.ndarray:
        """``(n, MAKERS_PER_PASSIVE)`` parts of ``total`` for 1..MAKERS_PER_PASSIVE fills, in whole thousands."""
        g = self.ladder.granularity
        weights = np.where(np.arange(MAKERS_PER_PASSIVE)[None, :] < makers[:, None], split + 0.1, 0.0)
        cum = np.floor(total[:, None] / g * np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)) * g
        cum[:, -1] = total  # the last maker takes the remainder, so the parts add up exactly
        return np.diff(np.concatenate([np.zeros((len(total), 1)), cum], axis=1), axis=1)


def round_ticket(size: np.ndarray) -> np.ndarray:
    """Order sizes as dealers ticket them: 100k steps below 1M, whole millions to 20M, 5M steps above."""
    step = np.where(size < 1_000_000, 100_000.0, np.where(size < 20_000_000, 1_000_000.0, 5_000_000.0))
    return np.clip(np.round(size / step) * step, *_ORDER_SIZE_BOUNDS)


@dataclass
class _Quotes:
    """Per-quote arrays in layout order, shared by the three tables of a batch."""

    layout: Layout
    sym: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    depth: np.ndarray
    ladder_rows: np.ndarray
    mid: np.ndarray

"""U.S. equities engine (docs/data-model.md#equities-generation): 30 symbols × 5 venues of L2 books, and trades
against them.

How a window is built (all pure functions of absolute time, the seed and the references):

* **Consolidated reference quote.** For every symbol a step function ``N(t) = (nbb, nbo)`` on a
  grid of ``SLOTS_PER_SECOND`` slots: a Brownian bridge between the per-second ``PricePath``
  anchors gives the mid, a per-slot spread (1+ ticks, wider off-session, in the close auction, on
  shocks and during halts) gives the two sides, both whole ticks.
* **Venue quotes never cross.** Each venue quote is in force from its own update until that
  venue's next update, priced at the reference when it opens (minus/plus a small venue-specific
  "behind" offset), then pushed outward off the other venues' quotes in force at that instant: its
  bid at least one tick below each of their asks, its ask one tick above each of their bids. Any two
  quotes alive at once were cleared by the later of the two, so the NBBO formed from the quotes in
  force is never crossed or locked, however stale a venue is; a reference move reaches the NBBO as
  the venues holding the old prices requote (Reg NMS-style repricing rather than a wider touch).
* **Continuity.** The last quote of a (symbol, venue) in second N and its first quote in N+1 are
  one quote (same touch prices, refreshed sizes), priced when the first of them opens, so the venue's
  1-second candles join up whenever both seconds hold at least two quotes (always at session rates).
* **Trades** pick a (symbol, venue) and an instant, find the quote of that venue in force then
  (possibly the previous second's last one), and consume its displayed liquidity in time order;
  the print is at the deepest level reached and is stamped strictly between that quote and the
  venue's next one.

Computing a second needs the layout of its neighbours (a quote's price depends on the quotes in
force when it opened, up to two seconds back; its successor may be in the next second), so a batch
lays out ``_LOOK_BACK`` seconds before what it emits and one after; that is what keeps
``[a, m) + [m, b)`` identical to ``[a, b)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mkt_pipeline.core.activity import Activity, Cluster, second_uniforms
from mkt_pipeline.core.arrivals import WARP_POSITIONS, build_layout, draw_second, warp_offsets, weights_cdf
from mkt_pipeline.core.books import VolumeLadder
from mkt_pipeline.core.engine import ConfigError, Engine, book_batch_rows, check_positive, check_range, check_seed
from mkt_pipeline.core.keyed_random import keyed_rng, mix64, stream_key
from mkt_pipeline.core.price_path import PathParams, PricePath, _bounded
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.tables import EQUITIES_TIMESTAMP_COLUMNS, BookColumn, SymbolColumn, TableBatch, equities_tables
from mkt_pipeline.core.timeline import SECONDS_PER_HOUR, US_PER_S
from mkt_pipeline.equities import session
from mkt_pipeline.equities.universe import SYMBOLS, UNIVERSE, VENUE_SIZE_MULTIPLIERS, VENUES, factor_loadings

NS_PER_S = 1_000_000_000
TICKS_PER_DOLLAR = 100  # tick 0.01 USD

_QUOTE_WEIGHT_POWER = 1.5  # a symbol's share of quotes grows with its activity weight to this power
# Probability that a venue's quote sits exactly at the reference quote (else 1–2 ticks behind): a symbol's
# listing venue most often, then the other primary exchange, the two large books, IEX least.
_VENUE_AT_TOUCH = np.array([0.80, 0.80, 0.78, 0.78, 0.60])
_LISTING_AT_TOUCH = 0.92
# Venue preference of routers among the venues at the NBBO (and of hidden liquidity), calibrated to public
# market-share figures: the listing exchange leads its names, ARCA and Cboe BZX follow, IEX a few per cent.
_VENUE_ROUTE_WEIGHT = np.array([1.0, 1.0, 1.1, 1.15, 0.25])
_LISTING_ROUTE_WEIGHT = 2.6

SIDES = ("B", "S")
CONDITIONS = ("T", "O", "C", "H")
_COND_T, _COND_O, _COND_C, _COND_H = range(4)

# --- model constants ------------------------------------------------------------------------------
SLOTS_PER_SECOND = 20  # resolution of the reference quote (50 ms)
MIN_GAP_US = 2  # quotes of one (symbol, venue) are ≥ 2 µs apart: room for ns-stamped trades between them
MAX_LEVELS = 200
_SESSION_SECONDS_PER_YEAR = 252 * 23_400
_BRIDGE_SCALE = 0.2  # intra-second wiggle relative to the per-second volatility
_NOISE_SCALE = 2.5  # microstructure noise at each second start, relative to the per-second volatility
_JITTER = 0.1  # log-normal sigma of the reference spread per slot: venues quoting at different instants see near the same spread
_PHASE_SPREAD = np.array([3.0, 2.5, 1.0, 1.5, 2.0])  # reference spread multiplier per session phase
_SHOCK_SPREAD = 3.0
_HALT_SPREAD = 3.0
_BURST_CAP = 2.0  # close-auction per-second burst factor is clipped to [1/_BURST_CAP, _BURST_CAP]
_POS_BITS = 24  # events per second < 2**24; (second, position) packs into one id
_LOOK_BACK = 3  # seconds laid out before a batch's first (see generate_seconds)

# Trade size mix (docs/data-model.md#equities-generation): odd lots, round lots (multiples of 100, mostly small),
# blocks.
_P_ODD, _P_ROUND = 0.47, 0.46
_ROUND_LOT_CDF = weights_cdf(1.0 / np.arange(1, 11) ** 2)
_BLOCK_TAIL = 2.5  # Pareto tail of block sizes from 1,000 shares, capped at 10,000
# Share of orders that execute against midpoint or hidden liquidity (inside the spread): blocks mostly do.
_P_HIDDEN, _P_HIDDEN_BLOCK = 0.10, 0.95
# Share of lit orders that are market orders (walk the book past the NBBO); the rest are marketable
# limit orders at the NBBO. Keeps trade-throughs of the NBBO in force under 1 % (docs/data-model.md#realism-bands).
_P_MARKET_ORDER = 0.05
_P_FOLLOW = 0.25  # share of orders that arrive with the order before them in their second
# share of orders finding their touch taken that still fill (at the midpoint): this much per quote per order of
# their second, at most _P_REFILL_MAX
_P_REFILL_PER_QUOTE, _P_REFILL_MAX = 0.3, 0.5
# Cross sizes as a share of the symbol's expected continuous volume of the day (docs/data-model.md#realism-bands:
# the opening cross 1-3 % and the closing cross 5-10 % of the day's volume); a halt-resume cross as minutes of it.
_CROSS_SHARE = {_COND_O: 0.02, _COND_C: 0.08, _COND_H: 0.004}
_CROSS_SIGMA = 0.1  # log-normal spread of a cross around its share

# Clustered activity (core.activity): busy seconds come in runs, volatile minutes in regimes that last.
ACTIVITY_CLUSTERS = (
    Cluster(step_s=1, decay=0.9, taps=60, count_sigma=0.8, vol_sigma=0.0),  # bursts of busy seconds
    Cluster(step_s=60, decay=0.7, taps=15, count_sigma=0.2, vol_sigma=0.3),  # volatile minutes
    Cluster(step_s=60, decay=0.97, taps=180, count_sigma=0.3, vol_sigma=0.3),  # busy, volatile half-hours
)
ACTIVITY_JITTER = 0.08  # share of a second's count range left to its own uniform draw
ACTIVITY_VOL_EXPONENT = 0.3  # volatility follows the intraday activity profile
# ... and after the open it stays high for longer than activity does: the log multiplier starts this much higher
# and decays with _OPEN_VOL_DECAY_S (volatility at the open ~2x midday, elevated for an hour or two)
_OPEN_VOL_BOOST = 0.9
_OPEN_VOL_DECAY_S = 7200.0
_CLOSE_VOL_BOOST, _CLOSE_VOL_RISE_S = 0.4, 1800.0  # and it picks up again into the close
# News: jumps of about three 1-minute standard deviations (x0.5-1.5), ~3 per symbol and day (~1 in the session):
# the tails come from volatility that changes, not from a few jumps
_SHOCK_SIZE, _SHOCKS_PER_DAY = 0.010, 3.0
_VOL_OF_VOL = 0.5  # std of each symbol's own log volatility multiplier
_VOL_TAPS, _VOL_DECAY = 240, 0.985  # its regimes last about an hour (a moving average over four hours of minutes)
# ... times a fast one: bursts of a few minutes (keyed per symbol and minute), so every session holds many
# volatile and many calm minutes and its 1-minute returns are fat-tailed whatever its hour-long regimes did
_FAST_VOL_OF_VOL, _FAST_VOL_TAPS, _FAST_VOL_DECAY = 0.75, 10, 0.5
# the product of all volatility multipliers is capped at this many times the symbol's base volatility: regimes,
# the open and a burst that coincide do not stack into a few extreme minutes that would alone set the kurtosis
_VOL_CAP = 2.5
ARRIVAL_BURSTINESS = 0.8  # sigma of a second's log intensity profile: quotes and trades crowd into bursts (CV ~1.6)

# Order flow with memory: per symbol, parent orders are born at a keyed rate and live for a Pareto
# (heavy-tailed) number of seconds, buying or selling throughout; the net of the parents alive sets the
# probability that a child order buys. Parents born up to _FLOW_LOOK_BACK seconds earlier are re-drawn
# from their keys (never carried over), so the flow of any second is a pure function of time.
_FLOW_LOOK_BACK = 600  # longest parent, seconds
_PARENTS_PER_SECOND = 0.06  # births per symbol per second
_PARENT_MIN_S = 6.0  # shortest parent
_PARENT_TAIL = 1.3  # Pareto exponent of parent lifetimes
_FLOW_GAIN = 0.7  # buy probability (1 + tanh(gain * net parents)) / 2
# Price impact: each order's surprise (its sign minus the flow's expected sign) moves the reference mid from
# the next second on, by _IMPACT_SPREADS of the symbol's base spread per 100 shares' square root, decaying
# with _IMPACT_TAU_S; flow older than _IMPACT_LOOK_BACK seconds is forgotten.
_IMPACT_SPREADS = 0.22
_IMPACT_TAU_S = 60.0
_IMPACT_LOOK_BACK = 240
_ORDER_MEMO_S = 512  # seconds of drawn orders kept for the trades after the impact drew them
# A symbol's share of the orders of a second grows with its own volatility multiplier to this power.
_VOLUME_VOL_POWER = 1.0


_IMPACT_SHARE_MAX = 0.6  # at most this share of a symbol's 1-minute variance comes from the flow's impact


_FLOW_TANH_SPAN = 40
# by net parents: no batch-shaped transcendental math
_FLOW_TANH = np.tanh(_FLOW_GAIN * np.arange(-_FLOW_TANH_SPAN, _FLOW_TANH_SPAN + 1))
_IMPACT_KERNEL = np.exp(-np.arange(_IMPACT_LOOK_BACK) / _IMPACT_TAU_S)


def equities_ladder_bounds(levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-level share bounds from the seed: L1 100–400, L2 150–600, L3 200–800, then up to ~3,000–5,000."""
    low = np.concatenate(([100.0, 150.0, 200.0], np.geomspace(250.0, 3000.0, 37), np.full(max(0, levels - 40), 3000.0)))
    high = np.concatenate(
        ([400.0, 600.0, 800.0], np.geomspace(1000.0, 5000.0, 37), np.full(max(0, levels - 40), 5000.0))
    )
    return low[:levels], high[:levels]


# --- configuration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EquitiesConfig:
    """Engine settings; field names are the seed's flag names."""

    market_data_min_eps: int = 1000
    market_data_max_eps: int = 15000
    trades_min_eps: int = 800
    trades_max_eps: int = 1100
    session_pacing: bool = True
    offsession_trades: str = "none"
    min_levels: int = 40
    max_levels: int = 40
    seed: int = 42
    timestamp_column: str = "timestamp_ns"  # names the column only: the rows are the same either way

    def validate(self) -> EquitiesConfig:
        """Raise ``ConfigError`` naming the first flag that breaks a rule; return self."""
        if self.timestamp_column not in EQUITIES_TIMESTAMP_COLUMNS:
            raise ConfigError(
                f"{{timestamp_column}}: {self.timestamp_column!r} is not one of {', '.join(EQUITIES_TIMESTAMP_COLUMNS)}",
                "timestamp_column",
            )
        check_positive("market_data_min_eps", self.market_data_min_eps)
        check_range("market_data_min_eps", self.market_data_min_eps, "market_data_max_eps", self.market_data_max_eps)
        if self.market_data_max_eps > 1_000_000:
            raise ConfigError(
                f"{{market_data_max_eps}} must be <= 1000000 (got {self.market_data_max_eps})", "market_data_max_eps"
            )
        check_positive("trades_min_eps", self.trades_min_eps, allow_zero=True)
        check_range("trades_min_eps", self.trades_min_eps, "trades_max_eps", self.trades_max_eps)
        if self.trades_max_eps > 1_000_000:
            raise ConfigError(f"{{trades_max_eps}} must be <= 1000000 (got {self.trades_max_eps})", "trades_max_eps")
        check_positive("min_levels", self.min_levels)
        check_range("min_levels", self.min_levels, "max_levels", self.max_levels)
        if self.max_levels > MAX_LEVELS:
            raise ConfigError(f"{{max_levels}} must be <= {MAX_LEVELS} (got {self.max_levels})", "max_levels")
        if self.offsession_trades not in session.OFFSESSION_TRADES:
            raise ConfigError(
                f"{{offsession_trades}} must be one of {'|'.join(session.OFFSESSION_TRADES)} (got {self.offsession_trades!r})",
                "offsession_trades",
            )
        if not isinstance(self.session_pacing, (bool, np.bool_)):
            raise ConfigError(
                f"{{session_pacing}} must be true or false (got {self.session_pacing!r})", "session_pacing"
            )
        check_seed(self.seed)
        return self


# --- small vectorised helpers ---------------------------------------------------------------------
def _uniform(bits: np.ndarray) -> np.ndarray:
    """uint64 hash bits to floats in [0, 1)."""
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _lexsort_ints(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """``np.lexsort(keys)`` (last key primary) of integer keys, as one stable argsort of the keys
    packed into an int64 when their ranges fit: one sort pass instead of one per key."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lows = [int(k.min()) for k in keys]
    spans = [int(k.max()) - low + 1 for k, low in zip(keys, lows)]
    if math.prod(spans) >= 1 << 63:
        return np.lexsort(keys)
    packed, scale = np.zeros(n, dtype=np.int64), 1
    for k, low, span in zip(keys, lows, spans):
        packed += (k.astype(np.int64) - low) * scale
        scale *= span
    return np.argsort(packed, kind="stable")


def _ranks_within(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``keys``: position of each element within its run of equal keys, and the run length."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    lengths = np.diff(np.r_[starts, n])
    run = np.repeat(np.arange(len(starts)), lengths)
    return np.arange(n) - starts[run], lengths[run]


@dataclass
class _ByTime:
    """A plan's quotes per symbol in time order, and where each venue's latest quote is at every point."""

    order: np.ndarray  # plan events sorted by (symbol, ns since the plan's start, venue): unique keys
    key: np.ndarray  # the sorted keys
    latest: np.ndarray  # (venues, events): sorted position of the venue's latest quote at or before each position

    @classmethod
    def of(cls, sym: np.ndarray, ns: np.ndarray, venue: np.ndarray, n_venue: int) -> _ByTime:
        key = _time_key(sym, ns) | venue
        order = np.argsort(key, kind="stable")  # the layout's sorted runs make this a merge
        venue_s, running = venue[order], np.arange(len(order))
        latest = np.stack([np.maximum.accumulate(np.where(venue_s == v, running, -1)) for v in range(n_venue)])
        return cls(order, key[order], latest)


def _time_key(sym: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """Sort key of (symbol, ns since the plan's start), room for a venue in the low 3 bits."""
    return (sym << 58) | (ns << 3)


@dataclass
class _Plan:
    """Quote layout of seconds ``[lo, lo + n_seconds)`` and, for the events that need it, their quotes."""

    lo: int
    n_seconds: int
    time_ns: np.ndarray  # the layout's microsecond plus a keyed sub-µs part (never 0: crosses own the µs's first ns)
    group: np.ndarray
    cell: np.ndarray
    cell_first: np.ndarray
    cell_size: np.ndarray
    event_id: np.ndarray  # (second << _POS_BITS) | position in the second: keys per-event randomness
    by_time: _ByTime  # the priced events (below the last second) per symbol in time order
    next_ns: np.ndarray  # time of the same group's next quote (valid below the last planned second)
    bid: np.ndarray  # touch prices in ticks (valid below the last planned second)
    ask: np.ndarray
    depth: np.ndarray
    bid_row: np.ndarray  # volume-ladder rows
    ask_row: np.ndarray


class EquitiesEngine(Engine):
    """Equities market data and trades for any window, as a pure function of absolute time."""

    market = "equities"

    def __init__(self, config: EquitiesConfig, references: ReferencePrices, batch_rows: int | None = None):
        self.config = config.validate()
        # larger batches than FX's: each one also plans three seconds around it (_LOOK_BACK, look-ahead)
        super().__init__(book_batch_rows(config.max_levels, 30 << 20) if batch_rows is None else batch_rows)
        self.md_schema, self.trades_schema = self.schemas = equities_tables(config.timestamp_column)
        self.dense_schemas = (self.md_schema,)
        if tuple(references.symbols) != SYMBOLS:
            raise ValueError("equities references must list the equities universe in order")
        self.references = references
        self.pacing = session.SessionPacing(bool(config.session_pacing), config.offsession_trades)
        seed = config.seed
        self.n_sym = len(UNIVERSE)
        self.n_venue = len(VENUES)
        self.n_groups = self.n_sym * self.n_venue  # group = symbol * n_venue + venue

        self.annual_vol = np.array([s.annual_vol for s in UNIVERSE])
        # the order flow's impact carries part of each symbol's short-term variance (more at higher trade rates):
        # the path carries the rest, so 1-minute volatility stays the symbol's own at any rate
        path_scale, impact_scale = _variance_budget(config)
        self.base_vol = self.annual_vol / np.sqrt(_SESSION_SECONDS_PER_YEAR) * path_scale
        self.base_spread = np.array([s.spread_ticks for s in UNIVERSE])
        self.sym_weight = np.array([s.weight for s in UNIVERSE])
        self.listing = np.array([VENUES.index(s.listing) for s in UNIVERSE])
        # quote traffic concentrates in the busiest names more than trading does (quotes per trade rise with activity)
        weights = np.outer(self.sym_weight**_QUOTE_WEIGHT_POWER, VENUE_SIZE_MULTIPLIERS).reshape(-1)
        self.group_cdf = weights_cdf(weights)
        self.activity = Activity(
            seed,
            "equities/activity",
            session.intraday_activity,
            ACTIVITY_CLUSTERS,
            count_jitter=ACTIVITY_JITTER,
            vol_exponent=ACTIVITY_VOL_EXPONENT,
        )
        self._session_vol_rms: dict[int, float] = {}
        self._fast_memo: dict[int, np.ndarray] = {}
        self._fast_w = _FAST_VOL_DECAY ** np.arange(_FAST_VOL_TAPS)
        self._fast_w = self._fast_w / np.sqrt(np.sum(self._fast_w**2))
        # mean square of exp(v L - v²) interpolated between minute points (correlation r of neighbouring L):
        # 2/3 E[m²] + 1/3 E[m_a m_b] = 2/3 + exp(v² (r - 1)) / 3; divided out, so the bursts keep the level
        r_next = float(np.sum(self._fast_w[1:] * self._fast_w[:-1]))
        self._fast_rms = math.sqrt(2 / 3 + math.exp(_FAST_VOL_OF_VOL**2 * (r_next - 1)) / 3)
        self.path = PricePath(
            seed,
            "equities",
            PathParams(
                vol_per_second=self.base_vol,
                anchor_sigma=self.annual_vol / np.sqrt(252) * 0.6,
                shock_log_size=_SHOCK_SIZE * self.annual_vol,
                shock_probability=_SHOCKS_PER_DAY / 86_400,
                vol_of_vol=_VOL_OF_VOL,
                vol_taps=_VOL_TAPS,
                vol_decay=_VOL_DECAY,
                vol_level_hours=(13, 21),  # UTC hours holding the regular session, summer and winter
                vol_cap=_VOL_CAP,
                loadings=factor_loadings(),
            ),
            references,
            market_vol=self._market_vol,
        )
        # Per-venue scaled copies of one depth-independent ladder: a book's volumes are one gather.
        ladder = VolumeLadder(seed, "equities", *equities_ladder_bounds(config.max_levels))
        scaled = np.maximum(1.0, np.round(ladder.table[None, :, :] * VENUE_SIZE_MULTIPLIERS[:, None, None]))
        self.ladder_rows = ladder.rows
        self.volume_table = scaled.reshape(-1, config.max_levels)  # row venue * rows + ladder row
        self.cum_volume_table = np.cumsum(self.volume_table, axis=1)
        self.touch_volume = np.ascontiguousarray(self.volume_table[:, 0])  # gathered per order and venue
        self._key_event = stream_key(seed, "equities/event")[0]
        self._key_quote = stream_key(seed, "equities/quote")[0]
        self._key_cross = stream_key(seed, "equities/cross")[0]
        self._key_ns = stream_key(seed, "equities/ns")[0]
        self._key_route = stream_key(seed, "equities/route")[0]
        self._key_burst = stream_key(seed, "equities/burst")[0]
        self._draw_memo: dict[int, tuple[float, object]] = {}
        self._day_volume: dict[object, np.ndarray] = {}
        self._mean_order_shares = _mean_order_shares()
        self._noise_blocks: dict[int, np.ndarray] = {}
        self.sym_cdf = weights_cdf(self.sym_weight)
        listed = np.arange(self.n_venue)[None, :] == self.listing[:, None]
        self.at_touch = np.where(listed, _LISTING_AT_TOUCH, _VENUE_AT_TOUCH[None, :]).ravel()  # per group
        self.route_weight = np.where(listed, _LISTING_ROUTE_WEIGHT, _VENUE_ROUTE_WEIGHT[None, :])  # (symbols, venues)
        self.venue_cdf = np.cumsum(self.route_weight / self.route_weight.sum(axis=1)[:, None], axis=1)
        self.venue_cdf[:, -1] = 1.0
        self.impact_ticks = _IMPACT_SPREADS * self.base_spread * impact_scale
        self._key_parents = "equities/parents"
        self._parent_memo: dict[int, tuple[np.ndarray, ...]] = {}
        self._flow_memo: dict[int, np.ndarray] = {}
        self._order_memo: dict[int, tuple[np.ndarray, ...]] = {}

    def _market_vol(self, first_second: int, end_second: int) -> np.ndarray:
        """(symbols, seconds) volatility multipliers: the market's activity, session-normalised and shared by
        every symbol, times each symbol's fast bursts."""
        out = self._raw_market_vol(first_second, end_second)
        days = np.arange(first_second, end_second) // 86_400
        for day in np.unique(days):
            out[days == day] /= self._day_market_vol_rms(int(day))
        return out[None, :] * self._fast_vol(first_second, end_second)

    def _fast_vol(self, first_second: int, end_second: int) -> np.ndarray:
        """(symbols, seconds) fast volatility multiplier, mean square 1: ``exp(v L - v²)`` of a short moving
        average ``L`` of keyed per-(symbol, minute) normals, linear between minute points (continuous in time)."""
        taps = _FAST_VOL_TAPS
        m0, m1 = first_second // 60 - 1, (end_second - 1) // 60 + 1  # minute points around every second
        first_minute = m0 - taps + 1
        normals = np.concatenate([self._fast_normals(h) for h in range(first_minute // 60, m1 // 60 + 1)])
        points = np.arange(m0, m1 + 1) - (first_minute // 60) * 60
        level = np.zeros((len(points), self.n_sym))
        for j in range(taps):  # one fixed summation order: any split of the work gives the same values
            level += self._fast_w[j] * normals[points - j]
        v = _FAST_VOL_OF_VOL
        mult = np.exp(v * level - v * v) / self._fast_rms
        pos = (np.arange(first_second, end_second) + 0.5) / 60.0 - 0.5 - m0  # second t between points t//60 ± 1
        lo = np.floor(pos).astype(np.int64)
        frac = (pos - lo)[:, None]
        return (mult[lo] * (1.0 - frac) + mult[lo + 1] * frac).T

    def _fast_normals(self, hour: int) -> np.ndarray:
        got = self._fast_memo.get(hour)
        if got is None:
            _bounded(self._fast_memo, 8)
            got = self._fast_memo[hour] = keyed_rng(self.config.seed, "equities/fast_vol", hour).standard_normal(
                (60, self.n_sym)
            )
        return got

    def _raw_market_vol(self, first_second: int, end_second: int) -> np.ndarray:
        boost = np.exp(_open_vol_boost(np.arange(first_second, end_second)))
        return self.activity.volatility(first_second, end_second) * boost

    def _day_market_vol_rms(self, day: int) -> float:
        """Root mean square of the market's volatility multiplier over the regular session of a UTC day (1 on a
        day without one): divided out, so the activity clusters shape a session's volatility, not its level."""
        if day not in self._session_vol_rms:
            _bounded(self._session_vol_rms, 8)
            sessions = [d for d in session.trading_days(day * 86_400, (day + 1) * 86_400) if d.open_s // 86_400 == day]
            rms = 1.0
            if sessions:
                v = self._raw_market_vol(sessions[0].open_s, sessions[0].close_s)
                rms = float(np.sqrt(np.mean(v * v)))
            self._session_vol_rms[day] = rms
        return self._session_vol_rms[day]

    @property
    def max_rows_per_second(self) -> int:
        peak = max(session.QUOTE_MULTIPLIERS) * _BURST_CAP if self.config.session_pacing else 1.0
        return int(self.config.market_data_max_eps * peak) + self.n_groups

    # --- per-second rates ------------------------------------------------------------------------
    def _md_counts(self, first_second: int, end_second: int, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quotes per second and each second's close-auction burst factor.

        The base count sits inside ``[market_data_min_eps, market_data_max_eps]`` where the market's
        activity puts it (clustered and seasonal), then session pacing scales it.
        """
        cfg = self.config
        u = second_uniforms(cfg.seed, "equities/md_count", first_second, end_second)
        base = self.activity.counts(first_second, end_second, cfg.market_data_min_eps, cfg.market_data_max_eps, u)
        bursty = (phase == session.CLOSE_AUCTION) & self.pacing.session_pacing
        burst = np.ones(len(phase))
        if bursty.any():
            z = _box_muller(
                *(second_uniforms(cfg.seed, f"equities/burst{k}", first_second, end_second) for k in (1, 2))
            )
            burst = np.where(bursty, np.clip(np.exp(0.5 * z - 0.125), 1 / _BURST_CAP, _BURST_CAP), 1.0)
        # floor: every (symbol, venue) is quoted every second, whatever the rate
        n = np.maximum(self.n_groups, np.round(base * self.pacing.quote_multiplier(phase) * burst).astype(np.int64))
        return n, burst

    def _second_rates(self, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Phase, close-auction burst factor and the quote-layout draw of each second."""
        first, end = int(seconds[0]), int(seconds[-1]) + 1
        phase = session.phases(first, end)
        bursts, draws = np.ones(len(seconds)), []
        n = burst = None
        for i, s in enumerate(seconds):
            # consecutive batches share their look-back and look-ahead seconds: draw each second once
            key = int(s)
            if key not in self._draw_memo:
                if n is None:
                    n, burst = self._md_counts(first, end, phase)
                _bounded(self._draw_memo, 16)
                rng = keyed_rng(self.config.seed, "equities/md", key)
                guaranteed = 2 if n[i] >= 2 * self.n_groups else 1
                self._draw_memo[key] = (
                    float(burst[i]),
                    draw_second(rng, int(n[i]), self.group_cdf, guaranteed, ARRIVAL_BURSTINESS),
                )
            bursts[i], draw = self._draw_memo[key]
            draws.append(draw)
        return phase, bursts, draws

    def batch_spans(self, first_second: int, end_second: int):
        """Runs of seconds holding at most ``batch_rows`` market-data rows by their exact planned counts
        (a second at least). Sizing by the worst-case second (a close-auction burst) would make batches of
        three seconds at the default rates, each paying for its look-around seconds."""
        for block in range(first_second, end_second, SECONDS_PER_HOUR):
            block_end = min(end_second, block + SECONDS_PER_HOUR)
            cum = np.cumsum(self.planned_per_second(block, block_end)["market_data"])
            a = 0
            while a < len(cum):
                used = cum[a - 1] if a else 0
                b = max(a + 1, int(np.searchsorted(cum, used + self.batch_rows, side="right")))
                yield block + a, block + b
                a = b

    def planned_per_second(self, first_second: int, end_second: int) -> dict[str, np.ndarray]:
        """Exact market_data rows of each whole second, without generating them.

        Trades are not planned: halts, crosses and liquidity already taken make their count known
        only by generating them.
        """
        phase = session.phases(first_second, end_second)
        return {"market_data": self._md_counts(first_second, end_second, phase)[0]}

    def _halted(self, lo: int, n_seconds: int) -> tuple[np.ndarray, list[session.Halt]]:
        """(n_sym, n_seconds) halt flags and the halts touching the span."""
        flags = np.zeros((self.n_sym, n_seconds), dtype=bool)
        found = []
        for day in session.trading_days(lo, lo + n_seconds):
            for h in session.halts(self.config.seed, day, self.n_sym):
                a, b = max(h.start_s, lo), min(h.end_s, lo + n_seconds)
                if a < b:
                    flags[h.symbol, a - lo : b - lo] = True
                if lo <= h.end_s < lo + n_seconds:
                    found.append(h)
        return flags, found

    # --- the consolidated reference quote N(t) ---------------------------------------------------
    def _reference_quote(
        self, lo: int, n_seconds: int, phase: np.ndarray, bursts: np.ndarray, halted: np.ndarray, impact: np.ndarray
    ):
        """``(nbb, nbo)`` in ticks, (n_sym, n_seconds * SLOTS) each; ``impact`` (ticks per symbol and second)
        shifts the mid for the whole second, so an order's impact shows from the second after it."""
        K, n_sym = SLOTS_PER_SECOND, self.n_sym
        path = self.path.slice(lo, lo + n_seconds)
        ticks = np.empty((n_seconds, n_sym, 2))  # open and close anchor of each second, in ticks
        z = np.empty((n_seconds, n_sym, K))
        jitter = np.empty((n_seconds, n_sym, K))
        for i in range(n_seconds):
            # Transcendentals run on one second's fixed-shape arrays, so a second's values never
            # depend on how many seconds share the batch (SIMD body vs tail could differ by an ulp).
            ticks[i] = np.exp(np.ascontiguousarray(path.log_price[:, i : i + 2])) * TICKS_PER_DOLLAR
            rng = keyed_rng(self.config.seed, "equities/reference", lo + i)
            z[i] = rng.standard_normal((n_sym, K))
            jitter[i] = np.exp(_JITTER * rng.standard_normal((n_sym, K)) - _JITTER**2 / 2)
        frac = np.arange(K) / K
        walk = np.cumsum(z, axis=2) / np.sqrt(K)
        bridge = np.concatenate([np.zeros((n_seconds, n_sym, 1)), walk[:, :, :-1]], axis=2) - frac * walk[:, :, -1:]
        # Microstructure noise: a keyed knot per (symbol, second start), scaled by that second's
        # volatility, interpolated through the second. The mid overshoots and comes back, so 1-second
        # NBBO mid changes are negatively autocorrelated (bid-ask bounce, docs/data-model.md#realism-bands), and a
        # second's close still equals the next second's open.
        knots = self._noise_knots(lo, lo + n_seconds + 1)  # (n + 1, n_sym), in units of the second's vol
        vol_ahead = self.path.slice(lo + n_seconds, lo + n_seconds + 1).vol[:, 0]
        knot_vol = np.concatenate([path.vol.T, vol_ahead[None, :]])  # (n + 1, n_sym)
        noise = _NOISE_SCALE * knots * knot_vol
        open_ = ticks[:, :, :1] * (1.0 + noise[:-1, :, None])
        close = ticks[:, :, 1:] * (1.0 + noise[1:, :, None])
        sigma = path.vol.T[:, :, None] * open_ * _BRIDGE_SCALE
        mid = open_ + frac * (close - open_) + sigma * bridge + impact.T[:, :, None]

        scale = (
            (_PHASE_SPREAD[phase] * np.sqrt(bursts))[:, None]
            * (path.vol.T / self.base_vol) ** 0.25  # wider when volatile, but the touch stays mostly one tick
            * np.where(path.shock.T, _SHOCK_SPREAD, 1.0)
            * np.where(halted.T, _HALT_SPREAD, 1.0)
        )
        spread = np.maximum(1.0, np.rint(self.base_spread[None, :, None] * scale[:, :, None] * jitter))
        nbb = np.floor(mid - spread / 2 + 0.5)
        nbo = nbb + spread
        as_rows = lambda a: a.transpose(1, 0, 2).reshape(n_sym, n_seconds * K).astype(np.int64)  # noqa: E731
        return as_rows(nbb), as_rows(nbo)

    def _noise_knots(self, first_second: int, end_second: int) -> np.ndarray:
        """(seconds, n_sym) keyed standard normals, one per (second, symbol), drawn in hour blocks."""
        out = np.empty((end_second - first_second, self.n_sym))
        s = first_second
        while s < end_second:
            hour, off = divmod(s, SECONDS_PER_HOUR)
            take = min(SECONDS_PER_HOUR - off, end_second - s)
            block = self._noise_blocks.get(hour)
            if block is None:
                _bounded(self._noise_blocks, 4)
                block = self._noise_blocks[hour] = keyed_rng(self.config.seed, "equities/noise", hour).standard_normal(
                    (SECONDS_PER_HOUR, self.n_sym)
                )
            out[s - first_second : s - first_second + take] = block[off : off + take]
            s += take
        return out

    # --- quote layout and venue quotes --------------------------------------------------------------
    def _plan(self, lo: int, n_seconds: int, draws: list, nbb: np.ndarray, nbo: np.ndarray) -> _Plan:
        """Lay out seconds ``[lo, lo + n)``; price every quote of the seconds below the last.

        A quote's price needs the other venues' quotes in force when it opens, which may have opened
        up to two seconds earlier: prices are exact from second ``lo + 2`` on, and for the last quote
        per group of second ``lo + 1``.
        """
        G, K = self.n_groups, SLOTS_PER_SECOND
        lay = build_layout(lo, draws, MIN_GAP_US)
        cell, cell_first, cell_size = lay.cell, lay.cell_first, lay.cell_size
        t = lay.time_us
        second_start = cell_first[::G]
        position = np.arange(len(t)) - second_start[lay.second - lo]
        event_id = (lay.second.astype(np.uint64) << np.uint64(_POS_BITS)) | position.astype(np.uint64)
        # Sub-µs digits keyed by the event: quotes of a group stay >= MIN_GAP_US - 1 µs apart, so
        # (timestamp_ns, symbol, venue) stays unique and trades still fit strictly between quotes.
        time_ns = t * 1000 + 1 + (mix64(event_id, self._key_ns) % np.uint64(999)).astype(np.int64)

        n = int(cell_first[(n_seconds - 1) * G])  # events below the last second
        c, r = cell[:n], lay.rank[:n]
        size = cell_size[c]
        is_last, is_first = r == size - 1, r == 0
        nxt_cell_first = cell_first[np.minimum(c + G, len(cell_first) - 1)]
        next_idx = np.where(is_last, nxt_cell_first, np.arange(n) + 1)
        next_ns = time_ns[next_idx]
        # A group's last quote of a second and its first of the next are one quote (continuity).
        prev_c = np.maximum(c - G, 0)
        pin_prev = is_first & (size >= 2) & (c >= G) & (cell_size[prev_c] >= 2)
        prev_last = cell_first[prev_c] + cell_size[prev_c] - 1
        opener = np.where(pin_prev, prev_last, np.arange(n))  # the event that opens each event's quote
        quote_id = event_id[opener]

        k0 = np.maximum(t[opener] * K // US_PER_S - lo * K, 0)  # second `lo`'s first quotes are not exact anyway
        sym = lay.group[:n] // self.n_venue
        venue = lay.group[:n] % self.n_venue
        # A quote's "behind" offsets depend on the quote, its sizes on the event (a pinned pair refreshes sizes).
        at = sym * nbb.shape[1] + k0  # flat gathers: faster than 2-d fancy indexing
        bid = nbb.ravel()[at] - self._behind(mix64(quote_id, self._key_quote), self.at_touch[lay.group[:n]])
        ask = nbo.ravel()[at] + self._behind(mix64(quote_id, self._key_quote ^ 1), self.at_touch[lay.group[:n]])
        by_time = _ByTime.of(sym, time_ns[:n] - lo * NS_PER_S, venue, self.n_venue)
        bid, ask = self._slide(bid, ask, by_time, sym, opener)
        ebits = mix64(event_id[:n], self._key_event)
        rows = self.ladder_rows
        span = self.config.max_levels - self.config.min_levels + 1
        depth = self.config.min_levels + ((ebits >> np.uint64(32)) % np.uint64(span)).astype(np.int64)
        return _Plan(
            lo=lo,
            n_seconds=n_seconds,
            time_ns=time_ns,
            group=lay.group,
            cell=cell,
            cell_first=cell_first,
            cell_size=cell_size,
            event_id=event_id,
            by_time=by_time,
            next_ns=next_ns,
            bid=bid,
            ask=ask,
            depth=depth,
            bid_row=((ebits & np.uint64(0xFFFF)) % np.uint64(rows)).astype(np.int64) + venue * rows,
            ask_row=(((ebits >> np.uint64(16)) & np.uint64(0xFFFF)) % np.uint64(rows)).astype(np.int64) + venue * rows,
        )

    @staticmethod
    def _behind(bits: np.ndarray, at_touch: np.ndarray) -> np.ndarray:
        """Ticks a venue quote sits behind the reference: 0 (at it), 1, or now and then 2."""
        u = _uniform(bits)
        deeper = (bits & np.uint64(0xFF)) < np.uint64(64)
        return np.where(u < at_touch, 0, 1 + deeper)

    def _slide(self, bid: np.ndarray, ask: np.ndarray, by_time: _ByTime, sym: np.ndarray, opener: np.ndarray):
        """Push each quote's prices outward off the other venues' quotes in force when it opens.

        A quote's bid is capped one tick below every other venue's ask then in force, its ask one
        tick above every such bid (as a venue reprices an order that would lock or cross the market).
        Caps use the other quotes' unadjusted prices and only ever move prices outward, so for any two
        quotes alive at once, the later-opened one clears the earlier: the NBBO from the quotes in
        force is never crossed or locked, while a move of the reference shows at the touch as soon
        as the venues requote. Each quote is capped where it opens; the second event of a pinned pair
        takes its opener's prices.
        """
        order = by_time.order
        sym_s, bid_s, ask_s = sym[order], bid[order], ask[order]
        block_start = np.searchsorted(sym_s, np.arange(self.n_sym))[sym_s]
        capped_bid, capped_ask = bid_s.copy(), ask_s.copy()
        # The latest quote of a quote's own venue is the quote itself, which needs no mask: its bid
        # sits at least a tick below its own ask, so capping by it changes nothing.
        for last in by_time.latest:
            ok = last >= block_start
            np.minimum(capped_bid, ask_s[last] - 1, out=capped_bid, where=ok)
            np.maximum(capped_ask, bid_s[last] + 1, out=capped_ask, where=ok)
        out_bid, out_ask = np.empty_like(bid), np.empty_like(ask)
        out_bid[order], out_ask[order] = capped_bid, capped_ask
        return out_bid[opener], out_ask[opener]

    def _books(self, touch: np.ndarray, ladder_row: np.ndarray, depth: np.ndarray, direction: int) -> BookColumn:
        """One side of many books: a contiguous one-tick grid from the touch, and ladder volumes."""
        width = int(depth.max()) if len(depth) else 1
        if not len(touch):
            return BookColumn(np.empty(0), depth)
        # Every row's prices are a window of one price table (whole ticks / 100, the double nearest
        # the decimal), so a book side costs two row gathers into contiguous arrays and one copy that
        # interleaves them; assigning the gathers into the interleaved rows copies a few values per
        # inner loop (3-6 % of the whole generation at 3 and 10 levels).
        top = int(touch.max()) if direction < 0 else int(touch.min())
        span = int(touch.max() - touch.min()) + width
        grid = (top + direction * np.arange(span)) / float(TICKS_PER_DOLLAR)
        prices = sliding_window_view(grid, width)[direction * (touch - top)]
        volumes = np.take(np.ascontiguousarray(self.volume_table[:, :width]), ladder_row, axis=0)
        if depth.min() == width:
            return BookColumn(np.concatenate((prices, volumes), axis=1).reshape(-1), depth)
        return BookColumn.from_dense(prices, volumes, depth)

    # --- trades -----------------------------------------------------------------------------------------
    def _trade_counts(self, first_second: int, end_second: int, phase: np.ndarray, bursts: np.ndarray) -> np.ndarray:
        """Orders per second: inside ``[trades_min_eps, trades_max_eps]`` by activity, then session pacing
        (phase, the intraday U shape, close-auction bursts)."""
        cfg = self.config
        u = second_uniforms(cfg.seed, "equities/trade_count", first_second, end_second)
        base = self.activity.counts(first_second, end_second, cfg.trades_min_eps, cfg.trades_max_eps, u)
        mult = self.pacing.trade_multiplier(phase) * bursts
        if self.pacing.session_pacing:
            mult = mult * session.intraday_trade_multiplier(np.arange(first_second, end_second))
        return np.round(base * mult).astype(np.int64)

    def _draw_orders(self, plan: _Plan, draws):
        """Marketable orders of the planned seconds from the one before the batch's first (see generate_seconds).

        Returns (second index, symbol, ns into the second, buy, size, hidden, routing uniform, market order).
        """
        a, b = _LOOK_BACK - 1, plan.n_seconds - 1
        sec, sym, positions, buy, size, hidden, u_route, market, _, _ = self._orders_of(plan.lo + a, plan.lo + b)
        at = warp_offsets(draws[a:b], sec, positions, NS_PER_S)  # in the second's quote bursts
        return sec + a, sym, at, buy, size, hidden, u_route, market

    def _orders_of(self, first: int, end: int) -> tuple[np.ndarray, ...]:
        """The orders of seconds ``[first, end)`` as ``_orders`` gives them, plus each order's expected sign and
        the square root of its symbol's volatility multiplier then.

        The impact of a batch draws the orders of its seconds before its trades route them: a second's
        orders are kept (a bounded memo) so they are drawn once, not twice. They are a pure function of the
        second, so a memo hit and a fresh draw are the same orders."""
        have = {s_: self._order_memo[s_] for s_ in range(first, end) if s_ in self._order_memo}
        missing = [s_ for s_ in range(first, end) if s_ not in have]
        if missing:
            a, b = missing[0], missing[-1] + 1
            phase = session.phases(a, b)
            bursts = self._md_counts(a, b, phase)[1]
            counts = self._trade_counts(a, b, phase, bursts)
            halted = self._halted(a, b - a)[0]
            flow = self._flow_state(a, b)
            vol = self.path.slice(a, b).vol
            drawn = self._orders(a, counts, flow, vol, halted)
            expect = flow[drawn[1], drawn[0]]
            calm = np.sqrt(vol / self.base_vol[:, None])[drawn[1], drawn[0]]  # impact scale: see _second_flows
            cuts = np.searchsorted(drawn[0], np.arange(1, b - a))
            parts = [np.split(x, cuts) for x in (*drawn[1:], expect, calm)]
            for i in range(b - a):
                got = tuple(part[i] for part in parts)
                if a + i not in have:
                    have[a + i] = got
                _bounded(self._order_memo, _ORDER_MEMO_S)
                self._order_memo[a + i] = got
        per = [have[s_] for s_ in range(first, end)]
        sec = np.repeat(np.arange(end - first), [len(p_[0]) for p_ in per])
        return (sec, *(np.concatenate([p_[j] for p_ in per]) for j in range(len(per[0]))))

    def _orders(self, first: int, counts: np.ndarray, flow: np.ndarray, vol: np.ndarray, halted: np.ndarray):
        """The orders of seconds ``first, first + 1, ...`` (``counts`` of each, before halts), from keys per second.

        A symbol's share of a second's orders is its activity weight times its own volatility multiplier
        (busy when volatile); an order buys with probability ``(1 + flow) / 2`` (the parents' flow of its
        symbol and second). Everything after the per-second draws is elementwise, so one pass over many
        seconds gives each order what a pass over its second alone would. Halted symbols' orders are dropped.
        Returns (second index, symbol, position draw, buy, size, hidden, routing uniform, market order).
        """
        share = np.cumsum(self.sym_weight[:, None] * (vol / self.base_vol[:, None]), axis=0)
        cdf = np.ascontiguousarray((share / share[-1]).T)
        syms, positions, uniforms = [], [], []
        for i, n in enumerate(counts.tolist()):
            rng = keyed_rng(self.config.seed, "equities/trades", first + i)
            syms.append(np.searchsorted(cdf[i], rng.random(n), side="right"))  # entries <= the uniform
            positions.append(rng.integers(0, WARP_POSITIONS, n))
            uniforms.append(rng.random((6, n)))
        sec = np.repeat(np.arange(len(counts)), counts)
        sym = np.minimum(np.concatenate(syms) if syms else np.zeros(0, np.int64), self.n_sym - 1)
        u = np.concatenate(uniforms, axis=1) if uniforms else np.zeros((6, 0))
        buy = u[0] < (1.0 + flow[sym, sec]) / 2.0
        size = _trade_sizes(u[1], u[2])
        hidden = u[3] < np.where(size > 1000, _P_HIDDEN_BLOCK, _P_HIDDEN)
        keep = ~halted[sym, sec]
        market = u[5] < _P_MARKET_ORDER
        pos = np.concatenate(positions) if positions else np.zeros(0, np.int64)
        # child orders fired together: some orders arrive at the instant of the order drawn before them in the
        # same second (a keyed coin per order), so trades crowd in time more than quotes do
        rank, _ = _ranks_within(sec)
        event = ((first + sec).astype(np.uint64) << np.uint64(_POS_BITS)) | rank.astype(np.uint64)
        bits = mix64(event, self._key_burst)
        follows = (rank > 0) & (_uniform(bits) < _P_FOLLOW)
        lead = np.maximum.accumulate(np.where(follows, 0, np.arange(len(sec))))
        pos = pos[lead]
        return sec[keep], sym[keep], pos[keep], buy[keep], size[keep], hidden[keep], u[4][keep], market[keep]

    # --- order flow and its impact -------------------------------------------------------------------------
    def _parents(self, minute: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Parent orders born in one minute (absolute): symbol, birth second, lifetime in seconds, sign."""
        got = self._parent_memo.get(minute)
        if got is None:
            _bounded(self._parent_memo, _FLOW_LOOK_BACK // 60 + 64)
            rng = keyed_rng(self.config.seed, self._key_parents, minute)
            k = rng.poisson(_PARENTS_PER_SECOND * 60, self.n_sym)
            total = int(k.sum())
            birth = minute * 60 + rng.integers(0, 60, total)
            pareto = (1.0 - rng.random(total)) ** (-1.0 / _PARENT_TAIL)
            life = np.minimum(_FLOW_LOOK_BACK, np.floor(_PARENT_MIN_S * pareto))
            sign = np.where(rng.random(total) < 0.5, 1, -1)
            got = self._parent_memo[minute] = (np.repeat(np.arange(self.n_sym), k), birth, life.astype(np.int64), sign)
        return got

    def _flow_state(self, first: int, end: int) -> np.ndarray:
        """(symbols, seconds) expected sign of an order, in (-1, 1): tanh of the net of the parents alive."""
        n = end - first
        net = np.zeros((self.n_sym, n + 1), dtype=np.int64)
        for minute in range((first - _FLOW_LOOK_BACK) // 60, (end - 1) // 60 + 1):
            sym, birth, life, sign = self._parents(minute)
            alive = (birth < end) & (birth + life > first)
            sym, birth, life, sign = sym[alive], birth[alive], life[alive], sign[alive]
            np.add.at(net, (sym, np.maximum(birth - first, 0)), sign)
            np.add.at(net, (sym, np.minimum(birth + life - first, n)), -sign)
        net = np.clip(np.cumsum(net[:, :n], axis=1), -_FLOW_TANH_SPAN, _FLOW_TANH_SPAN)
        return _FLOW_TANH[net + _FLOW_TANH_SPAN]

    def _second_flows(self, first: int, end: int) -> np.ndarray:
        """(symbols, seconds) impact in ticks of each second's orders: size-weighted sign surprises."""
        sec, sym, _, buy, size, _, _, _, expect, vol_root = self._orders_of(first, end)
        surprise = np.where(buy, 1.0, -1.0) - expect
        # an order moves the price more when its symbol is volatile: orders crowd into volatile seconds (their
        # number grows with the volatility multiplier v), so with an impact growing with sqrt(v) the flow's
        # share of the variance grows with v² like the path's own, and the flow does not thin the tails
        w = self.impact_ticks[sym] * surprise * np.sqrt(size / 100.0) * vol_root
        n = end - first
        return np.bincount(sec * self.n_sym + sym, weights=w, minlength=n * self.n_sym).reshape(n, self.n_sym).T

    def _impact(self, lo: int, n_seconds: int) -> np.ndarray:
        """(symbols, seconds) impact in ticks on the reference mid of seconds ``[lo, lo + n)``: the decaying
        sum of the orders of the ``_IMPACT_LOOK_BACK`` seconds before each second (an order's second excluded)."""
        L = _IMPACT_LOOK_BACK
        first, end = lo - L, lo + n_seconds - 1
        missing = [s_ for s_ in range(first, end) if s_ not in self._flow_memo]
        if missing:
            a, b = missing[0], missing[-1] + 1
            flows = self._second_flows(a, b)
            for s_ in range(a, b):
                _bounded(self._flow_memo, 8192)
                self._flow_memo[s_] = flows[:, s_ - a]
        flows = np.zeros((self.n_sym, 0))
        if end > first:
            flows = np.stack([self._flow_memo[s_] for s_ in range(first, end)], axis=1)
        out = np.zeros((self.n_sym, n_seconds))
        for k in range(1, L + 1):  # one fixed summation order per element: any batch split gives the same sums
            out += _IMPACT_KERNEL[k - 1] * flows[:, L - k : L - k + n_seconds]
        return out

    def _in_force(self, plan: _Plan, sec_i: np.ndarray, sym: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
        """(n, venues) plan events: each venue's quote of ``sym`` in force at ``at_ns`` into second ``sec_i``
        (its latest quote strictly before that instant; every venue quotes every second)."""
        bt = plan.by_time
        key = _time_key(sym, sec_i * NS_PER_S + at_ns)
        # sorted needles let the binary searches walk the keys in one direction (about 1.6x faster)
        by_key = np.argsort(key)
        before = np.empty(len(key), dtype=np.int64)
        before[by_key] = np.searchsorted(bt.key, key[by_key], side="left") - 1
        return bt.order[bt.latest[:, before]].T

    def _nbbo_sum(self, plan: _Plan, sec_i: np.ndarray, sym: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
        """Best bid + best ask in ticks of the quotes in force (twice the NBBO midpoint)."""
        quotes = self._in_force(plan, sec_i, sym, at_ns)
        return plan.bid[quotes].max(axis=1) + plan.ask[quotes].min(axis=1)

    def _route(self, plan: _Plan, sec_i, sym, at_ns, buy, want, hidden, u_route, market):
        """Split orders into venue executions against the quotes in force at their instant.

        A lit order sweeps the venues quoting at the NBBO on its side, in a random order, taking
        each one's displayed touch size. What is left after the last of them walks that venue's
        book when the order is a market order; a marketable limit order (most of them) is priced at
        the NBBO and its remainder is cancelled. A hidden order (midpoint or reserve liquidity) prints once, at the NBBO midpoint, on
        a venue drawn by venue size, taking no displayed liquidity.

        Returns, per execution: order index, venue, quote in force (plan event), size wanted, and
        whether it may walk past the touch (the remainder of an order larger than the NBBO shows).
        """
        V = self.n_venue
        snaps = self._in_force(plan, sec_i, sym, at_ns)
        signed = np.where(buy[:, None], plan.ask[snaps], -plan.bid[snaps])  # the lower, the better, on either side
        at_best = signed == signed.min(axis=1)[:, None]
        # sweep order: venues at the NBBO first, in a keyed random order; then the rest (never used)
        order_bits = u_route.view(np.uint64)[:, None] + np.arange(V, dtype=np.uint64)[None, :]
        # a keyed weighted random order (exponential race): the preferred venues come first more often
        race = -np.log1p(-_uniform(mix64(order_bits, self._key_route))) / self.route_weight[sym]
        priority = np.where(at_best, race, np.inf)
        sweep = np.argsort(priority, axis=1)
        n_best = at_best.sum(axis=1)[:, None]
        cols = np.arange(V)[None, :]
        side_row = np.where(buy[:, None], plan.ask_row[snaps], plan.bid_row[snaps])
        l1 = np.take_along_axis(self.touch_volume[side_row], sweep, axis=1)
        before = np.cumsum(l1, axis=1) - l1
        rest = want[:, None] - before
        walks = (
            (cols == n_best - 1) & (rest > l1) & (market & ~hidden)[:, None]
        )  # more than the NBBO displays: walks the book
        take = np.where(walks, rest, np.minimum(rest, l1))
        np.maximum(take, 0, out=take)
        take *= (cols < n_best) & ~hidden[:, None]
        # a hidden order prints once, all it wants, on a venue drawn by venue size
        venue = sweep
        venue[hidden, 0] = np.minimum(np.sum(self.venue_cdf[sym[hidden]] <= u_route[hidden, None], axis=1), V - 1)
        take[hidden, 0] = want[hidden]
        order_idx, col = np.nonzero(take > 0)
        v = venue[order_idx, col]
        return order_idx, v, snaps[order_idx, v], take[order_idx, col].astype(np.int64), walks[order_idx, col]

    def _trades(self, first: int, end: int, plan: _Plan, phase, bursts, draws, halted, halts_found) -> TableBatch:
        """Trades of ``[first, end)``: orders routed to the venue books in force at their instant.

        Orders of the second before ``first`` are routed too: the quotes in force when ``first``
        starts may already have been hit, and what they took is no longer displayed. Routing needs
        only quote prices (never what earlier orders took), so the plan's look-back makes it exact.
        """
        lo = plan.lo
        drawn = self._draw_orders(plan, draws)
        o_sec, o_sym, o_at, o_buy, o_want, o_hidden, o_u, o_market = drawn
        idx, venue, snap, want, walks = self._route(plan, o_sec, o_sym, o_at, o_buy, o_want, o_hidden, o_u, o_market)
        # The drawn count is the second's number of prints: a sweep prints once per venue, so orders
        # are kept in drawn order (random in time) while their prints fit in the count.
        prints = np.bincount(idx, minlength=len(o_sec))
        rank, per_second = _ranks_within(o_sec)
        running = np.cumsum(prints)
        kept = running - (running - prints)[np.flatnonzero(rank == 0)][np.cumsum(rank == 0) - 1] <= per_second
        keep = kept[idx]
        idx, venue, snap, want, walks = idx[keep], venue[keep], snap[keep], want[keep], walks[keep]
        sec_i, at_ns, buy, hidden, u_route = o_sec[idx], o_at[idx], o_buy[idx], o_hidden[idx], o_u[idx]
        group = o_sym[idx] * self.n_venue + venue

        # Stamp strictly between the snapshot and the venue's next quote, inside the second, unique at ns:
        # trades sharing a (snapshot, second) gap keep their drawn order and are spread over the gap.
        s_ns = (lo + sec_i) * NS_PER_S
        gap_lo = np.maximum(plan.time_ns[snap] + 1, s_ns + 1)  # the second's first ns belongs to crosses
        gap_hi = np.minimum(plan.next_ns[snap] - 1, s_ns + NS_PER_S - 1)
        order = _lexsort_ints((at_ns, sec_i, snap))
        sec_i, group, at_ns, buy, want, snap, gap_lo, gap_hi, s_ns, hidden, walks, u_route = (
            a[order] for a in (sec_i, group, at_ns, buy, want, snap, gap_lo, gap_hi, s_ns, hidden, walks, u_route)
        )
        k, n_in_gap = _ranks_within(snap * plan.n_seconds + sec_i)
        room = gap_hi - gap_lo + 1
        fits = n_in_gap <= room
        frac = np.clip((s_ns + at_ns - gap_lo) / np.maximum(room, 1), 0.0, 1.0 - 1e-12)
        ts = gap_lo + k + np.floor(frac * np.maximum(room - n_in_gap + 1, 0)).astype(np.int64)

        # Lit executions consume the taken side of the snapshot in time order: at the touch only, except
        # an order's remainder past the NBBO, which walks the book and prints at the deepest level reached.
        # Hidden executions take no displayed liquidity.
        side_row = np.where(buy, plan.ask_row[snap], plan.bid_row[snap])
        lit_want = np.where(fits & ~hidden, want, 0)
        by_take = _lexsort_ints((ts, buy, snap))
        rank, _ = _ranks_within((snap * 2 + buy)[by_take])
        touch_volume = self.touch_volume[side_row]
        book_volume = self.cum_volume_table[side_row, plan.depth[snap] - 1]
        before, after = _fills(rank, lit_want[by_take], walks[by_take], touch_volume[by_take], book_volume[by_take])
        filled_after = np.empty_like(after)
        filled_before = np.empty_like(before)
        filled_after[by_take] = after
        filled_before[by_take] = before
        size = np.where(hidden, np.where(fits, want, 0), filled_after - filled_before)
        # some orders whose venue's displayed touch was already taken (persistent flow hits the same quotes) fill
        # against the liquidity that replenishes it: reserve/midpoint liquidity, at the NBBO midpoint
        # liquidity replenishes with the quote traffic: the more quotes per order in the second, the likelier
        n_quotes = np.diff(plan.cell_first[:: self.n_groups])
        n_orders = np.maximum(self._trade_counts(lo, lo + plan.n_seconds, phase, bursts), 1)
        ratio = n_quotes[np.minimum(sec_i, len(n_quotes) - 1)] / n_orders[sec_i]
        p_refill = np.minimum(_P_REFILL_PER_QUOTE * ratio, _P_REFILL_MAX)
        lucky = _uniform(mix64(u_route.view(np.uint64), self._key_burst ^ 1)) < p_refill
        refill = fits & ~hidden & (size == 0) & lucky
        hidden = hidden | refill
        size = np.where(refill, want, size)
        # only executions past the touch reach deeper levels (cumulative volume beyond the book's depth
        # is at least the whole book, so it never counts)
        level = np.zeros(len(snap), dtype=np.int64)
        deep = np.flatnonzero(filled_after > touch_volume)
        level[deep] = np.sum(self.cum_volume_table[side_row[deep]] < filled_after[deep, None], axis=1)
        touch = np.where(buy, plan.ask[snap], plan.bid[snap])
        price_ticks = np.where(buy, touch + level, touch - level).astype(np.float64)
        # a hidden print is at the NBBO midpoint in force at its stamp (half ticks allowed): inside every venue's quote
        h = np.flatnonzero(hidden)
        price_ticks[h] = self._nbbo_sum(plan, sec_i[h], group[h] // self.n_venue, ts[h] - s_ns[h]) / 2.0
        ok = (size > 0) & (sec_i >= _LOOK_BACK)

        rows = {
            "ts": ts[ok],
            "sym": group[ok] // self.n_venue,
            "venue": group[ok] % self.n_venue,
            "price": price_ticks[ok],
            "size": size[ok],
            "side": np.where(buy[ok], 0, 1),
            "cond": np.full(int(ok.sum()), _COND_T),
        }
        crosses = self._crosses(first, end, plan, halts_found)
        merged = {k_: np.concatenate([rows[k_], crosses[k_]]) for k_ in rows}
        out = np.argsort(merged["ts"], kind="stable")
        m = {k_: v[out] for k_, v in merged.items()}
        return TableBatch(
            self.trades_schema,
            {
                self.trades_schema.timestamp: m["ts"].astype(np.int64),
                "symbol": SymbolColumn(m["sym"].astype(np.int32), SYMBOLS),
                "venue": SymbolColumn(m["venue"].astype(np.int32), VENUES),
                "price": m["price"] / float(TICKS_PER_DOLLAR),  # whole ticks, or a half tick at the midpoint
                "size": m["size"].astype(np.int64),
                "side": SymbolColumn(m["side"].astype(np.int32), SIDES),
                "cond": SymbolColumn(m["cond"].astype(np.int32), CONDITIONS),
            },
        )

    def _crosses(self, first: int, end: int, plan: _Plan, halts_found) -> dict[str, np.ndarray]:
        """Opening (O) and closing (C) crosses per symbol, and halt-resume (H) prints, at their exact second.

        A cross prints on the listing venue at the second's first nanosecond: quotes carry sub-µs
        digits that are never 0, so the print follows the quote in force and precedes the next one.
        """
        lo = plan.lo
        events: list[tuple[int, np.ndarray, int]] = []  # (second, symbols, cond)
        all_sym = np.arange(self.n_sym)
        for day in session.trading_days(first, end):
            for s, cond in ((day.open_s, _COND_O), (day.close_s, _COND_C)):
                if first <= s < end:
                    events.append((s, all_sym, cond))
        for h in halts_found:
            if first <= h.end_s < end:
                events.append((h.end_s, np.array([h.symbol]), _COND_H))
        if not events:
            return {k: np.zeros(0, np.int64) for k in ("ts", "sym", "venue", "price", "size", "side", "cond")}
        sec = np.concatenate([np.full(len(sy), s) for s, sy, _ in events])
        sym = np.concatenate([sy for _, sy, _ in events])
        cond = np.concatenate([np.full(len(sy), c) for _, sy, c in events])
        bits = mix64(
            (sec.astype(np.uint64) << np.uint64(8)) | (sym.astype(np.uint64) << np.uint64(2)) | cond.astype(np.uint64),
            self._key_cross,
        )
        share = np.array([_CROSS_SHARE[int(c)] for c in cond])
        day_volume = np.array([self._expected_day_volume(int(s_))[y] for s_, y in zip(sec, sym)])
        u1, u2 = _uniform(bits), _uniform(mix64(bits, 7))
        # a log-normal auction size per print (scalar math: at most a few dozen prints a second)
        z = np.array([math.sqrt(-2.0 * math.log(1.0 - a)) * math.cos(2.0 * math.pi * b) for a, b in zip(u1, u2)])
        size = np.array(
            [max(100, round(m * math.exp(_CROSS_SIGMA * x))) for m, x in zip(share * day_volume, z)], dtype=np.int64
        )
        venue = self.listing[sym]
        return {
            "ts": sec * NS_PER_S,
            "sym": sym,
            "venue": venue,
            "price": self._nbbo_sum(plan, sec - lo, sym, np.zeros(len(sym), np.int64))
            // 2,  # at or inside the NBBO in force
            "size": size,
            "side": (bits >> np.uint64(63)).astype(np.int64),
            "cond": cond,
        }

    def _expected_day_volume(self, second: int) -> np.ndarray:
        """Expected continuous-trading volume per symbol of the session holding ``second``: the day's
        order counts (exact: a pure function of time) × the symbol's share × the mean order size."""
        days = [d for d in session.trading_days(second, second + 1) if d.pre_open_s <= second < d.post_end_s]
        if not days:
            return np.zeros(self.n_sym)
        day = days[0]
        if day.date not in self._day_volume:
            _bounded(self._day_volume, 4)
            phase = session.phases(day.open_s, day.close_s)
            orders = self._trade_counts(day.open_s, day.close_s, phase, np.ones(len(phase))).sum()
            share = self.sym_weight / self.sym_weight.sum()
            self._day_volume[day.date] = orders * share * self._mean_order_shares
        return self._day_volume[day.date]

    # --- the Engine interface ----------------------------------------------------------------------------
    def generate_seconds(self, first_second: int, end_second: int) -> list[TableBatch]:
        # Look-back: orders of the second before `first_second` may hit the quotes still in force when it
        # starts, routing them needs exact prices of every quote of that second, and those prices need the
        # quotes in force when they opened (_LOOK_BACK seconds in all). One second of look-ahead: the time
        # of each quote's successor.
        lo = first_second - _LOOK_BACK
        n_seconds = end_second - first_second + _LOOK_BACK + 1
        seconds = np.arange(lo, lo + n_seconds)
        phase, bursts, draws = self._second_rates(seconds)
        halted, halts_found = self._halted(lo, n_seconds)
        nbb, nbo = self._reference_quote(lo, n_seconds, phase, bursts, halted, self._impact(lo, n_seconds))
        plan = self._plan(lo, n_seconds, draws, nbb, nbo)

        G = self.n_groups
        a, b = int(plan.cell_first[_LOOK_BACK * G]), int(plan.cell_first[(n_seconds - 1) * G])
        order = a + np.argsort(plan.time_ns[a:b], kind="stable")
        md = TableBatch(
            self.md_schema,
            {
                self.md_schema.timestamp: plan.time_ns[order],
                "symbol": SymbolColumn((plan.group[order] // self.n_venue).astype(np.int32), SYMBOLS),
                "venue": SymbolColumn((plan.group[order] % self.n_venue).astype(np.int32), VENUES),
                "bids": self._books(plan.bid[order], plan.bid_row[order], plan.depth[order], -1),
                "asks": self._books(plan.ask[order], plan.ask_row[order], plan.depth[order], +1),
            },
        )
        trades = self._trades(first_second, end_second, plan, phase, bursts, draws, halted, halts_found)
        return [md, trades]


def _fills(
    rank: np.ndarray, want: np.ndarray, walks: np.ndarray, touch: np.ndarray, book: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Liquidity used before and after each execution on one quote side, executions in time order.

    ``rank`` numbers the executions within each run of one (quote, side). An execution takes what
    it wants from what is left at the touch (``touch`` shares), or, when it ``walks``, from what is
    left of the whole displayed ``book``. Sequentially: used += min(want, cap - used). Until the
    first walker that goes past the touch, that is a running sum clipped at the touch; from it on
    the touch is gone, so only walkers take more, clipped at the book.
    """
    n = len(want)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(rank == 0)
    run_len = np.diff(np.r_[starts, n])
    cum = np.cumsum(want)
    cum = cum - np.repeat(cum[starts] - want[starts], run_len)  # running sum within the run
    at_touch = np.minimum(cum, touch)
    past = walks & (cum > touch)
    pos = np.arange(n)
    first_past = np.repeat(np.minimum.reduceat(np.where(past, pos, n), starts), run_len)
    after_first = pos >= first_past
    j = np.minimum(first_past, n - 1)
    walked = np.cumsum(np.where(walks, want, 0))
    walked = walked - np.repeat(walked[starts] - np.where(walks, want, 0)[starts], run_len)
    base = np.minimum(cum[j] - want[j], touch[j])  # used just before the first walker past the touch
    used = np.where(after_first, np.minimum(base + walked - (walked[j] - want[j]), book), at_touch)
    prev = np.r_[0, used[:-1]]
    prev[starts] = 0
    return prev.astype(np.int64), used.astype(np.int64)


def _variance_budget(config: EquitiesConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per symbol: the scale of the path's volatility and of the per-order impact, so that together they give
    the symbol's own 1-minute variance at the configured trade rate.

    The impact adds, per second, the variance of its flow ``N c² E[(sign - expected)²] E[size / 100]`` (``N``
    the symbol's expected orders per second, ``c`` its impact per order at 100 shares), filtered by the kernel
    over a minute; as a share ``phi`` of the path's 1-minute variance (at the symbol's reference level), the
    path keeps ``1 - min(phi, max)`` of it and the impact is scaled down when ``phi`` exceeds the maximum.
    """
    n_sym = len(UNIVERSE)
    weight = np.array([s_.weight for s_ in UNIVERSE])
    orders = 0.5 * (config.trades_min_eps + config.trades_max_eps) * weight / weight.sum()
    c = _IMPACT_SPREADS * np.array([s_.spread_ticks for s_ in UNIVERSE])
    tick_vol = (
        np.array([s_.annual_vol * s_.fallback_price for s_ in UNIVERSE])
        * TICKS_PER_DOLLAR
        / np.sqrt(_SESSION_SECONDS_PER_YEAR)
    )
    kernel = np.concatenate(([0.0], _IMPACT_KERNEL, np.zeros(60)))  # impact k seconds after: K(k), K(0) = 0
    shifted = np.concatenate((np.zeros(60), kernel[:-60]))
    minute_gain = float(np.sum((kernel - shifted) ** 2)) + float(np.sum(kernel[-60:] ** 2))
    flow = orders * c**2 * _surprise_variance() * _mean_order_shares() / 100.0 * minute_gain
    phi = flow / (60.0 * tick_vol**2)
    share = np.minimum(phi, _IMPACT_SHARE_MAX)
    impact_scale = np.sqrt(np.where(phi > 0, share / np.maximum(phi, 1e-300), 1.0))
    return np.sqrt(1.0 - share), impact_scale * np.ones(n_sym)


def _surprise_variance() -> float:
    """``E[(sign - expected sign)²] = 1 - E[f²]`` for the parents' flow ``f = tanh(gain · net)``: the parents
    alive are Poisson (births per second × mean lifetime), each buying or selling with even odds."""
    u = (np.arange(100_000) + 0.5) / 100_000
    mean_life = float(np.mean(np.minimum(_FLOW_LOOK_BACK, np.floor(_PARENT_MIN_S * u ** (-1.0 / _PARENT_TAIL)))))
    lam = _PARENTS_PER_SECOND * mean_life
    n = np.arange(int(lam + 12 * math.sqrt(lam) + 12))
    pois = np.exp(n * math.log(lam) - lam - np.array([math.lgamma(k + 1) for k in n]))
    f2 = 0.0
    for alive, p_n in zip(n.tolist(), pois.tolist()):
        k = np.arange(alive + 1)
        binom = (
            np.exp([math.lgamma(alive + 1) - math.lgamma(j + 1) - math.lgamma(alive - j + 1) for j in k]) / 2.0**alive
        )
        net = np.clip(2 * k - alive, -_FLOW_TANH_SPAN, _FLOW_TANH_SPAN)
        f2 += p_n * float(np.sum(binom * _FLOW_TANH[net + _FLOW_TANH_SPAN] ** 2))
    return 1.0 - f2


def _open_vol_boost(seconds: np.ndarray) -> np.ndarray:
    """Log volatility boost after the open of each second's session (0 outside regular hours)."""
    out = np.zeros(len(seconds))
    if not len(seconds):
        return out
    for day in session.trading_days(int(seconds[0]), int(seconds[-1]) + 1):
        inside = (seconds >= day.open_s) & (seconds < day.close_s)
        s = seconds[inside]
        out[inside] = _OPEN_VOL_BOOST * np.exp(-(s - day.open_s) / _OPEN_VOL_DECAY_S)
        out[inside] += _CLOSE_VOL_BOOST * np.exp(-(day.close_s - s) / _CLOSE_VOL_RISE_S)
    return out


def _box_muller(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals from two arrays of uniforms in [0, 1)."""
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)


def _mean_order_shares() -> float:
    """Mean order size of the size mix, by quadrature over its three classes."""
    u = (np.arange(100_000) + 0.5) / 100_000
    means = [float(_trade_sizes(np.full_like(u, c), u).mean()) for c in (0.0, _P_ODD, 0.9999)]
    return _P_ODD * means[0] + _P_ROUND * means[1] + (1.0 - _P_ODD - _P_ROUND) * means[2]


def _trade_sizes(u_class: np.ndarray, u_size: np.ndarray) -> np.ndarray:
    """Odd lots 1–99, round lots 100–1000 (mostly 100–200), blocks 1,000–10,000 (heavy near 1,000)."""
    odd = 1 + np.floor(u_size * 99)
    round_lot = 100 * (1 + np.searchsorted(_ROUND_LOT_CDF, u_size, side="right"))
    block = np.minimum(10_000, np.round(1000 * (1 - u_size) ** (-1 / _BLOCK_TAIL) / 100) * 100)
    return np.where(u_class < _P_ODD, odd, np.where(u_class < _P_ODD + _P_ROUND, round_lot, block)).astype(np.int64)

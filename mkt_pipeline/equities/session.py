"""NYSE trading sessions in America/New_York and the session pacing of
docs/data-model.md#equities-generation.

Each absolute second belongs to one phase: pre-open (04:00 ET to the open), continuous (open to ten
minutes before the close), close auction (the last ten minutes), post-close (four hours after the
close) or closed (overnight, weekends, holidays). Opens, closes and half-days come from the real
XNYS calendar (``exchange_calendars``, tabled for 2000-2039 in ``xnys``); local times go through
``zoneinfo`` so DST is exact.

Everything here is a pure function of absolute time (and, for halts, of the seed), so any window
can be paced without knowing what came before it.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

from mkt_pipeline.core.keyed_random import keyed_rng
from mkt_pipeline.core.timeline import SECONDS_PER_DAY, US_PER_S, datetime_to_us

NEW_YORK = ZoneInfo("America/New_York")

CLOSED, PRE_OPEN, CONTINUOUS, CLOSE_AUCTION, POST_CLOSE = range(5)
PHASE_NAMES = ("closed", "pre_open", "continuous", "close_auction", "post_close")
# Quote-rate multiplier per phase (docs/data-model.md#equities-generation), indexed by phase code.
QUOTE_MULTIPLIERS = np.array([0.2, 0.4, 1.0, 1.3, 0.2])
REGULAR_PHASES = (CONTINUOUS, CLOSE_AUCTION)
OFFSESSION_TRADES = ("none", "trickle", "full")
TRICKLE_FRACTION = 0.1

PRE_OPEN_LOCAL = dt.time(4, 0)
CLOSE_AUCTION_S = 600
POST_CLOSE_S = 4 * 3600

# Intraday U shape of continuous trading (docs/data-model.md#realism-bands): activity is highest at the open and the
# close and flat through the middle of the day. Each end adds a boost that fades quadratically over an hour.
OPEN_TRADE_BOOST = 1.6  # extra trade rate at 09:30 (x2.6), averaging x1.9 over the first 30 min
CLOSE_TRADE_BOOST = 2.4  # extra trade rate at 16:00 (x3.4), averaging x2.4 over the last 30 min
BOOST_SPAN_S = 3600
OPEN_ACTIVITY, CLOSE_ACTIVITY, MIDDAY_ACTIVITY = 2.4, 1.2, -0.3  # activity log-levels (quote counts, volatility)

HALT_PROBABILITY = 0.01  # per symbol per trading day: rare (about one halt every three sessions over 30 symbols)
HALT_SECONDS = 300  # a LULD pause lasts five minutes
_HALT_OPEN_GUARD_S = 900
_HALT_CLOSE_GUARD_S = 1800


@dataclass(frozen=True)
class TradingDay:
    """One NYSE session, as epoch seconds (UTC)."""

    date: dt.date
    pre_open_s: int
    open_s: int
    close_s: int

    @property
    def auction_s(self) -> int:
        return self.close_s - CLOSE_AUCTION_S

    @property
    def post_end_s(self) -> int:
        return self.close_s + POST_CLOSE_S

    @property
    def early_close(self) -> bool:
        return self.close_s - self.open_s < 6 * 3600


@cache
def _decade_schedule(decade: int) -> dict[dt.date, tuple[int, int]]:
    """``{session date: (open_s, close_s)}`` for ten calendar years, from the XNYS calendar: its
    table for 2000-2039 (``xnys``, no pandas), the library itself for other years."""
    from mkt_pipeline.equities import xnys

    if xnys.FIRST_YEAR <= decade and decade + 9 <= xnys.LAST_YEAR:
        return _table_schedule(decade, xnys)
    import exchange_calendars  # imported lazily: with pandas it costs 1-6 s, and only pacing needs it

    with warnings.catch_warnings():  # the library trips pandas deprecation warnings that are not ours to fix
        warnings.simplefilter("ignore")
        cal = exchange_calendars.get_calendar("XNYS", start=f"{decade}-01-01", end=f"{decade + 9}-12-31")
    sched = cal.schedule
    opens = sched["open"].dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    closes = sched["close"].dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    return {d.date(): (int(o), int(c)) for d, o, c in zip(sched.index, opens, closes)}


def _table_schedule(decade: int, xnys) -> dict[dt.date, tuple[int, int]]:
    closed, early = xnys.closed_dates(), xnys.early_close_dates()
    out = {}
    day = dt.date(decade, 1, 1)
    while day.year < decade + 10:
        if day.weekday() < 5 and day not in closed:
            close = xnys.EARLY_CLOSE_LOCAL if day in early else xnys.CLOSE_LOCAL
            out[day] = tuple(
                datetime_to_us(dt.datetime.combine(day, t, NEW_YORK)) // US_PER_S for t in (xnys.OPEN_LOCAL, close)
            )
        day += dt.timedelta(days=1)
    return out


def trading_day(date: dt.date) -> TradingDay | None:
    """The session on ``date`` (a New York calendar date), or None when NYSE is closed."""
    times = _decade_schedule(date.year - date.year % 10).get(date)
    if times is None:
        return None
    pre = dt.datetime.combine(date, PRE_OPEN_LOCAL, NEW_YORK)
    return TradingDay(date, datetime_to_us(pre) // US_PER_S, times[0], times[1])


def trading_days(first_second: int, end_second: int) -> list[TradingDay]:
    """Sessions whose pre-open..post-close span touches ``[first_second, end_second)``."""
    first = dt.date(1970, 1, 1) + dt.timedelta(days=first_second // SECONDS_PER_DAY - 1)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=(end_second - 1) // SECONDS_PER_DAY + 1)
    out = []
    for i in range((last - first).days + 1):
        day = trading_day(first + dt.timedelta(days=i))
        if day is not None and day.pre_open_s < end_second and day.post_end_s > first_second:
            out.append(day)
    return out


def phases(first_second: int, end_second: int) -> np.ndarray:
    """Phase code (int8) of every second in ``[first_second, end_second)``."""
    bounds, codes = [np.iinfo(np.int64).min], [CLOSED]
    for day in trading_days(first_second, end_second):
        bounds += [day.pre_open_s, day.open_s, day.auction_s, day.close_s, day.post_end_s]
        codes += [PRE_OPEN, CONTINUOUS, CLOSE_AUCTION, POST_CLOSE, CLOSED]
    seconds = np.arange(first_second, end_second, dtype=np.int64)
    return np.asarray(codes, dtype=np.int8)[np.searchsorted(np.asarray(bounds), seconds, side="right") - 1]


def intraday_shape(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open part, close part, in session) per absolute second: the two U-shape boosts in [0, 1]
    (1 at the open / the close, 0 an hour away) and whether the second is in regular hours."""
    seconds = np.asarray(seconds, dtype=np.int64)
    open_part = np.zeros(len(seconds))
    close_part = np.zeros(len(seconds))
    regular = np.zeros(len(seconds), dtype=bool)
    if len(seconds):
        for day in trading_days(int(seconds.min()), int(seconds.max()) + 1):
            m = (seconds >= day.open_s) & (seconds < day.close_s)
            t = seconds[m]
            regular[m] = True
            open_part[m] = np.maximum(0.0, 1.0 - (t - day.open_s) / BOOST_SPAN_S) ** 2
            close_part[m] = np.maximum(0.0, 1.0 - (day.close_s - 1 - t) / BOOST_SPAN_S) ** 2
    return open_part, close_part, regular


def intraday_trade_multiplier(seconds: np.ndarray) -> np.ndarray:
    """Trade-rate multiplier of the intraday U shape: 1 from 10:30 to 15:00, up to x2.6 / x3.4 at the ends."""
    open_part, close_part, _ = intraday_shape(seconds)
    return 1.0 + OPEN_TRADE_BOOST * open_part + CLOSE_TRADE_BOOST * close_part


def intraday_activity(seconds: np.ndarray) -> np.ndarray:
    """Seasonal activity log-level (``core.activity`` profile): high at the open and the close, low midday."""
    open_part, close_part, regular = intraday_shape(seconds)
    return np.where(
        regular,
        MIDDAY_ACTIVITY
        + (OPEN_ACTIVITY - MIDDAY_ACTIVITY) * open_part
        + (CLOSE_ACTIVITY - MIDDAY_ACTIVITY) * close_part,
        0.0,
    )


@dataclass(frozen=True)
class SessionPacing:
    """Rate multipliers per phase for quotes and trades (``--session_pacing``, ``--offsession_trades``).

    Pacing scales quote and trade rates by phase; without it every phase runs at ×1. Trades outside
    regular hours (09:30–close) follow ``offsession_trades``: ``none`` (no trades), ``trickle``
    (10% of the base trade rate) or ``full`` (the base rate, as if the market were open).
    """

    session_pacing: bool = True
    offsession_trades: str = "none"

    def __post_init__(self) -> None:
        if self.offsession_trades not in OFFSESSION_TRADES:
            raise ValueError(
                f"offsession_trades must be one of {', '.join(OFFSESSION_TRADES)} (got {self.offsession_trades!r})"
            )

    def quote_multiplier(self, phase: np.ndarray) -> np.ndarray:
        phase = np.asarray(phase)
        return QUOTE_MULTIPLIERS[phase] if self.session_pacing else np.ones(phase.shape)

    def trade_multiplier(self, phase: np.ndarray) -> np.ndarray:
        phase = np.asarray(phase)
        regular = np.isin(phase, REGULAR_PHASES)
        off = {"none": 0.0, "trickle": TRICKLE_FRACTION, "full": 1.0}[self.offsession_trades]
        return np.where(regular, self.quote_multiplier(phase), off)


@dataclass(frozen=True)
class Halt:
    symbol: int  # index into the engine's symbol list
    start_s: int
    end_s: int  # the halt-resume print happens at this second


def halts(seed: int, day: TradingDay, n_symbols: int, probability: float = HALT_PROBABILITY) -> list[Halt]:
    """Volatility halts of one session: keyed by (seed, date), so every window agrees on them."""
    rng = keyed_rng(seed, "equities/halts", day.date.toordinal())
    hit = rng.random(n_symbols) < probability
    lo = day.open_s + _HALT_OPEN_GUARD_S
    hi = day.close_s - _HALT_CLOSE_GUARD_S - HALT_SECONDS
    starts = lo + (rng.random(n_symbols) * max(1, hi - lo)).astype(np.int64)
    return [Halt(int(i), int(starts[i]), int(starts[i]) + HALT_SECONDS) for i in np.flatnonzero(hit)]

"""NYSE session phases, holidays, half-days, DST, pacing multipliers and halts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mkt_pipeline.core.timeline import parse_timestamp
from mkt_pipeline.equities import session as ns


def sec(text: str) -> int:
    return parse_timestamp(text) // 1_000_000


def phase_at(text: str) -> str:
    s = sec(text)
    return ns.PHASE_NAMES[ns.phases(s, s + 1)[0]]


@pytest.mark.parametrize(
    "when, expected",
    [
        # 2025-07-01, EDT (UTC-4): pre-open 08:00Z, open 13:30Z, auction 19:50Z, close 20:00Z, post until 00:00Z
        ("2025-07-01T07:59:59Z", "closed"),
        ("2025-07-01T08:00:00Z", "pre_open"),
        ("2025-07-01T13:29:59Z", "pre_open"),
        ("2025-07-01T13:30:00Z", "continuous"),
        ("2025-07-01T19:49:59Z", "continuous"),
        ("2025-07-01T19:50:00Z", "close_auction"),
        ("2025-07-01T19:59:59Z", "close_auction"),
        ("2025-07-01T20:00:00Z", "post_close"),
        ("2025-07-01T23:59:59Z", "post_close"),
        ("2025-07-02T00:00:00Z", "closed"),
        # 2025-12-01, EST (UTC-5)
        ("2025-12-01T14:29:59Z", "pre_open"),
        ("2025-12-01T14:30:00Z", "continuous"),
        ("2025-12-01T20:50:00Z", "close_auction"),
        ("2025-12-01T21:00:00Z", "post_close"),
        ("2025-12-02T00:59:59Z", "post_close"),
        ("2025-12-02T01:00:00Z", "closed"),
        # weekend and holidays: closed all day
        ("2025-07-05T15:00:00Z", "closed"),
        ("2025-07-04T15:00:00Z", "closed"),
        ("2025-04-18T15:00:00Z", "closed"),  # Good Friday
        ("2025-11-27T12:00:00Z", "closed"),  # Thanksgiving
        ("2025-11-27T16:00:00Z", "closed"),
        # half-day after Thanksgiving: closes 13:00 ET = 18:00Z
        ("2025-11-28T14:30:00Z", "continuous"),
        ("2025-11-28T17:49:59Z", "continuous"),
        ("2025-11-28T17:50:00Z", "close_auction"),
        ("2025-11-28T18:00:00Z", "post_close"),
        ("2025-11-28T21:59:59Z", "post_close"),
        ("2025-11-28T22:00:00Z", "closed"),
        # 2025-07-03 is a half-day too (13:00 EDT = 17:00Z)
        ("2025-07-03T16:59:59Z", "close_auction"),
        ("2025-07-03T17:00:00Z", "post_close"),
    ],
)
def test_phase_at(when, expected):
    assert phase_at(when) == expected


def test_trading_days_from_the_real_calendar():
    assert ns.trading_day(dt.date(2025, 11, 27)) is None
    assert ns.trading_day(dt.date(2025, 12, 25)) is None
    assert ns.trading_day(dt.date(2025, 11, 29)) is None  # Saturday
    friday = ns.trading_day(dt.date(2025, 11, 28))
    assert friday.early_close and friday.close_s == sec("2025-11-28T18:00:00Z")
    wednesday = ns.trading_day(dt.date(2025, 11, 26))
    assert not wednesday.early_close and wednesday.close_s == sec("2025-11-26T21:00:00Z")
    # DST: the open moves from 14:30Z to 13:30Z over the March 2025 switch, and back in November
    assert ns.trading_day(dt.date(2025, 3, 7)).open_s == sec("2025-03-07T14:30:00Z")
    assert ns.trading_day(dt.date(2025, 3, 10)).open_s == sec("2025-03-10T13:30:00Z")
    assert ns.trading_day(dt.date(2025, 3, 10)).pre_open_s == sec("2025-03-10T08:00:00Z")
    assert ns.trading_day(dt.date(2025, 11, 3)).open_s == sec("2025-11-03T14:30:00Z")
    assert ns.trading_day(dt.date(2026, 1, 2)).open_s == sec("2026-01-02T14:30:00Z")


def test_the_tabled_calendar_is_the_library_calendar():
    """The sessions tabled for 2000-2039 (read without pandas) are exactly what ``exchange_calendars`` gives."""
    from mkt_pipeline.equities import xnys

    closed, early, other = xnys.from_library()
    assert not other, f"sessions the table cannot express: {sorted(other)[:3]}"
    fix = "regenerate the table: python -m mkt_pipeline.equities.xnys"
    assert sorted(xnys.closed_dates()) == [dt.date.fromisoformat(d) for d in closed], fix
    assert sorted(xnys.early_close_dates()) == [dt.date.fromisoformat(d) for d in early], fix
    day = ns.trading_day(dt.date(2001, 9, 17))  # the first session after 11 September 2001, from the table
    assert day is not None and ns.trading_day(dt.date(2001, 9, 14)) is None
    # years outside the table go to the library
    assert ns.trading_day(dt.date(1995, 12, 25)) is None and ns.trading_day(dt.date(1995, 12, 26)) is not None


def test_phases_are_stateless_across_cuts():
    a, m, b = sec("2025-11-27T20:00:00Z"), sec("2025-11-28T17:55:00Z"), sec("2025-11-29T02:00:00Z")
    whole = ns.phases(a, b)
    assert np.array_equal(whole, np.concatenate([ns.phases(a, m), ns.phases(m, b)]))
    assert set(np.unique(whole)) == {ns.CLOSED, ns.PRE_OPEN, ns.CONTINUOUS, ns.CLOSE_AUCTION, ns.POST_CLOSE}


def test_pacing_multipliers():
    phases = np.array([ns.CLOSED, ns.PRE_OPEN, ns.CONTINUOUS, ns.CLOSE_AUCTION, ns.POST_CLOSE])
    paced = ns.SessionPacing(True, "none")
    assert paced.quote_multiplier(phases).tolist() == [0.2, 0.4, 1.0, 1.3, 0.2]
    assert paced.trade_multiplier(phases).tolist() == [0.0, 0.0, 1.0, 1.3, 0.0]
    assert ns.SessionPacing(True, "trickle").trade_multiplier(phases).tolist() == [0.1, 0.1, 1.0, 1.3, 0.1]
    assert ns.SessionPacing(True, "full").trade_multiplier(phases).tolist() == [1.0, 1.0, 1.0, 1.3, 1.0]
    flat = ns.SessionPacing(False, "none")
    assert flat.quote_multiplier(phases).tolist() == [1.0] * 5
    assert flat.trade_multiplier(phases).tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="offsession_trades"):
        ns.SessionPacing(True, "sometimes")


def test_halts_are_rare_keyed_and_inside_the_session():
    days = [d for d in (ns.trading_day(dt.date(2025, 1, 1) + dt.timedelta(days=i)) for i in range(365)) if d]
    found = [(d, h) for d in days for h in ns.halts(42, d, 30)]
    rate = len(found) / (30 * len(days))
    assert 0.005 < rate < 0.02
    for day, h in found:
        assert day.open_s + 900 <= h.start_s and h.end_s <= day.close_s - 1800
        assert h.end_s - h.start_s == ns.HALT_SECONDS
    assert ns.halts(42, days[10], 30) == ns.halts(42, days[10], 30)
    assert [ns.halts(7, d, 30) for d in days[:60]] != [ns.halts(42, d, 30) for d in days[:60]]

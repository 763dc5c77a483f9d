"""The §11 measures on data whose answer is known: they find what is there and only that."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from mkt_pipeline.core import facts as cf

NS = cf.NS_PER_S
DAY_S = 1_762_819_200  # 2025-11-11T00:00:00Z


def test_excess_kurtosis_of_normal_and_laplace_samples():
    rng = np.random.default_rng(1)
    assert abs(cf.excess_kurtosis(rng.normal(size=200_000))) < 0.1
    assert abs(cf.excess_kurtosis(rng.laplace(size=200_000)) - 3.0) < 0.3
    assert math.isnan(cf.excess_kurtosis(np.array([1.0, 2.0, np.nan])))


def test_autocorrelation_of_an_ar1_series_and_of_white_noise():
    rng = np.random.default_rng(2)
    noise = rng.normal(size=100_000)
    ar = np.zeros_like(noise)
    for i in range(1, len(ar)):
        ar[i] = 0.6 * ar[i - 1] + noise[i]
    assert abs(cf.autocorrelation(ar, 1) - 0.6) < 0.02
    assert abs(cf.autocorrelation(ar, 2) - 0.36) < 0.02
    assert abs(cf.autocorrelation(noise, 1)) < 0.02
    # gaps are skipped, not bridged
    with_gaps = ar.copy()
    with_gaps[::10] = np.nan
    assert abs(cf.autocorrelation(with_gaps, 1) - 0.6) < 0.03


def test_minute_returns_use_the_last_mid_of_each_minute():
    mids = np.full((1, 180), np.nan)
    mids[0, :60] = 100.0
    mids[0, 59] = 101.0  # last second of minute 0
    mids[0, 100] = 102.0  # minute 1 ends on the forward-filled 102
    mids[0, 179] = 99.0
    r = cf.minute_log_returns(mids, DAY_S)
    np.testing.assert_allclose(r[0], [np.log(102 / 101), np.log(99 / 102)])
    # inside a span only: [120, 180) holds minute 2, measured from the mid in force at its start
    r = cf.minute_log_returns(mids, DAY_S, [(DAY_S + 120, DAY_S + 180)])
    np.testing.assert_allclose(r[0], [np.log(99 / 102)])


def test_count_autocorrelation_ignores_a_seasonal_step_but_sees_clustering():
    rng = np.random.default_rng(3)
    seconds = 4 * 3600
    level = np.where(np.arange(seconds) < 2 * 3600, 100.0, 300.0)  # a step at a half-hour edge
    iid = rng.poisson(level).astype(float)
    include = np.ones(seconds, dtype=bool)
    assert cf.autocorrelation(iid, 1) > 0.9  # raw counts: the step passes for clustering
    assert abs(cf.normalised_count_acf(iid, include, first_s=DAY_S)) < 0.05
    intensity = np.exp(np.convolve(rng.normal(size=seconds), np.ones(30) / np.sqrt(30), mode="same") * 0.5)
    clustered = rng.poisson(level * intensity).astype(float)
    assert cf.normalised_count_acf(clustered, include, first_s=DAY_S) > 0.5


def test_inter_arrival_cv_is_one_for_uniform_arrivals_and_large_for_bursts():
    rng = np.random.default_rng(4)
    seconds = 600
    uniform = np.concatenate([(DAY_S + s) * NS + np.sort(rng.integers(0, NS, 200)) for s in range(seconds)])
    a = cf._Arrivals(DAY_S, seconds)
    a.add(uniform)
    assert 0.9 < a.cv(np.ones(seconds, bool)) < 1.05
    np.testing.assert_array_equal(a.counts, 200)
    bursts = []
    for s in range(seconds):
        centres = rng.integers(0, NS, 5)
        bursts.append((DAY_S + s) * NS + np.clip(np.repeat(centres, 40) + rng.integers(0, 2_000_000, 200), 0, NS - 1))
    b = cf._Arrivals(DAY_S, seconds)
    b.add(np.concatenate(bursts))
    assert b.cv(np.ones(seconds, bool)) > 2.0


def _fx_tape(seconds=120):
    return cf.FxTape(
        ("EURUSD", "USDJPY"), (0.0001, 0.01), ("EURUSD", "USDJPY"), DAY_S * 1_000_000, (DAY_S + seconds) * 1_000_000
    )


def _books(ts_us, symbols, bid, ask, sizes=((50_000.0, 100_000.0, 200_000.0),)):
    n = len(ts_us)
    sizes = np.broadcast_to(np.asarray(sizes, dtype=float), (n, 3))
    cols = {
        "timestamp": pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        "symbol": pa.array(symbols).dictionary_encode(),
        "bid_px1": pa.array(bid, pa.float64()),
        "ask_px1": pa.array(ask, pa.float64()),
    }
    for side in ("bid", "ask"):
        for k in range(3):
            cols[f"{side}_sz{k + 1}"] = pa.array(sizes[:, k])
    return pa.table(cols)


def _empty(columns):
    return pa.table(
        {
            "timestamp": pa.array([], pa.timestamp("ns", tz="UTC")),
            **{c: pa.array([], pa.float64()) for c in columns if c != "symbol"},
            "symbol": pa.array([], pa.string()),
        }
    )


def test_fx_bounce_is_minus_half_for_white_noise_quotes_and_zero_for_a_walk():
    rng = np.random.default_rng(5)
    n = 20_000
    ts = DAY_S * 1_000_000 + np.arange(n) * 5_000
    noise_mid = 1.16 + rng.standard_normal(n) * 0.0001  # independent noise around a constant level (no repeats)
    walk_mid = 154.5 + np.cumsum(rng.choice([-0.01, 0.01], n))
    sym = np.where(np.arange(n) % 2 == 0, "EURUSD", "USDJPY")
    mid = np.where(sym == "EURUSD", noise_mid, walk_mid)
    tape = _fx_tape()
    half = n // 2  # two slices: the changes carry across the cut
    for part in (slice(0, half), slice(half, n)):
        tape.add(
            _books(ts[part], sym[part], mid[part] - 0.00005, mid[part] + 0.00005),
            _empty(cf.FX_COLUMNS["core_price"]),
            _empty(cf.FX_COLUMNS["fx_trades"]),
        )
    eur, jpy = tape.bounce_acf()
    assert abs(eur + 0.5) < 0.03
    assert abs(jpy) < 0.03


def test_fx_prints_at_the_touch_and_core_levels_use_the_book_in_force():
    t0 = DAY_S * 1_000_000
    # USDJPY books interleaved with the EURUSD ones: the stored order is not the per-symbol order
    books = _books(
        [t0 - 5, t0, t0 + 60, t0 + 100, t0 + 130],
        ["USDJPY", "EURUSD", "USDJPY", "EURUSD", "USDJPY"],
        [154.50, 1.1600, 154.51, 1.1601, 154.52],
        [154.52, 1.1602, 154.53, 1.1603, 154.54],
    )
    core = pa.table(
        {
            "timestamp": pa.array([t0 + 100, t0 + 100, t0 + 200], pa.timestamp("us", tz="UTC")),
            "symbol": pa.array(["EURUSD"] * 3),
            "bid_price": [1.1601] * 3,
            "ask_price": [1.1603] * 3,
            "bid_volume": [50_000, 120_000, 300_000],
            "ask_volume": [50_000, 40_000, 400_000],
        }
    )
    trades = pa.table(
        {
            "timestamp": pa.array(
                [(t0 + 50) * 1000, (t0 + 150) * 1000, (t0 + 150) * 1000 + 1, (t0 + 160) * 1000],
                pa.timestamp("ns", tz="UTC"),
            ),
            "symbol": pa.array(["EURUSD"] * 4),
            # at the first book's ask; at the second book's bid; two pips through the second book's ask
            "price": [1.1602, 1.1601, 1.1605, 1.1603],
            "quantity": [100_000.0, 150_000.0, 50_000.0, 1_500.0],
            "order_id": ["a", "b", "b", "c"],
        }
    )
    tape = _fx_tape()
    tape.add(books, core, trades)
    assert (tape.prints_matched, tape.prints_at_touch) == (4, 3)
    assert (tape.prints, tape.prints_round) == (4, 3)
    assert (tape.orders_total, tape.orders_round) == (3, 2)  # a: 100k, b: 200k, c: 1.5k
    # a later slice without EURUSD books: its print meets the last EURUSD book of the slice before
    later = pa.table(
        {
            "timestamp": pa.array([(t0 + 90_000_000) * 1000], pa.timestamp("ns", tz="UTC")),
            "symbol": pa.array(["EURUSD"]),
            "price": [1.1603],
            "quantity": [1_000.0],
            "order_id": ["d"],
        }
    )
    tape.add(_books([t0 + 80_000_000], ["USDJPY"], [154.60], [154.62]), _empty(cf.FX_COLUMNS["core_price"]), later)
    assert (tape.prints_matched, tape.prints_at_touch) == (5, 4)
    # bid: 50k -> L1, 120k -> L2, 300k -> L3; ask: 50k -> L1 (a copy), 40k -> L1, 400k -> deeper
    np.testing.assert_array_equal(tape.core_levels, [0, 3, 1, 1, 1])
    assert tape.core_copies == 2


def _quotes(rows):
    ts, sym, venue, bid, ask = zip(*rows)
    return pa.table(
        {
            "timestamp_ns": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "symbol": pa.array(sym).dictionary_encode(),
            "venue": pa.array(venue).dictionary_encode(),
            "bid_px1": pa.array(bid, pa.float64()),
            "ask_px1": pa.array(ask, pa.float64()),
        }
    )


def _trades(rows):
    ts, sym, venue, price, size, cond = zip(*rows)
    return pa.table(
        {
            "timestamp_ns": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "symbol": pa.array(sym),
            "venue": pa.array(venue),
            "price": pa.array(price, pa.float64()),
            "size": pa.array(size, pa.int64()),
            "cond": pa.array(cond),
        }
    )


def test_equities_nbbo_across_venues_classifies_trades_and_spreads():
    open_s = DAY_S + 14 * 3600 + 1800
    session = cf.Session(open_s - 5 * 3600, open_s, open_s + 390 * 60, open_s + 390 * 60 + 4 * 3600)
    tape = cf.EquitiesTape(
        ("AAPL",), ("NASDAQ", "NYSE"), ("AAPL",), [session], open_s * 1_000_000, (open_s + 4) * 1_000_000
    )
    t = open_s * NS
    quotes = _quotes(
        [
            (t + 10, "AAPL", "NASDAQ", 100.00, 100.03),
            (t + 20, "AAPL", "NYSE", 100.01, 100.02),  # NBBO 100.01 x 100.02: one tick
            (t + NS + 10, "AAPL", "NYSE", 99.99, 100.05),  # NBBO 100.00 x 100.03 from second 1
        ]
    )
    trades = _trades(
        [
            (t + 30, "AAPL", "NYSE", 100.02, 100, "T"),  # at the ask
            (t + NS + 20, "AAPL", "NASDAQ", 100.02, 50, "T"),  # strictly inside 100.00 x 100.03
            (t + NS + 30, "AAPL", "NASDAQ", 100.04, 10, "T"),  # through the ask
            (t + NS + 40, "AAPL", "NASDAQ", 100.04, 1000, "O"),  # crosses are not regular trades
        ]
    )
    tape.add(quotes, trades.slice(0, 1), open_s * 1_000_000, (open_s + 1) * 1_000_000)
    tape.add(quotes.slice(0, 0), trades.slice(1), (open_s + 1) * 1_000_000, (open_s + 4) * 1_000_000)
    assert (tape.regular, tape.at_or_inside, tape.inside) == (3, 2, 1)
    np.testing.assert_allclose(tape.nbbo_bid[0], [100.01, 100.00, 100.00, 100.00])
    np.testing.assert_allclose(tape.nbbo_ask[0] - tape.nbbo_bid[0], [0.01, 0.03, 0.03, 0.03], atol=1e-9)
    assert tape.volume["O"].sum() == 1000 and tape.volume["T"].sum() == 160


def test_unmeasurable_facts_fail_and_the_table_says_so():
    tape = _fx_tape(seconds=60)
    facts = tape.facts({}, {"quotes": 3.0, "orders": 6.0})
    assert len(facts) > 10 and not any(f.passed for f in facts)
    text = cf.format_table(facts, "empty")
    assert "| n/a |" in text and "pass |" not in text and f"0 of {len(facts)} facts" in text


def test_band_and_range_helpers():
    assert cf.Band(3, 30, "").holds(3) and cf.Band(3, 30, "").holds(30) and not cf.Band(3, 30, "").holds(31)
    assert not cf.Band(None, 0, "").holds(float("nan"))
    assert cf.relative_range(np.array([1.0, 1.05, 1.02])) == pytest.approx(0.05)
    closes = 100 * np.exp(np.cumsum(np.random.default_rng(6).normal(0, 0.01, 2000)))
    assert cf.daily_vol(closes, 252) == pytest.approx(0.01 * np.sqrt(252), rel=0.05)


def test_windows_longer_than_a_week_are_refused():
    with pytest.raises(ValueError, match="longer than 7 days"):
        cf.FxTape(("EURUSD",), (0.0001,), ("EURUSD",), 0, 8 * 86400 * 1_000_000)

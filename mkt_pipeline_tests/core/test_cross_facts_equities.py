"""The one-market equities measures on series with known answers."""

from __future__ import annotations

import numpy as np

from mkt_pipeline.core import cross_facts_equities as cx


def test_correlation_pc1_and_sector_gap_of_a_factor_model():
    rng = np.random.default_rng(1)
    n, t = 12, 20_000
    sector = np.array(["a"] * 6 + ["b"] * 6)
    market, sec_f = rng.standard_normal(t), rng.standard_normal((2, t))
    own = rng.standard_normal((n, t))
    x = 0.6 * market + 0.5 * sec_f[(sector == "b").astype(int)] + np.sqrt(1 - 0.36 - 0.25) * own
    corr = cx.correlation_matrix(x)
    same = sector[:, None] == sector[None, :]
    assert abs(cx.mean_pairwise(corr, same) - 0.61) < 0.03  # 0.36 + 0.25
    assert abs(cx.mean_pairwise(corr, ~same) - 0.36) < 0.03
    pc1 = cx.first_component_share(corr)
    assert 0.45 < pc1 < 0.6
    # independent series: correlation ~0, the first component ~1/n plus sampling noise
    corr0 = cx.correlation_matrix(own)
    assert abs(cx.mean_pairwise(corr0)) < 0.02 and cx.first_component_share(corr0) < 0.12


def test_horizon_returns_sum_the_one_second_returns():
    rng = np.random.default_rng(2)
    log_mids = np.cumsum(rng.standard_normal((3, 1000)), axis=1)
    r1 = cx.horizon_returns(log_mids, [(1, 901)], 1)
    r300 = cx.horizon_returns(log_mids, [(1, 901)], 300)
    assert r300.shape == (3, 3)
    assert np.allclose(r300, r1.reshape(3, 3, 300).sum(axis=2))


def test_pooled_sign_acf_of_a_markov_chain_and_of_coin_flips():
    rng = np.random.default_rng(3)
    stay = 0.75  # P(same sign as the last one): lag-k autocorrelation (2 * stay - 1) ** k
    flips = rng.random(200_000) > stay
    signs = np.where(np.cumsum(flips) % 2 == 0, 1, -1)
    acf = cx.pooled_acf([signs[:100_000], signs[100_000:]], 5)
    assert np.allclose(acf, 0.5 ** np.arange(1, 6), atol=0.02)
    assert abs(cx.pooled_acf([rng.choice([-1, 1], 100_000)], 1)[0]) < 0.02


def test_impact_is_the_signed_mid_move_in_spreads_and_venue_shares():
    start = 1_000_000
    tape = cx.EquitiesMarketTape(("AAA", "BBB"), ("NASDAQ", "NYSE", "IEX"), ("x", "y"), ("NASDAQ", "NYSE"), start, 100)
    mids = np.full((2, 100), 10.0)
    mids[0, 50:] = 10.01  # AAA rises a cent after second 49
    mids[1, 50:] = 9.99  # BBB falls a cent
    ts = (start + np.array([40, 40, 40])) * cx.NS_PER_S + np.array([5, 7, 9])
    sym = np.array([0, 1, 0])
    tape.add_trades(
        sym,
        ts,
        np.array([0, 1, 2]),
        np.array([True, False, True]),
        np.array([50, 5000, 100]),
        np.full(3, 9.995),
        np.full(3, 10.015),
    )  # quoted spread 2 cents, mid 10.005
    imp = tape.impact(mids, np.ones(100, dtype=bool))
    # the first trade of each (symbol, second) only: AAA's buy at 10.005 -> 10.01, BBB's sell at 10.005 -> 9.99
    assert len(imp["after"]) == 2
    assert np.allclose(imp["after"], [0.25, 0.75])
    assert np.allclose(imp["before"], [0.25, -0.25])  # both had the mid at 10.00 five seconds before
    assert tape.venue_volume[0].tolist() == [50, 0, 100] and tape.venue_volume[1].tolist() == [0, 5000, 0]
    every, first = tape.sign_sequences()
    assert every[0].tolist() == [1, 1] and first[0].tolist() == [1] and every[1].tolist() == [-1]

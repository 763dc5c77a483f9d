"""Stateless activity (clustering + seasonality) and bursty arrivals, checked on generated values."""

from __future__ import annotations

import numpy as np
import pytest

from mkt_pipeline.core.activity import Activity, Cluster, HourlyProfile, second_uniforms
from mkt_pipeline.core.arrivals import WARP_POSITIONS, build_layout, draw_second, warp_offsets, weights_cdf
from mkt_pipeline.core.keyed_random import keyed_rng
from mkt_pipeline.core.timeline import US_PER_S

DAY = 1762819200  # 2025-11-11T00:00:00Z
PROFILE = HourlyProfile([-1.2] * 6 + [0.0] * 6 + [1.2] * 6 + [0.0] * 6)
CLUSTERS = (Cluster(1, 0.95, 90, 0.8, 0.0), Cluster(60, 0.97, 120, 0.3, 0.35))


def activity(seed: int = 3) -> Activity:
    return Activity(seed, "test/activity", PROFILE, CLUSTERS, count_gain=3.0)


def counts(a: Activity, first: int, end: int, low: int = 100, high: int = 300) -> np.ndarray:
    return a.counts(first, end, low, high, second_uniforms(3, "test/u", first, end))


def test_a_window_alone_equals_the_same_window_inside_a_longer_one():
    whole = counts(activity(), DAY, DAY + 7300)
    fresh = activity()  # no cache shared with the long run
    cuts = [DAY, DAY + 1, DAY + 59, DAY + 3599, DAY + 3600, DAY + 5000, DAY + 7300]
    parts = np.concatenate([counts(fresh, a, b) for a, b in zip(cuts[:-1], cuts[1:])])
    assert np.array_equal(whole, parts)
    vol_whole = activity().volatility(DAY, DAY + 7300)
    vol_parts = np.concatenate([activity().volatility(a, b) for a, b in zip(cuts[:-1], cuts[1:])])
    assert np.array_equal(vol_whole, vol_parts)


def test_counts_stay_inside_the_range_cluster_and_follow_the_profile():
    c = counts(activity(), DAY, DAY + 86400)
    assert c.min() >= 100 and c.max() <= 300
    hourly = c.reshape(24, 3600).mean(axis=1)
    assert hourly[12:18].mean() >= 2 * hourly[0:6].mean()  # the busy quarter of the day vs the quiet one
    # busy seconds follow busy seconds, also inside one hour where the profile is flat
    inside = c[3 * 3600 : 4 * 3600].astype(float)
    assert np.corrcoef(inside[1:], inside[:-1])[0, 1] >= 0.3
    assert len(np.unique(inside)) > 20  # but not a constant


@pytest.mark.parametrize("low,high", [(5, 5), (0, 1), (110, 150)])
def test_counts_inside_narrow_ranges(low, high):
    c = counts(activity(), DAY, DAY + 3600, low, high)
    assert c.min() >= low and c.max() <= high and (high == low or c.max() > c.min())


def test_volatility_clusters_and_averages_about_one():
    v = activity().volatility(DAY, DAY + 86400)
    assert 0.7 <= v.mean() <= 1.4 and v.min() > 0
    minutes = v.reshape(-1, 60).mean(axis=1)
    assert np.corrcoef(minutes[30:], minutes[:-30])[0, 1] > 0.3  # regimes outlast half an hour
    assert minutes[12 * 60 : 18 * 60].mean() > 1.5 * minutes[: 6 * 60].mean()


def test_different_seeds_differ():
    assert not np.array_equal(activity(1).volatility(DAY, DAY + 600), activity(2).volatility(DAY, DAY + 600))


def test_hourly_profile_is_periodic_and_smooth():
    with pytest.raises(ValueError, match="24 values"):
        HourlyProfile([0.0] * 23)
    t = np.arange(DAY, DAY + 2 * 86400, 60)
    p = PROFILE(t)
    assert np.allclose(p[: 24 * 60], p[24 * 60 :])
    assert np.abs(np.diff(p)).max() < 0.05  # no steps at hour boundaries


def _layout(burstiness: float, n_events: int, seconds: range):
    cdf = weights_cdf(np.ones(30))
    draws = [draw_second(keyed_rng(5, "test/arrivals", s), n_events, cdf, 2, burstiness) for s in seconds]
    return build_layout(seconds[0], draws)


@pytest.mark.parametrize("n_events", [130, 5000])
def test_bursty_arrivals_keep_order_and_gaps_and_are_not_poisson(n_events):
    plain, bursty = _layout(0.0, n_events, range(1000, 1040)), _layout(1.4, n_events, range(1000, 1040))
    for lay in (plain, bursty):
        cell_start = np.r_[True, np.diff(lay.cell) != 0]
        gaps = np.diff(lay.time_us)[~cell_start[1:]]
        assert gaps.min() >= 2  # strictly increasing, with the minimum gap, inside every cell
        assert (lay.time_us // US_PER_S == lay.second).all()

    def cv(lay) -> float:
        t = np.sort(lay.time_us)
        g = np.diff(t)[np.diff(t // US_PER_S) == 0]
        return g.std() / g.mean()

    assert cv(plain) < 1.15 and cv(bursty) >= 1.5


def test_bursty_layout_does_not_depend_on_the_batch():
    whole = _layout(1.4, 500, range(2000, 2030))
    parts = [_layout(1.4, 500, range(a, b)) for a, b in ((2000, 2007), (2007, 2030))]
    assert np.array_equal(whole.time_us, np.concatenate([p.time_us for p in parts]))


@pytest.mark.parametrize("burstiness", [0.0, 1.4])
def test_warp_offsets_of_many_seconds_equal_each_second_alone(burstiness):
    cdf = weights_cdf(np.ones(30))
    draws = [draw_second(keyed_rng(5, "test/arrivals", s), 400, cdf, 2, burstiness) for s in range(3000, 3012)]
    rng = np.random.default_rng(3)
    positions = [rng.integers(0, WARP_POSITIONS, n) for n in rng.integers(0, 300, len(draws))]
    sec = np.repeat(np.arange(len(draws)), [len(p) for p in positions])
    together = warp_offsets(draws, sec, np.concatenate(positions), 1_000_000_000)
    alone = [warp_offsets([d], np.zeros(len(p), dtype=np.int64), p, 1_000_000_000) for d, p in zip(draws, positions)]
    assert np.array_equal(together, np.concatenate(alone))
    assert together.min() >= 0 and together.max() < 1_000_000_000
    if burstiness:  # the profile moves offsets away from the uniform mapping, keeping their order
        uniform = np.concatenate(positions) * 1_000_000_000 // WARP_POSITIONS
        assert (together != uniform).mean() > 0.9
        for d, p in zip(draws, positions):
            o = np.argsort(p, kind="stable")
            assert (np.diff(warp_offsets([d], np.zeros(len(p), dtype=np.int64), p[o], 1_000_000_000)) >= 0).all()

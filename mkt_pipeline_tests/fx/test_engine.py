"""The FX engine's invariants, checked on generated rows."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mkt_pipeline.core import invariants as inv
from mkt_pipeline.core.tables import FX_TABLES, concat_batches
from mkt_pipeline.core.timeline import US_PER_S, Window
from mkt_pipeline.fx import universe as fxu
from mkt_pipeline.fx.engine import ECNS, FxConfig, FxEngine, round_ticket
from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

WINDOW = Window.from_iso("2025-11-11T02:58:00Z", "2025-11-11T03:02:00Z")  # crosses an hour (partition) boundary
PPU = {p.symbol: p.pips_per_unit for p in fxu.PAIRS}


def generate(config: FxConfig, window: Window, batch_rows: int | None = None) -> dict[str, pa.Table]:
    engine = FxEngine(config, fx_references(window), batch_rows=batch_rows)
    parts = list(engine.generate(window))
    return {t.base_name: concat_batches([p[i] for p in parts]).to_arrow() for i, t in enumerate(engine.schemas)}


@pytest.fixture(scope="module")
def light() -> dict[str, pa.Table]:
    return generate(LIGHT_FX, WINDOW)


@pytest.fixture(scope="module")
def full_rate() -> dict[str, pa.Table]:
    """Default (full) rates and 40 levels, over 20 seconds."""
    return generate(FxConfig(), Window.from_iso("2025-11-11T14:00:00Z", "2025-11-11T14:00:20Z"))


def per_second_counts(table: pa.Table) -> np.ndarray:
    ts = inv.timestamps_ns(table, "timestamp") // 1_000_000_000
    return np.bincount(ts - ts.min())


def test_universe():
    assert len(fxu.PAIRS) == 30 and len(set(fxu.SYMBOLS)) == 30
    assert [p.rank for p in fxu.PAIRS[:9]] == list(range(1, 10)) and all(p.rank == 10 for p in fxu.PAIRS[9:])
    assert {p.symbol for p in fxu.PAIRS if p.pip == 0.01} == {
        "USDJPY",
        "EURJPY",
        "GBPJPY",
        "AUDJPY",
        "NZDJPY",
        "CADJPY",
    }
    assert fxu.FALLBACK_LEVELS["USDTRY"] > 27 and 140 <= fxu.FALLBACK_LEVELS["USDJPY"] <= 160


@pytest.mark.parametrize("fixture", ["light", "full_rate"])
def test_books_never_crossed_and_on_a_whole_pip_grid(fixture, request):
    md = request.getfixturevalue(fixture)["market_data"]
    for result in (inv.no_crossed_books(md), inv.book_grid(md, PPU)):
        assert result.passed, str(result)
        assert result.checked == md.num_rows > 0


def test_core_price_is_top_of_the_stored_book(light):
    md, core = light["market_data"].to_pandas(), light["core_price"].to_pandas()
    joined = core.merge(md, on=["timestamp", "symbol"], how="left", validate="one_to_one")
    assert joined["best_bid"].notna().all()
    assert (joined["bid_price"] == joined["best_bid"]).all() and (joined["ask_price"] == joined["best_ask"]).all()
    # one ECN's top: a share of the book's volume, reaching into its first 1-3 levels (docs/data-model.md#realism-bands)
    for side, book in (("bid_volume", "bids"), ("ask_volume", "asks")):
        cumulative = np.array([np.cumsum(b[1][:3]) for b in joined[book]])
        volume = joined[side].to_numpy()
        reach = np.argmax(cumulative >= volume[:, None], axis=1) + 1
        assert (volume <= cumulative[:, -1]).all() and (volume > 0).all() and (volume % 1000 == 0).all()
        share = np.bincount(reach, minlength=4)[1:] / len(reach)
        assert share.min() > 0.1 and share[0] > 0.35  # the level varies; most often inside L1
        assert (volume[reach == 1] < cumulative[reach == 1, 0]).mean() > 0.8  # a share of L1, not a copy
    assert (core["ask_price"] > core["bid_price"]).all()
    assert core["ecn"].isin(ECNS).all()
    for col in ("indicator1", "indicator2"):
        assert core[col].between(0, 1).all() and core[col].std() > 0.05


def test_spreads_one_to_eight_pips_for_majors(full_rate):
    md = full_rate["market_data"].to_pandas()
    md["pips"] = np.rint((md.best_ask - md.best_bid) * md.symbol.astype(str).map(PPU)).astype(int)
    majors = md[md.symbol.astype(str).isin(fxu.SYMBOLS[:9])]
    assert majors.pips.min() >= 1
    assert (majors.pips <= 8).mean() > 0.995  # rare stress seconds may widen further
    assert majors.pips.nunique() >= 3  # spreads move


def test_rates_per_second_within_configured_ranges(full_rate, light):
    c = FxConfig()
    md = per_second_counts(full_rate["market_data"])
    core = per_second_counts(full_rate["core_price"])
    assert md.min() >= c.market_data_min_eps and md.max() <= c.market_data_max_eps and md.std() > 0
    assert core.min() >= c.core_min_eps and core.max() <= c.core_max_eps
    orders = light["fx_trades"].to_pandas().groupby("order_id").timestamp.min().dt.floor("s").value_counts()
    assert orders.max() <= LIGHT_FX.orders_max_per_sec
    # every pair is quoted at least twice (its open and its close) in every second
    df = full_rate["market_data"].to_pandas()
    per_pair = df.groupby([df.timestamp.dt.floor("s"), df.symbol.astype(str)]).size()
    assert len(per_pair) == 20 * 30 and per_pair.min() >= 2


def test_planned_counts_match_generated_rows(light):
    engine = FxEngine(LIGHT_FX, fx_references(WINDOW))
    plan = engine.planned_counts(WINDOW.first_second, WINDOW.end_second)
    assert plan["market_data"] == light["market_data"].num_rows
    assert plan["core_price"] == light["core_price"].num_rows
    assert plan["orders"] >= light["fx_trades"].to_pandas().order_id.nunique()


def test_planned_per_second_matches_each_generated_second_and_any_split(light):
    engine = FxEngine(LIGHT_FX, fx_references(WINDOW))
    plan = engine.planned_per_second(WINDOW.first_second, WINDOW.end_second)
    for table in ("market_data", "core_price"):
        np.testing.assert_array_equal(plan[table], per_second_counts(light[table]))
    # planned alone, a span's seconds equal the same seconds planned inside a longer span
    cut = WINDOW.first_second + 7
    for name, whole in plan.items():
        parts = np.concatenate(
            [
                FxEngine(LIGHT_FX, fx_references(WINDOW)).planned_per_second(a, b)[name]
                for a, b in ((WINDOW.first_second, cut), (cut, WINDOW.end_second))
            ]
        )
        np.testing.assert_array_equal(parts, whole)


@pytest.mark.parametrize(
    "table,column",
    [
        ("market_data", "best_bid"),
        ("market_data", "best_ask"),
        ("core_price", "bid_price"),
        ("core_price", "ask_price"),
    ],
)
def test_one_second_candles_continuous_and_not_flat(light, table, column):
    result = inv.candle_continuity(light[table], "timestamp", column)
    assert result.passed, str(result)
    assert result.checked > 200 * 29  # nearly every (pair, second) has a successor checked
    df = light[table].to_pandas()
    candles = df.groupby([df.timestamp.dt.floor("s"), df.symbol.astype(str)])[column].agg(["min", "max"])
    assert (candles["max"] > candles["min"]).mean() > 0.3  # real candles, not flat lines


def test_book_depth_and_volume_ladder_shape():
    window = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:30Z")
    shallow = generate(dataclasses.replace(LIGHT_FX, min_levels=3, max_levels=3), window)["market_data"]
    deep = generate(dataclasses.replace(LIGHT_FX, min_levels=40, max_levels=40), window)["market_data"]
    mixed = generate(dataclasses.replace(LIGHT_FX, min_levels=5, max_levels=12), window)["market_data"]
    for side in ("bids", "asks"):
        a, b = shallow.column(side).to_pylist(), deep.column(side).to_pylist()
        # the first three levels of a 40-level book are exactly the 3-level book: depth does not reshape the ladder
        assert all(x[0] == y[0][:3] and x[1] == y[1][:3] for x, y in zip(a, b))
        depth = np.array([len(x[0]) for x in mixed.column(side).to_pylist()])
        assert depth.min() == 5 and depth.max() == 12
    vols = np.array([row[1] for row in deep.column("bids").to_pylist()])
    l1 = vols[:, 0] / np.array([fxu.PAIRS[fxu.SYMBOLS.index(s)].liquidity for s in deep.column("symbol").to_pylist()])
    assert 45_000 <= np.median(l1) <= 110_000
    assert np.all(np.diff(np.median(vols, axis=0)) > 0)  # thin at the touch, deeper behind it
    assert 1e8 <= np.median(vols[:, -1]) <= 1e9


def test_trades_executable_after_their_quotes_and_consistent(light):
    trades, md, core = light["fx_trades"], light["market_data"], light["core_price"]
    assert trades.num_rows > 1000
    for result in (
        inv.trades_executable(trades, md),
        inv.trades_after_quotes(trades, md),
        inv.trades_after_quotes(trades, core),
        inv.order_consistency(trades),
    ):
        assert result.passed, str(result)


def test_order_mix_and_sizes(light):
    df = light["fx_trades"].to_pandas()
    orders = df.groupby("order_id").agg(
        passive=("passive", "first"), qty=("quantity", "sum"), symbol=("symbol", "first"), fills=("price", "size")
    )
    assert 0.33 <= orders.passive.mean() <= 0.47  # 40% passive
    assert orders.qty.max() <= 100_000_000 and (df.quantity > 0).all()
    assert orders.fills.max() > 1  # aggressive orders walk levels
    share = orders.symbol.astype(str).value_counts(normalize=True)
    assert share[list(fxu.SYMBOLS[:9])].mean() > 5 * share[list(fxu.SYMBOLS[9:])].mean()  # top pairs trade ~10x exotics
    uuid_re = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert (
        df.trade_id.map(lambda u: bool(uuid_re.match(u))).all()
        and df.order_id.map(lambda u: bool(uuid_re.match(u))).all()
    )
    assert df.trade_id.is_unique
    assert df.timestamp.dt.nanosecond.any()  # nanosecond precision is used


def test_dedup_keys_unique(light):
    for table, keys in (
        ("market_data", ["timestamp", "symbol"]),
        ("core_price", ["timestamp", "symbol"]),
        ("fx_trades", ["timestamp", "trade_id"]),
    ):
        df = light[table].to_pandas()
        assert not df.duplicated(subset=keys).any(), table


def test_shocks_and_stress_set_the_reason():
    window = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T04:00:00Z")
    core = generate(LIGHT_FX, window)["core_price"].to_pandas()
    core["spread"] = np.rint((core.ask_price - core.bid_price) * core.symbol.astype(str).map(PPU))
    hi = core.symbol.astype(str).map({p.symbol: p.spread_pips[1] for p in fxu.PAIRS})
    reasons = core.reason.astype(str)
    assert set(reasons) == {"normal", "news_event", "liquidity_event"}
    assert (core.spread[reasons == "liquidity_event"] > hi[reasons == "liquidity_event"]).all()
    assert (reasons == "normal").mean() > 0.9


def test_same_seed_identical_and_different_seed_differs(light):
    again = generate(LIGHT_FX, WINDOW)
    for name, table in light.items():
        assert again[name].equals(table), name
    other = generate(dataclasses.replace(LIGHT_FX, seed=7), WINDOW)
    assert not other["market_data"].equals(light["market_data"])
    assert not other["fx_trades"].equals(light["fx_trades"])


def assert_additive(config: FxConfig, window: Window, cut_us: int) -> None:
    whole = generate(config, window)
    left = generate(config, Window(window.start_us, cut_us))
    right = generate(config, Window(cut_us, window.end_us))
    for name, table in whole.items():
        assert pa.concat_tables([left[name], right[name]]).equals(table), f"{name} split at {cut_us}"


def test_window_additivity_across_the_partition_boundary():
    hour = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:01Z").start_us
    assert_additive(LIGHT_FX, WINDOW, hour)


def test_batch_size_does_not_change_rows(light):
    tiny_batches = generate(LIGHT_FX, WINDOW, batch_rows=200)
    for name, table in light.items():
        assert tiny_batches[name].equals(table), name


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset_us=st.integers(min_value=1, max_value=29 * US_PER_S - 1), start_s=st.integers(0, 7 * 24 * 3600))
def test_window_additivity_at_any_cut(offset_us, start_s):
    start = Window.from_iso("2025-11-03T00:00:00Z", "2025-11-03T00:00:01Z").start_us + start_s * US_PER_S
    window = Window(start, start + 30 * US_PER_S)
    assert_additive(dataclasses.replace(LIGHT_FX, orders_max_per_sec=60, core_max_eps=100), window, start + offset_us)


def test_bounded_batches():
    engine = FxEngine(FxConfig(), fx_references(WINDOW))
    sizes = [len(b[0]) for b in engine.generate(Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:30Z"))]
    assert len(sizes) > 1 and max(sizes) <= engine.seconds_per_batch() * FxConfig().market_data_max_eps


@pytest.mark.parametrize(
    "changes,flag",
    [
        ({"market_data_min_eps": 900}, "--market_data_min_eps"),
        ({"core_min_eps": 20}, "--core_min_eps"),
        ({"min_levels": 50}, "--min_levels"),
        ({"min_levels": 0}, "--min_levels"),
        ({"orders_min_per_sec": 31}, "--orders_min_per_sec"),
        ({"lei_pool_size": 0}, "--lei_pool_size"),
        (
            {"market_data_min_eps": 50, "core_min_eps": 35, "core_max_eps": 40},
            "--market_data_min_eps (50) must be >= 60",
        ),
        ({"core_min_eps": 40, "core_max_eps": 50}, "--core_min_eps (40) must be >= 60"),
    ],
)
def test_invalid_config_names_the_flag(changes, flag):
    with pytest.raises(ValueError, match=re.escape(flag)):
        dataclasses.replace(FxConfig(), **changes).validate()


def daily_references(window: Window):
    """Closes that move 0.5% a day, loaded exactly as a run of ``window`` would load them."""
    import datetime as dt

    from mkt_pipeline.core.reference_prices import ReferencePrices, reference_days

    days = reference_days(window.days()[0], window.days()[-1])
    base = dt.date(2025, 11, 1)
    closes = {
        d.isoformat(): tuple(fxu.FALLBACK_LEVELS[s] * (1 + 0.005 * (d - base).days) for s in fxu.SYMBOLS) for d in days
    }
    return ReferencePrices(fxu.SYMBOLS, closes, {s: "yahoo" for s in fxu.SYMBOLS})


def test_window_additivity_across_midnight_with_moving_references():
    """Each side loads only the reference days it needs; the rows still add up exactly."""
    window = Window.from_iso("2025-11-11T23:59:40Z", "2025-11-12T00:00:20Z")
    midnight = Window.from_iso("2025-11-12T00:00:00Z", "2025-11-12T00:00:01Z").start_us

    def rows(w: Window) -> dict[str, pa.Table]:
        parts = list(FxEngine(LIGHT_FX, daily_references(w)).generate(w))
        return {t.base_name: concat_batches([p[i] for p in parts]).to_arrow() for i, t in enumerate(FX_TABLES)}

    whole, left, right = rows(window), rows(Window(window.start_us, midnight)), rows(Window(midnight, window.end_us))
    for name, table in whole.items():
        assert pa.concat_tables([left[name], right[name]]).equals(table), name


def test_round_tickets_whole_thousand_prints_and_most_prints_at_the_touch(light):
    """FX prints (docs/data-model.md#realism-bands): orders are round tickets, prints whole thousands, >= 70 % at the
    touch in force."""
    trades, md = light["fx_trades"].to_pandas(), light["market_data"].to_pandas()
    assert (trades.quantity % 1000 == 0).all()
    assert round_ticket(np.array([140_000.0, 1_400_000.0, 23_000_000.0, 50_000.0])).tolist() == [
        100_000,
        1_000_000,
        25_000_000,
        100_000,
    ]
    md = md.sort_values("timestamp")
    trades = trades.sort_values("timestamp")
    trades["ts_us"] = trades.timestamp.dt.floor("us").astype(md.timestamp.dtype)
    joined = pd.merge_asof(
        trades,
        md[["timestamp", "symbol", "best_bid", "best_ask"]].rename(columns={"timestamp": "ts_us"}),
        on="ts_us",
        by="symbol",
    )
    on_ask = (joined.side.astype(str) == "buy") ^ joined.passive
    touch = np.where(on_ask, joined.best_ask, joined.best_bid)
    assert (joined.price == touch).mean() >= 0.70


def test_activity_clusters_counts_inside_the_configured_range():
    """Busy seconds follow busy seconds (lag-1 autocorrelation), yet every count stays in U[min, max]."""
    window = Window.from_iso("2025-11-11T13:00:00Z", "2025-11-11T14:00:00Z")
    engine = FxEngine(dataclasses.replace(LIGHT_FX, market_data_max_eps=300), fx_references(window))
    md, core, orders = engine._counts(window.first_second, window.end_second)
    for counts, low, high in ((md, 110, 300), (core, 70, 100), (orders, 5, 30)):
        assert counts.min() >= low and counts.max() <= high
        assert np.corrcoef(counts[1:], counts[:-1])[0, 1] >= 0.3
    quiet = Window.from_iso("2025-11-11T04:00:00Z", "2025-11-11T05:00:00Z")
    assert (
        md.mean() >= 2 * engine._counts(quiet.first_second, quiet.end_second)[0].mean()
    )  # London/New York vs late Asia

"""The shared checks catch corrupted data (so a passing check means something)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mkt_pipeline.core import invariants as inv
from mkt_pipeline.core.tables import concat_batches
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.fx import universe as fxu
from mkt_pipeline.fx.engine import FxEngine
from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

WINDOW = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:20Z")
PPU = {p.symbol: p.pips_per_unit for p in fxu.PAIRS}


@pytest.fixture(scope="module")
def tables():
    engine = FxEngine(LIGHT_FX, fx_references(WINDOW))
    parts = list(engine.generate(WINDOW))
    return {t.base_name: concat_batches([p[i] for p in parts]).to_arrow() for i, t in enumerate(engine.schemas)}


def replace(table: pa.Table, column: str, values) -> pa.Table:
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))


def test_crossed_book_detected(tables):
    md = tables["market_data"]
    ask = md.column("best_ask").to_numpy().copy()
    ask[5] = md.column("best_bid")[5].as_py()  # locked
    assert inv.no_crossed_books(replace(md, "best_ask", ask)).violations >= 1


def test_off_grid_book_detected(tables):
    md = tables["market_data"]
    bids = md.column("bids").to_pylist()
    bids[3][0][1] += 0.5 / PPU[md.column("symbol")[3].as_py()]  # half a pip
    assert inv.book_grid(replace(md, "bids", bids), PPU).violations == 1


def test_discontinuity_detected(tables):
    md = tables["market_data"].sort_by("timestamp")
    ts = inv.timestamps_ns(md, "timestamp")
    syms = md.column("symbol").to_pylist()
    # the first quote of EURUSD in the third second moves by one pip
    i = next(k for k in range(len(ts)) if syms[k] == "EURUSD" and ts[k] // 10**9 == ts[0] // 10**9 + 2)
    bid = md.column("best_bid").to_numpy().copy()
    bid[i] += 0.0001
    assert inv.candle_continuity(replace(md, "best_bid", bid), "timestamp", "best_bid").violations == 1


def test_trade_before_its_quote_and_oversized_fill_detected(tables):
    trades, md = tables["fx_trades"], tables["market_data"]
    ts = inv.timestamps_ns(trades, "timestamp")
    md_ts = np.sort(
        inv.timestamps_ns(md, "timestamp")[
            np.array(md.column("symbol").to_pylist()) == trades.column("symbol")[0].as_py()
        ]
    )
    moved = ts.copy()
    moved[0] = md_ts[np.searchsorted(md_ts, ts[0]) - 1] + 200  # 200 ns after its snapshot
    assert inv.trades_after_quotes(replace(trades, "timestamp", moved), md).violations >= 1
    qty = trades.column("quantity").to_numpy().copy()
    qty[0] *= 1e6
    assert inv.trades_executable(replace(trades, "quantity", qty), md).violations >= 1
    price = trades.column("price").to_numpy().copy()
    price[1] += 1.0
    assert inv.trades_executable(replace(trades, "price", price), md).violations >= 1

"""Measure an equities engine's rows straight from memory, without a sink (tests, quick looks).

``measure_engine`` generates a window batch by batch, turns each batch into the columns the stored-row
readers give (top of book, trades) and feeds the ``facts`` tapes, single-series and one-market.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from mkt_pipeline.core.timeline import US_PER_S, Window
from mkt_pipeline.run.facts import business_closes, new_tape

_SLICE_S = 600


def _arrow_tables(batches, timestamp: str) -> tuple[pa.Table, pa.Table]:
    """(market data with bid_px1/ask_px1, trades) as the stored-row readers give them."""
    md, tr = batches
    sym = md.columns["symbol"]
    quotes = pa.table(
        {
            timestamp: pa.array(md.columns[md.schema.timestamp], pa.int64()),
            "symbol": pa.DictionaryArray.from_arrays(pa.array(sym.codes, pa.int32()), pa.array(list(sym.categories))),
            "venue": pa.DictionaryArray.from_arrays(
                pa.array(md.columns["venue"].codes, pa.int32()), pa.array(list(md.columns["venue"].categories))
            ),
            "bid_px1": pa.array(md.columns["bids"].level(0)),
            "ask_px1": pa.array(md.columns["asks"].level(0)),
        }
    )
    cols = {timestamp: pa.array(tr.columns[tr.schema.timestamp], pa.int64())}
    for name in ("symbol", "venue", "side", "cond"):
        c = tr.columns[name]
        cols[name] = pa.DictionaryArray.from_arrays(pa.array(c.codes, pa.int32()), pa.array(list(c.categories)))
    cols["price"] = pa.array(tr.columns["price"], pa.float64())
    cols["size"] = pa.array(tr.columns["size"], pa.int64())
    return quotes, pa.table(cols)


def measure_engine(engine, window: Window, daily_closes=None, slice_s: int = _SLICE_S):
    """Generate ``window`` with an equities ``engine`` and measure it (single-series and one-market facts)
    without a sink. Returns (facts, tape). ``daily_closes``: per-symbol closes for the realised-vs-daily rows
    (default: the offline closes of the 120 trading days up to the window)."""
    ts_name = engine.md_schema.timestamp
    tape = new_tape("equities", window, ts_name)
    for piece in window.split(slice_s):
        a, b = piece.start_us // US_PER_S, piece.end_us // US_PER_S
        for first, end in engine.batch_spans(a, b):  # the engine's own batches: bounded memory at any rate
            md, tr = _arrow_tables(engine.generate_seconds(first, end), ts_name)
            tape.add(md, tr, first * US_PER_S, end * US_PER_S)
    if daily_closes is None:
        last = dt.date(1970, 1, 1) + dt.timedelta(days=(window.end_us - 1) // US_PER_S // 86400)
        daily_closes, _ = business_closes("equities", last, offline=True)
    return tape.facts(daily_closes), tape

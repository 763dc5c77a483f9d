"""The FX market: its universe of 30 pairs and its engine (market_data, core_price, fx_trades)."""

"""The U.S.-equities market: its universe, the NYSE session and its engine (market data and trades)."""

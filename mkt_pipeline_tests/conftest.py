"""Shared fixtures: light-rate configurations and offline reference prices (tests never use the network)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MKT_OFFLINE", "1")

from mkt_pipeline.core.reference_prices import fallback_reference_prices, reference_days  # noqa: E402
from mkt_pipeline.core.timeline import Window  # noqa: E402
from mkt_pipeline.fx import universe as fx_universe  # noqa: E402
from mkt_pipeline.fx.engine import FxConfig  # noqa: E402

# The seed's local-development rates, with 10-level books.
LIGHT_FX = FxConfig(
    market_data_min_eps=110,
    market_data_max_eps=150,
    core_min_eps=70,
    core_max_eps=100,
    orders_min_per_sec=5,
    orders_max_per_sec=30,
    min_levels=10,
    max_levels=10,
)
# Light rates with 5-level books, as the command line takes them (the tests that run the CLI).
LIGHT_FLAGS = {
    "fx": "--market_data_min_eps 110 --market_data_max_eps 150 --core_min_eps 70 --core_max_eps 100 --min_levels 5 --max_levels 5".split(),
    "equities": "--market_data_min_eps 200 --market_data_max_eps 300 --trades_min_eps 50 --trades_max_eps 80 --min_levels 5 --max_levels 5".split(),
}


def fx_references(window: Window):
    days = window.days()
    return fallback_reference_prices(
        fx_universe.SYMBOLS, fx_universe.FALLBACK_LEVELS, reference_days(days[0], days[-1]), fx_universe.FALLBACK_VOLS
    )


@pytest.fixture
def light_fx() -> FxConfig:
    return LIGHT_FX


@pytest.fixture
def clean_env(monkeypatch):
    """No MKT_* deployment settings from the calling shell."""
    for var in list(os.environ):
        if var.startswith(("MKT_FX_", "MKT_EQUITIES_")) or var in (
            "MKT_SEED",
            "MKT_SINK",
            "MKT_PARQUET_DIR",
            "MKT_TABLE_SUFFIX",
        ):
            monkeypatch.delenv(var)


# the real-server fixtures (``questdb``, ``qdb_suffix``) for every ``questdb``-marked test
from mkt_pipeline_tests.questdb_server import qdb_suffix, questdb  # noqa: E402,F401

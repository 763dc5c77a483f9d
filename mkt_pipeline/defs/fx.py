"""FX assets: reference closes, the hourly tables (``fx/market_data``, ``fx/core_price``, ``fx/trades``) and the views."""

from mkt_pipeline.defs.hourly import build_hourly_asset
from mkt_pipeline.defs.reference_records import build_reference_asset
from mkt_pipeline.defs.views import build_view_assets

fx_reference_prices = build_reference_asset("fx")
fx_hourly = build_hourly_asset("fx")
fx_views = build_view_assets("fx")

fx_assets = [fx_reference_prices, fx_hourly, *fx_views]

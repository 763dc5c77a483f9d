"""Equities assets: reference closes, the hourly tables (``equities/market_data``, ``equities/trades``) and the views."""

from mkt_pipeline.defs.hourly import build_hourly_asset
from mkt_pipeline.defs.reference_records import build_reference_asset
from mkt_pipeline.defs.views import build_view_assets

equities_reference_prices = build_reference_asset("equities")
equities_hourly = build_hourly_asset("equities")
equities_views = build_view_assets("equities")

equities_assets = [equities_reference_prices, equities_hourly, *equities_views]

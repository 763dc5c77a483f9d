"""Jobs (docs/dagster.md#names): the hourly asset jobs (with their checks) and the live jobs the sensors launch."""

import dagster as dg

from mkt_pipeline.defs.equities import equities_hourly
from mkt_pipeline.defs.fx import fx_hourly
from mkt_pipeline.defs.live import build_live_job

fx_hourly_job = dg.define_asset_job(
    "fx_hourly_job",
    selection=dg.AssetSelection.assets(fx_hourly),
    description="Materialize fx/market_data, fx/core_price and fx/trades for an hour (or a range, in one run).",
)
equities_hourly_job = dg.define_asset_job(
    "equities_hourly_job",
    selection=dg.AssetSelection.assets(equities_hourly),
    description="Materialize equities/market_data and equities/trades for an hour (or a range, in one run).",
)
HOURLY_JOBS = {"fx": fx_hourly_job, "equities": equities_hourly_job}
fx_live_job = build_live_job("fx")
equities_live_job = build_live_job("equities")

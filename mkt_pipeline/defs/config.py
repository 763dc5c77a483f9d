"""Each market's generation settings as a Dagster ``Config``, built from the flag tables of ``settings``,
the tables each market's hourly asset writes, and engines built from those settings.

Defaults are read from ``MKT_<MARKET>_<FLAG>`` when the code location loads (docs/questdb.md#environment-variables),
so the CLI and Dagster share one deployment setting; run config can still override any field per run. ``seed`` also
falls back to the global ``MKT_SEED`` (through ``env_default``).
"""

from __future__ import annotations

import re
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from mkt_pipeline.core.engine import ConfigError, Engine
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.tables import EQUITIES_MARKET_DATA, EQUITIES_TRADES, FX_CORE_PRICE, FX_MARKET_DATA, FX_TRADES, TableSchema
from mkt_pipeline.markets import build_engine
from mkt_pipeline.run.ingest import DEFAULT_CHUNK_SECONDS
from mkt_pipeline.settings import FX_GENERATION_FLAGS, GENERATION_FLAGS, env_default, env_name

__all__ = ["FX_GENERATION_FLAGS", "GENERATION_CONFIG", "MARKET_TABLES", "EquitiesGenerationConfig", "FxGenerationConfig", "config_error", "make_engine"]
_PY_TYPES = {int: int, bool: bool, str: str}


def _config_class(market: str) -> type[dg.Config]:
    fields: dict[str, Any] = {
        flag.name: (_PY_TYPES[flag.parse], Field(default=env_default(market, flag), description=f"{flag.help} Env: {env_name(market, flag.name)}."))
        for flag in GENERATION_FLAGS[market]
    }
    fields["chunk_seconds"] = (
        int,
        Field(default=DEFAULT_CHUNK_SECONDS, gt=0, description="Seconds per committed chunk; must divide 3600 so no chunk straddles an hour."),
    )
    fields["processes"] = (
        int,
        Field(default=1, ge=1, description="Worker processes of the run's ingest step; each takes whole chunks (distinct time ranges)."),
    )
    name = f"{market.capitalize()}GenerationConfig"
    return create_model(name, __base__=dg.Config, __doc__=f"{market} generation settings; defaults come from the MKT_{market.upper()}_* environment variables.", **fields)


FxGenerationConfig = _config_class("fx")
EquitiesGenerationConfig = _config_class("equities")
GENERATION_CONFIG = {"fx": FxGenerationConfig, "equities": EquitiesGenerationConfig}

# asset name (under the market prefix) -> table it materializes
MARKET_TABLES: dict[str, dict[str, TableSchema]] = {
    "fx": {"market_data": FX_MARKET_DATA, "core_price": FX_CORE_PRICE, "trades": FX_TRADES},
    "equities": {"market_data": EQUITIES_MARKET_DATA, "trades": EQUITIES_TRADES},
}

_FLAG = re.compile(r"--([a-z][a-z0-9_]*)")


def config_error(exc: ConfigError) -> dg.Failure:
    """A settings error as Dagster users see it: naming the run-config key, not the CLI flag (retrying cannot help)."""
    return dg.Failure(description=_FLAG.sub(r"config key \1", str(exc)), allow_retries=False)


def make_engine(market: str, settings: dict, references: ReferencePrices) -> Engine:
    """The market's engine for run-config settings; a settings error fails the step naming the config key."""
    try:
        return build_engine(market, settings, references)
    except ConfigError as exc:
        raise config_error(exc) from None

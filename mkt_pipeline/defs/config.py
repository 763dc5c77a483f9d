"""Each market's generation settings as a Dagster ``Config``, built from the flag tables of ``settings``.

Defaults are read from ``MKT_<MARKET>_<FLAG>`` when the code location loads (SPEC §3.2), so the CLI
and Dagster share one deployment setting; run config can still override any field per run.
``seed`` also falls back to the global ``MKT_SEED`` (through ``env_default``).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, create_model

from mkt_pipeline.run.ingest import DEFAULT_CHUNK_SECONDS
from mkt_pipeline.settings import FX_GENERATION_FLAGS, GENERATION_FLAGS, env_default, env_name

__all__ = ["FX_GENERATION_FLAGS", "GENERATION_CONFIG", "EquitiesGenerationConfig", "FxGenerationConfig"]
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

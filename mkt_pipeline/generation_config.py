"""Each market's generation settings as a Dagster ``Config``, built from the flag tables of ``settings``.

Defaults are read from ``MKT_<MARKET>_<FLAG>`` when the code location loads (SPEC §3.2), so the CLI
and Dagster share one deployment setting; run config can still override any field per run.
``seed`` additionally falls back to the global ``MKT_SEED``.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from mkt_pipeline.ingest import DEFAULT_CHUNK_SECONDS
from mkt_pipeline.settings import EQUITIES_GENERATION_FLAGS, FX_GENERATION_FLAGS, Flag, convert, env_default, env_name

GENERATION_FLAGS = {"fx": FX_GENERATION_FLAGS, "equities": EQUITIES_GENERATION_FLAGS}
_PY_TYPES = {int: int, bool: bool, str: str}


def _default(market: str, flag: Flag) -> Any:
    # MKT_SEED is the dataset seed of every market unless MKT_<MARKET>_SEED says otherwise
    if flag.name == "seed" and not os.environ.get(env_name(market, "seed")) and os.environ.get("MKT_SEED"):
        return convert(flag, os.environ["MKT_SEED"])
    return env_default(market, flag)


def _config_class(market: str) -> type[dg.Config]:
    fields: dict[str, Any] = {
        flag.name: (_PY_TYPES[flag.parse], Field(default=_default(market, flag), description=f"{flag.help} Env: {env_name(market, flag.name)}."))
        for flag in GENERATION_FLAGS[market]
    }
    fields["chunk_seconds"] = (
        int,
        Field(default=DEFAULT_CHUNK_SECONDS, gt=0, description="Seconds per committed chunk; chunks are ingested as parallel steps."),
    )
    name = f"{market.capitalize()}GenerationConfig"
    return create_model(name, __base__=dg.Config, __doc__=f"{market} generation settings (SPEC §3.2, §4.4/§5.4).", **fields)


FxGenerationConfig = _config_class("fx")
EquitiesGenerationConfig = _config_class("equities")
GENERATION_CONFIG = {"fx": FxGenerationConfig, "equities": EquitiesGenerationConfig}


def engine_settings(market: str, values: dict[str, Any]) -> dict[str, Any]:
    """The engine-config part of a generation config (drops run-only fields such as chunk_seconds)."""
    return {flag.name: values[flag.name] for flag in GENERATION_FLAGS[market]}


def build_engine(market: str, values: dict[str, Any], references):
    """The market's engine for these settings (validated: ``ConfigError`` names the flag)."""
    if market == "fx":
        from mkt_pipeline.fx_engine import FxConfig, FxEngine

        return FxEngine(FxConfig(**engine_settings(market, values)).validate(), references)
    from mkt_pipeline.equities_engine import EquitiesConfig, EquitiesEngine

    return EquitiesEngine(EquitiesConfig(**engine_settings(market, values)).validate(), references)

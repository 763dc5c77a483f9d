"""Each market's generation settings as a Dagster ``Config``, built from the settings model, the
tables each market's hourly asset writes, and engines built from those settings.

Defaults are read from ``MKT_<MARKET>_<FLAG>`` when the code location loads, so the CLI and Dagster
share one deployment setting; run config can still override any field per run. ``seed`` also falls
back to the global ``MKT_SEED``.

A bad variable never stops the code location from loading: the field keeps its built-in default
and the problem is recorded (``deployment_problems``); every run and sensor the variable affects
then fails at once with one line naming it (``fail_on_deployment_problems``), never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from mkt_pipeline.core.engine import ConfigError, Engine
from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.tables import (
    EQUITIES_MARKET_DATA,
    EQUITIES_TRADES,
    FX_CORE_PRICE,
    FX_MARKET_DATA,
    FX_TRADES,
    TableSchema,
)
from mkt_pipeline.markets import build_engine
from mkt_pipeline.run.ingest import DEFAULT_CHUNK_SECONDS
from mkt_pipeline.settings import FX_GENERATION_FLAGS, GENERATION_FLAGS, Flag, deployment, env_default

__all__ = [
    "FX_GENERATION_FLAGS", "GENERATION_CONFIG", "MARKET_TABLES", "EquitiesGenerationConfig", "FxGenerationConfig",
    "config_error", "deployment_problems", "deployment_value", "engine_for_run", "env_flag_default",
    "fail_on_deployment_problems",
]  # fmt: skip
_PY_TYPES = {int: int, bool: bool, str: str}
ALL = "all"  # scope of a variable every run reads

# scope ("fx", "equities", "live", ALL) -> the errors of variables read when the code location loaded
_PROBLEMS: dict[str, list[ConfigError]] = {}


def _record(scope: str, exc: ConfigError) -> None:
    if not any(e.render() == exc.render() for e in _PROBLEMS.setdefault(scope, [])):
        _PROBLEMS[scope].append(exc)


def env_flag_default(market: str, flag: Flag) -> Any:
    """The flag's default from the environment; a bad variable is recorded and the built-in default kept."""
    try:
        return env_default(market, flag)
    except ConfigError as exc:
        _record(market, exc)
        return flag.default


def deployment_value(var: str, scope: str, fallback: Callable[[], Any] | None = None) -> Any:
    """A deployment setting for the code location; a bad value is recorded for ``scope`` and the default used."""
    try:
        return deployment(var)
    except ConfigError as exc:
        _record(scope, exc)
        from mkt_pipeline.settings import DEPLOYMENT

        return fallback() if fallback is not None else DEPLOYMENT[var].default


def record_problem(scope: str, exc: ConfigError) -> None:
    """A settings problem found at load time (e.g. by a resource) for the runs of ``scope``."""
    _record(scope, exc)


def deployment_problems(*scopes: str) -> list[str]:
    """One line per bad variable affecting ``scopes`` (and every run), naming the variable and the rule."""
    return [exc.render(_variable_name) for scope in (*scopes, ALL) for exc in _PROBLEMS.get(scope, [])]


def _variable_name(setting: str) -> str:
    return setting  # errors recorded here carry the variable's name already; a bare setting stays as it is


def fail_on_deployment_problems(*scopes: str) -> None:
    """Fail the run at once (no retry) when a variable it reads was bad when the code location loaded."""
    problems = deployment_problems(*scopes)
    if problems:
        raise dg.Failure(
            description=f"invalid deployment setting: {'; '.join(problems)} "
            "(fix or unset it and reload the code location)",
            allow_retries=False,
        )


def _config_class(market: str) -> type[dg.Config]:
    fields: dict[str, Any] = {
        flag.name: (
            _PY_TYPES[flag.parse],
            Field(
                default=env_flag_default(market, flag),
                description=f"{flag.help} Env: {' or '.join(flag.variables(market))}.",
            ),
        )
        for flag in GENERATION_FLAGS[market]
        if flag.dagster
    }
    fields["chunk_seconds"] = (
        int,
        Field(
            default=DEFAULT_CHUNK_SECONDS,
            gt=0,
            description="Seconds per committed chunk; must divide 3600 so no chunk straddles an hour.",
        ),
    )
    fields["processes"] = (
        int,
        Field(
            default=1,
            ge=1,
            description="Worker processes of the run's ingest step; each takes whole chunks (distinct time ranges).",
        ),
    )
    name = f"{market.capitalize()}GenerationConfig"
    doc = f"{market} generation settings; defaults come from the MKT_{market.upper()}_* environment variables."
    return create_model(name, __base__=dg.Config, __doc__=doc, **fields)


FxGenerationConfig = _config_class("fx")
EquitiesGenerationConfig = _config_class("equities")
GENERATION_CONFIG = {"fx": FxGenerationConfig, "equities": EquitiesGenerationConfig}

# asset name (under the market prefix) -> table it materializes
MARKET_TABLES: dict[str, dict[str, TableSchema]] = {
    "fx": {"market_data": FX_MARKET_DATA, "core_price": FX_CORE_PRICE, "trades": FX_TRADES},
    "equities": {"market_data": EQUITIES_MARKET_DATA, "trades": EQUITIES_TRADES},
}


def config_key(setting: str) -> str:
    """How Dagster users see a setting: the run-config key."""
    return f"config key {setting}"


def config_error(exc: ConfigError) -> dg.Failure:
    """A settings error as Dagster users see it: naming the run-config key (retrying cannot help)."""
    return dg.Failure(description=exc.render(config_key), allow_retries=False)


def engine_for_run(market: str, settings: dict, references: ReferencePrices) -> Engine:
    """The market's engine for run-config settings; a settings error fails the step naming the config key."""
    try:
        return build_engine(market, settings, references)
    except ConfigError as exc:
        raise config_error(exc) from None


def reject_unknown_ops(context) -> None:
    """Fail at once when the run config names ops this job does not have (e.g. settings under
    ``ops.fx_ingest`` instead of ``ops.fx_hourly``): Dagster's implicit asset job accepts them silently."""
    given = (context.run_config or {}).get("ops") or {}
    known = {node.name for node in context.job_def.graph.nodes}
    unknown = sorted(set(given) - known)
    if unknown:
        raise dg.Failure(
            description=f"run config: {', '.join(f'ops.{name}' for name in unknown)} is not an op of this job "
            f"(it has {', '.join(sorted(known))}; generation settings go under ops.<market>_hourly.config)",
            allow_retries=False,
        )

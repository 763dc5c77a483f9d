"""Generator settings shared by the CLI and Dagster: flag tables, env defaults, value parsing.

Every generator flag of a market has an environment default ``MKT_<MARKET>_<FLAG>`` (SPEC §3.2);
the CLI and the Dagster config classes both read their defaults through ``env_default`` so one
deployment setting drives every entry point.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from mkt_pipeline.core.engine import ConfigError

TRUE_WORDS = ("true", "1", "yes", "y", "on")
FALSE_WORDS = ("false", "0", "no", "n", "off")


def parse_bool(value: str | bool, flag: str = "value") -> bool:
    """``true/false/1/0/yes/no`` (any case) to bool; anything else is a one-line error."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"--{flag}: {value!r} is not a boolean (use true/false, 1/0 or yes/no)")


def parse_int(value: str | int, flag: str = "value") -> int:
    """Integers, allowing ``_`` separators as the seed examples do (``600_000_000``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().replace("_", "")
    try:
        return int(text)
    except ValueError:
        pass
    try:  # 1e9 and 2.5e6 are whole numbers too
        number = Decimal(text)
        if number.is_finite() and number == number.to_integral_value():
            return int(number)
    except InvalidOperation:
        pass
    raise ConfigError(f"--{flag}: {value!r} is not an integer")


@dataclass(frozen=True)
class Flag:
    name: str
    parse: Callable[[Any, str], Any] | type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    secret: bool = False
    high: int | None = None  # largest accepted value of an integer flag (keeps runs finite and memory bounded)


def env_name(market: str, flag: str) -> str:
    return f"MKT_{market.upper()}_{flag.upper()}"


# Deployment-wide variables of SPEC §3.2 that also default a flag of both markets.
GLOBAL_ENV: dict[str, str] = {
    "seed": "MKT_SEED",
    "sink": "MKT_SINK",
    "parquet_dir": "MKT_PARQUET_DIR",
    "suffix": "MKT_TABLE_SUFFIX",
}


def env_source(market: str, flag: str) -> str | None:
    """The environment variable that currently sets a flag's default, if any."""
    for var in (env_name(market, flag), GLOBAL_ENV.get(flag)):
        if var and os.environ.get(var, "") != "":
            return var
    return None


def env_default(market: str, flag: Flag) -> Any:
    """The flag's default, overridden by ``MKT_<MARKET>_<FLAG>`` (else the §3.2 global, e.g. ``MKT_SEED``)."""
    var = env_source(market, flag.name)
    if var is None:
        return flag.default
    try:
        return convert(flag, os.environ[var])
    except ConfigError as exc:
        # the user set a variable, not a flag: name what they typed
        raise ConfigError(name_variables(str(exc), {flag.name: var})) from None


def name_variables(message: str, variables: dict[str, str]) -> str:
    """``message`` with ``--flag`` replaced by the variable that set it, for flags not typed by the user."""
    return re.sub(r"--([a-z_]+)\b", lambda m: variables.get(m.group(1), m.group(0)), message)


def convert(flag: Flag, raw: Any) -> Any:
    if raw is None:
        return None
    if flag.parse is bool:
        value = parse_bool(raw, flag.name)
    elif flag.parse is int:
        value = parse_int(raw, flag.name)
    elif flag.parse is str:
        value = str(raw)
    else:
        value = flag.parse(raw, flag.name)
    if flag.choices and value not in flag.choices:
        raise ConfigError(f"--{flag.name}: {value!r} is not one of {', '.join(flag.choices)}")
    if flag.high is not None and value > flag.high:
        raise ConfigError(f"--{flag.name} must be <= {flag.high:_} (got {value:_})")
    return value


# Generation flags of each market: the engine config fields, with the seed scripts' defaults.
FX_GENERATION_FLAGS: tuple[Flag, ...] = (
    Flag("seed", int, 42, "Dataset seed: the same seed, settings and window always give the same rows."),
    Flag("market_data_min_eps", int, 1200, "Min market_data events per second (must be > core_max_eps)."),
    Flag("market_data_max_eps", int, 15000, "Max market_data events per second."),
    Flag("core_min_eps", int, 700, "Min core_price events per second (must be > orders_max_per_sec)."),
    Flag("core_max_eps", int, 1000, "Max core_price events per second (must be < market_data_min_eps)."),
    Flag("orders_min_per_sec", int, 5, "Min orders per second (each order prints 1-N trades)."),
    Flag("orders_max_per_sec", int, 30, "Max orders per second."),
    Flag("lei_pool_size", int, 2000, "Number of counterparty LEIs (the first N are always the same)."),
    Flag("min_levels", int, 40, "Min order-book levels per side."),
    Flag("max_levels", int, 40, "Max order-book levels per side."),
)


def _timestamp(value: Any, flag: str) -> int:
    from mkt_pipeline.core.timeline import check_timestamp_range, parse_timestamp

    try:
        us = parse_timestamp(str(value))
    except (ValueError, OverflowError):
        raise ConfigError(f"--{flag}: {value!r} is not an ISO-8601 timestamp (e.g. 2025-11-11T00:00:00Z)") from None
    try:
        check_timestamp_range(us)
    except ValueError as exc:
        raise ConfigError(f"--{flag}: {value} {exc}") from None
    return us


def parse_port(value: Any, flag: str = "value") -> int:
    """A TCP port number, 1-65535."""
    port = parse_int(value, flag)
    if not 0 < port < 65536:
        raise ConfigError(f"--{flag}: {port} is not a TCP port (1-65535)")
    return port


def _identifier(value: Any, flag: str) -> str:
    from mkt_pipeline.core.tables import validate_identifier

    try:
        return validate_identifier(str(value), flag)
    except ValueError as exc:
        raise ConfigError(f"--{exc}") from None


# Counting the rows of a window is work too: a bound keeps a mistyped count from planning for hours.
MAX_MARKET_DATA_EVENTS = 10_000_000_000

# Flags about running (mode, window, parallelism) and about the sink; common to both markets.
RUN_FLAGS: tuple[Flag, ...] = (
    Flag("mode", str, None, "real-time (wall clock) or faster-than-life (max speed). Required.", ("real-time", "faster-than-life")),
    Flag("start_ts", _timestamp, None, "Start (ISO-8601; Z, offsets, naive = UTC). Default: now. Not allowed in real-time."),
    Flag("end_ts", _timestamp, None, "End (ISO-8601, exclusive)."),
    Flag(
        "total_market_data_events",
        int,
        1_000_000,
        "Stop after the second in which this many market_data rows were generated (real-time: only when set explicitly). "
        "At most 10_000_000_000: split longer backfills with --start_ts/--end_ts.",
        high=MAX_MARKET_DATA_EVENTS,
    ),
    Flag("chunk_seconds", int, 900, "Seconds per committed chunk in faster-than-life (bounds memory and retries); at most a day.", high=86_400),
    Flag("processes", int, 1, "Worker processes (faster-than-life only); each owns distinct time ranges. At most 64.", high=64),
    Flag("incremental", bool, False, "Start where the stored data ends instead of now (faster-than-life only)."),
    Flag("overwrite", bool, False, "Regenerate a window even where rows already exist (writes are idempotent)."),
    Flag("yahoo_refresh_secs", int, 300, "Yahoo Finance reference refresh interval, in a background thread (real-time); at most a day.", high=86_400),
)
SINK_FLAGS: tuple[Flag, ...] = (
    Flag("sink", str, "questdb", "Where rows go: questdb or parquet.", ("questdb", "parquet")),
    Flag("parquet_dir", str, "./data", "Root of the Parquet dataset (sink parquet)."),
    Flag("suffix", _identifier, "", "Suffix appended to every table and view name."),
    Flag("host", str, "127.0.0.1", "QuestDB host."),
    Flag("pg_port", parse_port, 8812, "QuestDB PostgreSQL wire port (DDL and metadata)."),
    Flag("http_port", parse_port, 9000, "QuestDB HTTP port (ILP over http/https, QWP over ws/wss)."),
    Flag("ilp_port", parse_port, 9009, "QuestDB ILP TCP port (tcp/tcps)."),
    Flag(
        "protocol",
        str,
        "http",
        "Row transport: ILP over http, https, tcp or tcps; QWP over ws or wss (QuestDB 9.4+); auto picks ws when the "
        "server offers QWP, else http.",
        ("http", "https", "tcp", "tcps", "ws", "wss", "auto"),
    ),
    Flag("user", str, "admin", "PG-wire user, and HTTP basic-auth user for ILP."),
    Flag("password", str, "quest", "PG-wire password, and HTTP basic-auth password for ILP.", secret=True),
    Flag("token", str, None, "ILP token: HTTP bearer token, or the JWK private key 'd' for tcp/tcps.", secret=True),
    Flag("token_x", str, None, "JWK public key x coordinate (tcp/tcps).", secret=True),
    Flag("token_y", str, None, "JWK public key y coordinate (tcp/tcps).", secret=True),
    Flag("token_file", str, None, "File holding the ILP token (keeps it off the command line and out of the process list)."),
    Flag("ilp_user", str, "admin", "ILP key id / user for TCP JWK auth."),
    Flag("tls_verify", str, "on", "TLS certificate verification: on or unsafe_off.", ("on", "unsafe_off")),
    Flag("tls_ca", str, None, "CA bundle file for TLS verification."),
    Flag("create_views", bool, True, "Create the materialized views if not present."),
    Flag("short_ttl", bool, False, "Short retention (TTL) on tables and views, for demos."),
    Flag("enterprise", bool, False, "QuestDB Enterprise: with --short_ttl use a storage policy instead of TTL on tables."),
)

EQUITIES_GENERATION_FLAGS: tuple[Flag, ...] = (
    Flag("seed", int, 42, "Dataset seed: the same seed, settings and window always give the same rows."),
    Flag("market_data_min_eps", int, 1000, "Min equities_market_data events per second (before session scaling)."),
    Flag("market_data_max_eps", int, 15000, "Max equities_market_data events per second (before session scaling)."),
    Flag("trades_min_eps", int, 800, "Min trades per second (before session scaling)."),
    Flag("trades_max_eps", int, 1100, "Max trades per second (before session scaling)."),
    Flag("session_pacing", bool, True, "Scale rates by NYSE session phase (America/New_York, real holidays and half-days)."),
    Flag("offsession_trades", str, "none", "Trades outside the regular session: none, trickle (~10%) or full.", ("none", "trickle", "full")),
    Flag("min_levels", int, 40, "Min order-book levels per side."),
    Flag("max_levels", int, 40, "Max order-book levels per side."),
    Flag(
        "timestamp_column",
        str,
        "timestamp_ns",
        "Name of the designated timestamp (TIMESTAMP_NS) of the equities tables and views: timestamp_ns "
        "(the seed document) or timestamp (the public equities script, its dashboards and demo queries).",
        ("timestamp_ns", "timestamp"),
    ),
)

# Equities only: the published equities dashboards read eq_-prefixed tables.
EQUITIES_SINK_FLAGS: tuple[Flag, ...] = (
    Flag("prefix", _identifier, "", "Prefix prepended to every table and view name (the equities dashboards use eq_)."),
)


GENERATION_FLAGS: dict[str, tuple[Flag, ...]] = {"fx": FX_GENERATION_FLAGS, "equities": EQUITIES_GENERATION_FLAGS}

"""Every setting, declared once: name, type, default, allowed values, rule, and each route to it.

A ``Flag`` is one setting of a market's command line; it also names its environment variables
(``MKT_<MARKET>_<FLAG>``, then the deployment-wide ones such as ``MKT_SEED`` or ``QUESTDB_HOST``),
whether the Dagster run config of the hourly assets carries it, and the container variable the
Docker entrypoint maps onto it. A ``Deployment`` setting has only a variable (``MKT_OFFLINE``,
``MKT_PARTITIONS_START``, ...); a ``Tuning`` setting is a field of the Dagster QuestDB resource only.
``ResourceField`` names the declaration behind each field of the Dagster resources (``sink``, its
QuestDB and Parquet resources). The CLI parser, the environment reading, the Dagster config classes
and resources, the reference pages (``python -m mkt_pipeline.settings_docs docs/reference``) all come
from these tables. Defaults and allowed values that belong to an engine or a sink (the generation
rates, the QuestDB connection) are read from that engine's or sink's own declarations.

Validation raises ``ConfigError`` (core.engine) with the settings it involves and the rule; each
face renders the names in its own words (``--flag``, the variable, the config key).
Precedence: flag > ``MKT_<MARKET>_<FLAG>`` > ``MKT_*`` / ``QUESTDB_*`` / ``QDB_CLIENT_CONF`` > default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from decimal import Decimal, InvalidOperation
from typing import Any

from mkt_pipeline.core.engine import MAX_SEED, ConfigError

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
    raise ConfigError(f"{{{flag}}}: {value!r} is not a boolean (use true/false, 1/0 or yes/no)", flag)


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
    raise ConfigError(f"{{{flag}}}: {value!r} is not an integer", flag)


@dataclass(frozen=True)
class Flag:
    """One setting of a market (a CLI flag), with every route to it."""

    name: str
    parse: Callable[[Any, str], Any] | type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    secret: bool = False
    high: int | None = None  # largest accepted value of an integer flag (keeps runs finite and memory bounded)
    env: tuple[str, ...] = ()  # deployment-wide variables after MKT_<MARKET>_<FLAG>, first wins
    dagster: bool = False  # a field of the hourly assets' run config (ops.<market>_hourly.config)
    docker: bool = True  # the container variable <FLAG> (upper case) is mapped onto the flag

    @property
    def py_type(self) -> type:
        """The Python type of the parsed value (a Dagster config field's type)."""
        return _py_type(self.parse)

    def variables(self, market: str) -> tuple[str, ...]:
        """The environment variables that default this flag, in precedence order (read here)."""
        return (env_name(market, self.name),) + self.env

    def documented_variables(self, market: str) -> tuple[str, ...]:
        """Every variable behind the flag, including the ``QUESTDB_*`` one the QuestDB sink reads itself."""
        from mkt_pipeline.sinks.questdb_env import QUESTDB_ENV

        return self.variables(market) + ((QUESTDB_ENV[self.name],) if self.name in QUESTDB_ENV else ())


@dataclass(frozen=True)
class Deployment:
    """A setting read only from the environment (no flag), e.g. ``MKT_OFFLINE``."""

    var: str
    parse: Callable[[Any, str], Any] | type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    low: int | None = None
    high: int | None = None
    faces: str = "CLI and Dagster"  # who reads it (for the reference page)

    @property
    def name(self) -> str:
        return self.var


@dataclass(frozen=True)
class Tuning:
    """A setting of the Dagster QuestDB resource (and of ``QuestDBSettings`` in Python) with no flag or variable."""

    name: str
    parse: Callable[[Any, str], Any] | type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    high: int | None = None

    @property
    def py_type(self) -> type:
        return _py_type(self.parse)


def _py_type(parse: Callable[[Any, str], Any] | type) -> type:
    if parse in (int, parse_int, parse_port, parse_seconds):
        return int
    return bool if parse is bool else str


def env_name(market: str, flag: str) -> str:
    return f"MKT_{market.upper()}_{flag.upper()}"


def env_source(market: str, flag: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The environment variable that currently sets a flag's default, if any."""
    environ = os.environ if environ is None else environ
    for var in _flag(market, flag).variables(market) if _flag(market, flag) else (env_name(market, flag),):
        if environ.get(var, "") != "":
            return var
    return None


def env_default(market: str, flag: Flag, environ: Mapping[str, str] | None = None) -> Any:
    """The flag's default, overridden by ``MKT_<MARKET>_<FLAG>`` (else the deployment-wide variable, e.g.
    ``MKT_SEED``)."""
    environ = os.environ if environ is None else environ
    var = env_source(market, flag.name, environ)
    if var is None:
        return flag.default
    try:
        return convert(flag, environ[var])
    except ConfigError as exc:
        raise exc.named(**{flag.name: var}) from None  # the user set a variable, not a flag: name it


def convert(flag: Flag | Deployment, raw: Any) -> Any:
    """A raw value (text from a flag or variable, or a typed config value) parsed and checked against its rules."""
    if raw is None:
        return None
    name = flag.name
    if flag.parse is bool:
        value = parse_bool(raw, name)
    elif flag.parse is int:
        value = parse_int(raw, name)
    elif flag.parse is str:
        value = str(raw)
    else:
        value = flag.parse(raw, name)
    if flag.choices and value not in flag.choices:
        raise ConfigError(f"{{{name}}}: {value!r} is not one of {', '.join(flag.choices)}", name)
    if flag.high is not None and value > flag.high:
        raise ConfigError(f"{{{name}}} must be <= {flag.high:_} (got {value:_})", name)
    low = getattr(flag, "low", None)
    if low is not None and value < low:
        raise ConfigError(f"{{{name}}} must be >= {low:_} (got {value:_})", name)
    return value


def _flag(market: str, name: str) -> Flag | None:
    for flag in ALL_MARKET_FLAGS.get(market, ()):
        if flag.name == name:
            return flag
    return None


def _defaults(config_cls) -> dict[str, Any]:
    """The engine config's field defaults: written once, in the engine."""
    return {f.name: f.default for f in dataclass_fields(config_cls)}


def _timestamp(value: Any, flag: str) -> int:
    import re

    from mkt_pipeline.core.timeline import check_timestamp_range, parse_timestamp

    fraction = re.search(r"[T ]\d\d:\d\d:\d\d[.,](\d+)", str(value))
    if fraction and len(fraction.group(1)) > 6:
        raise ConfigError(
            f"{{{flag}}}: {value!r} has more than 6 fractional digits (windows are set in microseconds)", flag
        )
    try:
        us = parse_timestamp(str(value))
    except (ValueError, OverflowError):
        raise ConfigError(
            f"{{{flag}}}: {value!r} is not an ISO-8601 timestamp (e.g. 2025-11-11T00:00:00Z)", flag
        ) from None
    try:
        check_timestamp_range(us)
    except ValueError as exc:
        raise ConfigError(f"{{{flag}}}: {value} {exc}", flag) from None
    return us


def parse_port(value: Any, flag: str = "value") -> int:
    """A TCP port number, 1-65535."""
    port = parse_int(value, flag)
    if not 0 < port < 65536:
        raise ConfigError(f"{{{flag}}}: {port} is not a TCP port (1-65535)", flag)
    return port


def parse_host(value: Any, flag: str = "host") -> str:
    """A host name or IP address: no port, scheme, path or spaces (ports have their own settings)."""
    host = str(value).strip()
    if not host or any(c.isspace() for c in host):
        raise ConfigError(f"{{{flag}}}: {value!r} is not a host name", flag)
    if "/" in host or (":" in host and not _ipv6(host)):
        raise ConfigError(
            f"{{{flag}}}: {value!r} is a host name or IP address only (no scheme, port or path; "
            "ports are --http_port, --ilp_port and --pg_port)",
            flag,
        )
    return host


def _ipv6(text: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(text.strip("[]")).version == 6
    except ValueError:
        return False


def parse_seconds(value: Any, flag: str = "value") -> int:
    """A duration in whole seconds, from 1 to a day."""
    try:
        seconds = parse_int(value, flag)
    except ConfigError:
        raise ConfigError(f"{{{flag}}}: {value!r} is not a whole number of seconds", flag) from None
    if not 0 < seconds <= 86_400:
        raise ConfigError(f"{{{flag}}}: {value} must be > 0 and at most 86400 seconds", flag)
    return seconds


def _identifier(value: Any, flag: str) -> str:
    from mkt_pipeline.core.tables import validate_identifier

    try:
        return validate_identifier(str(value), flag)
    except ValueError as exc:
        raise ConfigError(f"{{{flag}}}{str(exc)[len(flag) :]}", flag) from None


def _nonempty_path(value: Any, flag: str) -> str:
    text = str(value)
    if not text.strip():
        raise ConfigError(f"{{{flag}}} must not be empty (a file name)", flag)
    return text


def _fx_defaults() -> dict[str, Any]:
    from mkt_pipeline.fx.engine import FxConfig

    return _defaults(FxConfig)


def _equities_defaults() -> dict[str, Any]:
    from mkt_pipeline.equities.engine import EquitiesConfig

    return _defaults(EquitiesConfig)


def _questdb_defaults() -> dict[str, Any]:
    """The QuestDB sink's defaults (``QuestDBSettings``), by settings field: written once, in the sink."""
    from mkt_pipeline.sinks.questdb import QuestDBSettings

    return _defaults(QuestDBSettings)


def _sink_choices() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The allowed sinks, row transports and TLS verification words: the sinks' own."""
    from mkt_pipeline.sinks.questdb import PROTOCOLS, TLS_VERIFY
    from mkt_pipeline.sinks.spec import SINK_KINDS

    return SINK_KINDS, PROTOCOLS, TLS_VERIFY


FX = _fx_defaults()
EQ = _equities_defaults()
QDB = _questdb_defaults()
SINK_CHOICES, PROTOCOL_CHOICES, TLS_VERIFY_CHOICES = _sink_choices()


def _choices_of_equities() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from mkt_pipeline.core.tables import EQUITIES_TIMESTAMP_COLUMNS
    from mkt_pipeline.equities.session import OFFSESSION_TRADES

    return OFFSESSION_TRADES, EQUITIES_TIMESTAMP_COLUMNS


OFFSESSION_CHOICES, TIMESTAMP_COLUMN_CHOICES = _choices_of_equities()
SEED_HELP = "Dataset seed: the same seed, settings and window always give the same rows. 0 to 2^63-1."

# Generation flags of each market: the engine config fields (defaults are the engines' own).
FX_GENERATION_FLAGS: tuple[Flag, ...] = (
    Flag("seed", int, FX["seed"], SEED_HELP, high=MAX_SEED, env=("MKT_SEED",), dagster=True),
    Flag(
        "market_data_min_eps",
        int,
        FX["market_data_min_eps"],
        "Min market_data events per second (must be > core_max_eps).",
        dagster=True,
    ),
    Flag("market_data_max_eps", int, FX["market_data_max_eps"], "Max market_data events per second.", dagster=True),
    Flag(
        "core_min_eps",
        int,
        FX["core_min_eps"],
        "Min core_price events per second (must be > orders_max_per_sec).",
        dagster=True,
    ),
    Flag(
        "core_max_eps",
        int,
        FX["core_max_eps"],
        "Max core_price events per second (must be < market_data_min_eps).",
        dagster=True,
    ),
    Flag(
        "orders_min_per_sec",
        int,
        FX["orders_min_per_sec"],
        "Min orders per second (each order prints 1-N trades).",
        dagster=True,
    ),
    Flag("orders_max_per_sec", int, FX["orders_max_per_sec"], "Max orders per second.", dagster=True),
    Flag(
        "lei_pool_size",
        int,
        FX["lei_pool_size"],
        "Number of counterparty LEIs (the first N are always the same).",
        dagster=True,
    ),
    Flag("min_levels", int, FX["min_levels"], "Min order-book levels per side.", dagster=True),
    Flag("max_levels", int, FX["max_levels"], "Max order-book levels per side.", dagster=True),
)

# Counting the rows of a window is work too: a bound keeps a mistyped count from planning for hours.
MAX_MARKET_DATA_EVENTS = 10_000_000_000

# Flags about running (mode, window, parallelism) and about the sink; common to both markets.
RUN_FLAGS: tuple[Flag, ...] = (
    Flag(
        "mode",
        str,
        None,
        "real-time (wall clock) or faster-than-life (max speed). Required.",
        ("real-time", "faster-than-life"),
    ),
    Flag(
        "start_ts",
        _timestamp,
        None,
        "Start (ISO-8601; Z, offsets, naive = UTC). Default: now. Not allowed in real-time.",
    ),
    Flag("end_ts", _timestamp, None, "End (ISO-8601, exclusive)."),
    Flag(
        "total_market_data_events",
        int,
        1_000_000,
        "Stop after the second in which this many market_data rows were generated (real-time: only when set explicitly). "
        "At most 10_000_000_000: split longer backfills with --start_ts/--end_ts.",
        high=MAX_MARKET_DATA_EVENTS,
    ),
    Flag(
        "chunk_seconds",
        int,
        900,
        "Seconds per committed chunk in faster-than-life (bounds memory and retries); at most a day.",
        high=86_400,
    ),
    Flag(
        "processes",
        int,
        1,
        "Worker processes (faster-than-life only); each owns distinct time ranges. At most 64.",
        high=64,
    ),
    Flag("incremental", bool, False, "Start where the stored data ends instead of now (faster-than-life only)."),
    Flag("overwrite", bool, False, "Regenerate a window even where rows already exist (writes are idempotent)."),
    Flag(
        "yahoo_refresh_secs",
        int,
        300,
        "Yahoo Finance reference refresh interval, in a background thread (real-time); at most a day.",
        high=86_400,
    ),
)
SINK_FLAGS: tuple[Flag, ...] = (
    Flag("sink", str, "questdb", "Where rows go: questdb or parquet.", SINK_CHOICES, env=("MKT_SINK",)),
    Flag("parquet_dir", str, "./data", "Root of the Parquet dataset (sink parquet).", env=("MKT_PARQUET_DIR",)),
    Flag("suffix", _identifier, "", "Suffix appended to every table and view name.", env=("MKT_TABLE_SUFFIX",)),
    Flag("host", parse_host, QDB["host"], "QuestDB host (a name or IP address, without port)."),
    Flag("pg_port", parse_port, QDB["pg_port"], "QuestDB PostgreSQL wire port (DDL and metadata)."),
    Flag("http_port", parse_port, QDB["http_port"], "QuestDB HTTP port (ILP over http/https, QWP over ws/wss)."),
    Flag("ilp_port", parse_port, QDB["ilp_tcp_port"], "QuestDB ILP TCP port (tcp/tcps)."),
    Flag(
        "protocol",
        str,
        QDB["protocol"],
        "Row transport: ILP over http, https, tcp or tcps; QWP over ws or wss (QuestDB 9.4+); auto picks ws when the "
        "server offers QWP, else http.",
        PROTOCOL_CHOICES,
    ),
    Flag("user", str, QDB["user"], "PG-wire user, and HTTP basic-auth user for ILP."),
    Flag("password", str, QDB["password"], "PG-wire password, and HTTP basic-auth password for ILP.", secret=True),
    Flag(
        "token",
        str,
        QDB["token"],
        "ILP token: HTTP bearer token, or the JWK private key 'd' for tcp/tcps.",
        secret=True,
    ),
    Flag("token_x", str, QDB["token_x"], "JWK public key x coordinate (tcp/tcps).", secret=True),
    Flag("token_y", str, QDB["token_y"], "JWK public key y coordinate (tcp/tcps).", secret=True),
    Flag(
        "token_file",
        _nonempty_path,
        None,
        "File holding the ILP token (keeps it off the command line and out of the process list).",
    ),
    Flag("ilp_user", str, QDB["ilp_user"], "ILP key id / user for TCP JWK auth."),
    Flag("tls_verify", str, QDB["tls_verify"], "TLS certificate verification: on or unsafe_off.", TLS_VERIFY_CHOICES),
    Flag("tls_ca", str, QDB["tls_ca"], "CA bundle file (PEM) for TLS verification."),
    Flag(
        "stall_timeout_secs",
        parse_seconds,
        QDB["stall_timeout_s"],
        "Give up on a QuestDB that stops answering (accepts requests, never replies) after this many seconds; "
        "a warning names host and port after 30 s (or half this). A plain re-run then completes the window.",
    ),
    Flag("create_views", bool, QDB["create_views"], "Create the materialized views if not present."),
    Flag("short_ttl", bool, QDB["short_ttl"], "Short retention (TTL) on tables and views, for demos."),
    Flag(
        "enterprise",
        bool,
        QDB["enterprise"],
        "QuestDB Enterprise: with --short_ttl use a storage policy instead of TTL on tables.",
    ),
)

EQUITIES_GENERATION_FLAGS: tuple[Flag, ...] = (
    Flag("seed", int, EQ["seed"], SEED_HELP, high=MAX_SEED, env=("MKT_SEED",), dagster=True),
    Flag(
        "market_data_min_eps",
        int,
        EQ["market_data_min_eps"],
        "Min equities_market_data events per second (before session scaling).",
        dagster=True,
    ),
    Flag(
        "market_data_max_eps",
        int,
        EQ["market_data_max_eps"],
        "Max equities_market_data events per second (before session scaling).",
        dagster=True,
    ),
    Flag("trades_min_eps", int, EQ["trades_min_eps"], "Min trades per second (before session scaling).", dagster=True),
    Flag("trades_max_eps", int, EQ["trades_max_eps"], "Max trades per second (before session scaling).", dagster=True),
    Flag(
        "session_pacing",
        bool,
        EQ["session_pacing"],
        "Scale rates by NYSE session phase (America/New_York, real holidays and half-days).",
        dagster=True,
    ),
    Flag(
        "offsession_trades",
        str,
        EQ["offsession_trades"],
        "Trades outside the regular session: none, trickle (~10%) or full.",
        OFFSESSION_CHOICES,
        dagster=True,
    ),
    Flag("min_levels", int, EQ["min_levels"], "Min order-book levels per side.", dagster=True),
    Flag("max_levels", int, EQ["max_levels"], "Max order-book levels per side.", dagster=True),
    Flag(
        "timestamp_column",
        str,
        EQ["timestamp_column"],
        "Name of the designated timestamp (TIMESTAMP_NS) of the equities tables and views: timestamp_ns "
        "(the seed document) or timestamp (the public equities script, its dashboards and demo queries).",
        TIMESTAMP_COLUMN_CHOICES,
        dagster=True,
    ),
)

# Equities only: the published equities dashboards read eq_-prefixed tables.
EQUITIES_SINK_FLAGS: tuple[Flag, ...] = (
    Flag("prefix", _identifier, "", "Prefix prepended to every table and view name (the equities dashboards use eq_)."),
)


GENERATION_FLAGS: dict[str, tuple[Flag, ...]] = {"fx": FX_GENERATION_FLAGS, "equities": EQUITIES_GENERATION_FLAGS}
MARKET_SINK_FLAGS: dict[str, tuple[Flag, ...]] = {"fx": SINK_FLAGS, "equities": SINK_FLAGS + EQUITIES_SINK_FLAGS}
ALL_MARKET_FLAGS: dict[str, tuple[Flag, ...]] = {
    m: GENERATION_FLAGS[m] + RUN_FLAGS + MARKET_SINK_FLAGS[m] for m in GENERATION_FLAGS
}
# Deployment-wide variables that also default a flag of both markets (derived from the declarations).
GLOBAL_ENV: dict[str, str] = {f.name: f.env[0] for f in ALL_MARKET_FLAGS["fx"] if f.env and f.env[0].startswith("MKT_")}


def _positive_int(value: Any, name: str) -> int:
    return parse_int(value, name)


def _partition_start(value: Any, name: str) -> str:
    import datetime as dt

    text = str(value).strip()
    try:
        start = dt.datetime.strptime(text, "%Y-%m-%d-%H:%M")
    except ValueError:
        raise ConfigError(f"{{{name}}}: {text!r} is not an hour in the form YYYY-MM-DD-HH:00 (UTC)", name) from None
    if start.minute:
        raise ConfigError(f"{{{name}}}: {text!r} must start on a whole hour (minutes 00)", name)
    return text


def redact_url(url: str) -> str:
    """A URL without its password (``redis://:***@host:6379/0``), for messages and logs."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:
        return "<unparsable URL>"


def _executor(value: Any, name: str) -> str:
    return str(value).strip().lower().replace("-", "_")


def _broker_url(value: Any, name: str) -> str:
    url = str(value).strip()
    if "://" not in url:
        raise ConfigError(
            f"{{{name}}}: {redact_url(url)!r} is not a broker URL (redis://[:password@]host:port/db)", name
        )
    return url


# Settings read only from the environment.
DEPLOYMENT_SETTINGS: tuple[Deployment, ...] = (
    Deployment("MKT_OFFLINE", bool, False, "Use the built-in reference closes instead of Yahoo Finance (no network)."),
    Deployment("MKT_CACHE_DIR", str, "~/.cache/mkt_pipeline", "Folder of the cached Yahoo Finance closes."),
    Deployment(
        "MKT_PARQUET_COMMIT_SECONDS",
        int,
        60,
        "Real-time into Parquet: seconds grouped per commit (a commit is a file per table).",
        low=1,
        high=3600,
        faces="CLI",
    ),
    Deployment(
        "MKT_EQUITIES_PREFIX",
        _identifier,
        "",
        "Dagster: prefix of the equities table and view names (dashboards use eq_).",
        faces="Dagster",
    ),
    Deployment(
        "MKT_PARTITIONS_START",
        _partition_start,
        "2024-01-01-00:00",
        "Dagster: the first hourly partition (YYYY-MM-DD-HH:00, UTC).",
        faces="Dagster",
    ),
    Deployment(
        "MKT_BACKFILL_PARTITIONS_PER_RUN",
        int,
        None,
        "Dagster: split a backfill into runs of this many hours (default: one run).",
        low=1,
        faces="Dagster",
    ),
    Deployment(
        "MKT_LIVE_WINDOW_SECONDS",
        int,
        60,
        "Dagster live sensors: seconds per live window; must divide 3600.",
        low=1,
        faces="Dagster",
    ),
    Deployment(
        "MKT_LIVE_LEAD_SECONDS",
        int,
        20,
        "Dagster live sensors: how far ahead of the clock windows are requested.",
        low=0,
        faces="Dagster",
    ),
    Deployment(
        "MKT_LIVE_CATCHUP_SECONDS",
        int,
        3600,
        "Dagster live sensors: missed time older than this is skipped.",
        low=1,
        faces="Dagster",
    ),
    Deployment(
        "MKT_LIVE_MAX_WINDOWS_PER_TICK",
        int,
        30,
        "Dagster live sensors: windows requested per tick at most.",
        low=1,
        faces="Dagster",
    ),
    Deployment(
        "MKT_LIVE_TICK_SECONDS", int, 15, "Dagster live sensors: seconds between sensor ticks.", low=1, faces="Dagster"
    ),
    Deployment(
        "MKT_EXECUTOR",
        _executor,
        "in_process",
        "Dagster: where a backfill's steps run: in_process (one machine), celery (Celery workers), "
        "k8s (a Kubernetes job per step).",
        choices=("in_process", "celery", "k8s"),
        faces="Dagster",
    ),
    Deployment(
        "MKT_STEP_HOURS",
        int,
        1,
        "Dagster, with celery or k8s: hours of a ranged backfill written by one step.",
        low=1,
        faces="Dagster",
    ),
    Deployment(
        "MKT_CELERY_BROKER_URL",
        _broker_url,
        "redis://localhost:6379/0",
        "Dagster, with celery: the broker (its password is never shown).",
        faces="Dagster and the Celery workers",
    ),
    Deployment(
        "MKT_CELERY_BACKEND_URL",
        _broker_url,
        None,
        "Dagster, with celery: the result backend (default: the broker).",
        faces="Dagster and the Celery workers",
    ),
    Deployment(
        "MKT_CELERY_WORKER_LOST_SECONDS",
        int,
        60,
        "Dagster, with celery: a step whose worker stops answering this long is handed to another worker.",
        low=1,
        faces="Dagster",
    ),
    Deployment(
        "MKT_CELERY_WORKER_WAIT",
        int,
        10,
        "Dagster, with celery: seconds a run waits for a worker to listen before it fails.",
        low=0,
        faces="Dagster",
    ),
    Deployment(
        "QDB_CLIENT_CONF",
        str,
        None,
        "The QuestDB client's own connect string (e.g. http::addr=db:9000;username=admin;password=...;), "
        "read below the QUESTDB_* variables: protocol, addr (host:port), username, password, token, token_x, "
        "token_y, tls_verify, tls_roots.",
        faces="CLI and Dagster (the QuestDB resource's client_conf)",
    ),
)
DEPLOYMENT: dict[str, Deployment] = {d.var: d for d in DEPLOYMENT_SETTINGS}

# Settings of the Dagster QuestDB resource that have no flag or variable (defaults are the sink's own).
QUESTDB_TUNING: tuple[Tuning, ...] = (
    Tuning("parquet_encodings", bool, QDB["parquet_encodings"], "Per-column PARQUET(...) encodings in the DDL."),
    Tuning(
        "wal_pause_lag",
        int,
        QDB["wal_pause_lag"],
        "Pause writing when any table's WAL lag exceeds this many transactions (must be > wal_resume_lag).",
    ),
    Tuning(
        "wal_resume_lag",
        int,
        QDB["wal_resume_lag"],
        "Resume once every table's WAL lag is at or below this (>= 0, below wal_pause_lag).",
    ),
    Tuning(
        "flush_bytes",
        int,
        QDB["flush_bytes"],
        "Encoded bytes per ILP request (> 0, below the client's 100 MiB buffer cap).",
    ),
)


@dataclass(frozen=True)
class ResourceField:
    """A field of a Dagster resource: its name, the setting that declares it, and the variable ``from_env`` reads."""

    name: str
    setting: Flag | Tuning | Deployment
    var: str | None = None

    def check(self, value: Any) -> Any:
        """The value parsed and checked by the setting's rule (``ConfigError`` naming the setting)."""
        return convert(self.setting, value)

    @property
    def py_type(self) -> type:
        return _py_type(self.setting.parse)

    @property
    def secret(self) -> bool:
        return getattr(self.setting, "secret", False) or self.name == "client_conf"

    @property
    def description(self) -> str:
        if self.secret:
            return f"{self.setting.help} Pass EnvVar('{self.var}') so the value stays out of run config."
        return f"{self.setting.help} Env: {self.var}." if self.var else self.setting.help


def questdb_resource_fields() -> tuple[ResourceField, ...]:
    """The fields of the Dagster QuestDB resource: every QuestDB flag (as its ``QuestDBSettings`` field), the
    tuning settings, and ``client_conf`` (``QDB_CLIENT_CONF``, below every other field)."""
    from mkt_pipeline.sinks.questdb import settings_field
    from mkt_pipeline.sinks.questdb_env import QUESTDB_ENV

    fields = [
        ResourceField(settings_field(f.name), f, QUESTDB_ENV.get(f.name)) for f in SINK_FLAGS if settings_field(f.name)
    ]
    fields += [ResourceField(t.name, t) for t in QUESTDB_TUNING]
    fields.append(ResourceField("client_conf", DEPLOYMENT["QDB_CLIENT_CONF"], "QDB_CLIENT_CONF"))
    return tuple(fields)


_SINK_FLAG = {f.name: f for f in SINK_FLAGS}
# The sink resource's own fields (which sink, table naming) and the Parquet resource's; scope: whose runs a bad
# value fails (every run, or the equities runs).
SINK_RESOURCE_FIELDS: tuple[ResourceField, ...] = (
    ResourceField("kind", _SINK_FLAG["sink"], "MKT_SINK"),
    ResourceField("table_suffix", _SINK_FLAG["suffix"], "MKT_TABLE_SUFFIX"),
    ResourceField("equities_prefix", DEPLOYMENT["MKT_EQUITIES_PREFIX"], "MKT_EQUITIES_PREFIX"),
)
PARQUET_RESOURCE_FIELDS: tuple[ResourceField, ...] = (
    ResourceField("root_dir", _SINK_FLAG["parquet_dir"], "MKT_PARQUET_DIR"),
)


@dataclass(frozen=True)
class EnvironmentRead:
    """What one read of the environment gave for some resource fields."""

    values: dict[str, Any]  # field -> its checked value, else its default
    given: frozenset[str]  # fields whose variable is set
    problems: dict[str, ConfigError]  # field -> why its variable's value is refused (named by the variable)


def read_resource_environment(
    fields: tuple[ResourceField, ...], environ: Mapping[str, str] | None = None
) -> EnvironmentRead:
    """Each field's value from its variable, checked by the field's rule; a refused value keeps the default."""
    environ = os.environ if environ is None else environ
    values, given, problems = {}, set(), {}
    for field in fields:
        raw = environ.get(field.var or "", "")
        values[field.name] = field.setting.default
        if raw.strip() == "":
            continue
        given.add(field.name)
        try:
            values[field.name] = field.check(raw.strip() if field.py_type is not str else raw)
        except ConfigError as exc:
            problems[field.name] = exc.named(**{field.setting.name: field.var})
    return EnvironmentRead(values, frozenset(given), problems)


def deployment(var: str, environ: Mapping[str, str] | None = None) -> Any:
    """A deployment setting's value from the environment, else its default (``ConfigError`` names the variable)."""
    setting = DEPLOYMENT[var]
    environ = os.environ if environ is None else environ
    raw = environ.get(var, "")
    if raw.strip() == "":
        return setting.default
    try:
        return convert(setting, raw.strip())
    except ConfigError as exc:
        raise exc.named(**{var: var}) from None


def deployment_problem(var: str, environ: Mapping[str, str] | None = None) -> ConfigError | None:
    """The error a deployment setting's value would raise, or None (for faces that report it later)."""
    try:
        deployment(var, environ)
    except ConfigError as exc:
        return exc
    return None


# QDB_CLIENT_CONF keys -> the QUESTDB_* variable each stands for (the port depends on the protocol)
_CONF_KEYS = {
    "username": "QUESTDB_USER",
    "password": "QUESTDB_PASSWORD",
    "token": "QUESTDB_TOKEN",
    "token_x": "QUESTDB_TOKEN_X",
    "token_y": "QUESTDB_TOKEN_Y",
    "tls_verify": "QUESTDB_TLS_VERIFY",
    "tls_roots": "QUESTDB_TLS_CA",
}
_CONF_IGNORED = (
    "auto_flush", "auto_flush_rows", "auto_flush_bytes", "auto_flush_interval", "request_timeout",
    "request_min_throughput", "retry_timeout", "max_buf_size", "init_buf_size", "max_name_len", "protocol_version",
)  # fmt: skip


def client_conf_variables(conf: str) -> dict[str, str]:
    """``QDB_CLIENT_CONF`` (``http::addr=db:9000;username=u;password=p;``) as the ``QUESTDB_*`` variables it
    stands for; ``ConfigError`` names ``QDB_CLIENT_CONF`` and the part that is wrong (never a secret's value)."""
    var = "QDB_CLIENT_CONF"

    def bad(rule: str) -> ConfigError:
        return ConfigError(f"{{{var}}}: {rule}", var, names={var: var})

    protocol, sep, rest = conf.strip().partition("::")
    if not sep or protocol not in ("http", "https", "tcp", "tcps"):
        raise bad("must start with http::, https::, tcp:: or tcps:: (the client's connect string)")
    found = {"QUESTDB_PROTOCOL": protocol}
    for item in filter(None, (part.strip() for part in rest.split(";"))):
        key, eq, value = item.partition("=")
        if not eq:
            raise bad(f"{key!r} is not key=value")
        if key == "addr":
            host, colon, port = value.rpartition(":")
            if not colon:
                host, port = value, ""
            try:
                parse_host(host, var)
                if port:
                    parse_port(port, var)
            except ConfigError:
                raise bad(f"addr {value!r} is not host:port") from None
            found["QUESTDB_HOST"] = host
            if port:
                found["QUESTDB_HTTP_PORT" if protocol.startswith("http") else "QUESTDB_ILP_TCP_PORT"] = port
        elif key in _CONF_KEYS:
            if key == "tls_verify" and value not in ("on", "unsafe_off"):
                raise bad(f"tls_verify {value!r} is not on or unsafe_off")
            found[_CONF_KEYS[key]] = value
        elif key not in _CONF_IGNORED:
            raise bad(f"unknown key {key!r}")
    return found


def questdb_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The QuestDB variables in effect: those set, over what ``QDB_CLIENT_CONF`` stands for."""
    environ = os.environ if environ is None else environ
    conf = environ.get("QDB_CLIENT_CONF", "")
    below = client_conf_variables(conf) if conf.strip() else {}
    from mkt_pipeline.sinks.questdb_env import QUESTDB_ENV

    ours = set(QUESTDB_ENV.values())  # QUESTDB_* and the few MKT_* variables of every transport (the stall timeout)
    return {**below, **{k: v for k, v in environ.items() if (k.startswith("QUESTDB_") or k in ours) and v != ""}}

"""``mkt-pipeline fx|equities [flags]``: the seed scripts' command line over the shared engine and sinks.

Every flag takes its value from the command line, else ``MKT_<MARKET>_<FLAG>`` (or a deployment-wide
variable such as ``MKT_SEED``, docs/questdb.md#environment-variables), else the seed script's default. Everything is
validated before a sink is opened, so invalid input exits with status 2, one line naming the flag and the rule, and
nothing written.

Two modes drive the same engine: ``faster-than-life`` (chunks of a planned window, optionally on
several worker processes that each take whole chunks) and ``real-time`` (``realtime.pace_window``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from mkt_pipeline.core.engine import ConfigError, check_positive, check_range
from mkt_pipeline.core.secrets import scrub, scrubbable_secrets
from mkt_pipeline.core.timeline import US_PER_S, Window, format_us
from mkt_pipeline.run.faster import WorkerFactories, one_line, plan_window, run_chunks, stored_resume_us
from mkt_pipeline.run.progress import PROGRESS_INTERVAL_S, Progress
from mkt_pipeline.run.resume import chunk_key, plan_chunks
from mkt_pipeline.run.signals import sigterm_interrupts, stop_on_signals
from mkt_pipeline.settings import (
    ALL_MARKET_FLAGS,
    EQUITIES_SINK_FLAGS,
    GENERATION_FLAGS,
    RUN_FLAGS,
    SINK_FLAGS,
    Flag,
    convert,
    deployment,
    env_default,
    env_name,
    env_source,
    questdb_environment,
)
from mkt_pipeline.sinks.questdb_env import QUESTDB_ENV

MARKETS = ("fx", "equities")
FX_RATE_FLAGS = ("market_data_min_eps", "market_data_max_eps", "orders_min_per_sec", "orders_max_per_sec")
FACTS_SINK_FLAGS = ("sink", "parquet_dir", "suffix", "host", "pg_port", "user", "password", "tls_verify", "tls_ca")
FACTS_FLAGS: tuple[Flag, ...] = (
    Flag(
        "pictures",
        str,
        None,
        "Folder for the PNG pictures (intraday profile, return distribution, |return| autocorrelation).",
    ),
    Flag(
        "offline",
        bool,
        False,
        "Use the built-in reference closes for daily volatility and the long-run level (no Yahoo).",
    ),
)
FACTS_MAX_DAYS = 7
EXIT_INVALID = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def generation_flags(market: str) -> tuple[Flag, ...]:
    return GENERATION_FLAGS[market]


def market_flags(market: str) -> tuple[Flag, ...]:
    return ALL_MARKET_FLAGS[market]


def _env_help(market: str, flag: Flag) -> str:
    return " or ".join(flag.documented_variables(market))


class _Parser(argparse.ArgumentParser):
    """argparse with the same one-line errors as the validation rules (no usage dump); no abbreviated flags."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False  # --suf is not --suffix: a typo must not pick a flag
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message} (see --help)\n")


def _add_flags(p: argparse.ArgumentParser, market: str, flags: Sequence[Flag]) -> None:
    for flag in flags:
        choices = f" One of: {', '.join(flag.choices)}." if flag.choices else ""
        default = "" if flag.secret or flag.default in (None, "") else f" Default: {flag.default}."
        extra = {"nargs": "?", "const": "true"} if flag.parse is bool else {}
        p.add_argument(
            f"--{flag.name}",
            dest=flag.name,
            default=argparse.SUPPRESS,
            metavar=flag.name.upper(),
            help=f"{flag.help}{choices}{default} Env: {_env_help(market, flag)}.".replace("%", "%%"),
            **extra,
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mkt-pipeline",
        description="Synthetic FX and U.S.-equities market data for QuestDB (or an embedded Parquet dataset).",
        epilog="Run 'mkt-pipeline fx --help', 'mkt-pipeline equities --help' or 'mkt-pipeline facts fx --help' for the flags.",
    )
    sub = parser.add_subparsers(dest="market", required=True, metavar="{fx,equities,facts}")
    for market in MARKETS:
        p = sub.add_parser(
            market,
            help=f"generate {market} data",
            description=f"Generate {market} data. Booleans accept true/false, 1/0, yes/no (a bare boolean flag means true). "
            "Each flag defaults to its environment variable when set. Secrets are best given by --token_file or QUESTDB_* variables.",
        )
        _add_flags(p, market, market_flags(market))
    facts = sub.add_parser(
        "facts",
        help="measure the stylised facts (docs/data-model.md#realism-bands) of a stored dataset",
        description="Read a stored window of one market (Parquet dataset or QuestDB) and print the realism table: "
        "measured value, band, pass/fail; optionally draw the pictures as PNG files.",
    )
    facts_sub = facts.add_subparsers(dest="facts_market", required=True, metavar="{fx,equities}")
    for market in MARKETS:
        p = facts_sub.add_parser(
            market,
            help=f"facts of the {market} dataset",
            description=f"Measure the stylised facts of the stored {market} dataset. Without --start_ts/--end_ts the whole "
            "stored extent of the market_data table is measured (at most 7 days).",
        )
        _add_flags(p, market, facts_flags(market))
    return parser


@dataclass
class Options:
    market: str
    values: dict[str, Any]
    given: set[str] = field(default_factory=set)  # flags on the command line
    explicit: set[str] = field(default_factory=set)  # flags on the command line or set by an env variable
    command: str = "generate"  # or "facts"
    sources: dict[str, str] = field(default_factory=dict)  # flag -> the variable that set it (flags not typed)

    def name_of(self, setting: str) -> str:
        """How the user set ``setting``: the variable behind it, else its flag."""
        return self.sources.get(setting) or f"--{setting}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def facts_flags(market: str) -> tuple[Flag, ...]:
    """Flags of ``mkt-pipeline facts <market>``: the window, pictures, where the data is, and (FX) the
    configured rates the seasonality band depends on."""
    parse_ts = {f.name: f.parse for f in RUN_FLAGS}["start_ts"]
    window = (
        Flag(
            "start_ts", parse_ts, None, "Start of the window to measure (ISO-8601). Default: the first stored second."
        ),
        Flag("end_ts", parse_ts, None, "End of the window (ISO-8601, exclusive). Default: the end of the stored data."),
    )
    rates = tuple(f for f in generation_flags(market) if f.name in FX_RATE_FLAGS) if market == "fx" else ()
    sink = tuple(f for f in SINK_FLAGS if f.name in FACTS_SINK_FLAGS) + (
        EQUITIES_SINK_FLAGS if market == "equities" else ()
    )
    return window + FACTS_FLAGS + rates + sink


def parse_options(argv: Sequence[str] | None) -> Options:
    """Parse flags; each value comes from the command line, else its env variable, else the default."""
    ns = vars(build_parser().parse_args(argv))
    market = ns.pop("market")
    command = "generate"
    if market == "facts":
        command, market = "facts", ns.pop("facts_market")
    flags = facts_flags(market) if command == "facts" else market_flags(market)
    values, explicit, sources = {}, set(ns), {}
    for flag in flags:
        if flag.name in ns:
            values[flag.name] = convert(flag, ns[flag.name])
        else:
            values[flag.name] = env_default(market, flag)
            var = env_source(market, flag.name)
            if var:
                explicit.add(flag.name)
                sources[flag.name] = var
            elif os.environ.get(QUESTDB_ENV.get(flag.name, ""), "") != "":
                sources[flag.name] = QUESTDB_ENV[flag.name]  # read by the QuestDB settings below the flags
            elif flag.name in QUESTDB_ENV and os.environ.get("QDB_CLIENT_CONF", "").strip():
                sources[flag.name] = "QDB_CLIENT_CONF"
    return Options(market, values, set(ns), explicit, command, sources)


# --------------------------------------------------------------------------------------------
# validation


def engine_config(opts: Options):
    """The market's validated engine configuration (raises ConfigError naming the flag)."""
    from mkt_pipeline.markets import validated_config

    return validated_config(opts.market, opts.values)


def validate(opts: Options) -> None:
    """Every rule of the command line, checked before anything is generated or written."""
    if opts.mode is None:
        raise ConfigError("{mode} is required (real-time or faster-than-life)", "mode")
    engine_config(opts)
    for flag in ("chunk_seconds", "processes", "total_market_data_events", "yahoo_refresh_secs"):
        if getattr(opts, flag) <= 0:
            raise ConfigError(f"{{{flag}}} must be > 0 (got {getattr(opts, flag)})", flag)
    if opts.seed < 0:
        raise ConfigError(f"{{seed}} must be >= 0 (got {opts.seed})", "seed")
    if opts.start_ts is not None and opts.end_ts is not None and opts.end_ts <= opts.start_ts:
        raise ConfigError(
            f"{{end_ts}} ({format_us(opts.end_ts)}) must be after {{start_ts}} ({format_us(opts.start_ts)})",
            "end_ts",
            "start_ts",
        )
    if opts.mode == "real-time":
        if opts.start_ts is not None:
            raise ConfigError(
                "{start_ts} is not allowed with {mode} real-time (it always starts from now)", "start_ts", "mode"
            )
        if opts.processes > 1:
            raise ConfigError(
                f"{{processes}} must be 1 with {{mode}} real-time (got {opts.processes})", "processes", "mode"
            )
        if opts.incremental:
            raise ConfigError(
                "{incremental} is for faster-than-life; real-time always continues after stored data", "incremental"
            )
    if opts.incremental and opts.overwrite:
        raise ConfigError(
            "{incremental} continues after stored rows and {overwrite} regenerates them: use one of them",
            "incremental",
            "overwrite",
        )
    _validate_end_in_future(opts)
    # deployment settings this run reads, checked now rather than when first used
    deployment("MKT_OFFLINE")
    spec = sink_spec(opts)
    spec.check()
    if opts.mode == "real-time" and spec.commits_are_files:
        deployment("MKT_PARQUET_COMMIT_SECONDS")


def _validate_end_in_future(opts: Options, now_us: int | None = None) -> None:
    """A run that starts now cannot end in the past (faster-than-life with --incremental starts at the stored data)."""
    if opts.end_ts is None or opts.start_ts is not None or opts.incremental:
        return
    now_us = int(time.time()) * US_PER_S if now_us is None else now_us
    if opts.end_ts <= now_us:
        how = (
            "real-time runs from now"
            if opts.mode == "real-time"
            else "without --start_ts the run starts now; give --start_ts for a past window"
        )
        raise ConfigError(f"{{end_ts}} ({format_us(opts.end_ts)}) is not in the future: {how}", "end_ts")


def _validate_questdb(opts: Options) -> None:
    if opts.values.get("protocol") in ("tcp", "tcps"):
        env = questdb_environment()
        have = {f: bool(opts.values.get(f) or env.get(QUESTDB_ENV[f])) for f in ("token", "token_x", "token_y")}
        have["token"] = have["token"] or bool(opts.token_file)
        if any(have.values()) and not all(have.values()):
            missing = ", ".join(f"--{f}" for f, ok in have.items() if not ok)
            raise ConfigError(
                f"{{protocol}} {opts.protocol}: JWK auth needs --token, --token_x and --token_y together (missing {missing})",
                "protocol",
            )


def questdb_settings(opts: Options):
    from mkt_pipeline.sinks.questdb import QuestDBSettings

    # only what the user set, so a QUESTDB_* variable is not overridden by a flag's built-in default
    return QuestDBSettings.from_cli(
        {k: v for k, v in opts.values.items() if k in opts.explicit}, env=questdb_environment()
    )


# --------------------------------------------------------------------------------------------
# secrets


def secret_warnings(opts: Options) -> list[str]:
    """One warning per secret given on the command line (visible in the process list and history)."""
    return [
        f"mkt-pipeline: warning: --{f.name} on the command line is visible to other users (ps, shell history); "
        f"prefer {'--token_file or ' if f.name == 'token' else ''}{QUESTDB_ENV.get(f.name, env_name(opts.market, f.name))}"
        for f in market_flags(opts.market)
        if f.secret and f.name in opts.given
    ]


def secret_values(opts: Options | None) -> list[str]:
    """Secret values in play (flags, QUESTDB_* variables, the token file), for scrubbing messages."""
    try:
        env = questdb_environment()
    except ConfigError:
        env = dict(os.environ)
    found = [env.get(QUESTDB_ENV[f], "") for f in ("password", "token", "token_x", "token_y")]
    if opts is not None:
        found += [str(opts.values.get(f) or "") for f in ("password", "token", "token_x", "token_y")]
        if opts.values.get("token_file"):
            with contextlib.suppress(OSError):
                with open(opts.token_file, encoding="utf-8") as fh:
                    found.append(fh.read().strip())
    return scrubbable_secrets(found)


# --------------------------------------------------------------------------------------------
# engine, references, sink


def make_engine(opts: Options, references):
    """The market's engine for these options and reference prices."""
    from mkt_pipeline.markets import build_engine

    return build_engine(opts.market, opts.values, references)


def load_references(market: str, window: Window, offline: bool | None = None):
    from mkt_pipeline.markets import market_references

    return market_references(market, window, deployment("MKT_OFFLINE") if offline is None else offline)


def sink_spec(opts: Options):
    """Which sink the options select and where (QuestDB settings checked here, before anything is opened)."""
    from mkt_pipeline.sinks.base import TableNaming
    from mkt_pipeline.sinks.spec import SinkSpec

    naming = TableNaming(suffix=opts.suffix, prefix=opts.values.get("prefix", ""))
    if opts.sink == "questdb":
        _validate_questdb(opts)
        return SinkSpec("questdb", naming, questdb=questdb_settings(opts))
    return SinkSpec(opts.sink, naming, parquet_dir=opts.parquet_dir)


def make_sink(opts: Options):
    return sink_spec(opts).open()


def _protocol_chosen(opts: Options, sink) -> None:
    """After ``prepare``: say what ``--protocol auto`` chose, and have worker processes use it without asking again."""
    note = getattr(sink, "protocol_note", "")
    if note:
        print(note, file=sys.stderr)
        opts.values["protocol"] = sink.settings.protocol
        opts.explicit.add("protocol")


def _worker_scrub(opts: Options, text: str) -> str:
    return scrub(text, secret_values(opts))


def run_faster(opts: Options) -> int:
    start_us = opts.start_ts if opts.start_ts is not None else int(time.time()) * US_PER_S
    # planning only needs counts, which do not depend on references: use the offline table
    planner = make_engine(opts, load_references(opts.market, Window(start_us, start_us + 1), offline=True))
    sink = make_sink(opts)
    with sink:
        sink.prepare(planner.schemas)
        _protocol_chosen(opts, sink)
        window = plan_window(
            planner,
            sink,
            start_us=opts.start_ts,
            end_us=opts.end_ts,
            max_market_data_rows=opts.total_market_data_events,
            overwrite=opts.overwrite,
            incremental=opts.incremental,
        )
        if window is None:
            print("nothing to do: the requested window is empty")
            return 0
        chunks = plan_chunks(sink, chunk_key(planner), window, opts.chunk_seconds, skip_recorded=not opts.overwrite)
        if not chunks.pending:
            print(
                f"nothing to do: every chunk of {window} is recorded as stored (use --overwrite true to regenerate it)"
            )
            return 0
        references = load_references(opts.market, window)
        engine = make_engine(opts, references)
        workers = min(opts.processes, len(chunks.pending))
        print(
            f"{opts.market}: generating {window} (seed {opts.seed}, references: {references.source}, "
            f"{workers} process{'es' if workers > 1 else ''}) into {opts.sink}",
            file=sys.stderr,
        )
        # each worker process builds its own engine and sink from the same options
        factories = WorkerFactories(partial(make_engine, opts), partial(make_sink, opts), partial(_worker_scrub, opts))
        started = time.perf_counter()
        with sigterm_interrupts(), Progress(opts.market, window) as progress:
            stats = run_chunks(
                engine,
                sink,
                window,
                chunk_seconds=opts.chunk_seconds,
                progress=progress,
                workers=workers,
                factories=factories,
                references=references,
                overwrite=opts.overwrite,
            )
        elapsed = time.perf_counter() - started
    total = sum(stats.rows.values())
    print(f"{opts.market}: wrote {total:,} rows in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} rows/s)")
    for table, rows in sorted(stats.rows.items()):
        print(f"  {table:<28} {rows:>12,}")
    print(f"  into {sink.location}")
    return 0


# --------------------------------------------------------------------------------------------
# real-time


def run_realtime(opts: Options, stop: threading.Event | None = None) -> int:
    from mkt_pipeline.run.realtime import (
        LOOKAHEAD_S,
        OPEN_END_US,
        ReferenceRefresher,
        live_reference_window,
        pace_window,
    )

    stop = stop or threading.Event()
    references = load_references(opts.market, live_reference_window(time.time()))
    engine = make_engine(opts, references)
    lookahead = LOOKAHEAD_S[opts.market]
    # the row limit applies only when asked for: a live stream otherwise runs until stopped
    limit = opts.total_market_data_events if "total_market_data_events" in opts.explicit else None
    sink = make_sink(opts)
    with sink, stop_on_signals(stop):
        sink.prepare(engine.schemas)
        _protocol_chosen(opts, sink)
        start_us = int(time.time()) * US_PER_S
        stored = stored_resume_us(engine, sink)
        if stored is not None and stored > start_us:
            # never write behind stored rows: start after them (waiting if they lie ahead of the clock)
            start_us = stored
            print(f"resuming after the latest stored row: start {format_us(start_us)}", file=sys.stderr)
        end_us = OPEN_END_US if opts.end_ts is None else opts.end_ts
        if end_us <= start_us:
            print("nothing to do: --end_ts is not after the current time and stored data")
            return 0
        window = Window(start_us, end_us)
        print(
            f"{opts.market}: real-time from {format_us(start_us)}"
            + ("" if opts.end_ts is None else f" to {format_us(end_us)}")
            + ("" if limit is None else f", until {limit:,} market_data rows")
            + f" (seed {opts.seed}, references: {references.source}, lookahead {lookahead:g}s) into {opts.sink}; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        refresher = ReferenceRefresher(
            lambda: load_references(opts.market, live_reference_window(time.time())),
            lambda refs: make_engine(opts, refs),
            opts.yahoo_refresh_secs,
        ).start()
        last_line = [time.monotonic()]

        def status(chunk: Window, result, now: float) -> None:
            if time.monotonic() - last_line[0] >= PROGRESS_INTERVAL_S:
                last_line[0] = time.monotonic()
                lead = result.written_until_us / US_PER_S - now
                print(
                    f"{opts.market} live: up to {format_us(result.written_until_us)} ({lead:+.1f}s vs clock)  rows {result.total_rows:,}  "
                    f"catch-up commits {result.catch_up_commits}",
                    file=sys.stderr,
                    flush=True,
                )

        try:
            result = pace_window(
                engine,
                sink,
                window,
                lookahead_s=lookahead,
                stop_event=stop,
                max_market_data_rows=limit,
                # into Parquet a commit is a file: one per table per minute rather than per second
                min_commit_s=deployment("MKT_PARQUET_COMMIT_SECONDS") if sink.commits_are_files else 1,
                on_commit=status,
                update_engine=refresher.engine_update,
            )
        finally:
            refresher.stop()
    why = "stopped" if result.stopped else "row limit reached" if result.limit_reached else "end reached"
    print(f"{opts.market}: {why}; wrote {result.total_rows:,} rows up to {format_us(result.written_until_us)}")
    for table, rows in sorted(result.stats.rows.items()):
        print(f"  {table:<28} {rows:>12,}")
    return 0


# --------------------------------------------------------------------------------------------


def run_facts(opts: Options) -> int:
    """``mkt-pipeline facts <market>``: the §11 table of a stored window, and the pictures."""
    from mkt_pipeline.run.facts import draw_pictures, fx_rate_spans, measure_dataset

    if opts.market == "fx":  # the rates the data was generated with: they set the seasonality band
        for low, high in (FX_RATE_FLAGS[:2], FX_RATE_FLAGS[2:]):
            check_positive(low, opts.values[low])
            check_range(low, opts.values[low], high, opts.values[high])
    if opts.start_ts is not None and opts.end_ts is not None and opts.end_ts <= opts.start_ts:
        raise ConfigError(f"--end_ts ({format_us(opts.end_ts)}) must be after --start_ts ({format_us(opts.start_ts)})")
    with _stored_rows(opts) as (rows, md_schema):
        extent = rows.extent(md_schema)
        if extent is None and (opts.start_ts is None or opts.end_ts is None):
            raise ConfigError(
                f"no stored {md_schema.base_name} rows in the {opts.sink} dataset: give --start_ts and --end_ts or generate data first"
            )
        start = opts.start_ts if opts.start_ts is not None else extent[0]
        end = opts.end_ts if opts.end_ts is not None else extent[1]
        if end <= start:
            raise ConfigError(f"--end_ts ({format_us(end)}) must be after --start_ts ({format_us(start)})")
        if end - start > FACTS_MAX_DAYS * 86400 * US_PER_S:
            raise ConfigError(
                f"--start_ts/--end_ts: the window spans more than {FACTS_MAX_DAYS} days (measure a day or a few)"
            )
        window = Window(start, end)
        print(f"{opts.market} facts: reading {window} from {opts.sink}", file=sys.stderr, flush=True)
        report = measure_dataset(
            opts.market,
            rows,
            window,
            rate_spans=fx_rate_spans(opts.values) if opts.market == "fx" else None,
            offline=opts.offline or deployment("MKT_OFFLINE"),
        )
    print(report.table())
    if opts.pictures:
        for path in draw_pictures(report, opts.pictures):
            print(f"  picture: {path}")
    return 0


@contextlib.contextmanager
def _stored_rows(opts: Options):
    """(reader of the stored rows, the market_data schema) for the options' sink."""
    from mkt_pipeline.core.tables import EQUITIES_MARKET_DATA, FX_MARKET_DATA

    schema = FX_MARKET_DATA if opts.market == "fx" else EQUITIES_MARKET_DATA
    with sink_spec(opts).stored_rows() as rows:
        yield rows, schema


def run(opts: Options) -> int:
    if opts.command == "facts":
        return run_facts(opts)
    validate(opts)
    for warning in secret_warnings(opts):
        print(warning, file=sys.stderr)
    return run_realtime(opts) if opts.mode == "real-time" else run_faster(opts)


def main(argv: Sequence[str] | None = None) -> int:
    opts = None
    try:
        opts = parse_options(argv)
        return run(opts)
    except ConfigError as exc:
        message = exc.render(opts.name_of if opts is not None else None)
        print(f"mkt-pipeline: error: {scrub(message, secret_values(opts))}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("mkt-pipeline: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one scrubbed line instead of a traceback that could carry a secret
        print(f"mkt-pipeline: error: {scrub(one_line(exc), secret_values(opts))}", file=sys.stderr)
        if os.environ.get("MKT_DEBUG"):
            raise
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

"""``mkt-pipeline fx|equities [flags]``: the seed scripts' command line over the shared engine and sinks."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from mkt_pipeline.engine import ConfigError
from mkt_pipeline.settings import (
    EQUITIES_GENERATION_FLAGS,
    FX_GENERATION_FLAGS,
    RUN_FLAGS,
    SINK_FLAGS,
    Flag,
    convert,
    env_default,
    env_name,
)
from mkt_pipeline.timeline import US_PER_S, Window, format_us

MARKETS = ("fx", "equities")


def generation_flags(market: str) -> tuple[Flag, ...]:
    return FX_GENERATION_FLAGS if market == "fx" else EQUITIES_GENERATION_FLAGS


def market_flags(market: str) -> tuple[Flag, ...]:
    extra = (Flag("prefix", SINK_FLAGS[2].parse, "", "Prefix prepended to every table and view name (dashboards use eq_)."),) if market == "equities" else ()
    return generation_flags(market) + RUN_FLAGS + SINK_FLAGS + extra


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mkt-pipeline", description="Synthetic FX and equities market data for QuestDB.")
    sub = parser.add_subparsers(dest="market", required=True, metavar="{fx,equities}")
    for market in MARKETS:
        p = sub.add_parser(market, help=f"generate {market} data", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        for flag in market_flags(market):
            choices = f" One of: {', '.join(flag.choices)}." if flag.choices else ""
            default = None if flag.secret else flag.default
            p.add_argument(
                f"--{flag.name}",
                dest=flag.name,
                default=argparse.SUPPRESS,
                metavar=flag.name.upper(),
                help=f"{flag.help}{choices} Env: {env_name(market, flag.name)}." + ("" if default is None else f" (default: {default})"),
            )
    return parser


@dataclass
class Options:
    market: str
    values: dict[str, Any]
    given: set[str]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_options(argv: Sequence[str] | None) -> Options:
    """Parse flags; each value comes from the command line, else ``MKT_<MARKET>_<FLAG>``, else the default."""
    ns = vars(build_parser().parse_args(argv))
    market = ns.pop("market")
    values = {}
    for flag in market_flags(market):
        values[flag.name] = convert(flag, ns[flag.name]) if flag.name in ns else env_default(market, flag)
    return Options(market, values, set(ns))


def validate(opts: Options) -> None:
    """Cross-flag rules, checked before anything is generated or written."""
    if opts.mode is None:
        raise ConfigError("--mode is required (real-time or faster-than-life)")
    if opts.mode == "real-time":
        raise ConfigError("--mode real-time: not available yet in this build; use faster-than-life")
    for flag in ("chunk_seconds", "processes", "total_market_data_events", "yahoo_refresh_secs"):
        if getattr(opts, flag) <= 0:
            raise ConfigError(f"--{flag} must be > 0 (got {getattr(opts, flag)})")
    if opts.start_ts is not None and opts.end_ts is not None and opts.end_ts <= opts.start_ts:
        raise ConfigError(f"--end_ts ({format_us(opts.end_ts)}) must be after --start_ts ({format_us(opts.start_ts)})")


def make_engine(opts: Options, references=None):
    """The market's engine for these options (references loaded for ``window`` when not given)."""
    if opts.market == "fx":
        from mkt_pipeline.fx_engine import FxConfig, FxEngine

        config = FxConfig(**{f.name: opts.values[f.name] for f in FX_GENERATION_FLAGS}).validate()
        return FxEngine(config, references)
    from mkt_pipeline.equities_engine import EquitiesConfig, EquitiesEngine

    config = EquitiesConfig(**{f.name: opts.values[f.name] for f in EQUITIES_GENERATION_FLAGS}).validate()
    return EquitiesEngine(config, references)


def load_references(market: str, window: Window):
    from mkt_pipeline.markets import market_references

    return market_references(market, window)


def make_sink(opts: Options):
    from mkt_pipeline.sinks import ParquetSink, TableNaming

    naming = TableNaming(suffix=opts.suffix, prefix=opts.values.get("prefix", ""))
    if opts.sink == "parquet":
        return ParquetSink(opts.parquet_dir, naming)
    from mkt_pipeline.questdb_sink import QuestDBSink, QuestDBSettings

    return QuestDBSink(QuestDBSettings.from_cli(opts.values), naming)


def plan_window(opts: Options, engine, sink) -> Window | None:
    """The window to generate: start (resumed past stored rows unless --overwrite), end by time or count."""
    now_s = int(time.time())
    start_us = opts.start_ts if opts.start_ts is not None else now_s * US_PER_S
    if not opts.overwrite:
        stored = max((t for t in (sink.resume_after_us(s) for s in engine.schemas) if t is not None), default=None)
        if stored is not None and stored > start_us:
            start_us = stored
            print(f"resuming after the latest stored row: start {format_us(start_us)}", file=sys.stderr)
    end_us = opts.end_ts
    if end_us is not None and end_us <= start_us:
        return None
    # stop at the end of the second in which the requested number of market_data rows is reached
    first = start_us // US_PER_S
    limit_s = None if end_us is None else -(-end_us // US_PER_S)
    total, s = 0, first
    while total < opts.total_market_data_events and (limit_s is None or s < limit_s):
        total += engine.planned_counts(s, s + 1)["market_data"]
        s += 1
    count_end = s * US_PER_S
    return Window(start_us, count_end if end_us is None else min(end_us, count_end))


def run(opts: Options) -> int:
    from mkt_pipeline.ingest import run_window

    validate(opts)
    start_us = opts.start_ts if opts.start_ts is not None else int(time.time()) * US_PER_S
    # every second holds at least market_data_min_eps rows, which bounds how far the count can reach
    bound_us = start_us + (-(-opts.total_market_data_events // opts.market_data_min_eps) + 1) * US_PER_S
    references = load_references(opts.market, Window(start_us, bound_us if opts.end_ts is None else min(bound_us, max(opts.end_ts, start_us + 1))))
    engine = make_engine(opts, references)
    sink = make_sink(opts)
    with sink:
        sink.prepare(engine.schemas)
        window = plan_window(opts, engine, sink)
        if window is None:
            print("nothing to do: the requested window is already stored (use --overwrite true to regenerate it)")
            return 0
        print(f"{opts.market}: generating {window} (seed {opts.seed}, references: {references.source}) into {opts.sink}", file=sys.stderr)

        def progress(result, chunk):
            done = (chunk.end_us - window.start_us) / (window.end_us - window.start_us)
            eta = result.elapsed_s * (1 - done) / done if done > 0 else 0.0
            print(
                f"  {format_us(chunk.end_us)}  rows {result.total_rows:,}  {result.rows_per_second:,.0f} rows/s  {done:5.1%}  ETA {eta:,.0f}s",
                file=sys.stderr,
                flush=True,
            )

        result = run_window(engine, sink, window, chunk_seconds=opts.chunk_seconds, progress=progress)
    print(f"{opts.market}: wrote {result.total_rows:,} rows in {result.elapsed_s:.1f}s ({result.rows_per_second:,.0f} rows/s)")
    for table, rows in sorted(result.stats.rows.items()):
        print(f"  {table:<28} {rows:>12,}")
    if opts.sink == "parquet":
        print(f"  dataset: {opts.parquet_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        opts = parse_options(argv)
        return run(opts)
    except ConfigError as exc:
        print(f"mkt-pipeline: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Live (real-time) runs: which windows the sensor requests, and the job that paces one window.

The sensor requests short windows that tile time exactly: each begins where the previous one
ended (the cursor), so there are no gaps and no overlaps, and ``run_key`` = window start makes a
repeated request a no-op. A window is requested ``lead_seconds`` before it begins so the run is up
when its first second falls due; inside the run ``realtime.pace_window`` writes each second as the
wall clock reaches it. After downtime the missed windows are requested at once (they are already
due, so they run at full speed), but never more than ``catchup_seconds`` back: older time is
skipped, logged, and left to a backfill, which produces the identical rows.
"""

import os
from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from mkt_pipeline.defs.config import GENERATION_CONFIG
from mkt_pipeline.defs.hourly import QUESTDB_POOL, make_engine
from mkt_pipeline.markets import engine_settings
from mkt_pipeline.run.realtime import LOOKAHEAD_S, pace_window
from mkt_pipeline.defs.reference_records import references_for_window
from mkt_pipeline.defs.sink_resource import MarketSinkResource
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.core.timeline import US_PER_S, Window, format_us, parse_timestamp


@dataclass(frozen=True)
class LiveSettings:
    """How the live sensors tile time; env ``MKT_LIVE_<FIELD>`` overrides each default."""

    window_seconds: int = 60
    lead_seconds: int = 20
    catchup_seconds: int = 3600
    max_windows_per_tick: int = 30
    tick_seconds: int = 15

    def __post_init__(self) -> None:
        for name in ("window_seconds", "catchup_seconds", "max_windows_per_tick", "tick_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MKT_LIVE_{name.upper()} must be > 0 (got {getattr(self, name)})")
        if self.lead_seconds < 0:
            raise ValueError(f"MKT_LIVE_LEAD_SECONDS must be >= 0 (got {self.lead_seconds})")

    @classmethod
    def from_env(cls) -> "LiveSettings":
        values = {}
        for name in cls.__dataclass_fields__:
            raw = os.environ.get(f"MKT_LIVE_{name.upper()}")
            if raw:
                values[name] = int(raw)
        return cls(**values)


@dataclass(frozen=True)
class LivePlan:
    windows: list[Window]
    next_start_us: int  # the new cursor: where the next window begins
    skipped: Window | None = None  # missed time older than the catch-up horizon


def plan_live_windows(next_start_us: int | None, now_us: int, settings: LiveSettings) -> LivePlan:
    """Windows to request at ``now_us`` given the cursor (None on the first tick)."""
    size = settings.window_seconds * US_PER_S
    start = now_us // size * size if next_start_us is None else next_start_us
    horizon = (now_us - settings.catchup_seconds * US_PER_S) // size * size
    skipped = None
    if start < horizon:
        skipped, start = Window(start, horizon), horizon
    windows = []
    while start <= now_us + settings.lead_seconds * US_PER_S and len(windows) < settings.max_windows_per_tick:
        windows.append(Window(start, start + size))
        start += size
    return LivePlan(windows, start, skipped)


def _live_config_class(market: str) -> type[dg.Config]:
    base = GENERATION_CONFIG[market]
    return type(
        f"{market.capitalize()}LiveConfig",
        (base,),
        {
            "__annotations__": {"window_start": str, "window_end": str, "lookahead_seconds": float},
            "window_start": Field(description="Start of the window (ISO-8601, UTC)."),
            "window_end": Field(description="End of the window, exclusive (ISO-8601, UTC)."),
            "lookahead_seconds": Field(default=LOOKAHEAD_S[market], ge=0.0, description="How far ahead of the wall clock rows may be stamped."),
            "__doc__": f"One {market} live window plus the generation settings.",
        },
    )


LIVE_CONFIG = {market: _live_config_class(market) for market in GENERATION_CONFIG}


def live_run_config(market: str, window: Window) -> dict:
    return {"ops": {f"{market}_live_window": {"config": {"window_start": format_us(window.start_us), "window_end": format_us(window.end_us)}}}}


def build_live_job(market: str) -> dg.JobDefinition:
    config_cls = LIVE_CONFIG[market]

    @dg.op(name=f"{market}_live_window", pool=QUESTDB_POOL)
    def live_window(context: dg.OpExecutionContext, config: config_cls, sink: MarketSinkResource) -> dg.Output:
        """Write one window at wall-clock pace (seconds already due are written at once)."""
        window = Window(parse_timestamp(config.window_start), parse_timestamp(config.window_end))
        references, _ = references_for_window(context, market, window)
        engine = make_engine(market, engine_settings(market, config.model_dump()), references)
        with sink.get_sink(market) as s:
            s.prepare(engine.schemas)
            # into Parquet a commit is a file: one per table per live window rather than per second
            per_window = isinstance(s, ParquetSink)
            result = pace_window(engine, s, window, lookahead_s=config.lookahead_seconds, min_commit_s=window.seconds if per_window else 1)
        rows = {name: int(n) for name, n in result.stats.rows.items()}
        context.log.info(f"{market} live {window}: {result.total_rows:,} rows in {result.commits} commits ({result.catch_up_commits} catching up)")
        return dg.Output(
            None,
            metadata={
                "window": str(window),
                "rows": dg.MetadataValue.json(rows),
                "commits": result.commits,
                "catch_up_commits": result.catch_up_commits,
                "seed": config.seed,
                "reference_source": references.source,
                "sink": sink.location(),
            },
        )

    @dg.job(name=f"{market}_live_job", tags={"mkt/live": market}, description=f"One short {market} window at wall-clock pace (run by {market}_live_sensor).")
    def live_job():
        live_window()

    return live_job

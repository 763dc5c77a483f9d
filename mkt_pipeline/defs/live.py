"""Live (real-time) runs: which windows the sensor requests, and the job that paces one window.

The sensor requests short windows that tile time exactly: each begins where the previous one
ended (the cursor), so there are no gaps and no overlaps, and ``run_key`` = window start makes a
repeated request a no-op. A window is requested ``lead_seconds`` before it begins so the run is up
when its first second falls due; inside the run ``realtime.pace_window`` writes each second as the
wall clock reaches it. After downtime the missed windows are requested at once (they are already
due, so they run at full speed), but never more than ``catchup_seconds`` back: older time is
skipped, logged, and left to a backfill, which produces the identical rows.

No window is lost to a failure: a failed live run is first re-executed by Dagster's run retries
(``dagster/max_retries`` on the job, ``run_retries`` in the instance config); once those are
spent, the sensor sees the window has no successful run and requests it again under a new run
key, tick after tick, until it lands (or falls behind the catch-up horizon, when a backfill fills
it). Once every window of an hour has landed, the sensor records a materialization of that hour's
partition of the hourly table assets, so the catalog shows the hour the live stream wrote.
"""

from dataclasses import dataclass
from enum import Enum

import dagster as dg
from pydantic import Field

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.core.timeline import US_PER_S, Window, format_us, parse_timestamp
from mkt_pipeline.defs.config import (
    GENERATION_CONFIG,
    deployment_value,
    engine_for_run,
    fail_on_deployment_problems,
    record_problem,
)
from mkt_pipeline.defs.hourly import QUESTDB_POOL
from mkt_pipeline.defs.reference_records import references_for_window
from mkt_pipeline.defs.sink_resource import MarketSinkResource, permanent_faults_fail_at_once
from mkt_pipeline.markets import engine_settings
from mkt_pipeline.run.realtime import LOOKAHEAD_S, pace_window
from mkt_pipeline.settings import DEPLOYMENT

HOUR_US = 3600 * US_PER_S
# Run tags of a live window: the sensor groups runs (and their automatic retries, which inherit
# the tags) by window through them.
WINDOW_TAG = "mkt/window"
WINDOW_START_TAG = "mkt/window_start"
WINDOW_END_TAG = "mkt/window_end"
ATTEMPT_TAG = "mkt/attempt"
# Dagster run retries per sensor request before the sensor itself requests the window again.
LIVE_RUN_RETRIES = 2


@dataclass(frozen=True)
class LiveSettings:
    """How the live sensors tile time; env ``MKT_LIVE_<FIELD>`` overrides each default."""

    window_seconds: int = DEPLOYMENT["MKT_LIVE_WINDOW_SECONDS"].default
    lead_seconds: int = DEPLOYMENT["MKT_LIVE_LEAD_SECONDS"].default
    catchup_seconds: int = DEPLOYMENT["MKT_LIVE_CATCHUP_SECONDS"].default
    max_windows_per_tick: int = DEPLOYMENT["MKT_LIVE_MAX_WINDOWS_PER_TICK"].default
    tick_seconds: int = DEPLOYMENT["MKT_LIVE_TICK_SECONDS"].default

    def __post_init__(self) -> None:
        for name in ("window_seconds", "catchup_seconds", "max_windows_per_tick", "tick_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{{{name}}} must be > 0 (got {getattr(self, name)})", name, names={name: _var(name)})
        if 3600 % self.window_seconds:
            # windows must tile hours, so an hour's partition is complete exactly when its windows are
            raise ConfigError(
                f"{{window_seconds}} must divide 3600 (got {self.window_seconds})",
                "window_seconds",
                names={"window_seconds": _var("window_seconds")},
            )
        if self.lead_seconds < 0:
            raise ConfigError(
                f"{{lead_seconds}} must be >= 0 (got {self.lead_seconds})",
                "lead_seconds",
                names={"lead_seconds": _var("lead_seconds")},
            )

    @classmethod
    def from_env(cls) -> "LiveSettings":
        """The live settings from ``MKT_LIVE_*``; a bad value is recorded (the live sensors and runs fail
        naming it) and the defaults are used, so the code location still loads."""
        values = {name: deployment_value(_var(name), "live") for name in cls.__dataclass_fields__}
        try:
            return cls(**values)
        except ConfigError as exc:
            record_problem("live", exc)
            return cls()


def _var(field: str) -> str:
    return f"MKT_LIVE_{field.upper()}"


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


class WindowState(Enum):
    """Where a live window stands, judged from all its runs."""

    LANDED = "landed"  # a run succeeded: its rows are stored
    PENDING = "pending"  # a run is queued or running, or Dagster will retry a failed one
    FAILED = "failed"  # every run failed and no retry is coming: the sensor must request it again


@dataclass(frozen=True)
class WindowRuns:
    """The runs of one live window, reduced to what the sensor decides on."""

    window: Window
    state: WindowState
    attempts: int  # sensor requests so far (automatic retries not counted)
    landed_run_id: str | None = None


def windows_to_request_again(windows: list[WindowRuns], horizon_us: int, limit: int) -> list[WindowRuns]:
    """Failed windows still inside the catch-up horizon, oldest first, at most ``limit``."""
    failed = sorted(
        (w for w in windows if w.state is WindowState.FAILED and w.window.start_us >= horizon_us),
        key=lambda w: w.window.start_us,
    )
    return failed[:limit]


def complete_hours(windows: list[WindowRuns], until_us: int, done: set[int]) -> list[Window]:
    """Hours ending by ``until_us``, not in ``done`` (hour starts), whose every second a landed window covers."""
    landed = sorted((w.window for w in windows if w.state is WindowState.LANDED), key=lambda w: w.start_us)
    hours = sorted({w.start_us // HOUR_US * HOUR_US for w in landed})
    complete = []
    for hour_start in hours:
        hour_end = hour_start + HOUR_US
        if hour_start in done or hour_end > until_us:
            continue
        covered = hour_start
        for w in landed:
            if w.start_us <= covered < w.end_us:
                covered = w.end_us
        if covered >= hour_end:
            complete.append(Window(hour_start, hour_end))
    return complete


def request_tags(window: Window, attempt: int) -> dict[str, str]:
    return {
        WINDOW_TAG: str(window),
        WINDOW_START_TAG: format_us(window.start_us),
        WINDOW_END_TAG: format_us(window.end_us),
        ATTEMPT_TAG: str(attempt),
    }


def request_run_key(window: Window, attempt: int) -> str:
    """The window start for the first request; a new key for each request after a failure."""
    key = format_us(window.start_us)
    return key if attempt == 1 else f"{key}#attempt{attempt}"


def _live_config_class(market: str) -> type[dg.Config]:
    base = GENERATION_CONFIG[market]
    return type(
        f"{market.capitalize()}LiveConfig",
        (base,),
        {
            "__annotations__": {"window_start": str, "window_end": str, "lookahead_seconds": float},
            "window_start": Field(description="Start of the window (ISO-8601, UTC)."),
            "window_end": Field(description="End of the window, exclusive (ISO-8601, UTC)."),
            "lookahead_seconds": Field(
                default=LOOKAHEAD_S[market], ge=0.0, description="How far ahead of the wall clock rows may be stamped."
            ),
            "__doc__": f"One {market} live window plus the generation settings.",
        },
    )


LIVE_CONFIG = {market: _live_config_class(market) for market in GENERATION_CONFIG}


def live_run_config(market: str, window: Window) -> dict:
    return {
        "ops": {
            f"{market}_live_window": {
                "config": {"window_start": format_us(window.start_us), "window_end": format_us(window.end_us)}
            }
        }
    }


def build_live_job(market: str) -> dg.JobDefinition:
    config_cls = LIVE_CONFIG[market]

    @dg.op(name=f"{market}_live_window", pool=QUESTDB_POOL)
    def live_window(context: dg.OpExecutionContext, config: config_cls, sink: MarketSinkResource) -> dg.Output:
        """Write one window at wall-clock pace (seconds already due are written at once)."""
        fail_on_deployment_problems(market, "live")
        window = Window(parse_timestamp(config.window_start), parse_timestamp(config.window_end))
        references, _ = references_for_window(context, market, window)
        settings = engine_settings(market, config.model_dump())
        engine = engine_for_run(market, settings, references)
        with permanent_faults_fail_at_once(), sink.get_sink(market, logger=context.log) as s:
            s.prepare(engine.schemas)
            # into Parquet a commit is a file: one per table per live window rather than per second
            per_window = s.commits_are_files
            result = pace_window(
                engine,
                s,
                window,
                lookahead_s=config.lookahead_seconds,
                min_commit_s=window.seconds if per_window else 1,
            )
        base_names = {s.naming.name(schema): schema.base_name for schema in engine.schemas}
        # the whole window's rows: a retried window starts after what an earlier attempt committed
        rows = {base_names[name]: int(n) for name, n in result.window_rows.items()}
        context.log.info(
            f"{market} live {window}: {result.total_rows:,} rows in {result.commits} commits ({result.catch_up_commits} catching up)"
        )
        return dg.Output(
            None,
            metadata={
                "window": str(window),
                "rows": dg.MetadataValue.json(rows),
                "commits": result.commits,
                "catch_up_commits": result.catch_up_commits,
                "seed": config.seed,
                # the hour's checks read the generation settings from the hour the sensor records
                "settings": dg.MetadataValue.json(settings),
                "reference_source": references.source,
                "sink": sink.location(),
            },
        )

    # mkt/live: one live run per market at a time (instance tag limit); dagster/max_retries: the
    # daemon re-executes a failed window (run_retries in the instance config) before the sensor does
    # a live window is short and paced by the clock: always one process, whatever the deployment's executor
    @dg.job(
        name=f"{market}_live_job",
        executor_def=dg.in_process_executor,
        tags={"mkt/live": market, "dagster/max_retries": str(LIVE_RUN_RETRIES)},
        description=f"One short {market} window at wall-clock pace (run by {market}_live_sensor).",
    )
    def live_job():
        live_window()

    return live_job

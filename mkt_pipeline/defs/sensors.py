"""Live sensors (stopped by default): keep a wall-clock stream flowing as short bounded runs.

The cursor is the start of the next window to request; see ``live.plan_live_windows`` for how
windows tile time, catch up after downtime and stay within the catch-up horizon. Each tick also
reads the recent live runs from the instance: windows whose runs all failed (and that Dagster's
run retries will not retry again) are requested again under a new run key, and every hour whose
windows have all landed is recorded as a materialization of that hour's partition of the market's
hourly table assets. Stopping the sensor stops new windows; a window already running finishes (it
is at most a minute long).
"""

import json
import time
from collections import defaultdict
from collections.abc import Callable

import dagster as dg

from mkt_pipeline.core.timeline import US_PER_S, Window, format_us, parse_timestamp, us_to_datetime
from mkt_pipeline.defs.checks import PARTITION_CHECKS
from mkt_pipeline.defs.config import MARKET_TABLES, deployment_problems
from mkt_pipeline.defs.jobs import HOURLY_JOBS, equities_live_job, fx_live_job
from mkt_pipeline.defs.live import (
    HOUR_US,
    WINDOW_END_TAG,
    WINDOW_START_TAG,
    LiveSettings,
    WindowRuns,
    WindowState,
    complete_hours,
    live_run_config,
    plan_live_windows,
    request_run_key,
    request_tags,
    windows_to_request_again,
)
from mkt_pipeline.defs.partitions import HOURLY_PARTITIONS, partition_key

# run tags Dagster's run retries set (their documented values; the constants live in a private module)
PARENT_RUN_ID_TAG = "dagster/parent_run_id"
WILL_RETRY_TAG = "dagster/will_retry"


def live_window_runs(instance: dg.DagsterInstance, job_name: str, since_us: int) -> list[WindowRuns]:
    """The live windows of ``job_name`` with runs created since ``since_us``, each with its state."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, created_after=us_to_datetime(since_us)))
    by_start: dict[str, list[dg.DagsterRun]] = defaultdict(list)
    for run in runs:
        if WINDOW_START_TAG in run.tags:
            by_start[run.tags[WINDOW_START_TAG]].append(run)
    # a failed run whose automatic retry already exists is judged through that retry
    retried = {run.tags[PARENT_RUN_ID_TAG] for run in runs if PARENT_RUN_ID_TAG in run.tags}
    windows = []
    for start, group in by_start.items():
        window = Window(parse_timestamp(start), parse_timestamp(group[0].tags[WINDOW_END_TAG]))
        attempts = sum(1 for run in group if PARENT_RUN_ID_TAG not in run.tags)
        landed = [run for run in group if run.status == dg.DagsterRunStatus.SUCCESS]
        if landed:
            windows.append(WindowRuns(window, WindowState.LANDED, attempts, landed[0].run_id))
        elif any(not run.is_finished for run in group) or any(
            run.tags.get(WILL_RETRY_TAG) == "true" and run.run_id not in retried for run in group
        ):
            windows.append(WindowRuns(window, WindowState.PENDING, attempts))
        else:
            windows.append(WindowRuns(window, WindowState.FAILED, attempts))
    return windows


def window_output(instance: dg.DagsterInstance, run_id: str) -> dict:
    """The metadata a successful live run reported on its output (rows per table base name, settings)."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT):
        metadata = entry.dagster_event.step_output_data.metadata
        if "rows" in metadata:
            return {k: getattr(v, "value", v) for k, v in metadata.items()}
    return {}


def hour_materializations(
    instance: dg.DagsterInstance, market: str, job_name: str, hour: Window, windows: list[WindowRuns]
) -> list[dg.AssetMaterialization]:
    """One materialization per hourly table asset for an hour the live runs wrote completely."""
    inside = [w for w in windows if w.state is WindowState.LANDED and hour.start_us <= w.window.start_us < hour.end_us]
    totals: dict[str, int] = defaultdict(int)
    settings = []
    for w in inside:
        output = window_output(instance, w.landed_run_id)
        for name, n in (output.get("rows") or {}).items():
            totals[name] += int(n)
        settings.append(output.get("settings"))
    partition = partition_key(hour)
    requested_again = sum(1 for w in inside if w.attempts > 1)
    # the hour's checks plan its rows from these settings; windows written with different ones have no single plan
    same_settings = (
        {"settings": dg.MetadataValue.json(settings[0])}
        if settings and settings[0] and all(s == settings[0] for s in settings)
        else {}
    )
    return [
        dg.AssetMaterialization(
            asset_key=[market, name],
            partition=partition,
            description=f"Written by {len(inside)} live windows of {job_name}.",
            metadata={
                "dagster/row_count": totals.get(table.base_name, 0),
                "window": str(hour),
                "source": f"live ({job_name})",
                "live_windows": len(inside),
                "windows_requested_again": requested_again,
                **same_settings,
            },
        )
        for name, table in MARKET_TABLES[market].items()
    ]


def hour_checks_request(market: str, partition: str) -> dg.RunRequest:
    """A run of the hour's checks alone (as "Execute checks" in the UI does), against the hour the live runs recorded."""
    return dg.RunRequest(
        run_key=f"checks {partition}",
        job_name=HOURLY_JOBS[market].name,
        partition_key=partition,
        asset_selection=[],
        asset_check_keys=list(PARTITION_CHECKS[market].check_keys),
    )


class LiveSettingsError(ValueError):
    """A deployment variable the live sensor reads is invalid."""


def build_live_sensor(
    market: str, job, settings: LiveSettings | None = None, clock: Callable[[], float] = time.time
) -> dg.SensorDefinition:
    settings = settings or LiveSettings.from_env()
    partitions = HOURLY_PARTITIONS[market]

    @dg.sensor(
        name=f"{market}_live_sensor",
        jobs=[job, HOURLY_JOBS[market]],
        minimum_interval_seconds=settings.tick_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Streams {market} data at wall-clock pace as {settings.window_seconds}-second runs of {job.name}; "
            "requests failed windows again until they land, records each hour the stream completed and then runs that hour's checks."
        ),
    )
    def live_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        problems = deployment_problems(market, "live")
        if problems:  # a bad variable fails the tick at once, naming it (the code location itself still loads)
            raise LiveSettingsError(f"invalid deployment setting: {'; '.join(problems)}")
        state = json.loads(context.cursor) if context.cursor else {}
        cursor = parse_timestamp(state["next_start"]) if "next_start" in state else None
        now_us = int(clock() * US_PER_S)
        plan = plan_live_windows(cursor, now_us, settings)
        if plan.skipped is not None:
            context.log.warning(
                f"{market}: skipped {plan.skipped}, older than the {settings.catchup_seconds}s catch-up horizon; backfill those hours to fill it"
            )
        requests = [
            dg.RunRequest(
                run_key=request_run_key(w, 1),
                job_name=job.name,
                run_config=live_run_config(market, w),
                tags=request_tags(w, 1),
            )
            for w in plan.windows
        ]

        horizon_us = (
            (now_us - settings.catchup_seconds * US_PER_S)
            // (settings.window_seconds * US_PER_S)
            * (settings.window_seconds * US_PER_S)
        )
        # an hour completing now may have begun a full hour before the horizon
        since_us = horizon_us - HOUR_US - settings.window_seconds * US_PER_S
        windows = live_window_runs(context.instance, job.name, since_us) if cursor is not None else []
        for w in windows_to_request_again(windows, horizon_us, settings.max_windows_per_tick):
            attempt = w.attempts + 1
            context.log.warning(
                f"{market}: live window {w.window} failed {w.attempts} time(s); requesting it again (attempt {attempt})"
            )
            requests.append(
                dg.RunRequest(
                    run_key=request_run_key(w.window, attempt),
                    job_name=job.name,
                    run_config=live_run_config(market, w.window),
                    tags=request_tags(w.window, attempt),
                )
            )

        # the hours recorded by the previous tick are stored as materializations now: check them
        for key in state.get("hours_to_check", []):
            requests.append(hour_checks_request(market, key))
        done = {parse_timestamp(h) for h in state.get("hours_done", []) if parse_timestamp(h) >= since_us}
        events, recorded = [], []
        for hour in complete_hours(windows, plan.next_start_us, done):
            key = partition_key(hour)
            if partitions.has_partition_key(key):
                events += hour_materializations(context.instance, market, job.name, hour, windows)
                recorded.append(key)
                context.log.info(f"{market}: every live window of {key} landed; recorded the partition")
            done.add(hour.start_us)
        new_state = {
            "next_start": format_us(plan.next_start_us),
            "hours_done": [format_us(h) for h in sorted(done)],
            "hours_to_check": recorded,
        }
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_state), asset_events=events)

    return live_sensor


fx_live_sensor = build_live_sensor("fx", fx_live_job)
equities_live_sensor = build_live_sensor("equities", equities_live_job)

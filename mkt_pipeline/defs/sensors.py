"""Live sensors (stopped by default): keep a wall-clock stream flowing as short bounded runs.

The cursor is the start of the next window to request; see ``live.plan_live_windows`` for how
windows tile time, catch up after downtime and stay within the catch-up horizon. Stopping the
sensor stops new windows; a window already running finishes (it is at most a minute long).
"""

import json
import time
from typing import Callable

import dagster as dg

from mkt_pipeline.defs.jobs import equities_live_job, fx_live_job
from mkt_pipeline.defs.live import LiveSettings, live_run_config, plan_live_windows
from mkt_pipeline.core.timeline import US_PER_S, format_us, parse_timestamp


def build_live_sensor(market: str, job, settings: LiveSettings | None = None, clock: Callable[[], float] = time.time) -> dg.SensorDefinition:
    settings = settings or LiveSettings.from_env()

    @dg.sensor(
        name=f"{market}_live_sensor",
        job=job,
        minimum_interval_seconds=settings.tick_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Streams {market} data at wall-clock pace as {settings.window_seconds}-second runs of {job.name}.",
    )
    def live_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = parse_timestamp(json.loads(context.cursor)["next_start"]) if context.cursor else None
        plan = plan_live_windows(cursor, int(clock() * US_PER_S), settings)
        if plan.skipped is not None:
            context.log.warning(f"{market}: skipped {plan.skipped}, older than the {settings.catchup_seconds}s catch-up horizon; backfill those hours to fill it")
        requests = [
            dg.RunRequest(run_key=format_us(w.start_us), run_config=live_run_config(market, w), tags={"mkt/window": str(w)}) for w in plan.windows
        ]
        return dg.SensorResult(run_requests=requests, cursor=json.dumps({"next_start": format_us(plan.next_start_us)}))

    return live_sensor


fx_live_sensor = build_live_sensor("fx", fx_live_job)
equities_live_sensor = build_live_sensor("equities", equities_live_job)

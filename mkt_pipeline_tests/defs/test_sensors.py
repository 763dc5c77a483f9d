"""Live sensors: windows tile time (no gaps, no overlaps), catch up within a horizon, and the
live job writes exactly the rows a backfill of the same window writes."""

from __future__ import annotations

import json
import random

import dagster as dg
import pytest

from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.core.timeline import US_PER_S, Window, format_us, parse_timestamp
from mkt_pipeline.definitions import defs
from mkt_pipeline.defs.checks import fx_partition_checks
from mkt_pipeline.defs.hourly import MARKET_TABLES
from mkt_pipeline.defs.jobs import fx_live_job
from mkt_pipeline.defs.live import LiveSettings, plan_live_windows
from mkt_pipeline.defs.sensors import build_live_sensor, equities_live_sensor, fx_live_sensor
from mkt_pipeline.fx.engine import FxConfig, FxEngine
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import fx_references
from mkt_pipeline_tests.defs.support import TINY_FX, parquet_resource

SETTINGS = LiveSettings(
    window_seconds=60, lead_seconds=20, catchup_seconds=600, max_windows_per_tick=5, tick_seconds=15
)
T0 = parse_timestamp("2025-11-11T03:00:30Z")


class Clock:
    def __init__(self, us: int):
        self.us = us

    def __call__(self) -> float:
        return self.us / US_PER_S


def tick(sensor, instance, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = sensor(context)
    return result.run_requests, result.cursor


def window_of(request) -> Window:
    config = request.run_config["ops"]["fx_live_window"]["config"]
    return Window(parse_timestamp(config["window_start"]), parse_timestamp(config["window_end"]))


def test_defined_sensors_are_stopped_by_default():
    assert fx_live_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert equities_live_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    # each sensor launches its live job, and the checks of every hour it completes in the hourly job
    assert [t.job_name for t in fx_live_sensor.targets] == ["fx_live_job", "fx_hourly_job"]
    assert [t.job_name for t in equities_live_sensor.targets] == ["equities_live_job", "equities_hourly_job"]


def test_ticks_cursor_run_keys_and_no_overlap():
    clock = Clock(T0)
    sensor = build_live_sensor("fx", fx_live_job, SETTINGS, clock=clock)
    instance = dg.DagsterInstance.ephemeral()
    requests, cursor = tick(sensor, instance, None)
    # first tick: the current minute (already under way) is requested at once
    assert [window_of(r) for r in requests] == [Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:01:00Z")]
    assert requests[0].run_key == "2025-11-11T03:00:00.000000Z"
    assert json.loads(cursor)["next_start"] == "2025-11-11T03:01:00.000000Z"
    # 15 s later: the next window begins in 15 s (< lead 20 s), so it is requested now
    clock.us += 15 * US_PER_S
    requests, cursor = tick(sensor, instance, cursor)
    assert [r.run_key for r in requests] == ["2025-11-11T03:01:00.000000Z"]
    # a tick that finds nothing due leaves the cursor where it is
    clock.us += 5 * US_PER_S
    requests, same = tick(sensor, instance, cursor)
    assert requests == [] and same == cursor


def test_catch_up_after_downtime_is_contiguous_and_bounded():
    settings = LiveSettings(
        window_seconds=60, lead_seconds=20, catchup_seconds=600, max_windows_per_tick=4, tick_seconds=15
    )
    clock = Clock(T0)
    sensor = build_live_sensor("fx", fx_live_job, settings, clock=clock)
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = tick(sensor, instance, None)
    clock.us += 7 * 60 * US_PER_S  # the daemon was down for 7 minutes (within the 10-minute horizon)
    caught_up = []
    for _ in range(3):  # at most 4 windows per tick: the backlog drains over a few ticks
        requests, cursor = tick(sensor, instance, cursor)
        assert len(requests) <= 4
        caught_up += [window_of(r) for r in requests]
    assert caught_up[0].start_us == parse_timestamp("2025-11-11T03:01:00Z")
    assert all(a.end_us == b.start_us for a, b in zip(caught_up, caught_up[1:]))
    assert caught_up[-1].start_us <= clock.us + settings.lead_seconds * US_PER_S < caught_up[-1].end_us


def test_downtime_beyond_the_horizon_skips_old_windows():
    plan = plan_live_windows(parse_timestamp("2025-11-11T03:00:00Z"), parse_timestamp("2025-11-11T05:00:30Z"), SETTINGS)
    assert plan.skipped == Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T04:50:00Z")
    assert plan.windows[0].start_us == parse_timestamp("2025-11-11T04:50:00Z")
    assert len(plan.windows) == SETTINGS.max_windows_per_tick


def test_random_ticks_tile_time_without_gaps_or_overlaps():
    rng = random.Random(5)
    now, cursor, windows = T0, None, []
    for _ in range(300):
        now += rng.choice([1, 5, 15, 15, 15, 40, 200]) * US_PER_S
        plan = plan_live_windows(cursor, now, SETTINGS)
        assert plan.skipped is None  # the largest pause (200 s) is inside the horizon
        windows += plan.windows
        cursor = plan.next_start_us
        # never more than one window ahead of the wall clock
        assert all(w.start_us <= now + SETTINGS.lead_seconds * US_PER_S for w in plan.windows)
    assert all(a.end_us == b.start_us for a, b in zip(windows, windows[1:]))
    assert len({w.start_us for w in windows}) == len(windows)
    assert windows[-1].end_us >= now


def test_live_run_writes_what_a_backfill_writes(tmp_path):
    """A past window is due at once, so the paced run writes it straight away: same rows as a backfill."""
    window = Window.from_iso("2025-11-11T03:00:10Z", "2025-11-11T03:00:16Z")
    config = {
        "ops": {
            "fx_live_window": {
                "config": {
                    "window_start": format_us(window.start_us),
                    "window_end": format_us(window.end_us),
                    **TINY_FX,
                }
            }
        }
    }
    result = fx_live_job.execute_in_process(
        run_config=config,
        resources={"sink": parquet_resource(tmp_path / "live")},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    backfill = ParquetSink(tmp_path / "backfill")
    engine = FxEngine(FxConfig(**TINY_FX), fx_references(window))
    backfill.prepare(engine.schemas)
    run_window(engine, backfill, window)
    live = ParquetSink(tmp_path / "live")
    for table in FX_TABLES:
        expected = backfill.read(table)
        assert expected.num_rows > 0
        assert live.read(table).equals(expected), table.base_name


# 20-minute windows: three tile an hour, so an hour's gap and its completion fit in a short test
HOURLY_SETTINGS = LiveSettings(
    window_seconds=1200, lead_seconds=20, catchup_seconds=7200, max_windows_per_tick=10, tick_seconds=15
)


def run_request(request, sink_root, instance) -> dg.ExecuteInProcessResult:
    """Run one sensor request the way the daemon launches it: its run config, tags and run key."""
    config = request.run_config
    config["ops"]["fx_live_window"]["config"].update(TINY_FX)
    tags = {**request.tags, "dagster/run_key": request.run_key}
    return fx_live_job.execute_in_process(
        run_config=config,
        resources={"sink": parquet_resource(sink_root)},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )


def test_window_size_must_tile_hours():
    with pytest.raises(ValueError, match="MKT_LIVE_WINDOW_SECONDS must divide 3600"):
        LiveSettings(window_seconds=700)


def test_a_failed_window_is_requested_again_until_it_lands_and_the_hour_is_recorded(tmp_path):
    """A storage error kills the middle window of an hour; the sensor requests it again, the gap
    fills, and the hour's partition is recorded with the rows the live runs stored."""
    clock = Clock(parse_timestamp("2025-11-11T03:00:30Z"))
    sensor = build_live_sensor("fx", fx_live_job, HOURLY_SETTINGS, clock=clock)
    live_root = tmp_path / "live"
    broken_root = tmp_path / "not_a_directory"
    broken_root.write_text("a file where the dataset should be: every write fails")
    with dg.instance_for_test() as instance:
        requests, cursor = tick(sensor, instance, None)
        clock.us = parse_timestamp("2025-11-11T04:00:30Z")
        more, cursor = tick(sensor, instance, cursor)
        requests += more
        assert [window_of(r).start_us for r in requests[:3]] == [
            parse_timestamp(f"2025-11-11T03:{m}:00Z") for m in ("00", "20", "40")
        ]
        outcomes = [run_request(r, broken_root if i == 1 else live_root, instance) for i, r in enumerate(requests)]
        assert [o.success for o in outcomes] == [True, False, True, True]

        # the failed window has no retry coming (run retries are off here): the sensor asks again
        again, cursor = tick(sensor, instance, cursor)
        assert [window_of(r) for r in again] == [window_of(requests[1])]
        assert again[0].run_key == "2025-11-11T03:20:00.000000Z#attempt2" and again[0].tags["mkt/attempt"] == "2"
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        assert sensor(context).asset_events == []  # the hour is not complete while its middle is missing
        assert run_request(again[0], live_root, instance).success

        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        result = sensor(context)
        assert result.run_requests == []  # nothing failed any more
        events = {e.asset_key.path[-1]: e for e in result.asset_events}
        assert set(events) == {"market_data", "core_price", "trades"}
        cursor = result.cursor
        for event in result.asset_events:  # what the daemon does with a sensor's asset events
            instance.report_runless_asset_event(event)
        # recorded once: the next tick does not record the hour again, it runs the hour's checks
        following = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert following.asset_events == []
        [check_request] = following.run_requests
        assert check_request.job_name == "fx_hourly_job" and check_request.partition_key == "2025-11-11-03:00"
        assert check_request.asset_selection == [] and set(check_request.asset_check_keys) == set(
            fx_partition_checks.check_keys
        )
        job = defs.resolve_job_def("fx_hourly_job").get_subset(
            asset_selection=set(), asset_check_selection=set(check_request.asset_check_keys)
        )
        checked = job.execute_in_process(
            instance=instance,
            partition_key=check_request.partition_key,
            resources={"sink": parquet_resource(live_root)},
        )
        evaluations = {(e.asset_key.path[-1], e.check_name): e for e in checked.get_asset_check_evaluations()}
        assert len(evaluations) == 7 and not checked.get_asset_materialization_events()
        # against the live hour: its rows match the plan second by second and what the sensor recorded
        assert (
            evaluations[("market_data", "rows_match_plan")].passed
            and evaluations[("market_data", "rows_match_plan")].metadata["checked"].value == 3600
        )
        # the stream went on into 04:00, so the hour's end edge is compared (02:00 is not stored)
        assert evaluations[("market_data", "continuous_at_edges")].metadata["edges_checked"].value == 1
        assert all(e.passed for e in evaluations.values()), [k for k, e in evaluations.items() if not e.passed]
        assert sensor(dg.build_sensor_context(instance=instance, cursor=following.cursor)).run_requests == []

    hour = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T04:00:00Z")
    backfill = ParquetSink(tmp_path / "backfill")
    engine = FxEngine(FxConfig(**TINY_FX), fx_references(hour))
    backfill.prepare(engine.schemas)
    run_window(engine, backfill, hour)
    live = ParquetSink(live_root)
    for asset_name, table in MARKET_TABLES["fx"].items():
        expected = backfill.read(table, hour)
        stored = live.read(table, hour)
        assert expected.num_rows > 0
        assert stored.equals(expected), f"{table.base_name}: the live hour differs from a backfill of it"
        event = events[asset_name]
        assert event.partition == "2025-11-11-03:00"
        assert event.metadata["dagster/row_count"].value == expected.num_rows
        assert event.metadata["windows_requested_again"].value == 1


def test_a_failed_window_that_dagster_will_retry_is_left_to_the_retry(tmp_path):
    """With run retries on, a failed live run is tagged for re-execution by the daemon; the sensor
    does not request the same window a second time beside it."""
    clock = Clock(parse_timestamp("2025-11-11T03:00:30Z"))
    sensor = build_live_sensor("fx", fx_live_job, HOURLY_SETTINGS, clock=clock)
    broken_root = tmp_path / "not_a_directory"
    broken_root.write_text("every write fails")
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True}}) as instance:
        requests, cursor = tick(sensor, instance, None)
        failed = run_request(requests[0], broken_root, instance)
        assert not failed.success
        run = instance.get_run_by_id(failed.run_id)
        assert run.tags["dagster/max_retries"] == "2" and run.tags["dagster/will_retry"] == "true"
        again, _ = tick(sensor, instance, cursor)
        assert again == []

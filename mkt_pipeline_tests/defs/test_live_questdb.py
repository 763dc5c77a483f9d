"""A live window that fails after some of its one-second commits, then runs again, against a real QuestDB.

The retry starts after the seconds the ledger records (it never writes behind them), so the rows it
writes are only the rest of the window. What it reports to the sensor, which sums the successful
runs' reports into the hour's ``dagster/row_count``, must still be the whole window's rows.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.core.timeline import Window, format_us
from mkt_pipeline.defs import live
from mkt_pipeline.defs.jobs import fx_live_job
from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
from mkt_pipeline.defs.sink_resource import MarketSinkResource
from mkt_pipeline.fx.engine import FxConfig, FxEngine
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import fx_references
from mkt_pipeline_tests.defs.support import TINY_FX

pytestmark = pytest.mark.questdb

WINDOW = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T03:00:20Z")


class Interrupted(RuntimeError):
    pass


def reported_rows(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    """The ``rows`` a live run put on its output: what the sensor reads and sums per hour."""
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return dict(output.event_specific_data.metadata["rows"].value)


def test_a_retried_live_window_reports_the_rows_of_the_whole_window(questdb, qdb_suffix, monkeypatch, tmp_path):
    resource = MarketSinkResource(
        kind="questdb",
        table_suffix=qdb_suffix,
        questdb=QuestDBResource(
            host=questdb.host, http_port=questdb.http_port, pg_port=questdb.pg_port, ilp_tcp_port=questdb.ilp_port
        ),
        parquet=ParquetResource(),
    )
    config = {"window_start": format_us(WINDOW.start_us), "window_end": format_us(WINDOW.end_us), **TINY_FX}
    run_config = {"ops": {"fx_live_window": {"config": config}}}

    # the first attempt dies after three commits of two seconds each (the window is past, so every
    # second is due at once and the run commits in groups); those six seconds are stored and recorded
    paced = live.pace_window

    def failing_after_three_commits(*args, **kwargs):
        def commit(chunk, result, now):
            if result.commits == 3:
                raise Interrupted(f"stopped after {result.written_until_us}")

        return paced(*args, **{**kwargs, "max_group_s": 2, "on_commit": commit})

    instance = dg.DagsterInstance.ephemeral()
    monkeypatch.setattr(live, "pace_window", failing_after_three_commits)
    first = fx_live_job.execute_in_process(
        run_config=run_config, resources={"sink": resource}, instance=instance, raise_on_error=False
    )
    assert not first.success
    monkeypatch.setattr(live, "pace_window", paced)

    retry = fx_live_job.execute_in_process(run_config=run_config, resources={"sink": resource}, instance=instance)
    assert retry.success

    backfill = ParquetSink(tmp_path / "backfill")
    engine = FxEngine(FxConfig(**TINY_FX), fx_references(WINDOW))
    backfill.prepare(engine.schemas)
    run_window(engine, backfill, WINDOW)
    expected = {table.base_name: backfill.read(table).num_rows for table in FX_TABLES}
    assert all(expected.values())

    # the retry wrote only the last 14 seconds, yet reports the whole window, as the ledger records it
    assert reported_rows(retry) == expected

    # and the whole window is what QuestDB holds
    def stored(table) -> int:
        start, end = format_us(WINDOW.start_us), format_us(WINDOW.end_us)
        sql = (
            f"SELECT count() FROM {table.base_name}{qdb_suffix} "
            f"WHERE {table.timestamp} >= '{start}' AND {table.timestamp} < '{end}'"
        )
        return questdb.query(sql)[0][0]

    questdb.wait_until(lambda: {t.base_name: stored(t) for t in FX_TABLES} == expected, 60, "the window's rows")

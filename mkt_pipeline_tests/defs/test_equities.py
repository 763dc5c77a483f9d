"""Equities hourly assets through Dagster into Parquet, and view assets on the Parquet sink."""

from __future__ import annotations

import dagster as dg
import pytest

from mkt_pipeline.core.tables import EQUITIES_MARKET_DATA, EQUITIES_TRADES
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.defs.equities import equities_views
from mkt_pipeline.defs.fx import fx_views
from mkt_pipeline.defs.sink_resource import VIEWS_NEED_QUESTDB
from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine
from mkt_pipeline.markets import market_references
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.defs.support import LIGHT_EQUITIES, checks, materializations, parquet_resource, run_hourly

HOUR = "2025-11-11-15:00"  # 10:00 in New York: continuous session, trades flowing
WINDOW = Window.from_iso("2025-11-11T15:00:00Z", "2025-11-11T16:00:00Z")


@pytest.fixture(scope="module")
def equities_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("equities")
    instance = dg.DagsterInstance.ephemeral()
    return root, instance, run_hourly("equities", root, instance, LIGHT_EQUITIES, partition=HOUR)


def test_partition_files_rows_and_checks(equities_run):
    root, _, result = equities_run
    assert result.success
    sink = ParquetSink(root)
    md, trades = sink.read(EQUITIES_MARKET_DATA), sink.read(EQUITIES_TRADES)
    assert list((root / "equities_market_data" / "hour=2025-11-11T15").glob("part-*.parquet"))
    assert list((root / "equities_trades" / "hour=2025-11-11T15").glob("part-*.parquet"))
    meta = materializations(result, "equities")
    assert meta[("market_data", HOUR)]["dagster/row_count"] == md.num_rows > 0
    assert meta[("trades", HOUR)]["dagster/row_count"] == trades.num_rows > 0
    engine = EquitiesEngine(EquitiesConfig(**LIGHT_EQUITIES), market_references("equities", WINDOW, offline=True))
    assert md.num_rows == engine.planned_counts(WINDOW.first_second, WINDOW.end_second)["market_data"]
    assert set(md.column("venue").to_pylist()) == {"NASDAQ", "NYSE", "ARCA", "BATS", "IEX"}
    evaluations = checks(result)
    # a lone hour: no neighbour stored, so the edge check records no evaluation (nothing compared)
    assert len(evaluations) == 4 and all(c.partition == HOUR for c in evaluations.values())
    assert ("market_data", "continuous_at_edges") not in evaluations
    assert all(c.passed for c in evaluations.values()), {k: c.metadata for k, c in evaluations.items()}
    assert evaluations[("market_data", "nbbo_never_crossed")].metadata["checked"].value > 0


def test_rematerializing_is_idempotent(equities_run):
    root, instance, _ = equities_run
    sink = ParquetSink(root)
    before = sink.read(EQUITIES_MARKET_DATA), sink.read(EQUITIES_TRADES)
    assert run_hourly("equities", root, instance, LIGHT_EQUITIES, partition=HOUR).success
    after = sink.read(EQUITIES_MARKET_DATA), sink.read(EQUITIES_TRADES)
    assert before[0].equals(after[0]) and before[1].equals(after[1])


def test_view_assets_report_parquet_instead_of_failing(tmp_path):
    keys = [dg.AssetKey(["equities_views", "nbbo_1s"]), dg.AssetKey(["fx_views", "bbo_1s"])]
    views = [a for a in (*equities_views, *fx_views) if a.key in keys]
    result = dg.materialize(
        views, resources={"sink": parquet_resource(tmp_path)}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    events = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(events) == set(keys)
    assert events[keys[0]]["reason"].value == VIEWS_NEED_QUESTDB
    assert events[keys[0]]["view"].value == "nbbo_1s"
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_checks_read_the_timestamp_column_the_run_recorded(tmp_path):
    """A run recorded with ``timestamp_column: timestamp`` is checked on that column: every equities
    check evaluates real rows and passes (and the plan is the default naming's plan)."""
    from mkt_pipeline.defs.checks import planned_per_second
    from mkt_pipeline.run.ingest import run_window
    from mkt_pipeline.sinks.checks import ArrowChecks, evaluate_partition
    from mkt_pipeline.sinks.stored_rows import ParquetRows

    window = Window.from_iso("2025-11-11T15:00:00Z", "2025-11-11T15:00:20Z")
    settings = {**LIGHT_EQUITIES, "timestamp_column": "timestamp"}
    engine = EquitiesEngine(EquitiesConfig(**settings), market_references("equities", window, offline=True))
    sink = ParquetSink(tmp_path)
    sink.prepare(engine.schemas)
    written = run_window(engine, sink, window).stats.rows
    planned = engine.planned_counts(window.first_second, window.end_second)
    assert planned == EquitiesEngine(EquitiesConfig(**LIGHT_EQUITIES), engine.references).planned_counts(
        window.first_second, window.end_second
    )
    # what a run records: every engine setting, defaults included
    from mkt_pipeline.defs.config import EquitiesGenerationConfig
    from mkt_pipeline.markets import engine_settings

    recorded = engine_settings("equities", EquitiesGenerationConfig(**settings).model_dump())
    metas = {
        name: {"settings": recorded, "dagster/row_count": written[table]}
        for name, table in (("market_data", "equities_market_data"), ("trades", "equities_trades"))
    }
    per_second = planned_per_second("equities", recorded, window)
    assert int(per_second["market_data"].sum()) == planned["market_data"]
    results = evaluate_partition("equities", ArrowChecks(ParquetRows(sink)), window, metas, per_second)
    edges = results.pop(("market_data", "continuous_at_edges"))  # no neighbouring hour stored: not evaluated
    assert edges.passed is None and edges.metadata["edges_checked"] == 0
    assert len(results) == 4 and all(passed for passed, _, _ in results.values()), {
        k: m for k, (_, _, m) in results.items()
    }
    assert results[("market_data", "nbbo_never_crossed")][2]["checked"] > 0
    assert results[("trades", "trades_after_quotes")][2]["checked"] > 0
    # the same metadata without the setting reads timestamp_ns, which these files do not have
    default = {
        name: {**meta, "settings": {**recorded, "timestamp_column": "timestamp_ns"}} for name, meta in metas.items()
    }
    with pytest.raises(ValueError, match="no column timestamp_ns .*another timestamp_column"):
        evaluate_partition("equities", ArrowChecks(ParquetRows(sink)), window, default, per_second)


def test_equities_generation_config_has_the_timestamp_column_with_its_env_default():
    from mkt_pipeline.defs.config import EquitiesGenerationConfig

    field = EquitiesGenerationConfig.model_fields["timestamp_column"]
    assert field.default == "timestamp_ns" and "MKT_EQUITIES_TIMESTAMP_COLUMN" in field.description


@pytest.mark.questdb
def test_view_assets_follow_the_configured_timestamp_column(questdb, qdb_suffix):
    """Equities view assets with ``timestamp_column: timestamp`` create the source table and the views
    on that column, under the eq_ prefix, as the published dashboards expect."""
    from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
    from mkt_pipeline.defs.sink_resource import MarketSinkResource

    sink = MarketSinkResource(
        kind="questdb",
        table_suffix=qdb_suffix,
        equities_prefix="eq_",
        questdb=QuestDBResource(
            host=questdb.host, http_port=questdb.http_port, pg_port=questdb.pg_port, ilp_tcp_port=questdb.ilp_port
        ),
        parquet=ParquetResource(),
    )
    keys = [dg.AssetKey(["equities_views", name]) for name in ("top_of_book_1s", "nbbo_1s")]
    views = [a for a in equities_views if a.key in keys]
    config = {"ops": {f"equities_views__{k.path[-1]}": {"config": {"timestamp_column": "timestamp"}} for k in keys}}
    result = dg.materialize(views, resources={"sink": sink}, run_config=config, instance=dg.DagsterInstance.ephemeral())
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    table = f"eq_equities_market_data{qdb_suffix}"
    designated = questdb.query(f"SELECT \"column\", type FROM table_columns('{table}') WHERE designated")
    assert designated == [("timestamp", "TIMESTAMP_NS")]
    for view in ("top_of_book_1s", "nbbo_1s"):
        name = f"eq_{view}{qdb_suffix}"
        assert questdb.query(f"SELECT view_status FROM materialized_views() WHERE view_name = '{name}'") == [("valid",)]
        assert questdb.query(f"SELECT \"column\" FROM table_columns('{name}') WHERE designated") == [("timestamp",)]

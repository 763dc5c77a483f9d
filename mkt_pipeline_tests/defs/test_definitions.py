"""The code location loads, validates, and carries the names (docs/dagster.md#names), settings and catalog."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from mkt_pipeline.definitions import defs
from mkt_pipeline.defs import config as generation_config
from mkt_pipeline.defs.hourly import QUESTDB_POOL
from mkt_pipeline.defs.sink_resource import MarketSinkResource

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "fx/market_data", "fx/core_price", "fx/trades", "fx/reference_prices",
    "equities/market_data", "equities/trades", "equities/reference_prices",
}  # fmt: skip


def test_asset_keys_and_views():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert KEYS <= keys
    assert {
        "fx_views/core_price_1s",
        "fx_views/bbo_1d",
        "fx_views/fx_trades_ohlc_1d",
        "equities_views/nbbo_1s",
        "equities_views/trades_ohlcv_15m",
    } <= keys
    graph = defs.resolve_asset_graph()
    # views hang below their sources: bbo_1m reads bbo_1s, which reads fx/market_data
    assert dg.AssetKey(["fx_views", "bbo_1s"]) in graph.get(dg.AssetKey(["fx_views", "bbo_1m"])).parent_keys
    assert dg.AssetKey(["fx", "market_data"]) in graph.get(dg.AssetKey(["fx_views", "bbo_1s"])).parent_keys
    assert dg.AssetKey(["fx", "reference_prices"]) in graph.get(dg.AssetKey(["fx", "trades"])).parent_keys


def test_jobs_schedules_sensors_named_and_stopped():
    repo = defs.get_repository_def()
    assert {"fx_hourly_job", "equities_hourly_job"} <= set(repo.job_names)
    for name in ("fx_hourly_schedule", "equities_hourly_schedule"):
        assert defs.get_schedule_def(name).default_status == dg.DefaultScheduleStatus.STOPPED
    for name in ("fx_live_sensor", "equities_live_sensor"):
        assert defs.get_sensor_def(name).default_status == dg.DefaultSensorStatus.STOPPED


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_hourly_asset_partitions_backfill_and_pool(market):
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey([market, "market_data"]))
    partitions = node.partitions_def
    assert isinstance(partitions, dg.HourlyPartitionsDefinition)
    assert partitions.timezone == "UTC" and partitions.get_first_partition_key() == "2024-01-01-00:00"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    job = defs.resolve_job_def(f"{market}_hourly_job")
    graph_def = job.graph.node_named(f"{market}_hourly").definition
    # few, large steps: seeding prices, then one ingest step for the whole partition range
    assert sorted(n.name for n in graph_def.nodes) == [f"{market}_ingest", f"{market}_seed_prices"]
    writer = graph_def.node_named(f"{market}_ingest").definition
    assert writer.pool == QUESTDB_POOL
    assert job.executor_def is dg.in_process_executor
    assert (
        defs.resolve_job_def(f"{market}_live_job").graph.node_named(f"{market}_live_window").definition.pool
        == QUESTDB_POOL
    )


def test_definitions_validate_cli():
    env = {**os.environ, "MKT_OFFLINE": "1"}
    env.pop("DAGSTER_HOME", None)
    run = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-m", "mkt_pipeline.definitions"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Validation successful" in run.stderr + run.stdout


def test_dg_check_defs():
    """The project follows dg's conventions: ``dg check defs`` loads the code location from ``[tool.dg]``."""
    env = {**os.environ, "MKT_OFFLINE": "1"}
    env.pop("DAGSTER_HOME", None)
    run = subprocess.run(
        [str(Path(sys.executable).with_name("dg")), "check", "defs"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    assert "All definitions loaded successfully" in run.stdout + run.stderr


def test_generation_config_defaults_come_from_env(monkeypatch):
    monkeypatch.setenv("MKT_FX_MARKET_DATA_MIN_EPS", "2_500")
    monkeypatch.setenv("MKT_EQUITIES_OFFSESSION_TRADES", "trickle")
    monkeypatch.setenv("MKT_SEED", "7")
    fx = generation_config._config_class("fx")()
    equities = generation_config._config_class("equities")()
    assert fx.market_data_min_eps == 2500 and fx.market_data_max_eps == 15000
    assert equities.offsession_trades == "trickle" and equities.session_pacing is True
    assert fx.seed == 7  # MKT_SEED when MKT_FX_SEED is unset
    monkeypatch.setenv("MKT_FX_SEED", "9")
    assert generation_config._config_class("fx")().seed == 9
    # every generator flag is a config field, nothing more but the chunk size and the worker count
    assert set(generation_config.FxGenerationConfig.model_fields) == {
        f.name for f in generation_config.FX_GENERATION_FLAGS
    } | {"chunk_seconds", "processes"}


def test_sink_resource_from_env_keeps_secrets_out_of_config(monkeypatch):
    monkeypatch.setenv("MKT_SINK", "parquet")
    monkeypatch.setenv("MKT_PARQUET_DIR", "/tmp/somewhere")
    monkeypatch.setenv("QUESTDB_PASSWORD", "s3cr3t-value")
    resource = MarketSinkResource.from_env()
    assert "s3cr3t-value" not in repr(resource)
    assert isinstance(resource.questdb.password, dg.EnvVar) and isinstance(resource.kind, dg.EnvVar)
    # resolved at launch, not at load
    resolved = MarketSinkResource.from_env()
    with dg.build_resources({"sink": resolved}) as res:
        assert res.sink.kind == "parquet" and res.sink.parquet.root_dir == "/tmp/somewhere"
        assert res.sink.questdb.password == "s3cr3t-value"
    # one rule, checked when the code location loads and again at launch (the variable may differ there)
    # (the load-time read, without recording the problem for this process's other runs)
    from mkt_pipeline.settings import SINK_RESOURCE_FIELDS, read_resource_environment

    monkeypatch.setenv("MKT_SINK", "mysql")
    rule = "'mysql' is not one of questdb, parquet"
    assert read_resource_environment(SINK_RESOURCE_FIELDS).problems["kind"].render() == f"MKT_SINK: {rule}"
    with dg.build_resources({"sink": resolved}) as res, pytest.raises(dg.Failure) as failure:
        res.sink.spec("fx")
    assert failure.value.description == f"sink resource kind (MKT_SINK): {rule}"


def test_dagster_yaml_is_a_valid_instance_config(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        settings = instance.get_concurrency_config()
        assert settings.pool_config.default_pool_limit >= 1
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs >= 1
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


TABLES = {
    "fx": {"market_data": "market_data", "core_price": "core_price", "trades": "fx_trades"},
    "equities": {"market_data": "equities_market_data", "trades": "equities_trades"},
}


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_catalog_of_the_hourly_tables(market):
    from mkt_pipeline.defs.hourly import MARKET_TABLES

    graph = defs.resolve_asset_graph()
    for name, table in TABLES[market].items():
        node = graph.get(dg.AssetKey([market, name]))
        assert node.group_name == market  # not "default": graph_multi_asset takes the group itself
        assert node.kinds == {"python", "questdb"}  # the sink this deployment writes (MKT_SINK unset)
        assert node.owners and "SPEC" not in node.description and f"`{table}`" in node.description
        schema = getattr(node.metadata["dagster/column_schema"], "schema", node.metadata["dagster/column_schema"])
        assert [c.name for c in schema.columns] == [c.name for c in MARKET_TABLES[market][name].columns]
        assert all(c.description and len(c.description) > 10 for c in schema.columns), (
            schema.columns
        )  # every column described
        assert "dagster/code_references" in node.metadata
    # the daily reference closes sit in a group of their own: Materialize on the market's group offers hourly partitions only
    hourly = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == market}
    assert hourly == {dg.AssetKey([market, n]) for n in TABLES[market]}
    assert graph.get(dg.AssetKey([market, "reference_prices"])).group_name == f"{market}_reference"
    from mkt_pipeline.defs.checks import _specs

    for spec in _specs(market):
        assert spec.description and spec.partitions_def == graph.get(spec.asset_key).partitions_def


def test_partitions_start_from_env():
    from mkt_pipeline.core.engine import ConfigError
    from mkt_pipeline.defs.partitions import hourly_start

    assert hourly_start({}) == "2024-01-01-00:00"
    assert hourly_start({"MKT_PARTITIONS_START": "2025-06-01-00:00"}) == "2025-06-01-00:00"
    for bad in ("2025-06-01", "2025-06-01-00:30"):
        with pytest.raises(ConfigError, match="MKT_PARTITIONS_START"):
            hourly_start({"MKT_PARTITIONS_START": bad})
    # the code location reads it when it loads
    env = {**os.environ, "MKT_PARTITIONS_START": "2025-06-01-05:00", "MKT_OFFLINE": "1"}
    code = "from mkt_pipeline.definitions import defs; import dagster as dg; g = defs.resolve_asset_graph(); print(g.get(dg.AssetKey(['fx', 'trades'])).partitions_def.get_first_partition_key(), g.get(dg.AssetKey(['fx', 'reference_prices'])).partitions_def.get_first_partition_key())"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["2025-06-01-05:00", "2025-05-30"], run.stderr[-2000:]
    assert "BetaWarning" not in run.stderr and "PreviewWarning" not in run.stderr


def test_config_errors_name_config_keys(tmp_path):
    from mkt_pipeline_tests.defs.support import TINY_FX, parquet_resource

    job = defs.resolve_job_def("fx_hourly_job")
    for bad, key in (
        ({"market_data_min_eps": 90, "market_data_max_eps": 80}, "market_data_"),
        ({"chunk_seconds": 700}, "chunk_seconds"),
    ):
        result = job.execute_in_process(
            run_config={"ops": {"fx_hourly": {"config": {**TINY_FX, **bad}}}},
            instance=dg.DagsterInstance.ephemeral(),
            partition_key="2025-11-11-03:00",
            resources={"sink": parquet_resource(tmp_path)},
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.event_specific_data.error.message
        assert f"config key {key}" in message and "--" not in message, message
        assert not list(tmp_path.glob("*/hour=*"))  # nothing written

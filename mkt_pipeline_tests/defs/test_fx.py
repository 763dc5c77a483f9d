"""FX hourly assets through Dagster into Parquet: files, metadata, references, ranges, idempotence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.core.timeline import Window, parse_timestamp
from mkt_pipeline.defs.reference_records import recorded_days
from mkt_pipeline.fx.engine import FxConfig, FxEngine
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import fx_references
from mkt_pipeline_tests.defs.support import (
    LIGHT_FX,
    TINY_FX,
    assert_evaluated_while_writing,
    checks,
    materializations,
    run_hourly,
)

HOUR = "2025-11-11-03:00"
WINDOW = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T04:00:00Z")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fx_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fx")
    instance = dg.DagsterInstance.ephemeral()
    result = run_hourly("fx", root, instance, LIGHT_FX, partition=HOUR)
    return root, instance, result


def snapshot(root) -> dict[str, pa.Table]:
    sink = ParquetSink(root)
    return {t.base_name: sink.read(t) for t in FX_TABLES}


def test_partition_files_and_metadata(fx_run):
    root, _, result = fx_run
    assert result.success
    for table in ("market_data", "core_price", "fx_trades"):
        parts = sorted((root / table / "hour=2025-11-11T03").glob("part-*.parquet"))
        assert parts, table
    stored = snapshot(root)
    meta = materializations(result, "fx")
    planned = FxEngine(FxConfig(**LIGHT_FX), fx_references(WINDOW)).planned_counts(
        WINDOW.first_second, WINDOW.end_second
    )
    assert meta[("market_data", HOUR)]["dagster/row_count"] == stored["market_data"].num_rows == planned["market_data"]
    assert meta[("core_price", HOUR)]["dagster/row_count"] == stored["core_price"].num_rows == planned["core_price"]
    assert meta[("trades", HOUR)]["dagster/row_count"] == stored["fx_trades"].num_rows > 0
    md = meta[("market_data", HOUR)]
    assert (
        md["seed"] == "42" and md["reference_source"] == "fallback" and md["rows_per_second"] > 0
    )  # the seed: text, no plot
    # bytes as a number with its unit in the name (plottable): the Arrow bytes handed to the Parquet writer
    arrow_bytes = stored["market_data"].nbytes
    assert isinstance(md["bytes_sent"], int) and 0.5 * arrow_bytes <= md["bytes_sent"] <= 2 * arrow_bytes
    assert md["window"] == "2025-11-11 03:00:00 → 04:00:00 UTC" and "wal_lag_max_txns" not in md  # no WAL with Parquet
    assert (md["window_start"], md["window_end"]) == (WINDOW.start_us / 1e6, WINDOW.end_us / 1e6)
    assert md["sink"].startswith("parquet ") and md["table"] == "market_data"
    # the engine plans no trades count: the trades asset shows none, and no table shows another's plan
    assert not any(k.startswith("planned") for m in meta.values() for k in m)
    # books have the requested 10 levels
    first_book = stored["market_data"].column("bids")[0].as_py()
    assert len(first_book) == 2 and len(first_book[0]) == 10


def test_every_check_passes_on_good_data(fx_run):
    _, _, result = fx_run
    evaluations = checks(result)
    # a lone hour has no stored neighbour: its edge check compares nothing and records no evaluation
    # (neither a pass nor a failure); every other check passes
    assert len(evaluations) == 6 and ("market_data", "continuous_at_edges") not in evaluations
    assert all(c.partition == HOUR and c.description for c in evaluations.values())
    assert all(c.passed for c in evaluations.values()), {k: c.metadata for k, c in evaluations.items() if not c.passed}
    # the trade check's count is explained: each trade is checked against both quote tables
    trades = evaluations[("trades", "trades_after_quotes")].metadata
    assert trades["checked"].value == 2 * materializations(result, "fx")[("trades", HOUR)]["dagster/row_count"]
    assert "twice the trades" in trades["checked_counts"].value


def test_reference_prices_recorded_and_reused(fx_run):
    root, instance, _ = fx_run
    import datetime as dt

    records = recorded_days(instance, "fx", [dt.date(2025, 11, 10), dt.date(2025, 11, 11)])
    assert set(records) == {"2025-11-10", "2025-11-11"}
    closes, sources = records["2025-11-11"]
    assert closes["USDJPY"] > 100 and sources["EURUSD"] == "fallback"
    # each day's record shows that day's closes only
    for day in ("2025-11-09", "2025-11-10", "2025-11-11"):
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["fx", "reference_prices"]), asset_partitions=[day]), limit=1
        )
        assert list(found.records[0].asset_materialization.metadata["closes"].value) == [day]
    before = snapshot(root)
    # re-materializing the partition reuses the records (no new seeding) and rewrites identical rows
    again = run_hourly("fx", root, instance, LIGHT_FX, partition=HOUR)
    assert again.success
    assert not [e for e in again.get_asset_materialization_events() if e.asset_key.path[-1] == "reference_prices"]
    after = snapshot(root)
    for name in before:
        assert after[name].equals(before[name]), name
    assert len(list((root / "market_data" / "hour=2025-11-11T03").glob("part-*.parquet"))) == 4  # replaced, not added


def test_recorded_references_win_over_fresh_ones(tmp_path):
    """A day recorded with other closes is what later runs use (re-runs reproduce the first run)."""
    instance = dg.DagsterInstance.ephemeral()
    first = run_hourly("fx", tmp_path / "a", instance, TINY_FX, partition="2025-11-12-05:00")
    assert first.success
    day = dg.AssetKey(["fx", "reference_prices"])
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=day, asset_partitions=["2025-11-12"]), limit=1
    ).records[0]
    closes = record.asset_materialization.metadata["closes"].value
    bumped = {d: {s: c * 1.01 for s, c in v.items()} for d, v in closes.items()}
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=day, partition="2025-11-12", metadata={"closes": dg.MetadataValue.json(bumped)}
        )
    )
    second = run_hourly("fx", tmp_path / "b", instance, TINY_FX, partition="2025-11-12-05:00")
    a = ParquetSink(tmp_path / "a").read(FX_TABLES[0]).column("best_bid").to_numpy()
    b = ParquetSink(tmp_path / "b").read(FX_TABLES[0]).column("best_bid").to_numpy()
    assert second.success and len(a) == len(b) and not (a == b).all()


def test_partition_range_is_one_run(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    result = run_hourly("fx", tmp_path, instance, TINY_FX, partition_range=("2025-11-11-03:00", "2025-11-11-05:00"))
    assert result.success
    assert len(instance.get_runs()) == 1
    meta = materializations(result, "fx")
    hours = ("2025-11-11-03:00", "2025-11-11-04:00", "2025-11-11-05:00")
    assert {p for (_, p) in meta} == set(hours)
    # one materialization per partition and table, each with that partition's own rows and window
    assert len([e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "market_data"]) == 3
    sink = ParquetSink(tmp_path)
    for table, schema in (("market_data", FX_TABLES[0]), ("core_price", FX_TABLES[1]), ("trades", FX_TABLES[2])):
        for key in hours:
            start = parse_timestamp(f"{key[:10]}T{key[11:]}:00Z")
            hour = Window(start, start + 3_600_000_000)
            assert meta[(table, key)]["dagster/row_count"] == sink.read(schema, hour).num_rows > 0, (table, key)
            assert meta[(table, key)]["window_start"] == hour.start_us / 1e6
        assert sum(meta[(table, k)]["dagster/row_count"] for k in hours) == sink.read(schema).num_rows
    assert len({meta[("market_data", k)]["dagster/row_count"] for k in hours}) == 3  # not the range's total repeated
    for hour in ("03", "04", "05"):
        assert (tmp_path / "market_data" / f"hour=2025-11-11T{hour}").is_dir()
    evaluations = result.get_asset_check_evaluations()
    # every check once per partition; inner edges are compared, only the range's outer edges lack a neighbour
    assert sorted((e.check_name, e.partition) for e in evaluations if e.asset_key.path[-1] == "core_price") == sorted(
        (c, k) for c in ("no_crossed_quotes", "rows_match_plan") for k in hours
    )
    edges = {e.partition: e for e in evaluations if e.check_name == "continuous_at_edges"}
    assert [edges[k].metadata["edges_checked"].value for k in hours] == [1, 2, 1]
    assert all(e.passed for e in evaluations), [(e.check_name, e.partition) for e in evaluations if not e.passed]
    assert_evaluated_while_writing(result, "fx")
    # an hour of the range equals that hour materialized on its own (partitions are independent)
    single = tmp_path / "single"
    assert run_hourly("fx", single, instance, TINY_FX, partition="2025-11-11-04:00").success
    hour = Window.from_iso("2025-11-11T04:00:00Z", "2025-11-11T05:00:00Z")
    assert ParquetSink(single).read(FX_TABLES[0]).equals(ParquetSink(tmp_path).read(FX_TABLES[0], hour))


def test_cli_materialize_partition_range_on_fresh_home(tmp_path):
    """The issue's command line: a fresh DAGSTER_HOME, reference prices seeded as needed, one run."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "MKT_OFFLINE": "1",
        "MKT_SINK": "parquet",
        "MKT_PARQUET_DIR": str(tmp_path / "data"),
        **{f"MKT_FX_{k.upper()}": str(v) for k, v in TINY_FX.items()},
    }
    (tmp_path / "home").mkdir()
    cmd = [
        str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "mkt_pipeline.definitions",
        "--select", "fx/market_data,fx/core_price,fx/trades", "--partition-range", "2025-11-11-03:00...2025-11-11-04:00",
        "--config-json", '{"ops": {"fx_hourly": {"config": {"chunk_seconds": 3600}}}}',
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert len(instance.get_runs()) == 1
    for hour in ("03", "04"):
        assert list((tmp_path / "data" / "fx_trades" / f"hour=2025-11-11T{hour}").glob("part-*.parquet"))

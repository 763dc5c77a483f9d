"""The equities designated-timestamp setting: one schema parameter that DDL, views, batches and Parquet follow."""

from __future__ import annotations

import numpy as np
import pytest

from mkt_pipeline.core.engine import ConfigError
from mkt_pipeline.core.tables import EQUITIES_MARKET_DATA, EQUITIES_TRADES, FX_TABLES, equities_tables, market_tables
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine
from mkt_pipeline.markets import market_references
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ddl import create_table_sql, ddl_statements, views_for

WINDOW = Window.from_iso("2025-11-11T15:00:00Z", "2025-11-11T15:00:03Z")
LIGHT = dict(
    market_data_min_eps=300, market_data_max_eps=400, trades_min_eps=50, trades_max_eps=80, min_levels=3, max_levels=3
)


def test_default_is_the_seed_schema_and_timestamp_renames_column_and_keys():
    assert equities_tables() == (EQUITIES_MARKET_DATA, EQUITIES_TRADES)
    md, trades = equities_tables("timestamp")
    for renamed, seed in ((md, EQUITIES_MARKET_DATA), (trades, EQUITIES_TRADES)):
        assert renamed.timestamp == "timestamp" and renamed.timestamp_kind == "TIMESTAMP_NS"
        assert [c.name for c in renamed.columns] == ["timestamp"] + [c.name for c in seed.columns[1:]]
        assert renamed.dedup_keys == ("timestamp",) + seed.dedup_keys[1:]
        assert renamed.arrow_schema().field("timestamp").type == seed.arrow_schema().field("timestamp_ns").type
    assert market_tables("fx", "timestamp_ns") == FX_TABLES  # FX always names its column timestamp
    with pytest.raises(ValueError, match="timestamp_column: 'ts' is not one of timestamp_ns, timestamp"):
        equities_tables("ts")


def test_ddl_and_views_follow_the_column():
    naming = TableNaming(prefix="eq_")
    md, trades = equities_tables("timestamp")
    sql = create_table_sql(md, naming)
    assert sql.startswith("CREATE TABLE IF NOT EXISTS eq_equities_market_data (\n  timestamp TIMESTAMP_NS")
    assert "TIMESTAMP(timestamp) PARTITION BY HOUR WAL" in sql and sql.endswith(
        "DEDUP UPSERT KEYS(timestamp, symbol, venue)"
    )
    statements = dict(ddl_statements((md, trades), naming))
    assert len(statements) == 2 + len(views_for((md, trades))) == 9
    for name, text in statements.items():
        assert "timestamp_ns" not in text, name
    assert "SELECT\n    timestamp,\n    symbol,\n    venue," in statements["eq_top_of_book_1s"]
    assert "FROM eq_nbbo_1s\n  SAMPLE BY 1m" in statements["eq_nbbo_1m"]
    default = dict(ddl_statements(equities_tables(), naming))
    assert all("timestamp_ns" in text for text in default.values())


def test_engine_rows_are_the_same_under_either_name():
    refs = market_references("equities", WINDOW, offline=True)
    default = EquitiesEngine(EquitiesConfig(**LIGHT), refs)
    renamed = EquitiesEngine(EquitiesConfig(**LIGHT, timestamp_column="timestamp"), refs)
    assert [s.timestamp for s in renamed.schemas] == ["timestamp", "timestamp"] and renamed.dense_schemas == (
        renamed.schemas[0],
    )
    for a, b in zip(default.generate(WINDOW), renamed.generate(WINDOW)):
        for x, y in zip(a, b):
            assert y.schema is renamed.schemas[a.index(x)] and len(x) == len(y) > 0
            np.testing.assert_array_equal(x.timestamps, y.timestamps)
            assert x.to_arrow().rename_columns(y.to_arrow().column_names).equals(y.to_arrow())


def test_invalid_column_is_a_config_error_naming_the_flag():
    with pytest.raises(ConfigError, match=r"^--timestamp_column: 'Timestamp' is not one of timestamp_ns, timestamp$"):
        EquitiesConfig(timestamp_column="Timestamp").validate()

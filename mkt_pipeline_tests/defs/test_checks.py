"""Asset checks pass on what a run wrote and fail when the stored data is corrupted: on the Parquet
dataset (in process) and as SQL in a real QuestDB (``questdb``-marked)."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mkt_pipeline.core import invariants as inv
from mkt_pipeline.core.tables import concat_batches
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.definitions import defs
from mkt_pipeline.defs.checks import fx_partition_checks, planned_per_second
from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine
from mkt_pipeline.markets import market_references
from mkt_pipeline.sinks.checks import ArrowChecks, evaluate_partition
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.stored_rows import ParquetRows
from mkt_pipeline_tests.defs.support import (
    TINY_FX,
    assert_evaluated_while_writing,
    checks,
    materializations,
    parquet_resource,
    run_hourly,
)

HOUR = "2025-11-11-04:00"
WINDOW = Window.from_iso("2025-11-11T04:00:00Z", "2025-11-11T05:00:00Z")
EDGE_NS = WINDOW.start_us * 1000


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory):
    """03:00 then 04:00 into one dataset, so the 04:00 checks see a stored neighbour at their start."""
    root = tmp_path_factory.mktemp("checks")
    instance = dg.DagsterInstance.ephemeral()
    assert run_hourly("fx", root, instance, TINY_FX, partition="2025-11-11-03:00").success
    result = run_hourly("fx", root, instance, TINY_FX, partition=HOUR)
    metas = {name: meta for (name, partition), meta in materializations(result, "fx").items() if partition == HOUR}
    return root, instance, result, metas


@pytest.fixture
def dataset(two_hours, tmp_path):
    """A private copy of the two-hour dataset to corrupt."""
    root = tmp_path / "data"
    shutil.copytree(two_hours[0], root)
    return root


def first_part(root, table: str, hour: str = "2025-11-11T04"):
    return sorted((root / table / f"hour={hour}").glob("part-*.parquet"))[0]


def rewrite(path, change) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def set_value(table: pa.Table, column: str, row: int, value) -> pa.Table:
    i = table.schema.get_field_index(column)
    values = table.column(column).combine_chunks().to_pylist()
    values[row] = value
    return table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))


class Found:
    """One evaluation as (passed, severity, metadata)."""

    def __init__(self, passed, severity, metadata):
        self.passed, self.severity, self.metadata = passed, severity, metadata


def results(root, metas) -> dict[tuple[str, str], Found]:
    planned = planned_per_second("fx", metas["market_data"]["settings"], WINDOW)
    return {
        k: Found(*v)
        for k, v in evaluate_partition(
            "fx", ArrowChecks(ParquetRows(ParquetSink(root))), WINDOW, metas, planned
        ).items()
    }


def test_checks_pass_and_see_the_stored_neighbour(two_hours):
    root, instance, result, _ = two_hours
    own = {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations() if c.partition == HOUR}
    assert len(own) == 7 and all(c.passed for c in own.values()), {
        k: c.metadata for k, c in own.items() if not c.passed
    }
    edge = own[("market_data", "continuous_at_edges")].metadata
    assert edge["edges_checked"].value == 1 and edge["checked"].value >= 30  # every pair across 04:00:00
    # the lone 03:00 hour recorded no edge evaluation (nothing to compare, neither pass nor failure);
    # storing 04:00 brought it up to date: its edge with 04:00 is now checked, and passes
    neighbour = [c for c in result.get_asset_check_evaluations() if c.partition == "2025-11-11-03:00"]
    assert [(c.asset_key.path[-1], c.check_name) for c in neighbour] == [("market_data", "continuous_at_edges")]
    assert neighbour[0].passed and neighbour[0].metadata["edges_checked"].value == 1
    assert "neighbouring hour" in neighbour[0].metadata["evaluated"].value


def test_a_lone_hour_records_no_edge_evaluation(tmp_path):
    """No stored neighbour: the edge check is not evaluated (no pass, no failure); the others pass."""
    instance = dg.DagsterInstance.ephemeral()
    result = run_hourly("fx", tmp_path, instance, TINY_FX, partition="2025-11-11-08:00")
    assert result.success
    evaluations = checks(result)
    assert len(evaluations) == 6 and all(c.passed for c in evaluations.values())
    assert ("market_data", "continuous_at_edges") not in evaluations
    messages = [r.user_message for r in instance.all_logs(result.run_id)]
    assert any("continuous_at_edges 2025-11-11-08:00: no neighbouring hour stored" in m for m in messages)


def test_crossed_book_fails(dataset, two_hours):
    rewrite(first_part(dataset, "market_data"), lambda t: set_value(t, "best_ask", 3, t.column("best_bid")[3].as_py()))
    found = results(dataset, two_hours[3])
    assert not found[("market_data", "no_crossed_books")].passed
    assert found[("core_price", "no_crossed_quotes")].passed


def test_missing_rows_fail_the_count(dataset, two_hours):
    rewrite(first_part(dataset, "core_price"), lambda t: t.slice(0, t.num_rows - 5))
    found = results(dataset, two_hours[3])
    assert not found[("core_price", "rows_match_plan")].passed
    assert found[("market_data", "rows_match_plan")].passed


def test_trade_not_after_its_quote_fails(dataset, two_hours):
    md = pq.read_table(first_part(dataset, "market_data"))
    trades_path = first_part(dataset, "fx_trades")
    trades = pq.read_table(trades_path)
    symbol = trades.column("symbol")[0].as_py()
    # stamp the first trade exactly on a later quote of its symbol: 0 µs after it, not >= 1 µs
    quote_ts = md.filter(pc.equal(md.column("symbol").cast(pa.string()), symbol)).column("timestamp")[5].as_py()
    rewrite(trades_path, lambda t: set_value(t, "timestamp", 0, quote_ts).sort_by("timestamp"))
    found = results(dataset, two_hours[3])
    assert not found[("trades", "trades_after_quotes")].passed


def test_discontinuity_at_the_partition_edge_fails(dataset, two_hours):
    def bump(t: pa.Table) -> pa.Table:
        return set_value(t, "best_bid", 0, t.column("best_bid")[0].as_py() - 0.5)  # first row after 04:00:00

    rewrite(first_part(dataset, "market_data"), bump)
    found = results(dataset, two_hours[3])
    assert not found[("market_data", "continuous_at_edges")].passed


def run_checks_alone(instance, partition: str, root) -> dg.ExecuteInProcessResult:
    """The FX checks of one partition, without materializing anything (as "Execute checks" in the UI)."""
    job = defs.resolve_job_def("fx_hourly_job").get_subset(
        asset_selection=set(), asset_check_selection=set(fx_partition_checks.check_keys)
    )
    return job.execute_in_process(
        instance=instance, partition_key=partition, resources={"sink": parquet_resource(root)}
    )


def test_checks_the_ingest_step_could_not_run_are_evaluated_by_the_check_step(tmp_path, monkeypatch):
    """The checks thread failing (here: its reader) costs no evaluation: the check step evaluates
    the hours itself, and a warning says which hours were left to it."""
    from mkt_pipeline.sinks import checks as checks_module

    def broken(self, *args):
        raise OSError("reader unavailable")

    monkeypatch.setattr(checks_module.ChecksWhileWriting, "_evaluate", broken)
    instance = dg.DagsterInstance.ephemeral()
    result = run_hourly("fx", tmp_path, instance, TINY_FX, partition=HOUR)
    assert result.success
    assert all("checks" not in meta for meta in materializations(result, "fx").values())
    evaluations = checks(result)
    assert (
        len(evaluations) == 6 and evaluations[("market_data", "rows_match_plan")].passed
    )  # the lone hour's edges: not evaluated
    assert evaluations[("market_data", "rows_match_plan")].metadata["checked"].value == 3600
    messages = [r.user_message for r in instance.all_logs(result.run_id)]
    assert any(f"checks of {HOUR} left to the check step: reader unavailable" in m for m in messages), [
        m for m in messages if "left" in m
    ]


def test_failing_check_through_dagster(dataset, two_hours):
    """The check op run on its own reports failure for the partition (its materialization says what was written)."""
    _, instance, _, _ = two_hours
    rewrite(first_part(dataset, "market_data"), lambda t: set_value(t, "best_ask", 3, t.column("best_bid")[3].as_py()))
    result = run_checks_alone(instance, HOUR, dataset)
    evaluations = checks(result)
    assert not evaluations[("market_data", "no_crossed_books")].passed
    assert evaluations[("core_price", "no_crossed_quotes")].passed
    assert evaluations[("market_data", "no_crossed_books")].partition == HOUR
    # it names the materialization it checked (the run that wrote the hour, not this check run)
    assert evaluations[("market_data", "no_crossed_books")].metadata["materialization_run"].value == two_hours[2].run_id


def test_checks_of_an_unmaterialized_partition_warn(two_hours):
    """Nothing stored for the hour: every check warns (nothing to compare), none passes."""
    root, instance, _, _ = two_hours
    result = run_checks_alone(instance, "2025-11-11-07:00", root)
    evaluations = checks(result)
    assert len(evaluations) == 7
    assert all(not c.passed and c.severity == dg.AssetCheckSeverity.WARN for c in evaluations.values())


@pytest.fixture(scope="module")
def equities_quotes():
    window = Window.from_iso("2025-11-11T15:00:00Z", "2025-11-11T15:00:04Z")
    config = EquitiesConfig(
        market_data_min_eps=1000,
        market_data_max_eps=1200,
        trades_min_eps=50,
        trades_max_eps=80,
        min_levels=5,
        max_levels=5,
    )
    engine = EquitiesEngine(config, market_references("equities", window, offline=True))
    parts = list(engine.generate(window))
    md = concat_batches([p[0] for p in parts]).to_arrow()
    top = {
        name: pc.list_element(pc.list_element(md.column(book), row), 0)
        for name, (book, row) in {"bid_px1": ("bids", 0), "ask_px1": ("asks", 0)}.items()
    }
    return (
        md.select(["timestamp_ns", "symbol", "venue"])
        .append_column("bid_px1", top["bid_px1"])
        .append_column("ask_px1", top["ask_px1"])
    )


def test_equities_nbbo_check_catches_a_crossing_venue(equities_quotes):
    assert inv.nbbo_never_crossed(equities_quotes).passed
    # one venue bids above what another venue of the same symbol asks at that moment
    row = 400
    corrupted = set_value(equities_quotes, "bid_px1", row, equities_quotes.column("ask_px1")[row].as_py() + 0.05)
    assert not inv.nbbo_never_crossed(corrupted).passed


def test_equities_continuity_by_symbol_and_venue(equities_quotes):
    good = inv.candle_continuity(equities_quotes, "timestamp_ns", "bid_px1", keys=("symbol", "venue"), min_rows=2)
    assert good.passed and good.checked > 100
    ts = equities_quotes.column("timestamp_ns").cast(pa.int64()).to_numpy()
    second = ts // 1_000_000_000
    first_of_second_2 = int(np.flatnonzero(second == second[0] + 2)[0])
    bumped = set_value(
        equities_quotes,
        "bid_px1",
        first_of_second_2,
        equities_quotes.column("bid_px1")[first_of_second_2].as_py() - 0.01,
    )
    assert not inv.candle_continuity(bumped, "timestamp_ns", "bid_px1", keys=("symbol", "venue"), min_rows=2).passed


# --- the QuestDB side: the same reads expressed as SQL, answered by a scripted connection ---------


class ScriptedCursor:
    def __init__(self, description, rows):
        self.description = [(name,) for name in description]
        self._rows = rows

    def fetchall(self):
        return list(self._rows)

    def fetchone(self):
        return self._rows[0] if self._rows else None


class ScriptedPG:
    """Answers by the first matching SQL fragment; records every statement."""

    def __init__(self, answers: dict[str, tuple[list[str], list[tuple]]]):
        self.answers = answers
        self.statements: list[str] = []

    def execute(self, sql, params=None):
        self.statements.append(sql)
        for fragment, (description, rows) in self.answers.items():
            if fragment in sql:
                return ScriptedCursor(description, rows)
        return ScriptedCursor([], [])


def test_questdb_reader_sql_and_types():
    from mkt_pipeline.core.tables import EQUITIES_MARKET_DATA, FX_TRADES
    from mkt_pipeline.sinks.base import TableNaming
    from mkt_pipeline.sinks.stored_rows import QuestDBRows

    window = Window.from_iso("2025-11-11T04:00:00Z", "2025-11-11T04:01:00Z")
    ns = window.start_us * 1000 + 123  # nanoseconds survive: the reader casts to long
    conn = ScriptedPG(
        {
            "count()": (["count"], [(42,)]),
            "FROM equities_market_data_t": (
                ["timestamp_ns", "symbol", "venue", "bid_px1"],
                [(ns, "AAPL", "IEX", 270.01)],
            ),
        }
    )
    rows = QuestDBRows(conn, TableNaming(suffix="_t"))
    assert rows.count(FX_TRADES, window) == 42
    assert conn.statements[-1] == (
        "SELECT count() FROM fx_trades_t WHERE timestamp >= '2025-11-11T04:00:00.000000Z' AND timestamp < '2025-11-11T04:01:00.000000Z'"
    )
    table = rows.read(EQUITIES_MARKET_DATA, window, ["symbol", "venue", "bid_px1"])
    assert (
        "cast(timestamp_ns AS long) timestamp_ns" in conn.statements[-1] and "bids[1][1] bid_px1" in conn.statements[-1]
    )
    assert table.column("timestamp_ns").type == pa.timestamp("ns", tz="UTC")
    assert inv.timestamps_ns(table, "timestamp_ns")[0] == ns
    assert table.column("bid_px1").to_pylist() == [270.01]
    with pytest.raises(KeyError):
        rows.read(EQUITIES_MARKET_DATA, window, ["symbol; DROP TABLE x"])


def test_view_asset_creates_the_view_and_reports_refresh_status(tmp_path):
    from contextlib import contextmanager

    from mkt_pipeline.defs.fx import fx_views
    from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
    from mkt_pipeline.defs.sink_resource import MarketSinkResource
    from mkt_pipeline.sinks.questdb import QuestDBSettings

    status = (
        ["view_name", "view_status", "refresh_type", "invalidation_reason"],
        [("bbo_1s_t", "valid", "immediate", None)],
    )
    conn = ScriptedPG({"FROM materialized_views()": status})

    class FakeQuestDB(MarketSinkResource):
        @contextmanager
        def pg_connection(self):
            yield conn, QuestDBSettings()

    resource = FakeQuestDB(
        kind="questdb", table_suffix="_t", questdb=QuestDBResource(), parquet=ParquetResource(root_dir=str(tmp_path))
    )
    bbo_1s = next(a for a in fx_views if a.key == dg.AssetKey(["fx_views", "bbo_1s"]))
    result = dg.materialize([bbo_1s], resources={"sink": resource}, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    created = [s for s in conn.statements if s.startswith("CREATE")]
    assert created[0].startswith("CREATE TABLE IF NOT EXISTS market_data_t")  # its source first
    assert created[1].startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS bbo_1s_t REFRESH IMMEDIATE")
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["view_status"].value == "valid" and meta["refresh"].value == "immediate"
    assert all(c.passed for c in result.get_asset_check_evaluations())
    # an invalid view fails its check
    conn.answers["FROM materialized_views()"] = (
        status[0],
        [("bbo_1s_t", "invalid", "immediate", "base table dropped")],
    )
    again = dg.materialize([bbo_1s], resources={"sink": resource}, instance=dg.DagsterInstance.ephemeral())
    assert not again.get_asset_check_evaluations()[0].passed


# --- the same checks as SQL in a real QuestDB -------------------------------------------------------


def questdb_sink(server, suffix: str, protocol: str = "http"):
    from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
    from mkt_pipeline.defs.sink_resource import MarketSinkResource

    questdb = QuestDBResource(
        host=server.host,
        http_port=server.http_port,
        pg_port=server.pg_port,
        ilp_tcp_port=server.ilp_port,
        protocol=protocol,
    )
    return MarketSinkResource(kind="questdb", table_suffix=suffix, questdb=questdb, parquet=ParquetResource())


@pytest.mark.questdb
def test_sql_checks_per_partition_in_questdb(questdb, qdb_suffix, monkeypatch):
    """A two-hour backfill into QuestDB: every check passes for each hour, computed by SQL; then a
    crossed quote and a price jump at the inner edge fail exactly the checks of the hour they touch."""
    instance = dg.DagsterInstance.ephemeral()
    sink = questdb_sink(questdb, qdb_suffix)
    statements: list[str] = []
    from mkt_pipeline.sinks import stored_rows

    original = stored_rows.QuestDBRows._query

    def recording(self, sql, table):
        statements.append(sql)
        return original(self, sql, table)

    monkeypatch.setattr(stored_rows.QuestDBRows, "_query", recording)
    result = defs.resolve_job_def("fx_hourly_job").execute_in_process(
        run_config={"ops": {"fx_hourly": {"config": TINY_FX}}},
        instance=instance,
        tags={"dagster/asset_partition_range_start": "2025-11-11-03:00", "dagster/asset_partition_range_end": HOUR},
        resources={"sink": sink},
    )
    monkeypatch.undo()
    assert result.success
    evaluations = {(e.asset_key.path[-1], e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == 14 and all(e.passed for e in evaluations.values()), [
        k for k, e in evaluations.items() if not e.passed
    ]
    assert evaluations[("market_data", "rows_match_plan", HOUR)].metadata["checked"].value == 3600  # seconds compared
    assert (
        evaluations[("market_data", "no_crossed_books", HOUR)].metadata["checked"].value
        == materializations(result, "fx")[("market_data", HOUR)]["dagster/row_count"]
    )
    assert evaluations[("market_data", "continuous_at_edges", HOUR)].metadata["edges_checked"].value == 1
    assert_evaluated_while_writing(result, "fx")  # by SQL in the ingest step's checks thread, after WAL apply
    # aggregates only: no statement reads the rows themselves back
    assert statements and not any(s.startswith("SELECT cast(timestamp AS long) timestamp,") for s in statements)
    assert any("ASOF JOIN" in s for s in statements) and any("GROUP BY 1" in s for s in statements)

    core, md = f"core_price{qdb_suffix}", f"market_data{qdb_suffix}"
    (ts, core_symbol) = questdb.query(
        f"SELECT cast(timestamp AS long), symbol FROM {core} WHERE timestamp >= '2025-11-11T04:10:00.000000Z' LIMIT 1"
    )[0]
    questdb.execute(
        f"UPDATE {core} SET ask_price = bid_price WHERE timestamp = cast({ts} AS timestamp) AND symbol = '{core_symbol}'"
    )
    (first_ts, symbol) = questdb.query(
        f"SELECT cast(timestamp AS long), symbol FROM {md} WHERE timestamp >= '2025-11-11T04:00:00.000000Z' LIMIT 1"
    )[0]
    questdb.execute(
        f"UPDATE {md} SET best_bid = best_bid - 0.5 WHERE timestamp = cast({first_ts} AS timestamp) AND symbol = '{symbol}'"
    )
    job = defs.resolve_job_def("fx_hourly_job").get_subset(
        asset_selection=set(), asset_check_selection=set(fx_partition_checks.check_keys)
    )
    # the lowered best_bid also no longer equals level 1 of its book: no_crossed_books sees it too
    verdicts: dict[str, dict] = {}
    for partition, broken in (
        ("2025-11-11-03:00", {"continuous_at_edges"}),
        (HOUR, {"continuous_at_edges", "no_crossed_books", "no_crossed_quotes"}),
    ):
        again = job.execute_in_process(instance=instance, partition_key=partition, resources={"sink": sink})
        failed = {e.check_name for e in again.get_asset_check_evaluations() if not e.passed}
        assert failed == broken, (partition, failed)
        verdicts[partition] = _verdicts(again)
    example = (
        next(e for e in again.get_asset_check_evaluations() if e.check_name == "no_crossed_quotes")
        .metadata["example"]
        .value
    )
    assert core_symbol in example and "04:10:00" in example  # the offending row: timestamp, symbol, bid, ask

    # the same check job reading back over QWP (QuestDB 9.4+): the same verdicts and metadata, every query on QWP
    from mkt_pipeline.sinks.questdb import QuestDBSettings, qwp_offered
    from mkt_pipeline.sinks.questdb_access import QwpReadConnection

    if qwp_offered(QuestDBSettings(host=questdb.host, http_port=questdb.http_port)) is not True:
        return  # an ILP-only server: the QWP half has nothing to run against
    readers: list[type] = []

    def on(self, sql, table):
        readers.append(type(self.conn))
        return original(self, sql, table)

    monkeypatch.setattr(stored_rows.QuestDBRows, "_query", on)
    over_qwp = questdb_sink(questdb, qdb_suffix, protocol="ws")
    for partition, want in verdicts.items():
        got = job.execute_in_process(instance=instance, partition_key=partition, resources={"sink": over_qwp})
        got_verdicts = _verdicts(got)
        differ = [(k, m) for k, v in want.items() for m in v[1] if got_verdicts[k][1].get(m) != v[1][m]]
        assert got_verdicts == want, (partition, differ)
    monkeypatch.undo()
    assert readers and set(readers) == {QwpReadConnection}, set(readers)


def _verdicts(result) -> dict[tuple[str, str], tuple[bool, dict]]:
    """Each check's outcome and metadata values, by asset and check name (durations and which run
    evaluated it left out)."""
    return {
        (e.asset_key.path[-1], e.check_name): (
            e.passed,
            {
                k: v.value
                for k, v in e.metadata.items()
                if k != "evaluated" and "seconds" not in k and not k.endswith("_s")
            },
        )
        for e in result.get_asset_check_evaluations()
    }


@pytest.mark.questdb
def test_sql_and_arrow_checks_agree_on_equities(questdb, qdb_suffix, tmp_path):
    """Five minutes of equities written to QuestDB and to Parquet: both implementations count the same."""
    from mkt_pipeline.core.tables import EQUITIES_MARKET_DATA, EQUITIES_TRADES
    from mkt_pipeline.core.timeline import US_PER_S
    from mkt_pipeline.equities.universe import SYMBOLS
    from mkt_pipeline.run.ingest import run_window
    from mkt_pipeline.sinks.base import TableNaming
    from mkt_pipeline.sinks.checks import SqlChecks
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink
    from mkt_pipeline.sinks.stored_rows import QuestDBRows

    window = Window.from_iso("2025-11-11T15:00:00Z", "2025-11-11T15:05:00Z")
    config = EquitiesConfig(
        market_data_min_eps=300,
        market_data_max_eps=400,
        trades_min_eps=40,
        trades_max_eps=60,
        min_levels=3,
        max_levels=3,
    )
    engine = EquitiesEngine(config, market_references("equities", window, offline=True))
    settings = QuestDBSettings(
        host=questdb.host, http_port=questdb.http_port, pg_port=questdb.pg_port, create_views=False
    )
    with QuestDBSink(settings, TableNaming(suffix=qdb_suffix)) as qsink:
        qsink.prepare(engine.schemas)
        run_window(engine, qsink, window, chunk_seconds=60)
    with ParquetSink(tmp_path) as psink:
        psink.prepare(engine.schemas)
        run_window(engine, psink, window, chunk_seconds=60)
    inner = Window(
        window.start_us + 60 * US_PER_S, window.end_us - 60 * US_PER_S
    )  # edges with stored rows on both sides
    with questdb.connect() as conn:
        sql = SqlChecks(QuestDBRows(conn, TableNaming(suffix=qdb_suffix)))
        sql.rows.wait_applied([EQUITIES_MARKET_DATA, EQUITIES_TRADES])
        arrow = ArrowChecks(ParquetRows(ParquetSink(tmp_path)))
        assert (
            sql.counts_per_second(EQUITIES_MARKET_DATA, inner) == arrow.counts_per_second(EQUITIES_MARKET_DATA, inner)
        ).all()
        s_edges, a_edges = (
            sql.edges(EQUITIES_MARKET_DATA, inner, "bid_px1", ("symbol", "venue"), 2),
            arrow.edges(EQUITIES_MARKET_DATA, inner, "bid_px1", ("symbol", "venue"), 2),
        )
        assert (
            s_edges[1] == a_edges[1] == 2
            and s_edges[0].checked == a_edges[0].checked > 0
            and s_edges[0].passed
            and a_edges[0].passed
        )
        s_after = sql.trades_after(
            EQUITIES_TRADES, (EQUITIES_MARKET_DATA,), inner, ("symbol", "venue"), 1, allow_unmatched=True
        )
        a_after = arrow.trades_after(
            EQUITIES_TRADES, (EQUITIES_MARKET_DATA,), inner, ("symbol", "venue"), 1, allow_unmatched=True
        )
        assert s_after.checked == a_after.checked > 0 and s_after.passed and a_after.passed
        # every (symbol, venue) quotes every second: each symbol has an NBBO at every second's end
        nbbo = sql.nbbo(EQUITIES_MARKET_DATA, inner)
        assert nbbo.passed and nbbo.checked == inner.seconds * len(SYMBOLS)
        assert arrow.nbbo(EQUITIES_MARKET_DATA, inner).passed

        # a quote stamped at a trade's own nanosecond: that one trade no longer follows its latest quote,
        # found by the Dense ASOF strategy these trade rates get (about one trade per seven quotes)
        trades_table, quotes_table = f"equities_trades{qdb_suffix}", f"equities_market_data{qdb_suffix}"
        trade_ns, symbol, venue = questdb.query(
            f"SELECT cast(timestamp_ns AS long), symbol, venue FROM {trades_table} WHERE timestamp_ns >= '2025-11-11T15:02:00.000000Z' LIMIT 1"
        )[0]
        questdb.execute(
            f"INSERT INTO {quotes_table} (timestamp_ns, symbol, venue) VALUES (cast({trade_ns} AS timestamp_ns), '{symbol}', '{venue}')"
        )
        sql.rows.wait_applied([EQUITIES_MARKET_DATA])
        statements: list[str] = []
        original = sql.rows._query
        sql.rows._query = lambda text, table: (statements.append(text), original(text, table))[1]
        broken = sql.trades_after(
            EQUITIES_TRADES, (EQUITIES_MARKET_DATA,), inner, ("symbol", "venue"), 1, allow_unmatched=True
        )
        assert any("asof_dense(t q)" in s for s in statements)
        assert (
            (broken.checked, broken.violations) == (s_after.checked, 1)
            and symbol in broken.example
            and str(trade_ns) in broken.example
        )

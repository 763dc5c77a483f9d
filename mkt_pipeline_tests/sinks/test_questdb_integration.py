"""Full paths against a live QuestDB 9.x (skipped when none answers).

Point it at a server with ``QDB_TEST_HOST=host:http_port`` (default 127.0.0.1:9000) and, when not
8812, ``QDB_TEST_PG_PORT``; credentials come from the usual ``QUESTDB_*`` variables. Everything is
created under a unique suffix and dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from mkt_pipeline.core.tables import TIMESTAMP_NS
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.markets import market_references
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ddl import views_for
from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink
from mkt_pipeline_tests.questdb_server import configured_server

pytestmark = pytest.mark.questdb

_HOST, _, _PORT = os.environ.get("QDB_TEST_HOST", "127.0.0.1:9000").partition(":")
HTTP_PORT = int(_PORT or 9000)
PG_PORT = int(os.environ.get("QDB_TEST_PG_PORT", "8812"))


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


if not (_answers(_HOST, HTTP_PORT) and _answers(_HOST, PG_PORT)):
    pytest.skip(f"no QuestDB at {_HOST}:{HTTP_PORT} / PG {PG_PORT}", allow_module_level=True)


def fx_engine(window):
    from mkt_pipeline.fx.engine import FxEngine
    from mkt_pipeline_tests.conftest import LIGHT_FX, fx_references

    return FxEngine(LIGHT_FX, fx_references(window))


def equities_engine(window):
    eq = pytest.importorskip("mkt_pipeline.equities.engine")
    config = eq.EquitiesConfig(
        market_data_min_eps=200,
        market_data_max_eps=300,
        trades_min_eps=50,
        trades_max_eps=80,
        min_levels=10,
        max_levels=10,
    )
    return eq.EquitiesEngine(config, market_references("equities", window, offline=True))


MARKETS = {
    "fx": (fx_engine, Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T11:00:00Z")),
    # a trading hour (10:00-11:00 New York) so trades flow
    "equities": (equities_engine, Window.from_iso("2025-06-02T14:00:00Z", "2025-06-02T15:00:00Z")),
}


@pytest.fixture
def settings() -> QuestDBSettings:
    return QuestDBSettings.from_env(
        host=_HOST, http_port=HTTP_PORT, pg_port=PG_PORT, create_views=True, wal_poll_interval_s=0.5
    )


def count(sink: QuestDBSink, name: str) -> int:
    return int(sink._query(f"SELECT count() FROM {name}", name)[0][0])


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_hour_ingest_reingest_views_and_wal(market, settings):
    make_engine, window = MARKETS[market]
    engine = make_engine(window)
    naming = TableNaming(suffix=f"_it{uuid.uuid4().hex[:8]}")
    tables = [naming.name(s) for s in engine.schemas]
    views = views_for(engine.schemas)
    sink = QuestDBSink(settings, naming)
    try:
        sink.prepare(engine.schemas)
        first = run_window(engine, sink, window, chunk_seconds=900)
        assert sink.wait_for_wal(timeout_s=120) == 0
        counts = {t: count(sink, t) for t in tables}
        assert counts == {t: first.stats.rows[t] for t in tables}
        assert all(c > 0 for c in counts.values())

        # precision survives: the latest row is inside the window, ns tables keep sub-µs digits
        for schema in engine.schemas:
            latest = sink.latest_timestamp_us(schema)
            assert window.start_us <= latest < window.end_us
            if schema.timestamp_kind == TIMESTAMP_NS:
                name = naming.name(schema)
                raw = sink._query(f"SELECT cast({schema.timestamp} AS long) FROM {name} LIMIT -10", name)
                assert any(int(r[0]) % 1000 for r in raw)

        # re-sending the same hour (with another chunking) leaves every table unchanged
        second = run_window(engine, sink, window, chunk_seconds=600, skip_recorded=False)  # a re-send on purpose
        assert second.stats.rows == first.stats.rows
        assert sink.wait_for_wal(timeout_s=120) == 0
        assert {t: count(sink, t) for t in tables} == counts

        # every view valid and populated (timed views refreshed explicitly, in dependency order)
        configured_server().refresh_views([(view.name(naming), view.refresh_every is not None) for view in views])
        status = dict(sink._query("SELECT view_name, view_status FROM materialized_views()"))
        assert {view.name(naming): status.get(view.name(naming)) for view in views} == {
            view.name(naming): "valid" for view in views
        }
        assert sink.monitor.wait_drained(tables, timeout_s=60) == 0
    finally:
        for view in reversed(views):
            sink._execute(f"DROP MATERIALIZED VIEW IF EXISTS {view.name(naming)}", view.name(naming))
        for table in tables:
            sink._execute(f"DROP TABLE IF EXISTS {table}", table)
        sink.close()


def test_schema_mismatch_on_a_real_table(settings):
    from mkt_pipeline.core.tables import FX_CORE_PRICE
    from mkt_pipeline.sinks.questdb import QuestDBSchemaError

    naming = TableNaming(suffix=f"_it{uuid.uuid4().hex[:8]}")
    name = naming.name(FX_CORE_PRICE)
    sink = QuestDBSink(settings.with_(create_views=False), naming)
    try:
        sink._execute(
            f"CREATE TABLE {name} (timestamp TIMESTAMP, symbol SYMBOL, bid_price VARCHAR) TIMESTAMP(timestamp) PARTITION BY HOUR WAL",
            name,
        )
        with pytest.raises(QuestDBSchemaError, match=f"QuestDB table {name} .* incompatible schema"):
            sink.prepare([FX_CORE_PRICE])
    finally:
        sink._execute(f"DROP TABLE IF EXISTS {name}", name)
        sink.close()


@pytest.mark.parametrize("protocol", ["http", "ws"])
def test_wal_backpressure_pauses_and_resumes_under_real_lag(settings, caplog, protocol):
    """A tiny lag threshold and small requests: real WAL apply falls behind, ingestion waits, nothing is lost
    (over ILP/HTTP, and over QWP where the server has it).

    Whether apply falls behind in a given window depends on how busy the server's cores are, so the test
    writes successive 3-minute windows until the monitor has paused (a few at most), checking every one.
    """
    from mkt_pipeline.sinks.questdb import qwp_offered

    if protocol == "ws" and qwp_offered(settings) is not True:
        pytest.skip(f"the QuestDB at {settings.ilp_where} has no QWP (QuestDB 9.4+ has)")
    first = Window.from_iso("2025-06-02T10:00:00Z", "2025-06-02T10:03:00Z")
    engine = fx_engine(Window(first.start_us, first.start_us + BACKPRESSURE_WINDOWS * first.seconds * 1_000_000))
    naming = TableNaming(suffix=f"_it{uuid.uuid4().hex[:8]}")
    tables = [naming.name(s) for s in engine.schemas]
    tight = settings.with_(
        protocol=protocol,
        create_views=False,
        wal_pause_lag=1,
        wal_resume_lag=0,
        wal_poll_interval_s=0.0,
        flush_bytes=16 * 1024,
    )
    sink = QuestDBSink(tight, naming)
    sent = dict.fromkeys(tables, 0)
    try:
        sink.prepare(engine.schemas)
        with caplog.at_level("WARNING", logger="mkt_pipeline.sinks.wal_monitor"):
            for i in range(BACKPRESSURE_WINDOWS):
                step = first.seconds * 1_000_000 * i
                result = run_window(engine, sink, Window(first.start_us + step, first.end_us + step), chunk_seconds=60)
                for t in tables:
                    sent[t] += result.stats.rows[t]
                assert sink.wait_for_wal(timeout_s=120) == 0
                assert {t: count(sink, t) for t in tables} == sent, i  # nothing lost, window by window
                if sink.monitor.pauses:
                    break
        assert sink.monitor.pauses >= 1 and sink.monitor.max_lag_seen > 1, (
            f"no pause in {BACKPRESSURE_WINDOWS} windows",
            sink.monitor.pauses,
            sink.monitor.max_lag_seen,
        )
        assert any("pausing ingestion" in m for m in caplog.messages) and any(
            "resuming ingestion" in m for m in caplog.messages
        )
    finally:
        for table in tables:
            sink._execute(f"DROP TABLE IF EXISTS {table}", table)
        sink._execute(f"DROP TABLE IF EXISTS {sink.ledger_name}", sink.ledger_name)
        sink.close()


BACKPRESSURE_WINDOWS = 5

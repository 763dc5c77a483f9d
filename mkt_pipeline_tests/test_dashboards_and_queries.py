"""The Grafana dashboards and the demo queries (docs/dashboards.md), run against a real QuestDB on generated data.

Each market writes a short window under several namings (with and without a suffix; equities also
with the ``eq_`` prefix and both timestamp-column names). Every panel query of its dashboard (the
Grafana macros and template variables substituted as Grafana and the QuestDB data source would),
every template-variable query and every demo query must run and return something worth showing:
rows, no all-NULL column, and values that are not one constant. Everything is dropped afterwards.
The file-level tests (structure, provisioning, substitution rules) need no server.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from mkt_pipeline.core.tables import market_tables
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.sinks.ddl import views_for

ROOT = Path(__file__).resolve().parents[1]
DEMO_QUERIES = {
    "fx": ROOT / "queries" / "fx_demo_queries.sql",
    "equities": ROOT / "queries" / "equities_demo_queries.sql",
}
DASHBOARDS = {"fx": ROOT / "dashboards" / "fx.json", "equities": ROOT / "dashboards" / "equities.json"}
DATASOURCE_TYPE = "questdb-questdb-datasource"
DEFAULT_TIMESTAMP = {"fx": "timestamp", "equities": "timestamp_ns"}

# Short windows at light rates: London/New York overlap (FX), 10:00 in New York (equities trading).
WINDOWS = {
    "fx": Window.from_iso("2025-11-11T14:00:00Z", "2025-11-11T14:02:00Z"),
    "equities": Window.from_iso("2025-11-11T15:00:00Z", "2025-11-11T15:02:00Z"),
}
# A dashboard's variables as a user would pick them (multi-value variables: two values).
PICKED = {
    "fx": {"symbol": "EURUSD", "ecn": ["LMAX", "EBS"]},
    "equities": {"symbol": "AAPL", "venue": ["NASDAQ", "NYSE"]},
}


# --- the files' own rules ----------------------------------------------------------------------------


def object_names(market: str) -> list[str]:
    """Base names of the market's tables and views (what a suffix or prefix renames)."""
    tables = market_tables(market)
    return [t.base_name for t in tables] + [v.base_name for v in views_for(tables)]


def rename(sql: str, market: str, prefix: str = "", suffix: str = "", timestamp_column: str | None = None) -> str:
    """The demo-query files' documented substitution: whole-word object names get prefix and suffix;
    the equities designated timestamp ``timestamp_ns`` becomes the configured name."""
    names = sorted(object_names(market), key=len, reverse=True)
    out = re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: f"{prefix}{m.group(1)}{suffix}", sql)
    if market == "equities" and timestamp_column and timestamp_column != "timestamp_ns":
        out = re.sub(r"\btimestamp_ns\b", timestamp_column, out)
    return out


def statements(path: Path) -> list[tuple[str, str]]:
    """(title, SQL) of every statement of a demo-query file; the title is its ``-- N. ...`` comment."""
    out = []
    for chunk in re.split(r";\s*\n", path.read_text()):
        title = next((line[3:].strip() for line in chunk.splitlines() if re.match(r"-- \d+\.", line)), None)
        sql = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if sql:
            out.append((title or sql[:60], sql))
    return out


def dashboard_queries(market: str) -> list[tuple[str, str]]:
    """(where, raw SQL) of every panel target and every query variable of a dashboard."""
    board = json.loads(DASHBOARDS[market].read_text())
    out = []
    for panel in _panels(board["panels"]):
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} target {target['refId']}", target["rawSql"]))
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            out.append((f"variable {var['name']!r}", query["rawSql"] if isinstance(query, dict) else query))
    return out


def _panels(panels: list[dict]) -> list[dict]:
    out = []
    for p in panels:
        out += _panels(p.get("panels", [])) if p.get("type") == "row" else [p]
    return out


def grafana_render(sql: str, window: Window, variables: dict[str, str | list[str]], interval: str = "1s") -> str:
    """What Grafana and the QuestDB data source send for ``sql``: template variables first, by name
    (``${v:singlequote}`` for multi-value lists), as Grafana interpolates them before the data
    source sees the query; then the data source's macros, time filters as microsecond casts and
    ``$__sampleByInterval``/``$__interval`` as a SAMPLE BY unit."""

    def value(m: re.Match) -> str:
        name, fmt = m.group(1) or m.group(3), m.group(2)
        if name not in variables:
            raise KeyError(f"dashboard variable {name!r} has no value in the test")
        v = variables[name]
        values = v if isinstance(v, list) else [v]
        if fmt == "singlequote":
            return ",".join(f"'{x}'" for x in values)
        return ",".join(values)

    sql = re.sub(r"\$\{([A-Za-z_]\w*)(?::(\w+))?\}|\$(?!__)([A-Za-z_]\w*)", value, sql)
    lo, hi = f"cast({window.start_us} as timestamp)", f"cast({window.end_us} as timestamp)"
    sql = re.sub(
        r"\$__timeFilter\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)",
        lambda m: f"{m.group(1)} >= {lo} AND {m.group(1)} <= {hi}",
        sql,
    )
    sql = sql.replace("$__fromTime", lo).replace("$__toTime", hi)
    return sql.replace("$__sampleByInterval", interval).replace("$__interval", interval)


# --- what a server must answer ----------------------------------------------------------------------


def degenerate(columns: list[str], rows: list[tuple]) -> str | None:
    """Why a result is not worth a panel (None when it is): empty, an all-NULL column, or one constant."""
    if not rows:
        return "no rows"
    for i, name in enumerate(columns):
        if all(r[i] is None for r in rows):
            return f"column {name} is NULL in every row"
    values = {_hashable(v) for r in rows for v in r if v is not None and not isinstance(v, (dt.datetime, dt.date))}
    if len(values) < 2:
        return f"every value is {next(iter(values), None)!r}"
    return None


def _hashable(value):
    """Arrays (books, slices) come back as nested lists."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Variant:
    market: str
    prefix: str
    suffix: str
    timestamp_column: str

    def __str__(self) -> str:
        return f"{self.market}[{self.prefix or '-'}|{self.suffix or '-'}|{self.timestamp_column}]"

    def names(self) -> list[str]:
        return [f"{self.prefix}{n}{self.suffix}" for n in object_names(self.market)]


_RUN = uuid.uuid4().hex[:8]
VARIANTS = [
    Variant("fx", "", "", "timestamp"),
    Variant("fx", "", f"_d{_RUN}", "timestamp"),
    Variant("equities", "", "", "timestamp_ns"),
    Variant("equities", "eq_", "", "timestamp"),  # the public equities script's tables
    Variant("equities", "eq_", f"_d{_RUN}", "timestamp_ns"),
]


def _generate(server, variant: Variant) -> None:
    """Write the variant's window with the product's own engine and sink, views included, all applied."""
    from mkt_pipeline.markets import build_engine, market_references
    from mkt_pipeline.run.ingest import run_window
    from mkt_pipeline.sinks.base import TableNaming
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink

    light = {
        "fx": dict(
            market_data_min_eps=110,
            market_data_max_eps=150,
            core_min_eps=70,
            core_max_eps=100,
            orders_min_per_sec=5,
            orders_max_per_sec=30,
        ),
        "equities": dict(
            market_data_min_eps=800,
            market_data_max_eps=1200,
            trades_min_eps=200,
            trades_max_eps=400,
            timestamp_column=variant.timestamp_column,
        ),
    }[variant.market]
    from mkt_pipeline.settings import GENERATION_FLAGS

    values = (
        {f.name: f.default for f in GENERATION_FLAGS[variant.market]} | light | {"min_levels": 10, "max_levels": 10}
    )
    window = WINDOWS[variant.market]
    engine = build_engine(variant.market, values, market_references(variant.market, window, offline=True))
    settings = QuestDBSettings.from_env(
        host=server.host, http_port=server.http_port, pg_port=server.pg_port, create_views=True
    )
    with QuestDBSink(settings, TableNaming(suffix=variant.suffix, prefix=variant.prefix)) as sink:
        sink.prepare(engine.schemas)
        run_window(engine, sink, window, in_process=False)
        sink.wait_for_wal()
    _refresh_views(server, variant)


def _refresh_views(server, variant: Variant) -> None:
    views = views_for(market_tables(variant.market, variant.timestamp_column))
    server.refresh_views(
        [(f"{variant.prefix}{v.base_name}{variant.suffix}", v.refresh_every is not None) for v in views], timeout_s=60
    )


def _drop(server, variant: Variant) -> None:
    views = {f"{variant.prefix}{v.base_name}{variant.suffix}" for v in views_for(market_tables(variant.market))}
    for name in reversed(variant.names()):
        server.execute(f"DROP MATERIALIZED VIEW IF EXISTS {name}" if name in views else f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def written(questdb, request):
    variant: Variant = request.param
    existing = {r[0] for r in questdb.query("SELECT table_name FROM tables()")}
    taken = sorted(existing.intersection(variant.names()))
    if taken:
        pytest.skip(f"{variant}: the server already holds {', '.join(taken)}; not touching them")
    try:
        _generate(questdb, variant)
        yield variant
    finally:
        _drop(questdb, variant)


def _run_all(server, queries: list[tuple[str, str]]) -> list[str]:
    failures = []
    with server.connect() as conn:
        for where, sql in queries:
            try:
                cur = conn.execute(sql)
                columns = [d[0] for d in cur.description or []]
                why = degenerate(columns, cur.fetchall())
            except Exception as exc:  # the server's own message says what is wrong
                why = str(exc).strip().splitlines()[0]
            if why:
                failures.append(f"{where}: {why}\n    {' '.join(sql.split())[:300]}")
    return failures


@pytest.mark.questdb
@pytest.mark.parametrize("written", VARIANTS, ids=str, indirect=True)
def test_every_panel_and_demo_query_answers_on_generated_data(questdb, written: Variant):
    variant = written
    market = variant.market
    variables = {"prefix": variant.prefix, "suffix": variant.suffix, **PICKED[market]}
    if market == "equities":
        variables["ts"] = variant.timestamp_column
    queries = [
        (f"dashboard {where}", grafana_render(sql, WINDOWS[market], variables))
        for where, sql in dashboard_queries(market)
    ]
    queries += [
        (f"demo query {title!r}", rename(sql, market, variant.prefix, variant.suffix, variant.timestamp_column))
        for title, sql in statements(DEMO_QUERIES[market])
    ]
    failures = _run_all(questdb, queries)
    assert not failures, f"{variant}: {len(failures)} of {len(queries)} queries failed:\n" + "\n".join(failures)


# --- the files themselves (no server) ----------------------------------------------------------------


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_demo_query_files_hold_at_least_25_commented_statements(market):
    text = DEMO_QUERIES[market].read_text()
    found = statements(DEMO_QUERIES[market])
    assert len(found) >= 25
    assert all(not title.startswith(("SELECT", "WITH")) for title, _ in found), "every query has a numbered comment"
    # the showcase of docs/dashboards.md#demo-queries is all there
    for feature in ("SAMPLE BY", "ASOF JOIN", "LATEST ON", " OVER (", "l2price(", "[1:", "vwap", "spread"):
        assert feature.lower() in text.lower(), feature
    views = [v.base_name for v in views_for(market_tables(market))]
    assert all(re.search(rf"\b{v}\b", text) for v in views), "every view is queried"


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_dashboards_are_grafana_json_on_the_questdb_data_source(market):
    board = json.loads(DASHBOARDS[market].read_text())
    panels = _panels(board["panels"])
    assert board["uid"] and board["title"] and len(panels) >= 8
    for panel in panels:
        assert panel["datasource"]["type"] == DATASOURCE_TYPE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["type"] == DATASOURCE_TYPE
            assert (
                "$__timeFilter(" in target["rawSql"]
                or "wal_tables()" in target["rawSql"]
                or "LATEST ON" in target["rawSql"]
            ), panel["title"]
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"symbol", "suffix"} <= names and (
        {"prefix", "venue", "ts"} <= names if market == "equities" else "ecn" in names
    )
    sql = " ".join(t["rawSql"] for p in panels for t in p["targets"])
    views = [v.base_name for v in views_for(market_tables(market))]
    assert sum(bool(re.search(rf"\b{v}\b", sql)) for v in views) >= 4, "panels read the views"
    assert "wal_tables()" in sql and "count()" in sql, "ingestion rate and WAL lag"


def test_compose_provisions_grafana_with_the_data_source_and_both_dashboards():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert re.search(r"^\s+grafana:", compose, re.M) and '"3001:3000"' in compose
    assert DATASOURCE_TYPE in compose  # GF_INSTALL_PLUGINS
    datasource = (ROOT / "dashboards" / "provisioning" / "datasources" / "questdb.yaml").read_text()
    assert f"type: {DATASOURCE_TYPE}" in datasource and "port: 8812" in datasource
    provider = (ROOT / "dashboards" / "provisioning" / "dashboards" / "mkt_pipeline.yaml").read_text()
    assert "/etc/mkt_pipeline/dashboards" in provider
    uid = re.search(r"uid: (\S+)", datasource).group(1)
    for market in DASHBOARDS:
        board = json.loads(DASHBOARDS[market].read_text())
        assert {p["datasource"]["uid"] for p in _panels(board["panels"])} == {uid}


def test_renaming_touches_whole_names_only():
    sql = (
        "SELECT timestamp_ns, bids[1][1] FROM equities_market_data m ASOF JOIN nbbo_1s n WHERE x = 'equities_trades_x'"
    )
    out = rename(sql, "equities", "eq_", "_demo", "timestamp")
    assert (
        out
        == "SELECT timestamp, bids[1][1] FROM eq_equities_market_data_demo m ASOF JOIN eq_nbbo_1s_demo n WHERE x = 'equities_trades_x'"
    )
    assert (
        rename("SELECT * FROM market_data JOIN market_data_ohlc_1m", "fx", suffix="_s")
        == "SELECT * FROM market_data_s JOIN market_data_ohlc_1m_s"
    )


def test_grafana_macros_and_variables_are_expanded_like_the_data_source():
    window = WINDOWS["fx"]
    out = grafana_render(
        "SELECT * FROM ${prefix}t${suffix} WHERE $__timeFilter(timestamp) AND s = '$symbol' AND e IN (${ecn:singlequote}) SAMPLE BY $__sampleByInterval",
        window,
        {"prefix": "", "suffix": "_x", "symbol": "EURUSD", "ecn": ["LMAX", "EBS"]},
    )
    lo, hi = window.start_us, window.end_us
    assert out == (
        f"SELECT * FROM t_x WHERE timestamp >= cast({lo} as timestamp) AND timestamp <= cast({hi} as timestamp) "
        "AND s = 'EURUSD' AND e IN ('LMAX','EBS') SAMPLE BY 1s"
    )


def test_degenerate_results_are_recognised():
    now = dt.datetime(2025, 1, 1)
    assert degenerate(["a"], []) == "no rows"
    assert degenerate(["t", "a"], [(now, None), (now, None)]) == "column a is NULL in every row"
    assert degenerate(["t", "a"], [(now, 0), (now + dt.timedelta(seconds=1), 0)]) == "every value is 0"
    assert degenerate(["t", "a"], [(now, 1.0), (now, 1.5)]) is None

"""The realism bands (docs/data-model.md#realism-bands) on generated data: every stylised fact of a full day of each
market holds within its band.

One full FX day (24 UTC hours of a weekday) and one full NYSE session (a few minutes either side of
09:30–16:00 New York) are generated once per test session at the light demo rates (FX market_data
100–300/s so the seasonality can show) with 3-level books into a Parquet dataset, then measured by
``mkt-pipeline facts``' own code. Each fact is its own test, so a change that breaks one piece of
realism names it. The measuring code itself is tested on data with known answers in
``core/test_facts.py``.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from bench.common import profile_settings
from mkt_pipeline.core.cross_facts_equities import MARKET_FACT_KEYS
from mkt_pipeline.core.facts import EQUITIES_FACT_KEYS, FX_FACT_KEYS
from mkt_pipeline.core.timeline import US_PER_S, Window
from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine
from mkt_pipeline.equities.session import trading_day
from mkt_pipeline.fx.engine import FxConfig, FxEngine
from mkt_pipeline.markets import market_references
from mkt_pipeline.run.facts import fx_rate_spans, measure_dataset
from mkt_pipeline.run.ingest import run_window
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.stored_rows import ParquetRows

DAY = dt.date(2025, 11, 11)  # a Tuesday, and an NYSE trading day
# the light profile of the facts benchmark, 3-level books
LIGHT_FX_DAY = FxConfig(**profile_settings("light", "fx"))
LIGHT_EQUITIES = EquitiesConfig(**profile_settings("light", "equities"))

FX_FACTS = FX_FACT_KEYS
EQUITIES_FACTS = EQUITIES_FACT_KEYS
# the one-market rows of a whole FX day (triangular consistency, co-movement, order-flow memory, impact)
FX_MARKET_FACTS = (
    "fx_triangular.median",
    "fx_triangular.p99",
    "fx_triangular.returns",
    "fx_triangular.drift",
    "fx_comovement.EURUSD_GBPUSD",
    "fx_comovement.EURUSD_USDCHF",
    "fx_comovement.AUDUSD_NZDUSD",
    "fx_comovement.EURUSD_USDJPY",
    "fx_sign_memory.lag1",
    "fx_sign_memory.tail",
    "fx_impact.after",
    "fx_impact.before",
    "fx_impact.size",
)
# the one-market rows (co-movement, Epps, order-flow memory, impact, volume and volatility, venues)
EQUITIES_MARKET_FACTS = MARKET_FACT_KEYS


def _generate(engine, window: Window, root) -> ParquetRows:
    sink = ParquetSink(root)
    sink.prepare(engine.schemas)
    run_window(engine, sink, window, chunk_seconds=3600, in_process=False)
    return ParquetRows(ParquetSink(root))


def fx_day_window() -> Window:
    start = Window.from_iso(f"{DAY}T00:00:00Z", f"{DAY}T00:00:01Z").start_us
    return Window(start, start + 86400 * US_PER_S)


def equities_session_window() -> Window:
    session = trading_day(DAY)
    return Window((session.open_s - 300) * US_PER_S, (session.close_s + 300) * US_PER_S)


@pytest.fixture(scope="session")
def fx_day(tmp_path_factory):
    window = fx_day_window()
    root = tmp_path_factory.mktemp("fx_day")
    rows = _generate(FxEngine(LIGHT_FX_DAY, market_references("fx", window, offline=True)), window, root)
    report = measure_dataset("fx", rows, window, rate_spans=fx_rate_spans(LIGHT_FX_DAY.as_dict()), offline=True)
    return report, root


@pytest.fixture(scope="session")
def equities_day(tmp_path_factory):
    window = equities_session_window()
    root = tmp_path_factory.mktemp("equities_day")
    rows = _generate(EquitiesEngine(LIGHT_EQUITIES, market_references("equities", window, offline=True)), window, root)
    return measure_dataset("equities", rows, window, offline=True), root


@pytest.mark.parametrize("market", ["fx", "equities"])
def test_the_table_does_not_depend_on_how_the_window_is_sliced(fx_day, equities_day, market):
    """The reader's slices bound memory only: three hours read in hours or in 7-minute slices measure the same."""
    _, root = fx_day if market == "fx" else equities_day
    start = (fx_day_window() if market == "fx" else equities_session_window()).start_us + 3600 * US_PER_S
    window = Window(start, start + 3 * 3600 * US_PER_S)
    spans = fx_rate_spans(LIGHT_FX_DAY.as_dict()) if market == "fx" else None
    tables = [
        {
            f.key: f.value
            for f in measure_dataset(
                market, ParquetRows(ParquetSink(root)), window, rate_spans=spans, offline=True, slice_s=s
            ).facts
        }
        for s in (3600, 420)
    ]
    assert tables[0].keys() == tables[1].keys()
    for key, value in tables[0].items():
        assert value == pytest.approx(tables[1][key], rel=1e-9, nan_ok=True), key


def _explain(fact) -> str:
    return f"{fact.fact}: {fact.measure}: measured {fact.measured}, band {fact.band}"


def test_fx_table_has_every_row_of_the_spec(fx_day):
    report, _ = fx_day
    assert tuple(f.key for f in report.facts) == FX_FACTS


def test_equities_table_has_every_row_of_the_spec(equities_day):
    report, _ = equities_day
    assert tuple(f.key for f in report.facts) == EQUITIES_FACTS + EQUITIES_MARKET_FACTS


@pytest.mark.parametrize("key", FX_FACTS)
def test_fx_fact_within_its_band(fx_day, key):
    fact = {f.key: f for f in fx_day[0].facts}[key]
    assert math.isfinite(fact.value), f"not measured: {_explain(fact)}"
    assert fact.passed, _explain(fact)


def test_fx_market_table_has_every_one_market_row(fx_day):
    report, _ = fx_day
    assert tuple(f.key for f in report.market_facts) == FX_MARKET_FACTS


@pytest.mark.parametrize("key", FX_MARKET_FACTS)
def test_fx_market_fact_within_its_band(fx_day, key):
    """A whole day at the light rates: every cross, the majors' 5-minute co-movement, sign memory, impact by size."""
    fact = {f.key: f for f in fx_day[0].market_facts}[key]
    assert math.isfinite(fact.value), f"not measured: {_explain(fact)}"
    assert fact.passed, _explain(fact)


@pytest.mark.parametrize("key", EQUITIES_FACTS + EQUITIES_MARKET_FACTS)
def test_equities_fact_within_its_band(equities_day, key):
    fact = {f.key: f for f in equities_day[0].facts}[key]
    assert math.isfinite(fact.value), f"not measured: {_explain(fact)}"
    assert fact.passed, _explain(fact)


def test_cli_prints_the_same_table_and_draws_the_pictures(fx_day, tmp_path, capsys, clean_env):
    from mkt_pipeline.cli import main

    report, root = fx_day
    c = LIGHT_FX_DAY
    code = main(
        [
            "facts",
            "fx",
            "--sink",
            "parquet",
            "--parquet_dir",
            str(root),
            "--offline",
            "true",
            "--pictures",
            str(tmp_path),
            "--market_data_min_eps",
            str(c.market_data_min_eps),
            "--market_data_max_eps",
            str(c.market_data_max_eps),
            "--orders_min_per_sec",
            str(c.orders_min_per_sec),
            "--orders_max_per_sec",
            str(c.orders_max_per_sec),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    # the whole stored extent is the day, so the table is the fixture's, row for row
    assert report.table() in out
    pictures = sorted(tmp_path.glob("fx_*.png"))
    assert [p.name for p in pictures] == [
        "fx_abs_return_acf.png",
        "fx_correlation_heatmap.png",
        "fx_impact_by_size.png",
        "fx_intraday_profile.png",
        "fx_return_distribution.png",
        "fx_sign_acf.png",
        "fx_triangular_gap.png",
    ]
    for p in pictures:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < p.stat().st_size < 200_000


@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ["--start_ts", "2025-11-11T02:00:00Z", "--end_ts", "2025-11-11T01:00:00Z"],
            "--end_ts (2025-11-11T01:00:00.000000Z) must be after --start_ts",
        ),
        (["--start_ts", "2025-11-01T00:00:00Z", "--end_ts", "2025-11-11T00:00:00Z"], "more than 7 days"),
        (
            ["--market_data_min_eps", "400", "--market_data_max_eps", "300"],
            "--market_data_min_eps (400) must be <= --market_data_max_eps (300)",
        ),
        (["--start_ts", "yesterday"], "--start_ts: 'yesterday' is not an ISO-8601 timestamp"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, clean_env, args, needle):
    from mkt_pipeline.cli import main

    code = main(["facts", "fx", "--sink", "parquet", "--parquet_dir", str(tmp_path), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err


def test_cli_on_an_empty_dataset_says_what_is_missing(tmp_path, capsys, clean_env):
    from mkt_pipeline.cli import main

    code = main(["facts", "equities", "--sink", "parquet", "--parquet_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no stored equities_market_data rows in the parquet dataset" in err


@pytest.mark.questdb
@pytest.mark.parametrize("market", ["fx", "equities"])
def test_questdb_dataset_measures_like_the_parquet_one(questdb, qdb_suffix, tmp_path, market):
    """The same generated window read back from QuestDB (PG wire) and from Parquet gives the same table."""
    from mkt_pipeline.sinks.base import TableNaming
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink
    from mkt_pipeline.sinks.stored_rows import QuestDBRows

    if market == "fx":
        start = fx_day_window().start_us + 13 * 3600 * US_PER_S
        window = Window(start, start + 600 * US_PER_S)
        engine = FxEngine(LIGHT_FX_DAY, market_references("fx", window, offline=True))
    else:
        start = trading_day(DAY).open_s * US_PER_S
        window = Window(start - 60 * US_PER_S, start + 240 * US_PER_S)
        engine = EquitiesEngine(LIGHT_EQUITIES, market_references("equities", window, offline=True))
    settings = QuestDBSettings.from_env(
        host=questdb.host, http_port=questdb.http_port, pg_port=questdb.pg_port, create_views=False
    )
    naming = TableNaming(suffix=qdb_suffix)
    with QuestDBSink(settings, naming) as sink:
        sink.prepare(engine.schemas)
        run_window(engine, sink, window, chunk_seconds=300, in_process=False)
        assert sink.wait_for_wal(timeout_s=120) == 0
    spans = fx_rate_spans(LIGHT_FX_DAY.as_dict()) if market == "fx" else None
    parquet = measure_dataset(market, _generate(engine, window, tmp_path), window, rate_spans=spans, offline=True)
    with questdb.connect() as conn:
        stored = measure_dataset(
            market,
            QuestDBRows(conn, naming, where=f"{questdb.host}:{questdb.pg_port}"),
            window,
            rate_spans=spans,
            offline=True,
        )
    assert [(f.key, f.measured, f.passed) for f in stored.facts] == [
        (f.key, f.measured, f.passed) for f in parquet.facts
    ]
    assert any(math.isfinite(f.value) for f in parquet.facts)

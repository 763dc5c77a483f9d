"""The command line: Parquet runs, env defaults, resume, and one-line validation errors."""

from __future__ import annotations

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.sinks import ParquetSink
from mkt_pipeline.tables import FX_TABLES
from mkt_pipeline.timeline import Window

LIGHT = "--market_data_min_eps 110 --market_data_max_eps 150 --core_min_eps 70 --core_max_eps 100 --min_levels 5 --max_levels 5".split()


def run(tmp_path, *extra):
    return main(["fx", "--mode", "faster-than-life", "--sink", "parquet", "--parquet_dir", str(tmp_path), *LIGHT, *extra])


def test_parquet_run_and_resume(tmp_path, capsys):
    assert run(tmp_path, "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:00:30Z") == 0
    out = capsys.readouterr().out
    assert "market_data" in out and "rows/s" in out
    sink = ParquetSink(tmp_path)
    md = sink.read(FX_TABLES[0])
    assert 30 * 110 <= md.num_rows <= 30 * 150
    # the same window again: already stored, nothing to do
    assert run(tmp_path, "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:00:30Z") == 0
    assert "nothing to do" in capsys.readouterr().out
    # a longer window resumes after the stored rows: the result equals one uninterrupted run
    assert run(tmp_path, "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:01:00Z") == 0
    assert run(tmp_path / "once", "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:01:00Z") == 0
    for table in FX_TABLES:
        assert sink.read(table).equals(ParquetSink(tmp_path / "once").read(table)), table.base_name


def test_total_market_data_events_stops_at_that_second(tmp_path):
    assert run(tmp_path, "--start_ts", "2025-11-11T03:00:00Z", "--total_market_data_events", "1_000") == 0
    md = ParquetSink(tmp_path).read(FX_TABLES[0])
    assert 1_000 <= md.num_rows < 1_000 + 150


def test_env_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("MKT_FX_MAX_LEVELS", "7")
    monkeypatch.setenv("MKT_FX_MIN_LEVELS", "7")
    args = [a for a in LIGHT if a not in ("--min_levels", "--max_levels", "5")]
    assert main(["fx", "--mode", "faster-than-life", "--sink", "parquet", "--parquet_dir", str(tmp_path), *args, "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:00:02Z"]) == 0
    row = ParquetSink(tmp_path).read(FX_TABLES[0]).slice(0, 1).to_pylist()[0]
    assert len(row["bids"][0]) == 7


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--mode", "faster-than-life", "--market_data_min_eps", "900"], "--market_data_min_eps (900) must be > --core_max_eps"),
        (["--mode", "faster-than-life", "--core_min_eps", "10", "--core_max_eps", "20", "--market_data_min_eps", "30"], "--core_min_eps"),
        (["--mode", "faster-than-life", "--min_levels", "9", "--max_levels", "3"], "--min_levels (9) must be <= --max_levels (3)"),
        (["--mode", "faster-than-life", "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T02:00:00Z"], "--end_ts"),
        (["--mode", "faster-than-life", "--start_ts", "yesterday"], "--start_ts: 'yesterday' is not an ISO-8601 timestamp"),
        (["--mode", "faster-than-life", "--suffix", "x; DROP TABLE"], "suffix"),
        (["--mode", "faster-than-life", "--short_ttl", "maybe"], "--short_ttl: 'maybe' is not a boolean"),
        (["--mode", "faster-than-life", "--chunk_seconds", "0"], "--chunk_seconds must be > 0"),
        ([], "--mode is required"),
    ],
)
def test_invalid_input_one_line_and_nothing_written(tmp_path, capsys, args, needle):
    code = main(["fx", "--sink", "parquet", "--parquet_dir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["fx", "--help"])
    text = capsys.readouterr().out
    for flag in ("--market_data_min_eps", "--lei_pool_size", "--total_market_data_events", "--chunk_seconds", "--parquet_dir", "--seed", "MKT_FX_SEED"):
        assert flag in text

"""The command line: Parquet runs, env defaults, resume, and one-line validation errors."""

from __future__ import annotations

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import LIGHT_FLAGS

LIGHT = LIGHT_FLAGS["fx"]


def run(tmp_path, *extra):
    return main(
        ["fx", "--mode", "faster-than-life", "--sink", "parquet", "--parquet_dir", str(tmp_path), *LIGHT, *extra]
    )


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
    assert (
        main(
            [
                "fx",
                "--mode",
                "faster-than-life",
                "--sink",
                "parquet",
                "--parquet_dir",
                str(tmp_path),
                *args,
                "--start_ts",
                "2025-11-11T03:00:00Z",
                "--end_ts",
                "2025-11-11T03:00:02Z",
            ]
        )
        == 0
    )
    row = ParquetSink(tmp_path).read(FX_TABLES[0]).slice(0, 1).to_pylist()[0]
    assert len(row["bids"][0]) == 7


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["--mode", "faster-than-life", "--market_data_min_eps", "900"],
            "--market_data_min_eps (900) must be > --core_max_eps",
        ),
        (
            [
                "--mode",
                "faster-than-life",
                "--core_min_eps",
                "10",
                "--core_max_eps",
                "20",
                "--market_data_min_eps",
                "30",
            ],
            "--core_min_eps",
        ),
        (
            ["--mode", "faster-than-life", "--min_levels", "9", "--max_levels", "3"],
            "--min_levels (9) must be <= --max_levels (3)",
        ),
        (
            ["--mode", "faster-than-life", "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T02:00:00Z"],
            "--end_ts",
        ),
        (
            ["--mode", "faster-than-life", "--start_ts", "yesterday"],
            "--start_ts: 'yesterday' is not an ISO-8601 timestamp",
        ),
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
    for flag in (
        "--market_data_min_eps",
        "--lei_pool_size",
        "--total_market_data_events",
        "--chunk_seconds",
        "--parquet_dir",
        "--seed",
        "MKT_FX_SEED",
    ):
        assert flag in text


# --------------------------------------------------------------------------------------------
# every validation rule: one line naming the flag and the rule, exit 2, nothing written

FTL = ["--mode", "faster-than-life"]
RT = ["--mode", "real-time"]


@pytest.mark.parametrize(
    "market,args,needle",
    [
        ("fx", FTL + ["--mode", "sideways"], "--mode: 'sideways' is not one of real-time, faster-than-life"),
        (
            "fx",
            FTL + ["--orders_min_per_sec", "40", "--orders_max_per_sec", "30"],
            "--orders_min_per_sec (40) must be <= --orders_max_per_sec (30)",
        ),
        (
            "fx",
            FTL + ["--market_data_min_eps", "2000", "--market_data_max_eps", "1500"],
            "--market_data_min_eps (2000) must be <= --market_data_max_eps (1500)",
        ),
        (
            "fx",
            FTL + ["--core_min_eps", "800", "--core_max_eps", "750"],
            "--core_min_eps (800) must be <= --core_max_eps (750)",
        ),
        (
            "fx",
            FTL + ["--core_min_eps", "20", "--core_max_eps", "25"],
            "--core_min_eps (20) must be > --orders_max_per_sec (30)",
        ),
        ("fx", FTL + ["--min_levels", "0", "--max_levels", "3"], "--min_levels must be > 0"),
        ("fx", FTL + ["--lei_pool_size", "0"], "--lei_pool_size must be > 0"),
        ("fx", FTL + ["--processes", "0"], "--processes must be > 0"),
        ("fx", FTL + ["--total_market_data_events", "0"], "--total_market_data_events must be > 0"),
        ("fx", FTL + ["--yahoo_refresh_secs", "-5"], "--yahoo_refresh_secs must be > 0"),
        ("fx", FTL + ["--seed", "-1"], "--seed must be >= 0"),
        ("fx", FTL + ["--processes", "two"], "--processes: 'two' is not an integer"),
        (
            "fx",
            FTL + ["--end_ts", "2025-11-11 03:00:00+01:00", "--start_ts", "2025-11-11T02:00:00Z"],
            "--end_ts (2025-11-11T02:00:00.000000Z) must be after --start_ts",
        ),
        (
            "fx",
            FTL + ["--incremental", "--overwrite", "yes"],
            "--incremental continues after stored rows and --overwrite regenerates them",
        ),
        ("fx", RT + ["--start_ts", "2025-11-11T03:00:00Z"], "--start_ts is not allowed with --mode real-time"),
        ("fx", RT + ["--processes", "2"], "--processes must be 1 with --mode real-time (got 2)"),
        ("fx", RT + ["--incremental", "true"], "--incremental is for faster-than-life"),
        ("fx", FTL + ["--pg_port", "70000"], "--pg_port: 70000 is not a TCP port (1-65535)"),
        ("fx", FTL + ["--http_port", "0"], "--http_port: 0 is not a TCP port"),
        ("fx", FTL + ["--ilp_port", "-9"], "--ilp_port: -9 is not a TCP port"),
        ("fx", FTL + ["--suffix", "a-b"], "suffix: 'a-b' is not a valid identifier part"),
        ("fx", FTL + ["--create_views", "sometimes"], "--create_views: 'sometimes' is not a boolean"),
        ("fx", FTL + ["--protocol", "udp"], "--protocol: 'udp' is not one of http, https, tcp, tcps"),
        ("fx", FTL + ["--tls_verify", "off"], "--tls_verify: 'off' is not one of on, unsafe_off"),
        ("equities", FTL + ["--prefix", "eq-"], "prefix: 'eq-' is not a valid identifier part"),
        (
            "equities",
            FTL + ["--trades_min_eps", "900", "--trades_max_eps", "800"],
            "--trades_min_eps (900) must be <= --trades_max_eps (800)",
        ),
        (
            "equities",
            FTL + ["--offsession_trades", "some"],
            "--offsession_trades: 'some' is not one of none, trickle, full",
        ),
        ("equities", FTL + ["--session_pacing", "perhaps"], "--session_pacing: 'perhaps' is not a boolean"),
        ("equities", FTL + ["--min_levels", "6", "--max_levels", "2"], "--min_levels (6) must be <= --max_levels (2)"),
        ("equities", RT + ["--processes", "3"], "--processes must be 1 with --mode real-time"),
    ],
)
def test_every_validation_rule(tmp_path, capsys, market, args, needle):
    code = main([market, "--sink", "parquet", "--parquet_dir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args,env,needle",
    [
        (
            ["--protocol", "tcp", "--token", "dddddddd"],
            {},
            "--protocol tcp: JWK auth needs --token, --token_x and --token_y together (missing --token_x, --token_y)",
        ),
        (["--protocol", "tcps", "--token_x", "xxxxxxxx", "--token_y", "yyyyyyyy"], {}, "missing --token)"),
        (["--protocol", "tcp"], {"QUESTDB_TOKEN_X": "xxxxxxxx"}, "missing --token, --token_y"),
        (["--token_file", "/nonexistent/token"], {}, "--token_file: cannot read /nonexistent/token"),
    ],
)
def test_questdb_rules_fail_before_any_connection(monkeypatch, capsys, args, env, needle):
    import mkt_pipeline.cli as cli

    for var in ("QUESTDB_TOKEN", "QUESTDB_TOKEN_X", "QUESTDB_TOKEN_Y"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(cli, "make_sink", lambda opts: pytest.fail("a sink was opened"))
    assert main(["fx", *FTL, "--sink", "questdb", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert "dddddddd" not in err and "xxxxxxxx" not in err


def test_invalid_env_default_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("MKT_FX_PROCESSES", "many")
    assert main(["fx", *FTL]) == 2
    assert capsys.readouterr().err == "mkt-pipeline: error: MKT_FX_PROCESSES: 'many' is not an integer\n"


# --------------------------------------------------------------------------------------------
# flags parsed and mapped

# The seed documents' flags and defaults (None: no default; mode is required).
SEED_COMMON = {
    "host": "127.0.0.1",
    "pg_port": 8812,
    "user": "admin",
    "password": "quest",
    "token": None,
    "token_x": None,
    "token_y": None,
    "ilp_user": "admin",
    "protocol": "http",
    "mode": None,
    "processes": 1,
    "suffix": "",
    "create_views": True,
    "short_ttl": False,
    "yahoo_refresh_secs": 300,
    "start_ts": None,
    "end_ts": None,
    "incremental": False,
    "total_market_data_events": 1_000_000,
    "chunk_seconds": 900,
    "min_levels": 40,
    "max_levels": 40,
}
SEED_FX = {
    **SEED_COMMON,
    "market_data_min_eps": 1200,
    "market_data_max_eps": 15000,
    "core_min_eps": 700,
    "core_max_eps": 1000,
    "orders_min_per_sec": 5,
    "orders_max_per_sec": 30,
    "lei_pool_size": 2000,
}
SEED_EQUITIES = {
    **SEED_COMMON,
    "market_data_min_eps": 1000,
    "market_data_max_eps": 15000,
    "trades_min_eps": 800,
    "trades_max_eps": 1100,
    "session_pacing": True,
    "offsession_trades": "none",
}
EXTRAS = {
    "sink": "questdb",
    "parquet_dir": "./data",
    "seed": 42,
    "http_port": 9000,
    "ilp_port": 9009,
    "tls_verify": "on",
    "tls_ca": None,
    "token_file": None,
    "overwrite": False,
    "enterprise": False,
    "stall_timeout_secs": 120,
}


@pytest.mark.parametrize(
    "market,seed", [("fx", SEED_FX), ("equities", {**SEED_EQUITIES, "prefix": "", "timestamp_column": "timestamp_ns"})]
)
def test_every_seed_flag_with_its_default(clean_env, market, seed):
    from mkt_pipeline.cli import market_flags, parse_options

    opts = parse_options([market])
    assert opts.values == {**seed, **EXTRAS}
    assert [f.name for f in market_flags(market)] == list(opts.values)


def test_seed_backfill_example_is_parsed_and_mapped(clean_env, tmp_path):
    from mkt_pipeline.cli import engine_config, parse_options, questdb_settings, validate

    argv = (
        "fx --host 172.31.42.41 --market_data_min_eps 8200 --market_data_max_eps 11000 --core_min_eps 700 --core_max_eps 1000 "
        "--orders_min_per_sec 5 --orders_max_per_sec 30 --lei_pool_size 2000 --token dtoken --token_x xtoken --token_y ytoken "
        "--ilp_user ilp_ingest --protocol tcp --mode faster-than-life --processes 6 --total_market_data_events 600_000_000 "
        "--start_ts 2025-11-11T00:00:00.000000Z --end_ts 2025-11-11T14:00:00.000000Z --min_levels 3 --max_levels 3 --incremental false "
        "--ilp_port 9010 --short_ttl --enterprise yes"
    ).split()
    opts = parse_options(argv)
    validate(opts)
    assert opts.processes == 6 and opts.total_market_data_events == 600_000_000 and opts.incremental is False
    assert opts.start_ts == Window.from_iso("2025-11-11T00:00:00Z", "2025-11-11T14:00:00Z").start_us
    config = engine_config(opts)
    assert (config.market_data_min_eps, config.market_data_max_eps, config.min_levels, config.lei_pool_size) == (
        8200,
        11000,
        3,
        2000,
    )
    settings = questdb_settings(opts)
    assert (settings.host, settings.protocol, settings.ilp_tcp_port, settings.ilp_user) == (
        "172.31.42.41",
        "tcp",
        9010,
        "ilp_ingest",
    )
    assert (settings.token, settings.token_x, settings.token_y) == ("dtoken", "xtoken", "ytoken")
    assert settings.short_ttl is True and settings.enterprise is True


def test_equities_flags_are_parsed_and_mapped(clean_env):
    from mkt_pipeline.cli import engine_config, parse_options, validate

    opts = parse_options(
        "equities --mode real-time --market_data_min_eps 800 --market_data_max_eps 2000 --trades_min_eps 300 --trades_max_eps 800 "
        "--session_pacing 0 --offsession_trades trickle --prefix eq_ --min_levels 5 --max_levels 8 --protocol http".split()
    )
    validate(opts)
    config = engine_config(opts)
    assert (config.trades_min_eps, config.trades_max_eps, config.session_pacing, config.offsession_trades) == (
        300,
        800,
        False,
        "trickle",
    )
    assert (config.min_levels, config.max_levels) == (5, 8) and opts.prefix == "eq_"


@pytest.mark.parametrize(
    "word,value", [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("no", False)]
)
def test_booleans_are_parsed_consistently(clean_env, monkeypatch, word, value):
    from mkt_pipeline.cli import parse_options

    assert parse_options(["fx", "--short_ttl", word]).short_ttl is value
    monkeypatch.setenv("MKT_FX_SHORT_TTL", word)
    assert parse_options(["fx"]).short_ttl is value


def test_timestamps_z_offsets_and_naive_mean_utc(clean_env):
    from mkt_pipeline.cli import parse_options

    expected = Window.from_iso("2025-11-11T03:00:00Z", "2025-11-11T04:00:00Z").start_us
    for text in (
        "2025-11-11T03:00:00Z",
        "2025-11-11T04:00:00+01:00",
        "2025-11-11T03:00:00",
        "2025-11-11 03:00:00.000000",
    ):
        assert parse_options(["fx", "--start_ts", text]).start_ts == expected


def test_env_precedence_market_over_global_over_default(clean_env, monkeypatch):
    from mkt_pipeline.cli import parse_options

    monkeypatch.setenv("MKT_SEED", "7")
    monkeypatch.setenv("MKT_SINK", "parquet")
    assert (parse_options(["fx"]).seed, parse_options(["fx"]).sink) == (7, "parquet")
    monkeypatch.setenv("MKT_FX_SEED", "9")
    assert parse_options(["fx"]).seed == 9 and parse_options(["equities"]).seed == 7
    assert parse_options(["fx", "--seed", "11"]).seed == 11


def test_help_names_each_flag_and_its_env_variable(capsys):
    from mkt_pipeline.cli import market_flags

    for market in ("fx", "equities"):
        with pytest.raises(SystemExit):
            main([market, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for flag in market_flags(market):
            assert f"--{flag.name} " in text
            assert f"MKT_{market.upper()}_{flag.name.upper()}" in text.replace("- ", "-")
        assert "QUESTDB_TOKEN" in text and "MKT_PARQUET_DIR" in text
        assert "quest." not in text  # the password default is not shown


# --------------------------------------------------------------------------------------------
# faster-than-life: processes, incremental, progress


def _tables_equal(a, b):
    for table in FX_TABLES:
        ta, tb = ParquetSink(a).read(table), ParquetSink(b).read(table)
        assert ta.num_rows > 0 or table.base_name == "fx_trades"
        assert ta.equals(tb), table.base_name


def test_output_is_identical_for_any_process_count(tmp_path):
    window = ["--start_ts", "2025-11-11T03:59:10Z", "--end_ts", "2025-11-11T04:00:50Z", "--chunk_seconds", "20"]
    assert run(tmp_path / "one", *window) == 0
    assert run(tmp_path / "three", *window, "--processes", "3") == 0
    _tables_equal(tmp_path / "one", tmp_path / "three")
    # workers own distinct time ranges: every part file is one chunk's (or one hour's) slice, none overlap
    parts = ParquetSink(tmp_path / "three").parts(FX_TABLES[0])
    assert all(b <= a2 for (_, b, _), (a2, _, _) in zip(parts, parts[1:]))


def test_overwrite_with_processes_replaces_differently_cut_parts(tmp_path):
    window = ["--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:01:00Z"]
    assert run(tmp_path / "a", *window, "--chunk_seconds", "60") == 0
    # two workers overwrite the middle in 10 s chunks: the stored 60 s part straddles all of them
    assert (
        run(
            tmp_path / "a",
            "--start_ts",
            "2025-11-11T03:00:10Z",
            "--end_ts",
            "2025-11-11T03:00:50Z",
            "--chunk_seconds",
            "10",
            "--processes",
            "2",
            "--overwrite",
        )
        == 0
    )
    assert run(tmp_path / "b", *window) == 0
    _tables_equal(tmp_path / "a", tmp_path / "b")
    md = ParquetSink(tmp_path / "a").read(FX_TABLES[0])
    keys = list(zip(md.column("timestamp").cast("int64").to_pylist(), md.column("symbol").cast("string").to_pylist()))
    assert len(keys) == len(set(keys))  # no rows duplicated by overlapping parts


def test_incremental_continues_where_the_data_ends(tmp_path, capsys):
    assert run(tmp_path / "inc", "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:00:30Z") == 0
    assert run(tmp_path / "inc", "--incremental", "true", "--end_ts", "2025-11-11T03:01:00Z") == 0
    assert "continuing after the stored data: start 2025-11-11T03:00:30" in capsys.readouterr().err
    assert run(tmp_path / "once", "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:01:00Z") == 0
    _tables_equal(tmp_path / "inc", tmp_path / "once")


def test_incremental_by_event_count_equals_one_run(tmp_path):
    assert run(tmp_path / "inc", "--start_ts", "2025-11-11T03:00:00Z", "--total_market_data_events", "2000") == 0
    assert run(tmp_path / "inc", "--incremental", "--total_market_data_events", "2000") == 0
    end = ParquetSink(tmp_path / "inc").resume_after_us(FX_TABLES[0])
    from mkt_pipeline.core.timeline import format_us

    assert run(tmp_path / "once", "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", format_us(end)) == 0
    _tables_equal(tmp_path / "inc", tmp_path / "once")


def test_progress_lines_while_running(tmp_path, capsys, monkeypatch):
    import mkt_pipeline.run.progress as progress

    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.02)
    assert (
        run(tmp_path, "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:03:00Z", "--chunk_seconds", "30")
        == 0
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if "rows/s" in line]
    assert len(lines) >= 2
    assert all("ETA" in line for line in lines) and "100.0%" in lines[-1]


# --------------------------------------------------------------------------------------------
# secrets


def test_secret_on_command_line_warns_and_is_never_printed(tmp_path, capsys, monkeypatch):
    import mkt_pipeline.cli as cli

    assert (
        run(
            tmp_path,
            "--token",
            "s3cr3t-token-value",
            "--start_ts",
            "2025-11-11T03:00:00Z",
            "--end_ts",
            "2025-11-11T03:00:02Z",
        )
        == 0
    )
    out = capsys.readouterr()
    assert "warning: --token on the command line is visible" in out.err and "QUESTDB_TOKEN" in out.err
    assert "s3cr3t-token-value" not in out.out + out.err

    def boom(opts):
        raise RuntimeError(f"server said: bad credentials s3cr3t-token-value for {opts.token_file}")

    token_file = tmp_path / "token"
    token_file.write_text("file-secret-value\n")
    monkeypatch.setattr(cli, "run_faster", boom)
    monkeypatch.setenv("QUESTDB_TOKEN", "s3cr3t-token-value")
    assert main(["fx", *FTL, "--sink", "parquet", "--token_file", str(token_file)]) == 1
    out = capsys.readouterr()
    assert "warning" not in out.err  # a token file is the recommended way
    assert "s3cr3t-token-value" not in out.err and "bad credentials ***" in out.err


def test_token_file_supplies_the_token(tmp_path, clean_env):
    from mkt_pipeline.cli import parse_options, questdb_settings

    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    assert questdb_settings(parse_options(["fx", "--token_file", str(token_file)])).token == "from-the-file"


EQ_LIGHT = LIGHT_FLAGS["equities"]


def test_equities_output_is_identical_for_any_process_count(tmp_path):
    from mkt_pipeline.core.tables import EQUITIES_TABLES

    args = ["--mode", "faster-than-life", "--sink", "parquet", *EQ_LIGHT, "--prefix", "eq_", "--chunk_seconds", "10"]
    window = ["--start_ts", "2025-11-11T15:59:40Z", "--end_ts", "2025-11-11T16:00:20Z"]  # through the closing cross
    assert main(["equities", *args, *window, "--parquet_dir", str(tmp_path / "one")]) == 0
    assert main(["equities", *args, *window, "--parquet_dir", str(tmp_path / "two"), "--processes", "2"]) == 0
    for table in EQUITIES_TABLES:
        one = ParquetSink(tmp_path / "one", TableNaming(prefix="eq_")).read(table)
        assert one.num_rows > 0
        assert one.equals(ParquetSink(tmp_path / "two", TableNaming(prefix="eq_")).read(table)), table.base_name
    assert (tmp_path / "one" / "eq_equities_market_data").is_dir()


@pytest.mark.parametrize(
    "argv", [["fx", "--mode", "faster-than-life", "--no_such_flag", "1"], ["fx", "--seed"], ["bonds"]]
)
def test_argument_errors_are_one_line_too(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "error:" in err, err


def test_equities_timestamp_column_from_env_names_the_parquet_column_and_resumes(tmp_path, capsys, monkeypatch):
    """MKT_EQUITIES_TIMESTAMP_COLUMN=timestamp: the public script's column name in every file; a re-run finds its rows."""
    from mkt_pipeline.core.tables import equities_tables

    monkeypatch.setenv("MKT_EQUITIES_TIMESTAMP_COLUMN", "timestamp")
    args = ["equities", "--mode", "faster-than-life", "--sink", "parquet", "--parquet_dir", str(tmp_path), "--prefix", "eq_",
            "--market_data_min_eps", "300", "--market_data_max_eps", "400", "--trades_min_eps", "50", "--trades_max_eps", "80",
            "--min_levels", "3", "--max_levels", "3", "--start_ts", "2025-11-11T15:00:00Z", "--end_ts", "2025-11-11T15:00:05Z"]  # fmt: skip
    assert main(args) == 0
    sink = ParquetSink(tmp_path, TableNaming(prefix="eq_"))
    for schema in equities_tables("timestamp"):
        table = sink.read(schema)
        assert table.num_rows > 0 and table.column_names[0] == "timestamp" and "timestamp_ns" not in table.column_names
        assert str(table.schema.field("timestamp").type) == "timestamp[ns, tz=UTC]"
    capsys.readouterr()
    assert main(args) == 0 and "nothing to do" in capsys.readouterr().out


def test_invalid_timestamp_column_exits_2_naming_flag_or_variable(tmp_path, capsys, monkeypatch):
    base = ["equities", "--mode", "faster-than-life", "--sink", "parquet", "--parquet_dir", str(tmp_path / "out")]
    assert main([*base, "--timestamp_column", "ts"]) == 2
    assert capsys.readouterr().err.strip().endswith("--timestamp_column: 'ts' is not one of timestamp_ns, timestamp")
    monkeypatch.setenv("MKT_EQUITIES_TIMESTAMP_COLUMN", "TIMESTAMP")
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.endswith("MKT_EQUITIES_TIMESTAMP_COLUMN: 'TIMESTAMP' is not one of timestamp_ns, timestamp")
        and len(err.splitlines()) == 1
    )
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# checked before anything is created: bounds, the window, the dataset folder, names of variables


@pytest.mark.parametrize(
    "market,args,needle",
    [
        (
            "fx",
            FTL + ["--end_ts", "2025-11-11T03:00:00Z"],
            "--end_ts (2025-11-11T03:00:00.000000Z) is not in the future: without --start_ts the run starts now",
        ),
        (
            "fx",
            RT + ["--end_ts", "2025-11-11T03:00:00Z"],
            "--end_ts (2025-11-11T03:00:00.000000Z) is not in the future: real-time runs from now",
        ),
        (
            "fx",
            FTL + ["--start_ts", "1969-12-31T23:59:59Z"],
            "--start_ts: 1969-12-31T23:59:59Z must lie between 1970-01-01T00:00:00Z and 2262-04-11T23:47:16Z",
        ),
        (
            "fx",
            FTL + ["--start_ts", "9999-01-01T00:00:00Z"],
            "--start_ts: 9999-01-01T00:00:00Z must lie between 1970-01-01T00:00:00Z and 2262-04-11T23:47:16Z",
        ),
        (
            "equities",
            FTL + ["--start_ts", "2025-01-01T00:00:00Z", "--end_ts", "2263-01-01T00:00:00Z"],
            "--end_ts: 2263-01-01T00:00:00Z must lie between",
        ),
        ("fx", FTL + ["--max_levels", "100000"], "--max_levels must be <= 200 (got 100000)"),
        ("equities", FTL + ["--max_levels", "100000"], "--max_levels must be <= 200 (got 100000)"),
        ("fx", FTL + ["--lei_pool_size", "1000000000"], "--lei_pool_size must be <= 100_000 (got 1_000_000_000)"),
        (
            "fx",
            FTL + ["--total_market_data_events", "1e30"],
            "--total_market_data_events must be <= 10_000_000_000 (got 1_000_000_000_000_000_000_000_000_000_000)",
        ),
        ("fx", FTL + ["--total_market_data_events", "2.5"], "--total_market_data_events: '2.5' is not an integer"),
        ("fx", FTL + ["--chunk_seconds", "86401"], "--chunk_seconds must be <= 86_400 (got 86_401)"),
        ("fx", FTL + ["--processes", "65"], "--processes must be <= 64 (got 65)"),
        ("fx", RT + ["--yahoo_refresh_secs", "1e6"], "--yahoo_refresh_secs must be <= 86_400 (got 1_000_000)"),
        ("equities", FTL + ["--market_data_max_eps", "2000000"], "--market_data_max_eps must be <= 1000000"),
    ],
)
def test_bounds_and_window_rules(tmp_path, capsys, market, args, needle):
    code = main([market, "--sink", "parquet", "--parquet_dir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_scientific_counts_are_whole_numbers(tmp_path):
    assert run(tmp_path, "--start_ts", "2025-11-11T03:00:00Z", "--total_market_data_events", "1e3") == 0
    assert 1_000 <= ParquetSink(tmp_path).read(FX_TABLES[0]).num_rows < 1_000 + 150


def test_bad_parquet_dir_is_named_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        cases = [
            ("", "--parquet_dir must not be empty"),
            (str(blocker), f"--parquet_dir {blocker} exists and is not a folder"),
            (str(blocker / "data"), f"--parquet_dir cannot create {blocker / 'data'}: {blocker} is not a folder"),
        ]
        import os

        if os.geteuid() != 0:  # root writes anywhere: the permission rule cannot show there
            cases.append(
                (str(locked / "data"), f"--parquet_dir cannot create {locked / 'data'}: {locked} is not writable")
            )
        for value, needle in cases:
            assert (
                main(
                    [
                        "fx",
                        *FTL,
                        "--sink",
                        "parquet",
                        "--parquet_dir",
                        value,
                        "--start_ts",
                        "2025-11-11T03:00:00Z",
                        "--end_ts",
                        "2025-11-11T03:00:02Z",
                    ]
                )
                == 2
            )
            err = capsys.readouterr().err.strip()
            assert needle in err and len(err.splitlines()) == 1, err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "locked"]  # nothing in the working directory
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"QUESTDB_PG_PORT": "abc"}, "QUESTDB_PG_PORT: 'abc' is not a valid pg_port"),
        ({"QUESTDB_PG_PORT": "99999"}, "QUESTDB_PG_PORT: 99999 is not a TCP port (1-65535)"),
        ({"QUESTDB_HTTP_PORT": "0"}, "QUESTDB_HTTP_PORT: 0 is not a TCP port"),
        ({"QUESTDB_PROTOCOL": "udp"}, "QUESTDB_PROTOCOL: 'udp' must be one of http, https, tcp, tcps"),
        ({"MKT_FX_MAX_LEVELS": "100000"}, "MKT_FX_MAX_LEVELS must be <= 200 (got 100000)"),
        ({"MKT_FX_PG_PORT": "70000"}, "MKT_FX_PG_PORT: 70000 is not a TCP port"),
        ({"MKT_FX_LEI_POOL_SIZE": "0"}, "MKT_FX_LEI_POOL_SIZE must be > 0"),
        (
            {"MKT_PARQUET_DIR": "", "MKT_SINK": "parquet", "MKT_FX_PARQUET_DIR": " "},
            "MKT_FX_PARQUET_DIR must not be empty",
        ),
    ],
)
def test_errors_from_variables_name_the_variable(clean_env, monkeypatch, capsys, env, needle):
    import mkt_pipeline.cli as cli

    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(cli, "make_sink", lambda opts: pytest.fail("a sink was opened"))
    assert main(["fx", *FTL, "--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:00:02Z"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert "--" not in err.split("error: ", 1)[1].split(" ")[0]  # the variable, not a flag the user never typed


def test_a_flag_typed_on_the_command_line_is_named_as_the_flag(clean_env, monkeypatch, capsys):
    monkeypatch.setenv("QUESTDB_PG_PORT", "8812")
    assert main(["fx", *FTL, "--pg_port", "99999"]) == 2
    assert "--pg_port: 99999 is not a TCP port" in capsys.readouterr().err

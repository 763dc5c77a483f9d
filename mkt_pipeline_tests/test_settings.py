"""The settings model: bad input found by trying to break the CLI, the structured error, the reference pages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.core.engine import ConfigError

ROOT = Path(__file__).resolve().parents[1]
WINDOW = ["--start_ts", "2025-11-11T03:00:00Z", "--end_ts", "2025-11-11T03:00:02Z"]
FTL = ["fx", "--mode", "faster-than-life", *WINDOW]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["--seed", "18446744073709551616"],
            "--seed must be <= 9_223_372_036_854_775_807 (got 18_446_744_073_709_551_616)",
        ),
        (
            ["--seed", str(2**63)],
            "--seed must be <= 9_223_372_036_854_775_807 (got 9_223_372_036_854_775_808)",
        ),  # not clamped
        (["--parquet_dir", "/proc/x"], "--parquet_dir /proc/x lies in /proc, a kernel file system"),
        (["--parquet_dir", "/sys/kernel/x"], "--parquet_dir /sys/kernel/x lies in /sys, a kernel file system"),
        (["--parquet_dir", "/tmp/" + "a" * 300], "--parquet_dir has a name longer than 255 bytes"),
        (["--host", "127.0.0.1:29500"], "--host: '127.0.0.1:29500' is a host name or IP address only"),
        (["--host", "https://db.example.com"], "--host: 'https://db.example.com' is a host name or IP address only"),
        (
            ["--start_ts", "2025-11-11T03:00:00.123456789Z"],
            "--start_ts: '2025-11-11T03:00:00.123456789Z' has more than 6 fractional digits",
        ),
    ],
)
def test_bad_flags_exit_2_with_one_line_before_anything_is_created(tmp_path, monkeypatch, capsys, args, needle):
    import mkt_pipeline.cli as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "make_sink", lambda opts: pytest.fail("a sink was opened"))
    started = time.perf_counter()
    assert main([*FTL, "--sink", "parquet", *args]) == 2
    assert time.perf_counter() - started < 5  # checked up front, not after a connection attempt
    assert needle in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_host_with_a_port_is_rejected_before_any_connection(monkeypatch, capsys):
    import mkt_pipeline.cli as cli

    monkeypatch.setattr(cli, "make_sink", lambda opts: pytest.fail("a sink was opened"))
    assert main([*FTL, "--sink", "questdb", "--host", "127.0.0.1:29500"]) == 2
    assert "--host: '127.0.0.1:29500'" in one_error_line(capsys)


def test_empty_token_file_is_rejected(tmp_path, monkeypatch, capsys):
    import mkt_pipeline.cli as cli

    empty = tmp_path / "token"
    empty.write_text("\n")
    monkeypatch.setattr(cli, "make_sink", lambda opts: pytest.fail("a sink was opened"))
    for value, needle in ((str(empty), f"--token_file: {empty} is empty"), ("", "--token_file must not be empty")):
        assert main([*FTL, "--sink", "questdb", "--token_file", value]) == 2
        assert needle in one_error_line(capsys)


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"MKT_PARQUET_DIR": "/proc/x"}, "MKT_PARQUET_DIR /proc/x lies in /proc"),
        ({"MKT_OFFLINE": "banana"}, "MKT_OFFLINE: 'banana' is not a boolean (use true/false, 1/0 or yes/no)"),
        ({"MKT_FX_SEED": "-1"}, "MKT_FX_SEED must be >= 0 (got -1)"),
        ({"MKT_SEED": str(2**64)}, "MKT_SEED must be <= 9_223_372_036_854_775_807"),
        ({"MKT_FX_HOST": "db:9000"}, "MKT_FX_HOST: 'db:9000' is a host name or IP address only"),
    ],
)
def test_bad_variables_are_named(clean_env, tmp_path, monkeypatch, capsys, env, needle):
    monkeypatch.chdir(tmp_path)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert (
        main(
            [*FTL, "--sink", "parquet"]
            if "MKT_PARQUET_DIR" in env
            else [*FTL, "--sink", "parquet", "--parquet_dir", "out"]
        )
        == 2
    )
    assert needle in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_parquet_commit_seconds_is_checked_for_a_real_time_run(clean_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MKT_PARQUET_COMMIT_SECONDS", "abc")
    assert main(["fx", "--mode", "real-time", "--sink", "parquet", "--parquet_dir", str(tmp_path / "out")]) == 2
    assert "MKT_PARQUET_COMMIT_SECONDS: 'abc' is not an integer" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_bad_variable_never_breaks_help_or_import():
    env = {**os.environ, "MKT_PARQUET_COMMIT_SECONDS": "abc", "MKT_OFFLINE": "banana"}
    run = subprocess.run(
        [sys.executable, "-m", "mkt_pipeline.cli", "fx", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and "--parquet_dir" in run.stdout and "Traceback" not in run.stderr, run.stderr


@pytest.mark.parametrize("abbreviated", ["--suf", "--seed_", "--parq"])
def test_abbreviated_flags_are_rejected(capsys, abbreviated):
    with pytest.raises(SystemExit) as exc:
        main([*FTL, abbreviated, "x"])
    assert exc.value.code == 2 and "unrecognized arguments" in one_error_line(capsys)


def test_booleans_of_variables_take_the_same_words(clean_env, monkeypatch):
    from mkt_pipeline.settings import deployment

    for word, value in (("yes", True), ("0", False), ("TRUE", True), ("no", False)):
        assert deployment("MKT_OFFLINE", {"MKT_OFFLINE": word}) is value
    with pytest.raises(ConfigError, match=r"^MKT_OFFLINE: 'maybe' is not a boolean"):
        deployment("MKT_OFFLINE", {"MKT_OFFLINE": "maybe"})


def test_one_error_rendered_by_each_face():
    from mkt_pipeline.fx.engine import FxConfig

    with pytest.raises(ConfigError) as caught:
        FxConfig(min_levels=9, max_levels=3).validate()
    err = caught.value
    assert (err.setting, err.settings) == ("min_levels", ("min_levels", "max_levels"))
    assert err.render() == "--min_levels (9) must be <= --max_levels (3)"
    assert err.render(lambda s: f"config key {s}") == "config key min_levels (9) must be <= config key max_levels (3)"
    assert err.named(max_levels="MKT_FX_MAX_LEVELS").render() == "--min_levels (9) must be <= MKT_FX_MAX_LEVELS (3)"


def test_engine_defaults_are_written_once():
    from dataclasses import fields

    from mkt_pipeline.equities.engine import EquitiesConfig
    from mkt_pipeline.fx.engine import FxConfig
    from mkt_pipeline.settings import GENERATION_FLAGS

    for market, config in (("fx", FxConfig), ("equities", EquitiesConfig)):
        defaults = {f.name: f.default for f in fields(config)}
        assert {f.name: f.default for f in GENERATION_FLAGS[market]} == defaults


def test_reference_pages_are_up_to_date(tmp_path, capsys):
    """docs/reference is generated from the settings model: regenerate it (make reference) when this fails.

    ``make docs`` runs the same check (``--check``), which writes nothing and fails on a stale page."""
    from mkt_pipeline.settings_docs import main, render_pages

    for name, text in render_pages().items():
        committed = ROOT / "docs" / "reference" / name
        assert committed.exists() and committed.read_text() == text, (
            f"docs/reference/{name} is stale: run make reference"
        )
    assert main(["--check", str(ROOT / "docs" / "reference"), str(ROOT / "docker" / "entrypoint.sh")]) == 0
    # a stale copy fails the check, names the file and is left as it was
    stale = tmp_path / "configuration.md"
    stale.write_text("an old page\n")
    (tmp_path / "cli.md").write_text(render_pages()["cli.md"])
    capsys.readouterr()
    assert main(["--check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{stale} is stale" in out and "make reference" in out and "cli.md" not in out
    assert stale.read_text() == "an old page\n"


def test_client_conf_string_is_accepted_below_the_questdb_variables(clean_env, monkeypatch, tmp_path):
    from mkt_pipeline.cli import parse_options, questdb_settings

    for var in [v for v in os.environ if v.startswith("QUESTDB_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv(
        "QDB_CLIENT_CONF", "https::addr=db.example:19000;username=ingest;password=conf-secret;tls_verify=unsafe_off;"
    )
    s = questdb_settings(parse_options(["fx"]))
    assert (s.protocol, s.host, s.http_port, s.user, s.password, s.tls_verify) == (
        "https",
        "db.example",
        19000,
        "ingest",
        "conf-secret",
        "unsafe_off",
    )
    monkeypatch.setenv("QUESTDB_HOST", "other.example")  # a QUESTDB_* variable wins over the connect string
    assert questdb_settings(parse_options(["fx"])).host == "other.example"
    assert (
        questdb_settings(parse_options(["fx", "--host", "flag.example"])).host == "flag.example"
    )  # and a flag over both


@pytest.mark.parametrize(
    "conf,needle",
    [
        ("mysql::addr=db:1;", "QDB_CLIENT_CONF: must start with http::, https::, tcp:: or tcps::"),
        ("http::addr=db:99999;", "QDB_CLIENT_CONF: addr 'db:99999' is not host:port"),
        ("http::addr=db:9000;pasword=x;", "QDB_CLIENT_CONF: unknown key 'pasword'"),
    ],
)
def test_bad_client_conf_is_named(clean_env, monkeypatch, capsys, conf, needle):
    monkeypatch.setenv("QDB_CLIENT_CONF", conf)
    assert main([*FTL, "--sink", "questdb"]) == 2
    err = one_error_line(capsys)
    assert needle in err and "conf-secret" not in err


def test_container_entrypoint_flag_lists_come_from_the_model():
    from mkt_pipeline.settings_docs import render_entrypoint

    text = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert render_entrypoint(text) == text, "docker/entrypoint.sh flag lists are stale: run make reference"


@pytest.mark.questdb
def test_client_conf_string_reaches_the_real_server(questdb, qdb_suffix, monkeypatch, capsys):
    """QDB_CLIENT_CONF alone (no host or HTTP port flag) points the run at the server; rows land there."""
    from mkt_pipeline.core.tables import FX_TABLES
    from mkt_pipeline.sinks.base import TableNaming

    for var in [v for v in os.environ if v.startswith("QUESTDB_") and v != "QUESTDB_PASSWORD"]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("QDB_CLIENT_CONF", f"http::addr={questdb.host}:{questdb.http_port};username=admin;")
    light = "--market_data_min_eps 110 --market_data_max_eps 150 --core_min_eps 70 --core_max_eps 100 --min_levels 5"
    args = ["fx", "--mode", "faster-than-life", *WINDOW, "--pg_port", str(questdb.pg_port), "--suffix", qdb_suffix]
    args += [*light.split(), "--max_levels", "5"]
    assert main(args) == 0, capsys.readouterr().err
    assert f"questdb {questdb.host}:{questdb.http_port}" in capsys.readouterr().out
    table = TableNaming(suffix=qdb_suffix).name(FX_TABLES[0])
    questdb.wait_until(lambda: int(questdb.query(f"SELECT count() FROM {table}")[0][0]) >= 2 * 110, 60, "rows")

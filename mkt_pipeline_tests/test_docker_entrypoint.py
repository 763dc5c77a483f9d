"""docker/entrypoint.sh: the seed scripts' environment variables become mkt-pipeline flags.

Docker is not needed: the script runs under bash with a stub ``mkt-pipeline`` on PATH that prints
the arguments and environment it receives.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mkt_pipeline.cli import market_flags

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="bash not available")

STUB = """#!/bin/sh
for arg in "$@"; do echo "ARG $arg"; done
env | grep -E '^(QUESTDB_|TOKEN|PASSWORD)' | sed 's/^/ENV /'
"""


@pytest.fixture
def stub_path(tmp_path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "mkt-pipeline"
    stub.write_text(STUB)
    stub.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def entrypoint(
    path: str, env: dict[str, str], *args: str
) -> tuple[list[str], dict[str, str], subprocess.CompletedProcess]:
    proc = subprocess.run(
        [BASH, str(ENTRYPOINT), *args], env={"PATH": path, **env}, capture_output=True, text=True, timeout=30
    )
    argv = [line[4:] for line in proc.stdout.splitlines() if line.startswith("ARG ")]
    seen = dict(line[4:].split("=", 1) for line in proc.stdout.splitlines() if line.startswith("ENV "))
    return argv, seen, proc


def pairs(argv: list[str]) -> dict[str, str]:
    flags = argv[1:]
    return {flags[i][2:]: flags[i + 1] for i in range(0, len(flags), 2)}


def test_seed_docker_example(stub_path):
    env = {
        "HOST": "172.31.42.41",
        "TOKEN": "tok-d",
        "TOKEN_X": "tok-x",
        "TOKEN_Y": "tok-y",
        "ILP_USER": "ilp_ingest",
        "MARKET_DATA_MIN_EPS": "1200",
        "MARKET_DATA_MAX_EPS": "2500",
        "CORE_MIN_EPS": "700",
        "CORE_MAX_EPS": "1000",
        "ORDERS_MIN_PER_SEC": "5",
        "ORDERS_MAX_PER_SEC": "30",
        "LEI_POOL_SIZE": "2000",
    }
    argv, seen, proc = entrypoint(stub_path, env)
    assert proc.returncode == 0, proc.stderr
    assert argv[0] == "fx"
    assert pairs(argv) == {
        "mode": "real-time",
        "host": "172.31.42.41",
        "ilp_user": "ilp_ingest",
        "market_data_min_eps": "1200",
        "market_data_max_eps": "2500",
        "core_min_eps": "700",
        "core_max_eps": "1000",
        "orders_min_per_sec": "5",
        "orders_max_per_sec": "30",
        "lei_pool_size": "2000",
    }
    # secrets reach the CLI as QUESTDB_* variables, never as arguments
    assert (seen["QUESTDB_TOKEN"], seen["QUESTDB_TOKEN_X"], seen["QUESTDB_TOKEN_Y"]) == ("tok-d", "tok-x", "tok-y")
    assert not any(a.startswith("tok-") for a in argv) and "TOKEN" not in seen


def test_every_flag_has_its_variable_and_arguments_come_last(stub_path):
    for market in ("fx", "equities"):
        names = [f.name for f in market_flags(market) if not f.secret and f.name != "mode"]
        env = {name.upper(): f"v_{name}" for name in names}
        argv, _, proc = entrypoint(stub_path, {**env, "MARKET": market, "MODE": "faster-than-life"}, "--processes", "4")
        assert proc.returncode == 0, proc.stderr
        assert argv[0] == market and argv[1:3] == ["--mode", "faster-than-life"]
        assert argv[-2:] == ["--processes", "4"]  # argparse keeps the last value: arguments override variables
        assert pairs(argv[:-2]) == {"mode": "faster-than-life", **{n: f"v_{n}" for n in names}}


def test_market_argument_and_other_markets_flags_are_not_passed(stub_path):
    env = {
        "CORE_MIN_EPS": "700",
        "LEI_POOL_SIZE": "10",
        "TRADES_MIN_EPS": "300",
        "OFFSESSION_TRADES": "trickle",
        "PREFIX": "eq_",
    }
    argv, _, _ = entrypoint(stub_path, env, "equities", "--session_pacing", "false")
    assert argv == [
        "equities",
        "--mode",
        "real-time",
        "--trades_min_eps",
        "300",
        "--offsession_trades",
        "trickle",
        "--prefix",
        "eq_",
        "--session_pacing",
        "false",
    ]
    argv, _, _ = entrypoint(stub_path, env)
    assert argv == ["fx", "--mode", "real-time", "--core_min_eps", "700", "--lei_pool_size", "10"]


def test_explicit_questdb_variables_win_over_seed_names(stub_path):
    _, seen, _ = entrypoint(stub_path, {"TOKEN": "seed-token", "QUESTDB_TOKEN": "qdb-token", "PASSWORD": "pw-1234"})
    assert seen["QUESTDB_TOKEN"] == "qdb-token" and seen["QUESTDB_PASSWORD"] == "pw-1234"


def test_other_commands_run_as_given_and_bad_market_fails(stub_path):
    proc = subprocess.run(
        [BASH, str(ENTRYPOINT), "echo", "dagster", "here"], env={"PATH": stub_path}, capture_output=True, text=True
    )
    assert proc.stdout.strip() == "dagster here"
    _, _, proc = entrypoint(stub_path, {"MARKET": "crypto"})
    assert proc.returncode == 2 and "MARKET must be fx or equities" in proc.stderr


def test_flag_lists_match_the_cli():
    text = ENTRYPOINT.read_text()

    def words(var: str) -> set[str]:
        return set(re.search(rf'^{var}="([^"]*)"', text, re.M).group(1).split())

    common, secrets = words("COMMON_FLAGS"), words("SECRET_FLAGS")
    for market in ("fx", "equities"):
        assert common | words(f"{market.upper()}_FLAGS") | secrets == {f.name for f in market_flags(market)}
    assert secrets == {f.name for f in market_flags("fx") if f.secret}


def test_entrypoint_drives_the_real_cli(tmp_path):
    """End to end with the installed command: a 3-second faster-than-life run into Parquet."""
    bin_dir = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
    if not (bin_dir / "mkt-pipeline").exists():
        pytest.skip("mkt-pipeline is not installed")
    env = {
        "MKT_OFFLINE": "1",
        "HOME": str(tmp_path),
        "MODE": "faster-than-life",
        "SINK": "parquet",
        "PARQUET_DIR": str(tmp_path / "data"),
        "START_TS": "2025-11-11T03:00:00Z",
        "END_TS": "2025-11-11T03:00:03Z",
        "MARKET_DATA_MIN_EPS": "110",
        "MARKET_DATA_MAX_EPS": "150",
        "CORE_MIN_EPS": "70",
        "CORE_MAX_EPS": "100",
        "MIN_LEVELS": "5",
        "MAX_LEVELS": "5",
    }
    argv, _, proc = entrypoint(f"{bin_dir}:/usr/bin:/bin", env)
    assert proc.returncode == 0, proc.stderr
    assert "market_data" in proc.stdout and (tmp_path / "data" / "market_data").is_dir()

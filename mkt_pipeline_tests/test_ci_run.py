"""``.ci/run``: ``make lint`` and ``make docs`` first; then with ``../shared/questdb`` it starts a server,
exports where it is, runs ``make test`` and stops the server however the tests end; without it,
``make test`` runs alone.

The script runs for real in a scratch layout (``repo/.ci/run`` beside ``shared/questdb``) with
stand-ins for ``make`` and the ``qdb`` script that record how they were called.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "run"

FAKE_MAKE = """#!/usr/bin/env bash
if [ "$1" != test ] && [ "$1" != test-ilp ]; then echo "make $*" >> "$CALLS"; exit "${MAKE_STATUS_CHECKS:-0}"; fi
{ echo "make $*"; echo "QDB_TEST_HOST=${QDB_TEST_HOST:-}"; echo "QDB_TEST_PG_PORT=${QDB_TEST_PG_PORT:-}";
  echo "QDB_TEST_ILP_PORT=${QDB_TEST_ILP_PORT:-}"; echo "QDB_SERVER_SCRIPT=${QDB_SERVER_SCRIPT:-}";
  echo "QDB_VERSION=${QDB_VERSION:-}"; } >> "$CALLS"
exit "${MAKE_STATUS:-0}"
"""
FAKE_QDB = """#!/usr/bin/env bash
echo "qdb $*" >> "$CALLS"
if [ "$1" = start ]; then shift; while [ $# -gt 0 ]; do [ "$1" = --root ] && touch "$2/qdb.pid"; shift; done; fi
"""


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def layout(tmp_path: Path, with_server: bool) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / ".ci" / "run")
    executable(tmp_path / "bin" / "make", FAKE_MAKE)
    if with_server:
        executable(tmp_path / "shared" / "questdb" / "qdb", FAKE_QDB)
        (tmp_path / "shared" / "questdb").chmod(0o555)  # CI's copy is read-only
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "TMPDIR": str(scratch),
    }
    for var in ("QDB_TEST_HOST", "QDB_TEST_PG_PORT", "QDB_TEST_ILP_PORT", "QDB_SERVER_SCRIPT", "QDB_VERSION"):
        env.pop(var, None)
    return repo, env


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def started(lines: list[str]) -> list[dict[str, str]]:
    out = []
    for line in lines:
        if line.startswith("qdb start"):
            words = line.split()
            out.append({**dict(zip(words[2::2], words[3::2])), "conf": " ".join(w for w in words if "=" in w)})
    return out


@pytest.mark.parametrize("make_status", [0, 3])
def test_starts_a_server_exports_it_and_stops_it_whatever_happens(tmp_path, make_status):
    """9.4 for ``make test``; then, when that passed, 9.3 for ``make test-ilp``; each stopped however it ends."""
    repo, env = layout(tmp_path, with_server=True)
    done = subprocess.run(
        ["bash", str(repo / ".ci" / "run")],
        env={**env, "MAKE_STATUS": str(make_status)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == make_status, done.stderr
    lines = calls(tmp_path)
    assert lines[:2] == ["make lint", "make docs"]  # before any server starts
    servers = started(lines)
    assert [s["--version"] for s in servers] == (["9.4", "9.3"] if make_status == 0 else ["9.4"])
    makes = [line for line in lines if line.startswith("make ")][2:]  # after make lint, make docs
    assert makes == (["make test", "make test-ilp"] if make_status == 0 else ["make test"])
    for server, make in zip(servers, makes):
        root = server["--root"]
        assert "dev.mode.enabled=true" in server["conf"]
        assert root.startswith(str(tmp_path / "scratch"))  # a temporary folder, not the read-only shared one
        http, pg, ilp = server["--http"], server["--pg"], server["--ilp"]
        assert len({http, pg, ilp, server["--min"]}) == 4
        at = lines.index(make)
        assert lines[at + 1 : at + 6] == [
            f"QDB_TEST_HOST=127.0.0.1:{http}", f"QDB_TEST_PG_PORT={pg}", f"QDB_TEST_ILP_PORT={ilp}",
            f"QDB_SERVER_SCRIPT={tmp_path / 'shared' / 'questdb' / 'qdb'}", f"QDB_VERSION={'9.3' if make == 'make test-ilp' else ''}",
        ]  # fmt: skip
        assert f"qdb stop {root}" in lines[at + 6 :]  # after its tests, pass or fail
        assert not Path(root).exists()
    assert lines[-1] == f"qdb stop {servers[-1]['--root']}"


def test_without_the_shared_folder_make_test_runs_alone(tmp_path):
    repo, env = layout(tmp_path, with_server=False)
    done = subprocess.run(["bash", str(repo / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == [
        "make lint", "make docs", "make test",
        "QDB_TEST_HOST=", "QDB_TEST_PG_PORT=", "QDB_TEST_ILP_PORT=", "QDB_SERVER_SCRIPT=", "QDB_VERSION=",
    ]  # fmt: skip
    assert "the questdb tests will skip" in done.stderr


def test_a_lint_failure_stops_before_any_server_or_test(tmp_path):
    repo, env = layout(tmp_path, with_server=True)
    done = subprocess.run(
        ["bash", str(repo / ".ci" / "run")],
        env={**env, "MAKE_STATUS_CHECKS": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert calls(tmp_path) == ["make lint"]

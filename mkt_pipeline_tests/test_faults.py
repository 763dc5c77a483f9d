"""Faults outside the server: a CA file that is not PEM, a full disk under the Parquet dataset.

Both end as the project promises: bad input exits 2 with one line naming the flag and the rule
before anything is created; a fault exits 1 with one line naming where (path or host and port),
the table and the cause, leaves nothing half-written, and a re-run completes identically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.questdb_server import closed_port
from mkt_pipeline_tests.tls_files import self_signed_pem

LIGHT_FX = [
    *"--market_data_min_eps 110 --market_data_max_eps 150 --core_min_eps 70 --core_max_eps 100".split(),
    *"--min_levels 5 --max_levels 5".split(),
]
WINDOW = [
    "--mode", "faster-than-life", "--chunk_seconds", "60",
    "--start_ts", "2025-06-02T14:00:00Z", "--end_ts", "2025-06-02T14:06:00Z",
]  # fmt: skip


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mkt-pipeline: error:")]
    assert len(err) == 1, err
    return err[0]


# ---------------------------------------------------------------------------------------------
# the CA bundle of TLS verification


@pytest.mark.parametrize(
    "content,rule",
    [
        (b"myhost\n", "is not a PEM CA bundle (no '-----BEGIN CERTIFICATE-----' block)"),
        (
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
            "holds no loadable PEM certificate",
        ),
    ],
)
def test_a_ca_file_that_is_not_a_pem_bundle_exits_2_before_anything(clean_env, tmp_path, capsys, content, rule):
    ca = tmp_path / "hostname"
    ca.write_bytes(content)
    port = closed_port()  # nothing may be contacted: validation comes first
    started = time.monotonic()
    ports = ["--http_port", str(port), "--pg_port", str(port)]
    code = main(["fx", *WINDOW, "--protocol", "https", "--tls_ca", str(ca), *ports])
    assert code == 2
    assert one_error_line(capsys) == f"mkt-pipeline: error: --tls_ca: {ca} {rule}"
    assert time.monotonic() - started < 1.0


def test_the_ca_variable_is_named_when_it_set_the_file(clean_env, tmp_path, capsys, monkeypatch):
    ca = tmp_path / "hostname"
    ca.write_text("myhost\n")
    monkeypatch.setenv("QUESTDB_TLS_CA", str(ca))
    assert main(["fx", *WINDOW, "--protocol", "https"]) == 2
    assert one_error_line(capsys).startswith(f"mkt-pipeline: error: QUESTDB_TLS_CA: {ca} is not a PEM CA bundle")


@pytest.mark.questdb
def test_a_pem_bundle_passes_and_a_failed_handshake_names_host_and_port(
    clean_env, questdb, qdb_suffix, tmp_path, capsys
):
    ca = self_signed_pem(tmp_path / "ca.pem")
    tls = ["--protocol", "https", "--tls_ca", str(ca)]
    args = [*questdb.cli_flags(), "--suffix", qdb_suffix, *LIGHT_FX, *WINDOW, *tls]
    assert main(["fx", *args]) == 1  # the open-source server speaks no TLS
    line = one_error_line(capsys)
    where = f"QuestDB at {questdb.host}:{questdb.http_port} (ILP over https)"
    assert line.startswith(f"mkt-pipeline: error: QuestDBTlsError: {where}: TLS"), line
    assert [r for r in questdb.query("SELECT table_name FROM tables()") if r[0].endswith(qdb_suffix)] == []


# ---------------------------------------------------------------------------------------------
# a full disk under the Parquet dataset


@contextmanager
def small_tmpfs(size: str):
    """A tmpfs of ``size`` mounted on a fresh folder (skips where mounting is not allowed)."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the disk-full test runs where it can")
    where = Path(f"/tmp/mkt-full-{uuid.uuid4().hex[:8]}")
    where.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode != 0:
        where.rmdir()
        why = done.stderr.strip() or done.returncode
        pytest.skip(f"cannot mount a tmpfs here ({why}); the disk-full test needs one")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)
        where.rmdir()


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


def test_a_full_disk_stops_the_parquet_run_with_one_line_and_a_rerun_completes_identically(clean_env, tmp_path, capsys):
    args = ["--sink", "parquet", *LIGHT_FX, *WINDOW]
    assert main(["fx", *args, "--parquet_dir", str(tmp_path)]) == 0  # the reference: a disk with room
    capsys.readouterr()
    with small_tmpfs("1m") as full:
        data = full / "data"
        assert main(["fx", *args, "--parquet_dir", str(data)]) == 1
        line = one_error_line(capsys)
        assert line.startswith(f"mkt-pipeline: error: ParquetSinkError: Parquet dataset at {data} (table "), line
        assert ": no space left on device; the unfinished chunk was discarded" in line and "Errno" not in line, line
        table = line.split("(table ", 1)[1].split(",", 1)[0]
        assert table in {TableNaming().name(s) for s in FX_TABLES} | {"chunk_ledger"}, line
        assert f"writing {data}/" in line, line
        assert leftovers(data) == []
        # room again: the same command completes, and the dataset equals the one written at once
        subprocess.run(["mount", "-o", "remount,size=64m", str(full)], check=True)
        assert main(["fx", *args, "--parquet_dir", str(data)]) == 0, capsys.readouterr().err
        assert leftovers(data) == []
        want, got = ParquetSink(tmp_path), ParquetSink(data)
        for schema in FX_TABLES:
            assert got.read(schema).equals(want.read(schema)), schema.base_name
        assert all(want.read(s).num_rows > 0 for s in FX_TABLES)

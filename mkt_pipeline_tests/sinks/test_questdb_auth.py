"""Authentication against a real QuestDB started by this module: HTTP basic auth for ILP, a PG
password, and TCP JWK keys, each with right and wrong credentials, through the command line.

The server is the shared ``qdb`` script's (``QDB_SERVER_SCRIPT`` or ``../shared/questdb/qdb``), on
free ports unless ``QDB_TEST_AUTH_PORTS=http,pg,ilp,health`` names them, in a temporary folder
removed afterwards. A refused credential must stop the run before any table exists, in one line
that says "authentication failed", within seconds, and no secret may appear in any output.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import time

import pytest

from mkt_pipeline.cli import main
from mkt_pipeline.core.tables import FX_TABLES
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.ledger import LEDGER_BASE
from mkt_pipeline_tests.conftest import LIGHT_FLAGS
from mkt_pipeline_tests.questdb_server import QuestDBServer, own_server

pytestmark = pytest.mark.questdb

PASSWORD = "s3cret-Pg-and-Http"
KEY_ID = "ilp_ingest"
LIGHT = LIGHT_FLAGS["fx"]
WINDOW = ["--start_ts", "2025-06-02T14:00:00Z", "--end_ts", "2025-06-02T14:00:05Z"]


def new_jwk() -> tuple[object, tuple[str, str, str]]:
    """An EC P-256 key and its JWK (d, x, y), base64url without padding."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.private_numbers()

    def b64(value: int) -> str:
        return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()

    return key, (b64(numbers.private_value), b64(numbers.public_numbers.x), b64(numbers.public_numbers.y))


_, JWK = new_jwk()
_, OTHER_JWK = new_jwk()  # valid, but unknown to the server


@pytest.fixture(scope="module")
def auth_server():
    ports = (
        [int(p) for p in os.environ["QDB_TEST_AUTH_PORTS"].split(",")]
        if os.environ.get("QDB_TEST_AUTH_PORTS")
        else None
    )

    def write_auth_file(root):
        (root / "conf").mkdir(parents=True, exist_ok=True)
        (root / "conf" / "auth.txt").write_text(f"{KEY_ID} ec-p-256-sha256 {JWK[1]} {JWK[2]}\n")

    settings = (
        "http.user=admin", f"http.password={PASSWORD}", "pg.user=admin", f"pg.password={PASSWORD}",
        "line.tcp.auth.db.path=conf/auth.txt",  # relative to the server's root
    )  # fmt: skip
    with own_server(*settings, ports=ports, prepare=write_auth_file) as server:
        yield dataclasses.replace(server, password=PASSWORD)


@pytest.fixture
def suffix(auth_server: QuestDBServer):
    name = f"_a{os.urandom(4).hex()}"
    yield name
    auth_server.drop_suffix(name)


@pytest.fixture
def clean_questdb_env(monkeypatch):
    for var in list(os.environ):
        if var.startswith("QUESTDB_"):
            monkeypatch.delenv(var)
    return monkeypatch


def run(server: QuestDBServer, suffix: str, capsys, *extra: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = main(
        [
            "fx",
            "--mode",
            "faster-than-life",
            *server.cli_flags(),
            "--suffix",
            suffix,
            *LIGHT,
            *WINDOW,
            "--create_views",
            "false",
            *extra,
        ]
    )
    elapsed = time.monotonic() - started
    out = capsys.readouterr()
    return code, out.out, out.err, elapsed


def tables_of(server: QuestDBServer, suffix: str) -> list[str]:
    return sorted(r[0] for r in server.query("SELECT table_name FROM tables()") if r[0].endswith(suffix))


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, *JWK, OTHER_JWK[0]):
            assert secret not in text


def assert_refused(server, suffix, code, out, err, elapsed, needle) -> None:
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and needle in err and "authentication failed" in err, err
    assert elapsed < 8, f"{elapsed:.1f}s: {err}"
    assert tables_of(server, suffix) == []
    assert_no_secret(out, err)


@pytest.fixture(params=["http", "ws"])
def http_protocol(request, auth_server):
    """ILP over HTTP, and QWP over WebSocket (same port, same credentials) where the server has it."""
    from mkt_pipeline.sinks.questdb import QuestDBSettings, qwp_offered

    if request.param == "ws":
        s = auth_server
        plain = QuestDBSettings(host=s.host, http_port=s.http_port, pg_port=s.pg_port, password=PASSWORD)
        if qwp_offered(plain) is not True:
            pytest.skip(f"the QuestDB at {s.host}:{s.http_port} has no QWP (QuestDB 9.4+ has)")
    return request.param


def test_http_basic_auth_and_pg_password(auth_server, suffix, capsys, clean_questdb_env, http_protocol):
    clean_questdb_env.setenv("QUESTDB_PASSWORD", PASSWORD)
    clean_questdb_env.setenv("QUESTDB_PROTOCOL", http_protocol)
    code, out, err, _ = run(auth_server, suffix, capsys)
    assert code == 0, err
    naming = TableNaming(suffix=suffix)
    assert tables_of(auth_server, suffix) == sorted([naming.name(s) for s in FX_TABLES] + [naming.name(LEDGER_BASE)])
    auth_server.wait_until(
        lambda: int(auth_server.query(f"SELECT count() FROM {naming.name(FX_TABLES[0])}")[0][0]) > 0, 60, "rows"
    )
    assert_no_secret(out, err)


def test_wrong_password_is_refused_before_any_table(auth_server, suffix, capsys, clean_questdb_env, http_protocol):
    clean_questdb_env.setenv("QUESTDB_PASSWORD", "wrong-password-value")
    clean_questdb_env.setenv("QUESTDB_PROTOCOL", http_protocol)
    code, out, err, elapsed = run(auth_server, suffix, capsys)
    # the HTTP port is asked first (basic auth): the same password serves PG wire
    wire = "QWP over ws" if http_protocol == "ws" else "ILP over http"
    assert_refused(
        auth_server, suffix, code, out, err, elapsed, f"QuestDB at {auth_server.host}:{auth_server.http_port} ({wire})"
    )
    assert "wrong-password-value" not in out + err


def test_pg_password_refused_when_ilp_accepts(auth_server, suffix, capsys, clean_questdb_env, http_protocol):
    # a bearer token is not basic auth: ILP (and QWP) refuse it; with the right password, PG wire would accept
    clean_questdb_env.setenv("QUESTDB_PROTOCOL", http_protocol)
    clean_questdb_env.setenv("QUESTDB_PASSWORD", PASSWORD)
    clean_questdb_env.setenv("QUESTDB_TOKEN", "a-bearer-token-the-server-does-not-know")
    code, out, err, elapsed = run(auth_server, suffix, capsys)
    assert_refused(auth_server, suffix, code, out, err, elapsed, "HTTP 401")
    assert "a-bearer-token-the-server-does-not-know" not in out + err


def test_tcp_jwk_right_key_writes_rows(auth_server, suffix, capsys, clean_questdb_env, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(JWK[0])
    clean_questdb_env.setenv("QUESTDB_PASSWORD", PASSWORD)
    clean_questdb_env.setenv("QUESTDB_TOKEN_X", JWK[1])
    clean_questdb_env.setenv("QUESTDB_TOKEN_Y", JWK[2])
    code, out, err, _ = run(
        auth_server, suffix, capsys, "--protocol", "tcp", "--ilp_user", KEY_ID, "--token_file", str(token_file)
    )
    assert code == 0, err
    name = TableNaming(suffix=suffix).name(FX_TABLES[0])
    auth_server.wait_until(
        lambda: int(auth_server.query(f"SELECT count() FROM {name}")[0][0]) > 0, 60, f"rows in {name}"
    )
    assert_no_secret(out, err)


@pytest.mark.parametrize("key_id,jwk", [(KEY_ID, OTHER_JWK), ("nobody", JWK)])
def test_tcp_jwk_wrong_key_is_refused_before_any_table(
    auth_server, suffix, capsys, clean_questdb_env, tmp_path, key_id, jwk
):
    token_file = tmp_path / "token"
    token_file.write_text(jwk[0])
    clean_questdb_env.setenv("QUESTDB_PASSWORD", PASSWORD)
    clean_questdb_env.setenv("QUESTDB_TOKEN_X", jwk[1])
    clean_questdb_env.setenv("QUESTDB_TOKEN_Y", jwk[2])
    code, out, err, elapsed = run(
        auth_server, suffix, capsys, "--protocol", "tcp", "--ilp_user", key_id, "--token_file", str(token_file)
    )
    assert_refused(
        auth_server,
        suffix,
        code,
        out,
        err,
        elapsed,
        f"QuestDB at {auth_server.host}:{auth_server.ilp_port} (ILP over tcp)",
    )
    assert "Broken pipe" not in err and "unreachable" not in err

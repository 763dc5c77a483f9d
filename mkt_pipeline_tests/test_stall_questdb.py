"""A frozen QuestDB (paused with SIGSTOP mid-run) is noticed and given up on, and a re-run completes.

The tests start a QuestDB of their own (``own_server``: pausing the shared server would stall every
other test), run the command line against it with a short stall timeout, pause the server once rows
are flowing, and check what the user sees: a warning naming host and port within half the timeout,
then exit status 1 with one line naming host, port, table and the stall timeout, well before the
timeout and the client's retries could add up to a hang. After SIGCONT, the same command completes,
and the stored rows are those of a run that was never interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from mkt_pipeline.core.tables import DOUBLE, FX_TABLES
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline_tests.questdb_server import QuestDBServer, own_server

pytestmark = pytest.mark.questdb

STALL_S = 6  # the tests' stall timeout: the warning comes after 3 s, the failure after 6 s
# the client retries an HTTP request for 10 s after the connection breaks; then the run must be over
GIVE_UP_WITHIN_S = STALL_S + 10 + 8
LIGHT_FX = [
    *"--market_data_min_eps 110 --market_data_max_eps 150 --core_min_eps 70 --core_max_eps 100".split(),
    *"--min_levels 5 --max_levels 5".split(),
]
WINDOW = ["--start_ts", "2025-06-02T14:00:00Z", "--end_ts", "2025-06-02T14:10:00Z", "--chunk_seconds", "30"]
ROWS_FLOWING = re.compile(r"rows [1-9][0-9,]*")


@pytest.fixture(scope="module")
def server():
    with own_server() as srv:
        if srv.pid is None:
            pytest.fail("qdb start printed no pid= line")
        yield srv


@contextmanager
def paused(server: QuestDBServer):
    """SIGSTOP the server; SIGCONT however the block ends."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


class Cli:
    """``mkt-pipeline`` in a child process, its stderr read line by line with the time each line came."""

    def __init__(self, server: QuestDBServer, suffix: str, *args: str):
        cli = [sys.executable, "-m", "mkt_pipeline.cli", "fx"]
        cmd = [*cli, *server.cli_flags(), "--suffix", suffix, *LIGHT_FX, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MKT_", "QUESTDB_"))}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for_line(self, pattern: re.Pattern, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if pattern.search(line):
                    return at
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        self.proc.kill()
        pytest.fail(f"no line matching {pattern.pattern!r} within {timeout_s:g}s: {self.text()}")

    def finish(self, timeout_s: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running {timeout_s:g}s later: {self.text()[-2000:]}")
        self._reader.join(5)
        return code

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def fingerprint(server: QuestDBServer, suffix: str) -> dict[str, tuple]:
    """Per table: row count, first and last timestamp and the sum of every DOUBLE column (after WAL apply)."""
    naming = TableNaming(suffix=suffix)
    names = [naming.name(s) for s in FX_TABLES]

    def applied() -> bool:
        lag = {r[0]: r[1] - r[2] for r in server.query("SELECT name, sequencerTxn, writerTxn FROM wal_tables()")}
        return all(lag.get(t, 1) == 0 for t in names)

    server.wait_until(applied, 60, "WAL apply")
    out = {}
    for schema, name in zip(FX_TABLES, names):
        sums = ", ".join(f"sum({c.name})" for c in schema.columns if c.kind == DOUBLE)
        row = server.query(f"SELECT count(), min({schema.timestamp}), max({schema.timestamp}), {sums} FROM {name}")[0]
        out[schema.base_name] = (row[0], row[1], row[2], *(pytest.approx(v, rel=1e-12) for v in row[3:]))
    return out


def test_a_frozen_server_fails_the_run_in_bounded_time_and_a_rerun_stores_the_clean_rows(server):
    suffix, clean = f"_stall{os.getpid()}", f"_clean{os.getpid()}"
    args = ["--mode", "faster-than-life", *WINDOW, "--stall_timeout_secs", str(STALL_S)]
    try:
        run = Cli(server, suffix, *args)
        run.wait_for_line(ROWS_FLOWING, 120)  # rows are flowing: pause the server mid-run
        with paused(server):
            frozen_at = time.monotonic()
            code = run.finish(GIVE_UP_WITHIN_S + 30)
            ended = time.monotonic() - frozen_at
        text = run.text()
        assert code == 1, text
        assert ended <= GIVE_UP_WITHIN_S, f"gave up only after {ended:.1f}s: {text}"
        ports = f"(?:{server.http_port}|{server.pg_port})"
        warning = re.compile(rf"no answer from 127\.0\.0\.1:{ports} for 3 s, waiting \(")
        warned = [(at, line) for at, line in run.lines if warning.match(line)]
        assert warned, text
        assert warned[0][0] - frozen_at <= STALL_S, text  # the warning came before the give-up
        error = run.lines[-1][1]
        assert re.match(
            rf"mkt-pipeline: error: QuestDBStallError: QuestDB at 127\.0\.0\.1:{ports} "
            rf"\((ILP over http|PG wire), table \w+{suffix}",
            error,
        ), text
        assert f"the stall timeout of {STALL_S}s (--stall_timeout_secs / MKT_STALL_TIMEOUT_SECONDS)" in error
        assert "Traceback" not in text
        # the server answers again: the same command completes what the stalled run left
        rerun = Cli(server, suffix, *args)
        assert rerun.finish(300) == 0, rerun.text()
        untouched = Cli(server, clean, *args)
        assert untouched.finish(300) == 0, untouched.text()
        want = fingerprint(server, clean)
        assert all(v[0] > 0 for v in want.values()), want
        assert fingerprint(server, suffix) == want
    finally:
        server.drop_suffix(suffix)
        server.drop_suffix(clean)


def test_a_frozen_server_stops_the_real_time_stream_in_bounded_time_and_a_rerun_continues_it(server):
    suffix = f"_rstall{os.getpid()}"
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    args = ["--mode", "real-time", "--end_ts", end, "--stall_timeout_secs", str(STALL_S)]
    try:
        run = Cli(server, suffix, *args)
        run.wait_for_line(re.compile(r"fx live: up to .* rows [1-9]"), 120)
        with paused(server):
            frozen_at = time.monotonic()
            code = run.finish(GIVE_UP_WITHIN_S + 30)
            ended = time.monotonic() - frozen_at
        text = run.text()
        assert code == 1 and ended <= GIVE_UP_WITHIN_S, (ended, text)
        ports = f"(?:{server.http_port}|{server.pg_port})"
        warning = re.compile(rf"no answer from 127\.0\.0\.1:{ports} for 3 s, waiting \(")
        assert any(warning.match(line) for _, line in run.lines), text
        assert re.match(
            rf"mkt-pipeline: error: QuestDBStallError: QuestDB at 127\.0\.0\.1:{ports} "
            rf"\(.*table \w+{suffix}\): no answer for",
            run.lines[-1][1],
        ), text
        table = f"market_data{suffix}"
        before = int(server.query(f"SELECT count() FROM {table}")[0][0])
        # the stream goes on where the stored rows end (never behind them), up to the same end
        rerun = Cli(server, suffix, *args)
        assert rerun.finish(120) == 0, rerun.text()
        fingerprint(server, suffix)  # waits for the WAL
        after = int(server.query(f"SELECT count() FROM {table}")[0][0])
        keys = f"SELECT timestamp, symbol, count() n FROM {table}"
        dupes = server.query(f"SELECT count() FROM ({keys}) WHERE n > 1")[0][0]
        assert after > before and dupes == 0, (before, after, dupes)
    finally:
        server.drop_suffix(suffix)


# ---------------------------------------------------------------------------------------------
# the Dagster runs: an hourly partition and a live window


def sink_resource(server: QuestDBServer, suffix: str, tmp_path):
    from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
    from mkt_pipeline.defs.sink_resource import MarketSinkResource

    questdb = QuestDBResource(
        host=server.host,
        http_port=server.http_port,
        pg_port=server.pg_port,
        ilp_tcp_port=server.ilp_port,
        stall_timeout_s=STALL_S,
    )
    parquet = ParquetResource(root_dir=str(tmp_path))
    return MarketSinkResource(kind="questdb", table_suffix=suffix, questdb=questdb, parquet=parquet)


def wait_for_rows(server: QuestDBServer, table: str, worker: threading.Thread, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and worker.is_alive():
        try:
            if server.query(f"SELECT count() FROM {table}")[0][0] > 0:
                return
        except Exception:  # not created yet
            pass
        time.sleep(0.1)
    pytest.fail(f"no rows in {table} within {timeout_s:g}s (run still going: {worker.is_alive()})")


def run_frozen(server: QuestDBServer, table: str, execute) -> tuple[object, float]:
    """``execute()`` in a thread; pause the server once ``table`` has rows; (its result, seconds from pause to end)."""
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("result", execute()), daemon=True)
    worker.start()
    wait_for_rows(server, table, worker)
    with paused(server):
        frozen_at = time.monotonic()
        worker.join(180)
        ended = time.monotonic() - frozen_at
    worker.join(60)
    assert "result" in out, "the run did not end"
    return out["result"], ended


def failure_messages(result) -> list[str]:
    import dagster as dg

    kinds = (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    out = []
    for event in result.all_events:
        if event.event_type in kinds:
            data = event.event_specific_data
            error = getattr(data, "error", None)
            while error is not None:  # a retry's error carries the op's own as its cause
                out.append(error.message.strip())
                error = error.cause
    return out


def warnings_of(instance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if "no answer from" in (e.user_message or "")]


def assert_stalled(server: QuestDBServer, result, instance, suffix: str, ended: float, bound_s: float) -> None:
    messages = failure_messages(result)
    assert not result.success and messages, messages
    assert ended <= bound_s, f"ended {ended:.1f}s after the pause: {messages}"
    ports = f"(?:{server.http_port}|{server.pg_port})"
    stall = re.compile(rf"QuestDBStallError: QuestDB at 127\.0\.0\.1:{ports} \(.*table \w+{suffix}")
    stalls = [m for m in messages if stall.search(m)]
    assert stalls, messages
    assert f"gave up after the stall timeout of {STALL_S}s" in stalls[0]
    warned = warnings_of(instance, result.run_id)
    assert any(re.match(rf"no answer from 127\.0\.0\.1:{ports} for 3 s, waiting", w) for w in warned), warned


def test_a_frozen_server_fails_the_hourly_step_in_bounded_time_and_a_rerun_stores_the_clean_rows(server, tmp_path):
    import dagster as dg

    from mkt_pipeline.definitions import defs
    from mkt_pipeline_tests.defs.support import TINY_FX

    suffix, clean = f"_dstall{os.getpid()}", f"_dclean{os.getpid()}"
    job = defs.resolve_job_def("fx_hourly_job")
    instance = dg.DagsterInstance.ephemeral()

    def materialize(sfx: str):
        return job.execute_in_process(
            run_config={"ops": {"fx_hourly": {"config": {**TINY_FX, "chunk_seconds": 300}}}},
            instance=instance,
            partition_key="2025-06-02-14:00",
            resources={"sink": sink_resource(server, sfx, tmp_path)},
            raise_on_error=False,
        )

    try:
        result, ended = run_frozen(server, f"market_data{suffix}", lambda: materialize(suffix))
        # the stalled attempt, then the step's two retries (5 s apart), each failing within the access probe's 5 s
        assert_stalled(server, result, instance, suffix, ended, bound_s=GIVE_UP_WITHIN_S + 2 * (5 + 10))
        assert materialize(suffix).success
        assert materialize(clean).success
        want = fingerprint(server, clean)
        assert all(v[0] > 0 for v in want.values()), want
        assert fingerprint(server, suffix) == want
    finally:
        server.drop_suffix(suffix)
        server.drop_suffix(clean)


def test_a_frozen_server_fails_a_live_window_in_bounded_time_and_a_rerun_stores_the_clean_rows(server, tmp_path):
    import dagster as dg

    from mkt_pipeline.core.timeline import US_PER_S, format_us
    from mkt_pipeline.defs.jobs import fx_live_job
    from mkt_pipeline_tests.defs.support import TINY_FX

    suffix, clean = f"_lstall{os.getpid()}", f"_lclean{os.getpid()}"
    now_s = int(time.time())
    # half due at once (catching up), half at wall-clock pace: the server is paused while the window is live
    start, end = format_us((now_s - 20) * US_PER_S), format_us((now_s + 25) * US_PER_S)
    instance = dg.DagsterInstance.ephemeral()

    def live(sfx: str):
        config = {"ops": {"fx_live_window": {"config": {"window_start": start, "window_end": end, **TINY_FX}}}}
        resources = {"sink": sink_resource(server, sfx, tmp_path)}
        return fx_live_job.execute_in_process(
            run_config=config, instance=instance, resources=resources, raise_on_error=False
        )

    try:
        result, ended = run_frozen(server, f"market_data{suffix}", lambda: live(suffix))
        assert_stalled(server, result, instance, suffix, ended, bound_s=GIVE_UP_WITHIN_S)
        # the sensor requests a failed window again; by now it is due at once, and lands whole
        while time.time() < now_s + 26:
            time.sleep(0.5)
        assert live(suffix).success
        assert live(clean).success
        want = fingerprint(server, clean)
        assert all(v[0] > 0 for v in want.values()), want
        assert fingerprint(server, suffix) == want
    finally:
        server.drop_suffix(suffix)
        server.drop_suffix(clean)

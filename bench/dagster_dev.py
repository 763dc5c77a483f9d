"""``dagster dev`` (or ``dg dev``) on the project's definitions with a DAGSTER_HOME of its own, driven
through the webserver's GraphQL API (the UI's path).

Shared by the benches and the end-to-end tests (the backfill through the webserver, the UI test, the
Celery fleet): one start-up, one GraphQL call, one way to wait for the server to answer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FINISHED_RUN = ("SUCCESS", "FAILURE", "CANCELED")
FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

# what the UI's Materialize -> partitions dialog sends
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 50) { runId status } }
    ... on PythonError { message }
  }
}
"""


def free_port(preferred: int = 0) -> int:
    """A free loopback port: ``preferred`` when it is free, else one the system picks."""
    for port in dict.fromkeys((preferred, 0)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """The ``data`` of the webserver's answer; GraphQL errors raise."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if "errors" in answer:
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, wait_s: float = 30) -> None:
    """Stop a process started in its own session, and its children, by its process group."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


@dataclass
class DagsterDev:
    port: int
    home: Path
    process: subprocess.Popen
    log: Path
    env: dict = field(default_factory=dict)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.port, query, variables)

    def wait_for(self, predicate: Callable, timeout_s: float, what: str):
        """Poll ``predicate()`` until it returns something true (a refused connection counts as not yet);
        fails with the end of the server's log if the server exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dagster dev exited ({self.process.returncode}) while waiting for {what}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                value = predicate()
            except OSError:
                value = None
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{self.log.read_text()[-3000:]}")

    def launch_backfill(self, partitions: list[str], asset_keys: list[list[str]]) -> str:
        params = {
            "partitionNames": partitions,
            "assetSelection": [{"path": k} for k in asset_keys],
            "fromFailure": False,
        }
        answer = self.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
        if answer["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {answer}")
        return answer["backfillId"]

    def backfill(self, backfill_id: str) -> dict:
        """``{"status": ..., "runs": [{"runId", "status"}, ...]}``"""
        return self.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]

    def wait_backfill(self, backfill_id: str, timeout_s: float) -> dict:
        """The backfill once it and every run it launched have finished."""

        def done():
            b = self.backfill(backfill_id)
            finished = b["status"] in FINISHED_BACKFILL and all(r["status"] in FINISHED_RUN for r in b["runs"])
            return b if finished and b["runs"] else None

        return self.wait_for(done, timeout_s, f"backfill {backfill_id}")


@contextmanager
def dagster_dev(
    folder: Path, env: dict[str, str], *, command: str = "dagster", port: int = 0, startup_s: float = 600
) -> Iterator[DagsterDev]:
    """``dagster dev`` (``command="dg"``: ``dg dev``, what ``make dev`` runs) on the project's definitions,
    webserver, daemon and code server, with a fresh DAGSTER_HOME under ``folder`` holding the project's
    instance settings, and ``env`` as its environment; stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {**env, "DAGSTER_HOME": str(home)}
    port = free_port(port)
    log = folder / f"{command}_dev.log"
    if command == "dg":
        args = [str(BIN / "dg"), "dev", "--port", str(port), "--host", "127.0.0.1"]
    else:
        args = [str(BIN / "dagster"), "dev", "-m", "mkt_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "w") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    dev = DagsterDev(port, home, process, log, env)
    try:
        # loading the code location takes minutes on a busy machine
        dev.wait_for(lambda: graphql(port, "{ version }").get("version"), startup_s, "the webserver")
        yield dev
    finally:
        # dagster dev stops its webserver, daemon and code server on SIGINT; its group is ours alone
        stop_group(process, signal.SIGINT, 60)

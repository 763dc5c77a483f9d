"""A small Celery fleet on this machine for the distributed tests and the bench: a Redis broker on a
free loopback port with a folder of its own, Celery workers as separate processes (each with its
own working directory, home and environment, as separate machines would have), and ``dagster dev``
on a temporary DAGSTER_HOME driven through the webserver's GraphQL API (the UI's path:
``bench.dagster_dev``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.dagster_dev import BIN, DagsterDev, free_port, stop_group
from bench.dagster_dev import dagster_dev as dagster_dev_with_env


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)), None
    )


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    """``redis-server`` on a free loopback port, its files in ``folder``, no persistence; stopped on exit."""
    binary = redis_server_binary()
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]
    with open(folder / "redis.log", "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not start on 127.0.0.1:{port}: {(folder / 'redis.log').read_text()[-1000:]}"
                )
            time.sleep(0.1)
        yield RedisServer(port, process, folder)
    finally:
        stop_group(process, signal.SIGTERM, 10)


def machine_env(home: Path, settings: dict[str, str]) -> dict[str, str]:
    """A clean environment as a separate machine would have: its own home, only the deployment's settings."""
    return {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_HOME": str(home / "dagster_home"),
        **settings,
    }


@dataclass
class Worker:
    name: str
    folder: Path
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """The machine is lost: the worker and everything it started are killed at once."""
        stop_group(self.process, signal.SIGKILL, 10)

    def stop(self) -> None:
        stop_group(self.process, signal.SIGTERM, 30)


def start_worker(name: str, folder: Path, settings: dict[str, str]) -> Worker:
    """A Celery worker of the project's app in ``folder`` (its working directory and home), one step at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster_home").mkdir(exist_ok=True)
    (folder / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    log = folder / "worker.log"
    args = [
        str(BIN / "celery"), "-A", "mkt_pipeline.defs.celery_worker", "worker", "-Q", "dagster", "-c", "1",
        "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "INFO",
    ]  # fmt: skip
    with open(log, "w") as out:
        process = subprocess.Popen(
            args,
            cwd=folder,
            env=machine_env(folder, settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(name, folder, process, log)


def listening_workers(broker: str) -> list[str]:
    """Names of the workers consuming the ``dagster`` queue at ``broker``."""
    from celery import Celery

    app = Celery("probe", broker=broker)
    try:
        queues = app.control.inspect(timeout=1.0).active_queues() or {}
    finally:
        app.close()
    return sorted(w for w, qs in queues.items() if any(q.get("name") == "dagster" for q in qs or []))


def wait_for_workers(broker: str, workers: list[Worker], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    names = {w.name for w in workers}
    while time.monotonic() < deadline:
        for w in workers:
            if w.process.poll() is not None:
                raise RuntimeError(f"worker {w.name} exited ({w.process.returncode}): {w.log.read_text()[-2000:]}")
        if names <= {n.split("@")[0] for n in listening_workers(broker)}:
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers {sorted(names)} not listening after {timeout_s:.0f}s")


def dagster_dev(folder: Path, settings: dict[str, str]) -> AbstractContextManager[DagsterDev]:
    """``dagster dev`` on the project's definitions (``bench.dagster_dev``), with only ``settings`` in
    its environment, as a machine of its own would have."""
    return dagster_dev_with_env(folder, machine_env(folder, settings))


def celery_engine_events(instance, run_id: str) -> list[tuple[str, str]]:
    """(step key, worker name) of every step a Celery worker started executing in the run, in order."""
    import dagster as dg

    out = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.event_specific_data
        meta = getattr(data, "metadata", None) or {}
        if "Celery worker" in meta:
            worker = getattr(meta["Celery worker"], "value", meta["Celery worker"])
            steps = getattr(meta["step_keys"], "value", meta["step_keys"])
            out.append((steps, str(worker).split("@")[0]))
    return out

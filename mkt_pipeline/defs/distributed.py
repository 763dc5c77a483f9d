"""Spreading a backfill over machines: Dagster's Celery executor (dagster-celery) behind a Redis broker.

``MKT_EXECUTOR=celery`` switches the code location's runs from the in-process executor to Celery
(``MKT_EXECUTOR=k8s``: dagster-k8s's job executor, one Kubernetes job per step, the same split):
the run worker puts each step on the broker's ``dagster`` queue and whichever worker is free runs
it. The hourly asset is then built so that a ranged run's hours become several steps (one per
``MKT_STEP_HOURS`` hours), each written by one worker; without the setting nothing changes (one
step for the whole range, nothing extra pickled).

Workers are plain Celery workers on this module's app (the same settings as the run):
``celery -A mkt_pipeline.defs.celery_worker worker -Q dagster -c 1``. A worker takes a step only
when it is free (no prefetching) and records that it started it; the run watches the workers that
hold its steps, and when one stops answering for ``MKT_CELERY_WORKER_LOST_SECONDS`` its step is
put on the queue again for another worker. Writes are idempotent (QuestDB's DEDUP keys), so the
rows a lost worker wrote before it died are simply written again, identically.

Before a run hands out steps it checks the broker and that some worker listens, so a wrong broker
URL or a fleet with no workers fails the run within seconds with one line naming the broker (its
password redacted) instead of waiting forever.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import dagster as dg

from mkt_pipeline.core.secrets import first_line
from mkt_pipeline.settings import deployment, redact_url

EXECUTOR_VAR = "MKT_EXECUTOR"
BROKER_VAR = "MKT_CELERY_BROKER_URL"
BACKEND_VAR = "MKT_CELERY_BACKEND_URL"
STEP_HOURS_VAR = "MKT_STEP_HOURS"
WORKER_LOST_VAR = "MKT_CELERY_WORKER_LOST_SECONDS"
WORKER_WAIT_VAR = "MKT_CELERY_WORKER_WAIT"
QUEUE = "dagster"  # the queue dagster-celery routes steps to
PING_EVERY_S = 3.0
WORKER_COMMAND = f"celery -A mkt_pipeline.defs.celery_worker worker -Q {QUEUE} -c 1"


def executor_kind(environ: Mapping[str, str] = os.environ) -> str:
    """``in_process`` (default), ``celery`` or ``k8s``, from ``MKT_EXECUTOR`` (the settings model)."""
    return deployment(EXECUTOR_VAR, environ)


def deployment_step_hours() -> int | None:
    """``step_hours`` for the code location (None on one machine); a bad value is recorded, never raised."""
    from mkt_pipeline.defs.config import ALL, deployment_value

    if deployment_executor_kind() == "in_process":
        return None
    return deployment_value(STEP_HOURS_VAR, ALL)


def deployment_executor_kind() -> str:
    """The executor for the code location; a bad ``MKT_EXECUTOR`` or ``MKT_STEP_HOURS`` never stops it from
    loading: the default (in-process) is used and every run fails at once naming the variable."""
    from mkt_pipeline.defs.config import ALL, deployment_value

    kind = deployment_value(EXECUTOR_VAR, ALL)
    if kind != "in_process":
        deployment_value(STEP_HOURS_VAR, ALL)
    return kind


def step_hours(environ: Mapping[str, str] = os.environ) -> int | None:
    """Hours per step of a distributed ranged run (``MKT_STEP_HOURS``, default 1); None on one machine."""
    if executor_kind(environ) == "in_process":
        return None
    return deployment(STEP_HOURS_VAR, environ)


@dataclass(frozen=True)
class CelerySettings:
    """What the run worker and every Celery worker must agree on."""

    broker: str
    backend: str
    worker_lost_s: int
    worker_wait_s: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CelerySettings:
        broker = deployment(BROKER_VAR, environ)
        return cls(
            broker=broker,
            backend=deployment(BACKEND_VAR, environ) or broker,
            worker_lost_s=deployment(WORKER_LOST_VAR, environ),
            worker_wait_s=deployment(WORKER_WAIT_VAR, environ),
        )

    def config_source(self) -> dict:
        """Celery settings beyond broker and backend (the same on both sides)."""
        return {
            "task_track_started": True,  # the result backend names the worker running a step (for the watch)
            "worker_disable_prefetch": True,  # a worker takes a step only when it is free to run it
            "worker_prefetch_multiplier": 1,
            "broker_connection_retry_on_startup": True,
            "broker_transport_options": {
                # a broker that cannot be reached fails the publish in about a second, not after minutes
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
            "redis_socket_connect_timeout": 3,
            "redis_socket_timeout": 30,
        }


class CeleryPreflightError(Exception):
    """The broker cannot be reached or no worker listens: the run cannot make progress."""


def preflight(app, settings: CelerySettings, clock=time.monotonic) -> list[str]:
    """Names of the workers listening on ``QUEUE``; raises ``CeleryPreflightError`` (one line,
    naming the broker without its password) when the broker is unreachable or, after
    ``worker_wait_s`` seconds, no worker listens."""
    where = redact_url(settings.broker)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5, timeout=3)
    except Exception as exc:  # kombu raises OperationalError, redis ConnectionError, OSError...
        raise CeleryPreflightError(f"Celery broker {where} unreachable: {first_line(exc)}") from None
    deadline = clock() + settings.worker_wait_s
    while True:
        try:
            queues = app.control.inspect(timeout=1.0).active_queues() or {}
        except Exception as exc:
            raise CeleryPreflightError(f"Celery broker {where} unreachable: {first_line(exc)}") from None
        listening = sorted(worker for worker, qs in queues.items() if any(q.get("name") == QUEUE for q in qs or []))
        if listening:
            return listening
        if clock() >= deadline:
            raise CeleryPreflightError(
                f"no Celery worker listens on queue {QUEUE!r} at broker {where} (waited {settings.worker_wait_s}s); "
                f"start workers with the same {BROKER_VAR}: {WORKER_COMMAND}"
            )
        time.sleep(0.5)


class WorkerWatch:
    """Which workers answer a ping, asked at most every ``PING_EVERY_S`` seconds."""

    def __init__(self, app, lost_after_s: float, clock=time.monotonic):
        self.app, self.lost_after_s, self.clock = app, lost_after_s, clock
        self.last_seen: dict[str, float] = {}
        self.asked = -PING_EVERY_S

    def lost(self, worker: str) -> bool:
        """True once ``worker`` has not answered for ``lost_after_s`` seconds (counted from the first question)."""
        now = self.clock()
        if now - self.asked >= PING_EVERY_S:
            self.asked = now
            try:
                replies = self.app.control.ping(timeout=1.5) or []
            except Exception:  # the broker itself is unreachable: no worker can be judged lost
                replies = None
            if replies is None:
                self.last_seen = {w: now for w in self.last_seen}
            else:
                for reply in replies:
                    for name in reply:
                        self.last_seen[name] = now
        self.last_seen.setdefault(worker, now)
        return now - self.last_seen[worker] >= self.lost_after_s


class WatchedResult:
    """A step's Celery result that hands the step to another worker when the worker running it is lost.

    dagster-celery's loop only asks ``ready``, ``get`` and ``revoke``; a step taken by a worker that
    then stops answering would otherwise never be ready, and the run would wait forever."""

    def __init__(self, submit, watch: WorkerWatch, log, step_key: str):
        self.submit, self.watch, self.log, self.step_key = submit, watch, log, step_key
        self.inner = submit()
        self.handed_over = 0

    def ready(self) -> bool:
        if self.inner.ready():
            return True
        if self.inner.state == "STARTED":
            info = self.inner.info if isinstance(self.inner.info, dict) else {}
            worker = info.get("hostname")
            if worker and self.watch.lost(worker):
                self.handed_over += 1
                self.log.warning(
                    f"Celery worker {worker} has not answered for {self.watch.lost_after_s:.0f}s while running step "
                    f"{self.step_key}: the step goes back on the queue for another worker (its writes are idempotent)"
                )
                self.watch.last_seen.pop(worker, None)
                self.inner = self.submit()
        return False

    def get(self):
        return self.inner.get()

    def revoke(self):
        return self.inner.revoke()


def celery_executor_def(settings: CelerySettings | None = None) -> dg.ExecutorDefinition:
    """dagster-celery's executor for this deployment: it checks broker and workers before a run
    starts, and hands the steps of lost workers to others."""
    from dagster_celery.core_execution_loop import core_celery_execution_loop

    # RetryMode as dagster-celery's executor module imports it (Dagster has no public name for it)
    from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, RetryMode, _submit_task
    from dagster_celery.make_app import make_app

    settings = settings or CelerySettings.from_env()

    class PreflightCeleryExecutor(CeleryExecutor):
        def execute(self, plan_context, execution_plan):
            app = make_app(self.app_args())
            try:
                workers = preflight(app, settings)
            except CeleryPreflightError as exc:
                raise dg.Failure(str(exc), allow_retries=False) from None
            plan_context.log.info(f"Celery workers listening on {redact_url(settings.broker)}: {', '.join(workers)}")
            watch = WorkerWatch(app, settings.worker_lost_s)

            def submit(app, context, step, queue, priority, known_state):
                once = partial(_submit_task, app, context, step, queue, priority, known_state)
                return WatchedResult(once, watch, context.log, step.key)

            yield from core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)

    @dg.executor(name="celery", config_schema=CELERY_CONFIG, requirements=dg.multiple_process_executor_requirements())
    def mkt_celery_executor(init_context):
        config = init_context.executor_config
        return PreflightCeleryExecutor(
            broker=config.get("broker"),
            backend=config.get("backend"),
            config_source=config.get("config_source"),
            include=config.get("include"),
            retries=RetryMode.from_config(config["retries"]),
        )

    # the URLs come from the environment at launch (secrets never in run config)
    broker = {"env": BROKER_VAR} if os.environ.get(BROKER_VAR, "").strip() else settings.broker
    backend = {"env": BACKEND_VAR} if os.environ.get(BACKEND_VAR, "").strip() else broker
    return mkt_celery_executor.configured(
        {"broker": broker, "backend": backend, "config_source": settings.config_source()}, name="mkt_celery"
    )


def worker_app_args(settings: CelerySettings | None = None) -> dict:
    """The Celery app arguments of a worker: the same broker, backend and settings as the run's executor."""
    from dagster_celery.executor import CeleryExecutor, RetryMode

    settings = settings or CelerySettings.from_env()
    executor = CeleryExecutor(
        retries=RetryMode(RetryMode.DISABLED),
        broker=settings.broker,
        backend=settings.backend,
        config_source=settings.config_source(),
    )
    return executor.app_args()


def deployment_executor() -> dg.ExecutorDefinition:
    """The code location's executor: in-process (default), Celery workers (``MKT_EXECUTOR=celery``)
    or a Kubernetes job per step (``MKT_EXECUTOR=k8s``, dagster-k8s, with its K8sRunLauncher)."""
    kind = deployment_executor_kind()
    if kind == "celery":
        return celery_executor_def()
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return dg.in_process_executor

"""The Celery app a worker machine runs: ``celery -A mkt_pipeline.defs.celery_worker worker -Q dagster -c 1``.

It reads the same ``MKT_CELERY_*`` settings as the run's executor (broker, result backend,
late acknowledgement, visibility timeout) and registers dagster-celery's step task, which loads
the code location by the run's code pointer and writes events to the run's Dagster instance
(so workers need the deployment's environment: ``MKT_*``, ``QUESTDB_*`` and access to the
instance's storage).
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from mkt_pipeline.defs.distributed import worker_app_args

app = make_app(worker_app_args())
execute_plan = create_task(app)

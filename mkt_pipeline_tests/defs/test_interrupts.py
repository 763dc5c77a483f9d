"""The ingest step's retries: a fault retries the step, an interrupt (Terminate, a backfill's cancel) never does."""

from types import SimpleNamespace

import dagster as dg
import pytest

from mkt_pipeline.defs.hourly import INGEST_RETRIES, retried_unless_interrupted


def step(instance, run_id="no-such-run"):
    return SimpleNamespace(instance=instance, run_id=run_id)


def body(exc):
    def run():
        yield "written"
        raise exc

    return run


def test_an_interrupt_is_not_turned_into_a_retry():
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        list(
            retried_unless_interrupted(
                step(dg.DagsterInstance.ephemeral()), body(dg.DagsterExecutionInterruptedError())
            )
        )


def test_a_fault_retries_the_step():
    with pytest.raises(dg.RetryRequested) as caught:
        list(
            retried_unless_interrupted(
                step(dg.DagsterInstance.ephemeral()), body(ConnectionResetError("server went away"))
            )
        )
    assert caught.value.max_retries == INGEST_RETRIES


def test_a_settings_error_fails_at_once():
    failure = dg.Failure(description="config key chunk_seconds: must divide 3600", allow_retries=False)
    with pytest.raises(dg.Failure):
        list(retried_unless_interrupted(step(dg.DagsterInstance.ephemeral()), body(failure)))


def test_a_fault_while_the_run_is_cancelled_stops_the_step():
    """Terminate tears the writer down; the error that follows is the interrupt's, not a fault to retry."""
    instance = dg.DagsterInstance.ephemeral()
    run = instance.create_run_for_job(
        dg.GraphDefinition("noop", node_defs=[]).to_job(),
        run_id="6f1c1f3e-0000-4000-8000-000000000001",
        status=dg.DagsterRunStatus.CANCELING,
    )
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        list(retried_unless_interrupted(step(instance, run.run_id), body(BrokenPipeError("writer closed"))))

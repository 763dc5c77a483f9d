"""The ingest step's retries: a fault retries the step, an interrupt (Terminate, a backfill's cancel) never does."""

from types import SimpleNamespace

import dagster as dg
import pytest

from mkt_pipeline.defs.hourly import INGEST_RETRIES, retried_unless_interrupted


def step(instance, run_id="no-such-run"):
    return SimpleNamespace(instance=instance, run_id=run_id)


def yielding_step(context, exc):
    """A step that yields an output, then meets ``exc`` (the hourly ingest step's form)."""
    with retried_unless_interrupted(context):
        yield "written"
        raise exc


def returning_step(context, exc):
    """A step that returns what it wrote, or meets ``exc`` (the distributed ingest step's form)."""
    with retried_unless_interrupted(context):
        raise exc


def test_an_interrupt_is_not_turned_into_a_retry():
    context = step(dg.DagsterInstance.ephemeral())
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        list(yielding_step(context, dg.DagsterExecutionInterruptedError()))
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        returning_step(context, dg.DagsterExecutionInterruptedError())


def test_a_fault_retries_the_step():
    context = step(dg.DagsterInstance.ephemeral())
    with pytest.raises(dg.RetryRequested) as caught:
        list(yielding_step(context, ConnectionResetError("server went away")))
    assert caught.value.max_retries == INGEST_RETRIES
    with pytest.raises(dg.RetryRequested) as caught:
        returning_step(context, ConnectionResetError("server went away"))
    assert caught.value.max_retries == INGEST_RETRIES
    assert isinstance(caught.value.__cause__, ConnectionResetError)


def test_a_settings_error_fails_at_once():
    failure = dg.Failure(description="config key chunk_seconds: must divide 3600", allow_retries=False)
    context = step(dg.DagsterInstance.ephemeral())
    with pytest.raises(dg.Failure) as caught:
        list(yielding_step(context, failure))
    assert caught.value is failure
    with pytest.raises(dg.Failure) as caught:
        returning_step(context, failure)
    assert caught.value is failure


def test_a_fault_while_the_run_is_cancelled_stops_the_step():
    """Terminate tears the writer down; the error that follows is the interrupt's, not a fault to retry."""
    instance = dg.DagsterInstance.ephemeral()
    run = instance.create_run_for_job(
        dg.GraphDefinition("noop", node_defs=[]).to_job(),
        run_id="6f1c1f3e-0000-4000-8000-000000000001",
        status=dg.DagsterRunStatus.CANCELING,
    )
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        list(yielding_step(step(instance, run.run_id), BrokenPipeError("writer closed")))
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        returning_step(step(instance, run.run_id), BrokenPipeError("writer closed"))

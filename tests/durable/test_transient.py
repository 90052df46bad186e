"""Transient database errors: real ones, classified, and retried without using a step's attempts."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import OperationalError, ProgrammingError

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from devtools.ports import free_port
from devtools.processes import poller, running, wait_until, worker
from durable import conf
from durable.models import CheckpointStatus, RunStatus, StepCheckpoint, WorkflowRun
from durable.persistence.transient import is_transient
from durable.runtime import executor, step_pool
from durable.runtime.executor import AdvanceOutcome, advance, advance_after_call
from tests.durable.example_workflows import effect_count
from tests.durable.step_workflows import CALLS
from tests.support.environment import process_env
from tests.support.inline import finish
from tests.support.transient_errors import (
    postgres_conninfo,
    provoke_deadlock,
    provoke_lock_timeout,
    provoke_sqlite_locked,
    short_lock_waits_for_new_connections,
    sqlite_write_lock_held_elsewhere,
)

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a PostgreSQL error (the PostgreSQL run has it)"
)
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the engine's SQLite backend (the SQLite run has it)"
)


def raised_by(action) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


# --- the classification, on errors the databases really raise --------------------------------


@postgres_only
def test_a_lock_timeout_is_transient():
    exc = raised_by(provoke_lock_timeout)
    assert isinstance(exc, OperationalError)
    assert exc.__cause__.sqlstate == "55P03"
    assert is_transient(exc)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_deadlock_is_transient():
    errors = provoke_deadlock()
    assert len(errors) == 1, errors
    driver_error = errors[0].__cause__ or errors[0]  # Django's side, or the other session's
    assert driver_error.sqlstate == "40P01"
    assert is_transient(errors[0])


@postgres_only
def test_a_serialization_failure_is_transient():
    with psycopg.connect(postgres_conninfo(), autocommit=True) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS transient_probe (id int PRIMARY KEY, n int)")
        setup.execute("INSERT INTO transient_probe VALUES (1, 0) ON CONFLICT DO NOTHING")
        try:
            with psycopg.connect(postgres_conninfo()) as reader:
                reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                reader.execute("SELECT n FROM transient_probe WHERE id = 1")
                setup.execute("UPDATE transient_probe SET n = n + 1 WHERE id = 1")
                exc = raised_by(
                    lambda: reader.execute("UPDATE transient_probe SET n = n + 1 WHERE id = 1")
                )
        finally:
            setup.execute("DROP TABLE transient_probe")
    assert exc.sqlstate == "40001"
    assert is_transient(exc)


@postgres_only
def test_a_connection_the_server_terminated_is_transient():
    with psycopg.connect(postgres_conninfo(), autocommit=True) as victim:
        pid = victim.info.backend_pid
        with psycopg.connect(postgres_conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        exc = raised_by(lambda: victim.execute("SELECT 1"))
    assert isinstance(exc, psycopg.OperationalError)
    assert is_transient(exc)
    # And the same connection used again: it is closed.
    assert is_transient(raised_by(lambda: victim.execute("SELECT 1")))


def test_a_refused_connection_is_transient():
    refused = f"host=127.0.0.1 port={free_port()} dbname=x user=x connect_timeout=5"
    exc = raised_by(lambda: psycopg.connect(refused))
    assert isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None
    assert is_transient(exc)


def test_a_server_starting_up_shutting_down_or_full_is_transient():
    # Not provoked (a server mid-restart, or out of connections): psycopg's own classes.
    for sqlstate in ("57P01", "57P02", "57P03", "08006", "53300"):
        assert is_transient(psycopg.errors.lookup(sqlstate)("from the server")), sqlstate


def test_sqlite_database_is_locked_is_transient():
    exc = raised_by(provoke_sqlite_locked)
    assert isinstance(exc, sqlite3.OperationalError)
    assert is_transient(exc)


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_sqlite_locked_past_the_engines_busy_timeout_is_transient():
    from django.contrib.auth.models import Group

    connection.ensure_connection()
    busy_timeout, connection._lock_timeout = connection._lock_timeout, 0.05
    try:
        with sqlite_write_lock_held_elsewhere(connection.settings_dict["NAME"]):
            exc = raised_by(lambda: Group.objects.create(name="locked out"))
    finally:
        connection._lock_timeout = busy_timeout
    assert isinstance(exc, OperationalError) and "database is locked" in str(exc)
    assert is_transient(exc)


def test_bugs_and_refusals_are_not_transient():
    from django.contrib.auth.models import Group

    Group.objects.create(name="taken")

    def duplicate():
        with transaction.atomic():
            Group.objects.create(name="taken")

    def bad_sql():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELEC 1")

    assert isinstance(raised_by(duplicate), IntegrityError)
    assert not is_transient(raised_by(duplicate))
    assert not is_transient(raised_by(bad_sql))
    assert isinstance(raised_by(bad_sql), OperationalError | ProgrammingError)
    assert not is_transient(ValueError("database is locked"))
    assert not is_transient(ConnectionError("not a database error"))


# --- the engine: retried, not counted --------------------------------------------------------


def test_a_transactional_step_meeting_more_transient_errors_than_its_attempts_still_succeeds():
    run_id = "transient-transactional"
    failures = executor.TRANSIENT_RETRIES_IN_PLACE + 3  # more than max_attempts (3)
    durable.start(run_id, "transient_errors", failures, False)
    assert advance(run_id) is AdvanceOutcome.DEFERRED, "tried in place, then left to the poller"
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status != RunStatus.FAILED and run.wake_at is not None and not run.lease_owner
    runs = finish([run_id])
    assert runs[run_id].status == RunStatus.SUCCEEDED, runs[run_id].error
    assert runs[run_id].result == {"calls": failures + 1}
    checkpoint = StepCheckpoint.objects.get(run_id=run_id)
    assert checkpoint.status == CheckpointStatus.DONE and checkpoint.attempts == 1
    assert effect_count(f"effect:{run_id}:") == 1, "each error rolled the step's writes back"


@pytest.mark.parametrize("failures", [1, 99])
def test_a_transient_error_raised_by_a_plain_steps_own_function_counts_as_an_attempt(failures):
    # The function's effect happened before its error: it is not the engine's to take back.
    run_id = f"transient-plain-{failures}"
    durable.start(run_id, "transient_errors", failures, True)
    run = finish([run_id])[run_id]
    checkpoint = StepCheckpoint.objects.get(run_id=run_id)
    if failures == 1:
        assert run.status == RunStatus.SUCCEEDED and run.result == {"calls": 2}
        assert checkpoint.attempts == 2 and effect_count(f"effect:{run_id}:") == 2
    else:
        assert run.status == RunStatus.FAILED
        assert durable.StepFailed.step_named_by(run.error) == "write_after_transient_errors"
        assert checkpoint.status == CheckpointStatus.ERROR and checkpoint.attempts == 3
        assert effect_count(f"effect:{run_id}:") == 3, "one effect per attempt, no more"


@pytest.mark.django_db(transaction=True)
def test_a_transient_error_while_recording_a_steps_result_does_not_count_the_attempt():
    # The step returned (its effect happened) on its one and only attempt.
    durable.start("bookkeeping-error", "step_then_bookkeeping_error")
    run = finish(["bookkeeping-error"])["bookkeeping-error"]
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result == {"outcome": "done"}
    assert StepCheckpoint.objects.get(run_id="bookkeeping-error").attempts == 1
    assert effect_count("effect:bookkeeping-error:") == 1


@pytest.mark.django_db(transaction=True)
def test_in_the_step_pool_a_transient_error_recording_an_answer_does_not_count_it(monkeypatch):
    # As in a worker process: the call runs on the pool's thread, its answer is recorded by the
    # pool's completer, on a connection of its own that gives up waiting for the run's lock.
    pool = step_pool.StepPool(2, conf.seconds("LEASE_SECONDS"), 1.0, advance_after_call)
    monkeypatch.setattr(step_pool, "_pool", pool)
    try:
        with short_lock_waits_for_new_connections():
            durable.start("pool-bookkeeping", "step_then_run_locked")
            with step_pool.task():
                assert advance("pool-bookkeeping") is AdvanceOutcome.IN_FLIGHT
            wait_until(lambda: WorkflowRun.objects.get(pk="pool-bookkeeping").is_finished, 30)
    finally:
        pool.drain()
    run = WorkflowRun.objects.get(pk="pool-bookkeeping")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert StepCheckpoint.objects.get(run_id="pool-bookkeeping").attempts == 1
    assert effect_count("effect:pool-bookkeeping:") == 1


def test_a_real_bug_in_a_transactional_step_fails_after_its_attempts():
    durable.start("buggy-1", "buggy_transaction")
    runs = finish(["buggy-1"])
    assert runs["buggy-1"].result == {"failed": "ValueError: bug on call 3"}
    checkpoint = StepCheckpoint.objects.get(run_id="buggy-1")
    assert checkpoint.status == CheckpointStatus.ERROR and checkpoint.attempts == 3
    assert effect_count("effect:buggy-1:") == 0, "each failed attempt's writes rolled back"


def test_a_batch_advances_again_alone_a_run_that_met_a_transient_error():
    durable.start("batch-transient", "transient_errors", 1, False)
    durable.start("batch-fine", "transient_errors", 0, False)
    assert executor.advance_many(["batch-fine", "batch-transient"]) == {"finished": 2}
    for run_id in ("batch-fine", "batch-transient"):
        assert WorkflowRun.objects.get(pk=run_id).status == RunStatus.SUCCEEDED
        assert effect_count(f"effect:{run_id}:") == 1
    assert CALLS["batch-transient"] == 2


@pytest.mark.crash
@pytest.mark.django_db(transaction=True)
def test_worker_processes_retry_transient_errors_until_the_steps_succeed(tmp_path):
    env = process_env(DURABLE_WORKFLOW_MODULES="tests.durable.step_workflows", Q_WORKERS="2")
    failures = executor.TRANSIENT_RETRIES_IN_PLACE + 3  # more than the step's 3 attempts
    run_ids = [f"workers-transient-{n}" for n in range(3)]
    for run_id in run_ids:
        durable.start(run_id, "transient_errors_in_workers", str(tmp_path / run_id), failures)
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(
            lambda: all(WorkflowRun.objects.get(pk=r).is_finished for r in run_ids), 120,
            message=cluster.log(),
        )  # fmt: skip
    for run_id in run_ids:
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.result == {"calls": failures + 1}
        assert StepCheckpoint.objects.get(run_id=run_id).attempts == 1
        assert effect_count(f"effect:{run_id}:") == 1


def test_a_run_ended_by_a_steps_final_failure_names_the_step():
    durable.start("buggy-2", "buggy_transaction_unhandled")
    runs = finish(["buggy-2"])
    assert runs["buggy-2"].status == RunStatus.FAILED
    assert durable.StepFailed.step_named_by(runs["buggy-2"].error) == "write_then_fail"
    assert durable.StepFailed.step_named_by("ReplayDivergence: replay diverged at 1") is None

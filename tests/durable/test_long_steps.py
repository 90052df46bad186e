"""Plain steps that outlast the lease, with real worker processes and the poller."""

from __future__ import annotations

import datetime as dt
import signal
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from devtools.processes import poller, running, wait_until, worker
from durable.models import RunStatus, StepCheckpoint, WorkflowRun
from durable.persistence import store
from durable.runtime.executor import AdvanceOutcome, advance
from tests.durable.example_workflows import effect_count
from tests.durable.step_processes import engine_env, keeper_backend

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]


def finished(run_id: str):
    return lambda: WorkflowRun.objects.get(pk=run_id).is_finished


def test_a_step_longer_than_the_lease_runs_once_with_two_workers_and_its_run_finishes():
    env = engine_env()
    durable.start("long-1", "long_step")
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: effect_count("started:long-1:") == 1, 60, message=cluster.log())
        first = WorkflowRun.objects.get(pk="long-1")
        seen = set()

        def renewed_twice_past_the_first_expiry() -> bool:
            run = WorkflowRun.objects.get(pk="long-1")
            assert run.lease_owner == first.lease_owner, "the run was taken over"
            if run.lease_expires_at > first.lease_expires_at:
                seen.add(run.lease_expires_at)
            # Without renewal the lease would have lapsed by now, and the poller would have
            # handed the run to the cluster's other worker.
            return len(seen) >= 2 and timezone.now() > first.lease_expires_at

        # A lease that is not renewed never gets here: this wait fails.
        wait_until(renewed_twice_past_the_first_expiry, 60, message=cluster.log())
        assert effect_count("started:long-1:") == 1, "a second copy of the step started"
        Group.objects.create(name="release:long-1")
        wait_until(finished("long-1"), 60, message=cluster.log())
    run = WorkflowRun.objects.get(pk="long-1")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result == {"outcome": "released"}
    assert effect_count("started:long-1:") == 1


def advance_in_a_thread(run_id: str, outcome: list[AdvanceOutcome]) -> threading.Thread:
    """An executor in a thread of this process, with its own connection (closed at its end)."""

    def body() -> None:
        try:
            outcome.append(advance(run_id))
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def connections_to_the_test_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_the_keeper_renews_the_lease_and_closes_its_connection_when_the_step_returns(settings):
    settings.DURABLE = {**settings.DURABLE, "LEASE_SECONDS": 0.3}
    postgres = connection.vendor == "postgresql"
    before = connections_to_the_test_database() if postgres else 0
    durable.start("long-3", "long_step")
    outcome: list[AdvanceOutcome] = []
    executor = advance_in_a_thread("long-3", outcome)
    try:
        wait_until(lambda: effect_count("started:long-3:") == 1, 30)
        first = WorkflowRun.objects.get(pk="long-3").lease_expires_at
        wait_until(lambda: WorkflowRun.objects.get(pk="long-3").lease_expires_at > first, 30)
        if postgres:
            assert connections_to_the_test_database() == before + 2, "executor and keeper"
    finally:
        Group.objects.create(name="release:long-3")
        executor.join()
    assert outcome == [AdvanceOutcome.FINISHED]
    assert not [t for t in threading.enumerate() if t.name.startswith("lease keeper")]
    if postgres:  # a closed connection's server process ends soon after, not at once
        wait_until(
            lambda: connections_to_the_test_database() == before,
            30,
            message="the keeper's connection was left open",
        )


def test_a_step_whose_lease_was_taken_meanwhile_does_not_write_its_result(settings):
    settings.DURABLE = {**settings.DURABLE, "LEASE_SECONDS": 0.3}
    durable.start("long-2", "long_step")
    outcome: list[AdvanceOutcome] = []
    executor = advance_in_a_thread("long-2", outcome)
    try:
        wait_until(lambda: effect_count("started:long-2:") == 1, 30)
        # The lease lapses (as if the keeper had been cut off) and another executor takes the
        # run, in one transaction the keeper's next renewal waits for.
        with transaction.atomic():
            lapsed = timezone.now() - dt.timedelta(seconds=1)
            WorkflowRun.objects.filter(pk="long-2").update(lease_expires_at=lapsed)
            assert store.acquire_lease("long-2", "thief", dt.timedelta(seconds=30))
    finally:
        Group.objects.create(name="release:long-2")
        executor.join()
    assert outcome == [AdvanceOutcome.LEASE_LOST]
    run = WorkflowRun.objects.get(pk="long-2")
    assert run.lease_owner == "thief" and run.status == RunStatus.RUNNING
    assert not StepCheckpoint.objects.filter(run_id="long-2", status="done").exists()


def test_a_worker_killed_inside_a_step_uses_an_attempt_and_the_last_one_fails_the_step():
    env = engine_env()
    durable.start("killed-inside", "long_step_with_attempts", 2)
    cluster = worker(env)
    with running(cluster, poller(env)):
        for attempt in (1, 2):
            wait_until(
                lambda n=attempt: effect_count("started:killed-inside:") == n, 60,
                message=cluster.log(),
            )  # fmt: skip
            checkpoint = StepCheckpoint.objects.get(run_id="killed-inside")
            assert checkpoint.status == "pending" and checkpoint.attempts == attempt
            cluster.kill(signal.SIGKILL)
            cluster.start()
        # The lease of the second attempt lapses, a worker takes the run over and finds both
        # attempts used: the step fails instead of starting a third time.
        wait_until(finished("killed-inside"), 60, message=cluster.log())
    run = WorkflowRun.objects.get(pk="killed-inside")
    assert run.result == {
        "failed": "StepInterrupted: its worker died or lost the run during attempt 2"
    }
    assert effect_count("started:killed-inside:") == 2
    checkpoint = StepCheckpoint.objects.get(run_id="killed-inside")
    assert checkpoint.status == "error" and checkpoint.attempts == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_terminate_backend")
def test_the_lease_is_still_renewed_after_the_renewing_connection_was_killed(settings):
    settings.DURABLE = {**settings.DURABLE, "LEASE_SECONDS": 1.5}
    durable.start("long-4", "long_step")
    outcome: list[AdvanceOutcome] = []
    executor = advance_in_a_thread("long-4", outcome)
    try:
        wait_until(lambda: effect_count("started:long-4:") == 1, 30)
        first = WorkflowRun.objects.get(pk="long-4")
        wait_until(
            lambda: WorkflowRun.objects.get(pk="long-4").lease_expires_at > first.lease_expires_at,
            30,
        )
        wait_until(lambda: keeper_backend() is not None, 30)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [keeper_backend()])
        killed_at = WorkflowRun.objects.get(pk="long-4").lease_expires_at
        # Renewed again, on a new connection (without one, the lease would lapse at killed_at).
        wait_until(lambda: WorkflowRun.objects.get(pk="long-4").lease_expires_at > killed_at, 30)
        assert WorkflowRun.objects.get(pk="long-4").lease_owner == first.lease_owner
    finally:
        Group.objects.create(name="release:long-4")
        executor.join()
    assert outcome == [AdvanceOutcome.FINISHED]
    assert effect_count("started:long-4:") == 1

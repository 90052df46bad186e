"""Many plain steps in flight per worker process (durable.runtime.step_pool), with real worker
processes and the poller: the limit, the leases kept together, a SIGKILL with many calls in
flight, and django-q2's task timeout, which no longer caps a call."""

from __future__ import annotations

import datetime as dt
import signal
import time
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from devtools.processes import poller, running, wait_until, worker
from durable.models import RunStatus, StepCheckpoint, WorkflowRun
from durable.ops import run_reports
from tests.durable.example_workflows import effect_count
from tests.durable.step_processes import LEASE_SECONDS, engine_env, keeper_backend

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]


def held_runs(prefix: str, count: int, release: Path) -> list[str]:
    """Start `count` runs of one held plain step each, released by creating `release`."""
    run_ids = [f"{prefix}-{n}" for n in range(count)]
    for run_id in run_ids:
        durable.start(run_id, "held_step", str(release))
    return run_ids


def started(run_ids: list[str]) -> int:
    return sum(effect_count(f"started:{run_id}:") for run_id in run_ids)


def all_finished(run_ids: list[str]):
    return lambda: all(WorkflowRun.objects.get(pk=run_id).is_finished for run_id in run_ids)


def most_at_once_per_process() -> dict[str, int]:
    """The most calls each worker process had in flight, as its calls noted when they started."""
    most: dict[str, int] = {}
    for name in Group.objects.filter(name__startswith="at-once:").values_list("name", flat=True):
        _, pid, at_once, *_ = name.split(":")
        most[pid] = max(most.get(pid, 0), int(at_once))
    return most


def assert_succeeded_once_per_attempt(run_ids: list[str], attempts: int) -> None:
    for run_id in run_ids:
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        checkpoint = StepCheckpoint.objects.get(run_id=run_id, position=0)
        assert checkpoint.attempts == attempts
        # Each attempt the engine recorded called the step once, and no call went unrecorded.
        assert effect_count(f"started:{run_id}:") == attempts
        assert effect_count(f"paid:{run_id}:") == 1


def a_run_waits_for_a_slot(run_ids: list[str]) -> bool:
    """Whether a worker holds one of the runs without having recorded an attempt of its step:
    its task found every slot taken and waits for one (a run handed its call to the pool commits
    its lease together with the attempt)."""
    leased = WorkflowRun.objects.filter(pk__in=run_ids, status=RunStatus.RUNNING)
    return leased.exclude(pk__in=StepCheckpoint.objects.values("run_id")).exists()


def test_a_worker_never_has_more_calls_in_flight_than_its_limit(tmp_path: Path):
    release = tmp_path / "release"
    env = engine_env(Q_WORKERS="1", DURABLE_STEPS_IN_FLIGHT="3")
    run_ids = held_runs("limit", 6, release)
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: started(run_ids) == 3, 60, message=cluster.log())
        # The fourth run's task is held back while three calls are in flight.
        wait_until(lambda: a_run_waits_for_a_slot(run_ids), 60, message=cluster.log())
        assert started(run_ids) == 3
        # What operators see: the calls in flight, and the rest waiting in the queue.
        assert run_reports.engine_status().calls_in_flight == 3
        listing = StringIO()
        call_command("workflows", "list", stdout=listing)
        assert listing.getvalue().splitlines()[-1].endswith("; 3 step call(s) in flight")
        release.touch()
        wait_until(all_finished(run_ids), 120, message=cluster.log())
    most = most_at_once_per_process()
    assert len(most) == 1 and max(most.values()) == 3, most  # reached, and never passed
    assert_succeeded_once_per_attempt(run_ids, attempts=1)


def test_many_calls_in_flight_keep_their_leases_and_survive_a_sigkill(tmp_path: Path):
    release = tmp_path / "release"
    env = engine_env(Q_WORKERS="1", DURABLE_STEPS_IN_FLIGHT="8")
    run_ids = held_runs("inflight", 8, release)
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: started(run_ids) == 8, 60, message=cluster.log())
        runs = {run.pk: run for run in WorkflowRun.objects.filter(pk__in=run_ids)}
        if connection.vendor == "postgresql":
            # The renewer's connection dies: it renews on a new one.
            wait_until(lambda: keeper_backend() is not None, 60, message=cluster.log())
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [keeper_backend()])
        latest_start = max(run.lease_expires_at for run in runs.values())
        # Several lease lengths later every run is still held by the advance that started its
        # call: one renewer kept all eight leases (else the poller would have handed them on).
        later = latest_start + dt.timedelta(seconds=3 * LEASE_SECONDS)
        wait_until(lambda: timezone.now() > later, 60)
        for run in WorkflowRun.objects.filter(pk__in=run_ids):
            assert run.lease_owner == runs[run.pk].lease_owner, "a run was taken over"
            assert run.lease_expires_at > latest_start
        assert started(run_ids) == 8, "a second copy of a call started"
        cluster.kill(signal.SIGKILL)
        cluster.start()
        # The killed process's leases lapse; its runs are taken over and each call started again.
        wait_until(lambda: started(run_ids) == 16, 60, message=cluster.log())
        release.touch()
        wait_until(all_finished(run_ids), 120, message=cluster.log())
    assert_succeeded_once_per_attempt(run_ids, attempts=2)


def test_a_call_may_outlast_django_q2s_task_timeout(tmp_path: Path):
    release = tmp_path / "release"
    timeout = 2
    env = engine_env(Q_WORKERS="1", Q_TIMEOUT_SECONDS=str(timeout))
    held_runs("past-timeout", 1, release)
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: started(["past-timeout-0"]) == 1, 60, message=cluster.log())
        called_at = time.monotonic()
        # The scenario, not a race: the call lasts well past the task's time limit.
        wait_until(lambda: time.monotonic() > called_at + 3 * timeout, 60)
        release.touch()
        wait_until(all_finished(["past-timeout-0"]), 60, message=cluster.log())
    assert_succeeded_once_per_attempt(["past-timeout-0"], attempts=1)
    log = cluster.log()
    assert "exceeded maximum timeout" not in log and "after timeout" not in log, log


def test_a_recycled_worker_drains_its_calls_in_flight_before_it_exits(tmp_path: Path):
    release = tmp_path / "release"
    # django-q2 recycles the worker process after each task: its loop returns at once, with the
    # call the task handed to the pool still in flight.
    env = engine_env(Q_WORKERS="1", Q_RECYCLE="1")
    run_ids = held_runs("recycled", 2, release)
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: started(run_ids) >= 1, 60, message=cluster.log())
        held = WorkflowRun.objects.get(status=RunStatus.RUNNING, pk__in=run_ids)
        # The exiting process keeps the run's lease past several lengths while it waits.
        later = held.lease_expires_at + dt.timedelta(seconds=2 * LEASE_SECONDS)
        wait_until(lambda: timezone.now() > later, 60)
        assert WorkflowRun.objects.get(pk=held.pk).lease_owner == held.lease_owner
        release.touch()
        wait_until(all_finished(run_ids), 120, message=cluster.log())
    # Each call's answer was recorded by the process that made it: one attempt each.
    assert_succeeded_once_per_attempt(run_ids, attempts=1)


def test_a_run_that_finds_no_free_slot_in_time_goes_back_to_the_queue_without_an_attempt(
    tmp_path: Path,
):
    release = tmp_path / "release"
    # One slot, and a task waits for one a quarter of its 2 s timeout before handing back.
    env = engine_env(Q_WORKERS="1", DURABLE_STEPS_IN_FLIGHT="1", Q_TIMEOUT_SECONDS="2")
    run_ids = held_runs("handed-back", 3, release)
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: started(run_ids) == 1, 60, message=cluster.log())
        wait_until(lambda: "every step slot of the worker was taken" in cluster.log(), 60)
        assert started(run_ids) == 1
        release.touch()
        wait_until(all_finished(run_ids), 120, message=cluster.log())
    # Handed back before its attempt was recorded: each call made once, each attempt one.
    assert_succeeded_once_per_attempt(run_ids, attempts=1)


def test_a_runs_next_call_keeps_its_lease_past_several_lease_lengths(tmp_path: Path):
    # The completer records the first call's answer and hands the second call to the pool, under
    # the same lease owner: the renewer keeps that one too.
    first, second = tmp_path / "first", tmp_path / "second"
    env = engine_env(Q_WORKERS="1")
    durable.start("two-calls", "two_held_steps", str(first), str(second))
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: started(["two-calls-first"]) == 1, 60, message=cluster.log())
        first.touch()
        wait_until(lambda: started(["two-calls-second"]) == 1, 60, message=cluster.log())
        held = WorkflowRun.objects.get(pk="two-calls")
        later = held.lease_expires_at + dt.timedelta(seconds=3 * LEASE_SECONDS)
        wait_until(lambda: timezone.now() > later, 60)
        assert WorkflowRun.objects.get(pk="two-calls").lease_owner == held.lease_owner
        assert started(["two-calls-second"]) == 1, "a second copy of the call started"
        second.touch()
        wait_until(all_finished(["two-calls"]), 60, message=cluster.log())
    run = WorkflowRun.objects.get(pk="two-calls")
    assert run.status == RunStatus.SUCCEEDED and run.result == {"outcome": "released"}
    assert [cp.attempts for cp in StepCheckpoint.objects.filter(run_id="two-calls")] == [1, 1]

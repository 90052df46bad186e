"""Crash tests: real django-q2 clusters and pollers, killed with SIGKILL at chosen moments."""

from __future__ import annotations

import datetime as dt
import signal
import time

import pytest

import durable
from devtools.processes import poller, running, wait_until, worker
from durable.models import RunStatus, StepCheckpoint, WorkflowRun
from tests.durable.example_workflows import effect_count
from tests.support.environment import process_env

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]


def engine_env() -> dict[str, str]:
    # The children serve the queue this process enqueues on (the ORM broker lives in the test
    # database, emptied between tests).
    return process_env(DURABLE_WORKFLOW_MODULES="tests.durable.example_workflows", Q_WORKERS="2")


def run_status(run_id: str) -> str:
    return WorkflowRun.objects.get(pk=run_id).status


def finished(*run_ids: str):
    return lambda: all(WorkflowRun.objects.get(pk=r).is_finished for r in run_ids)


def test_a_worker_killed_inside_a_transactional_step_leaves_no_effect_and_the_run_finishes():
    env = engine_env()
    durable.start("crash-mid-step", "many_steps", 3, 1.5, 0)
    cluster = worker(env)
    with running(cluster, poller(env)):
        # Kill while step 1 sleeps inside its transaction.
        wait_until(lambda: effect_count("effect:crash-mid-step:") >= 1, 60, message=cluster.log())
        time.sleep(0.5)
        cluster.kill(signal.SIGKILL)
        assert effect_count("effect:crash-mid-step:") == 1, "the killed step's writes rolled back"
        run = WorkflowRun.objects.get(pk="crash-mid-step")
        assert run.status == RunStatus.RUNNING and run.lease_owner, "the dead worker's lease stays"
        cluster.start()
        wait_until(finished("crash-mid-step"), 90, message=cluster.log())
    run = WorkflowRun.objects.get(pk="crash-mid-step")
    assert run.status == RunStatus.SUCCEEDED and run.result["total"] == 3
    for index in range(3):
        assert effect_count(f"effect:crash-mid-step:{index}") == 1


def test_kills_before_and_after_steps_and_during_a_wait_keep_effects_exactly_once():
    env = engine_env()
    run_ids = [f"crash-many-{n}" for n in range(6)]
    for run_id in run_ids:
        durable.start(run_id, "many_steps", 4, 0.2, 1.5)
    cluster = worker(env)
    with running(cluster, poller(env)):
        # Kill at several points: between steps, inside steps, while runs wait for "go".
        for pause in (0.4, 0.9, 1.7, 2.5):
            time.sleep(pause)
            cluster.kill(signal.SIGKILL)
            time.sleep(0.2)
            cluster.start()
        wait_until(finished(*run_ids), 120, message=cluster.log())
    for run_id in run_ids:
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.result["total"] == 6
        for index in range(4):
            assert effect_count(f"effect:{run_id}:{index}") == 1


def test_a_signal_sent_while_no_worker_runs_is_honoured_and_the_deadline_is_not_extended():
    env = engine_env()
    durable.start("mail-down", "send_with_undo", "hello", 4)
    durable.start("mail-timeout", "send_with_undo", "hello", 2)
    cluster = worker(env)
    with running(cluster, poller(env)):
        wait_until(lambda: run_status("mail-down") == RunStatus.WAITING, 60, message=cluster.log())
        wait_until(lambda: run_status("mail-timeout") == RunStatus.WAITING, 60)
        cluster.kill(signal.SIGKILL)
        # Nobody is running: the signal is still persisted and accepted.
        assert durable.send_signal("mail-down", "undo", "while-down").accepted
        time.sleep(3)  # mail-timeout's deadline passes while its worker is dead
        cluster.start()
        wait_until(finished("mail-down", "mail-timeout"), 90, message=cluster.log())
    assert WorkflowRun.objects.get(pk="mail-down").result == {
        "sent": False,
        "undone_by": "while-down",
    }
    assert effect_count("sent:mail-down") == 0
    late = WorkflowRun.objects.get(pk="mail-timeout")
    assert late.result["sent"] is True and effect_count("sent:mail-timeout") == 1
    wait = StepCheckpoint.objects.get(run_id="mail-timeout", position=0)
    created = StepCheckpoint.objects.get(run_id="mail-timeout", position=0).started_at
    # The deadline was fixed 2 s after the wait was first reached, and the restart did not move it.
    assert wait.deadline - created <= dt.timedelta(seconds=2.5)
    assert wait.finished_at >= wait.deadline


def test_the_poller_being_killed_loses_nothing():
    env = engine_env()
    run_ids = [f"poller-kill-{n}" for n in range(5)]
    for run_id in run_ids:
        durable.start(run_id, "sleeper", 1.0)
    the_poller = poller(env)
    with running(worker(env), the_poller):
        time.sleep(0.5)
        the_poller.kill(signal.SIGKILL)
        time.sleep(1.5)  # wake-up times pass with no poller
        assert not finished(*run_ids)()
        the_poller.start()
        wait_until(finished(*run_ids), 60, message=the_poller.log())
    assert all(run_status(r) == RunStatus.SUCCEEDED for r in run_ids)

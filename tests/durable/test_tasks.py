"""The engine's django-q2 tasks through django-q2's own pusher, worker and monitor loops: who
acknowledges them with each ORM broker, and the paths django-q2 finds them by."""

from __future__ import annotations

import pydoc

import pytest
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

import durable
from durable import tasks
from durable.models import RunStatus, WorkflowRun
from durable.persistence import store
from durable.transport import dispatch, taskqueue
from durable.transport.broker import PromptORMBroker
from tests.durable.example_workflows import effect_count
from tests.support.cluster_loops import through_the_cluster, use_orm_broker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("broker_name", ["prompt", "stock"])
def test_an_engine_task_is_acknowledged_once_its_work_commits(broker_name, monkeypatch):
    broker = use_orm_broker(broker_name, monkeypatch)
    durable.start("ack-1", "send_with_undo", "hello", 0)
    [queued] = OrmQ.objects.all()
    acknowledged = through_the_cluster(broker, monkeypatch)
    if broker_name == "prompt":
        assert acknowledged == [], "the task deleted its own row with the run's last writes"
    else:
        assert acknowledged == [queued.pk], "django-q2's stock broker: its monitor acknowledges"
    assert WorkflowRun.objects.get(pk="ack-1").status == RunStatus.SUCCEEDED
    assert not OrmQ.objects.filter(pk=queued.pk).exists()


@pytest.mark.parametrize("broker_name", ["prompt", "stock"])
def test_an_engine_task_that_fails_keeps_its_row_for_django_q2_to_handle(
    broker_name, monkeypatch, settings
):
    broker = use_orm_broker(broker_name, monkeypatch)
    # One group transaction for the whole advance, however slow the machine: a group open past
    # GROUP_COMMIT_SECONDS commits after a step, and the step's effect would then outlive the
    # failure this test injects after it.
    settings.DURABLE = {**getattr(settings, "DURABLE", {}), "GROUP_COMMIT_SECONDS": 3600}
    durable.start("ack-2", "send_with_undo", "hello", 0)
    [queued] = OrmQ.objects.all()

    def finish_run(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "finish_run", finish_run)
    # The task's transaction rolled back (its own delete with it, with the engine's broker): the
    # monitor acknowledges the failure as django-q2 does (ack_failures), the run is left for the
    # poller.
    assert through_the_cluster(broker, monkeypatch) == [queued.pk]
    assert WorkflowRun.objects.get(pk="ack-2").status == RunStatus.PENDING
    assert effect_count("sent:ack-2") == 0


@pytest.mark.parametrize(("broker_name", "checks_of_the_second"), [("prompt", 0), ("stock", 1)])
def test_an_engine_task_right_after_another_skips_the_connection_health_check(
    broker_name, checks_of_the_second, monkeypatch
):
    from django.db import connections
    from django_q.signals import post_execute_in_worker, pre_execute

    broker = use_orm_broker(broker_name, monkeypatch)
    checks: list[str] = []
    running: list[bool] = []  # the checks the pusher makes are not the task's
    wrapper = type(connections["default"])
    monkeypatch.setattr(wrapper, "is_usable", lambda self: (running and checks.append("x")) or True)
    monkeypatch.setattr(tasks, "_last_task_ended", -1e9)  # no engine task ran in this process
    durable.start("health-1", "send_with_undo", "hello", 0)
    durable.start("health-2", "send_with_undo", "hello", 0)
    pre_execute.connect(lambda **_: running.append(True), weak=False, dispatch_uid="test-run")
    post_execute_in_worker.connect(lambda **_: running.clear(), weak=False, dispatch_uid="test-end")
    try:
        through_the_cluster(broker, monkeypatch)
        assert len(checks) == 1, "the first task checks the connection django-q2 handed it"
        through_the_cluster(broker, monkeypatch)
    finally:
        pre_execute.disconnect(dispatch_uid="test-run")
        post_execute_in_worker.disconnect(dispatch_uid="test-end")
    # With the engine's broker it served the previous task a moment ago: trusted. With
    # django-q2's stock broker, django-q2's check is left as it is.
    assert len(checks) == 1 + checks_of_the_second
    assert WorkflowRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 2


def test_every_task_path_finds_its_function_in_durable_tasks():
    # As django-q2's worker finds a task's function (pydoc.locate, see the contract test).
    assert pydoc.locate(dispatch.TASK_PATH) is tasks.advance_task
    assert pydoc.locate(dispatch.BATCH_TASK_PATH) is tasks.advance_batch_task
    assert pydoc.locate(dispatch.PROBE_TASK_PATH) is tasks.worker_probe
    assert pydoc.locate(dispatch.PRUNE_TASK_PATH) is tasks.prune_workflows
    for path in dispatch.ALL_TASK_PATHS:
        assert path.rsplit(".", 1)[0] == "durable.tasks" and callable(pydoc.locate(path)), path
    durable.start("paths-1", "send_with_undo", "hello", 0)
    [queued] = OrmQ.objects.all()
    assert taskqueue.payload_func(queued.payload) == dispatch.TASK_PATH


@pytest.mark.parametrize("path", [dispatch.TASK_PATH, dispatch.BATCH_TASK_PATH])
def test_a_task_of_each_engine_path_is_run_and_acknowledges_itself(path, monkeypatch):
    broker = use_orm_broker("prompt", monkeypatch)
    durable.start("path-1", "send_with_undo", "hello", 0)
    OrmQ.objects.all().delete()  # the run's only task is the one written below
    argument = "path-1" if path == dispatch.TASK_PATH else ["path-1"]
    async_task(path, argument, broker=broker, task_name="advance path-1")
    [queued] = OrmQ.objects.all()
    assert through_the_cluster(broker, monkeypatch) == [], "recognised as the engine's"
    assert WorkflowRun.objects.get(pk="path-1").status == RunStatus.SUCCEEDED
    assert not OrmQ.objects.filter(pk=queued.pk).exists()


def test_a_starting_pusher_hands_out_again_a_claimed_batch_task(monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 2)
    broker = use_orm_broker("prompt", monkeypatch)
    durable.start("orphan", "send_with_undo", "hello", 0)
    OrmQ.objects.all().delete()
    async_task(dispatch.BATCH_TASK_PATH, ["orphan"], broker=broker, task_name="advance 1 run")
    plain = broker.enqueue("someone else's task")
    [(engine_task, _), (plain_task, _)] = PromptORMBroker(broker.list_key).dequeue()
    assert plain_task == plain  # the cluster is killed with both in hand
    restarted = PromptORMBroker(broker.list_key)
    assert [task_id for task_id, _ in restarted.dequeue()] == [engine_task]
    assert restarted.dequeue() is None, "a task that is not the engine's keeps its claim"

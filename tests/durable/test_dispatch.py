"""Handing runs to the workers: with the queue in the engine's database, a run's task commits with
the run or not at all (an outbox), with the engine's broker and with django-q2's stock one."""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django_q.models import OrmQ

import durable
from durable.models import WorkflowRun
from durable.transport import dispatch, taskqueue
from tests.support.cluster_loops import use_orm_broker

pytestmark = pytest.mark.django_db(transaction=True)


def tasks_seen_by_another_connection() -> int:
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {taskqueue.queue_table()}")
            return int(cursor.fetchone()[0])
    finally:
        other.close()


@pytest.mark.parametrize("broker_name", ["prompt", "stock"])
def test_a_runs_task_commits_with_the_run_or_not_at_all(broker_name, monkeypatch):
    use_orm_broker(broker_name, monkeypatch)
    with pytest.raises(RuntimeError), transaction.atomic():
        durable.start("outbox-1", "send_with_undo", "hello", 0)
        assert OrmQ.objects.count() == 1, "written in the caller's transaction"
        raise RuntimeError("the caller's transaction fails after the start")
    assert not WorkflowRun.objects.filter(pk="outbox-1").exists()
    assert OrmQ.objects.count() == 0, "the task rolled back with the run"

    with transaction.atomic():
        durable.start("outbox-2", "send_with_undo", "hello", 0)
        assert tasks_seen_by_another_connection() == 0, "not visible before the commit"
    [queued] = OrmQ.objects.all()
    assert taskqueue.payload_func(queued.payload) == dispatch.TASK_PATH
    assert tasks_seen_by_another_connection() == 1

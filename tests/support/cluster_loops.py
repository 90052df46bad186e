"""django-q2's own cluster loops (pusher, worker, monitor), run once in the test process."""

from __future__ import annotations

from multiprocessing import Event, Queue, Value
from typing import Any

import pytest


def through_the_cluster(broker: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Take the next queued task through django-q2's own pusher, worker and monitor loops, in
    this process, as a cluster would. Returns the task ids the monitor acknowledged."""
    from django_q.conf import Conf
    from django_q.monitor import monitor
    from django_q.pusher import pusher
    from django_q.worker import worker

    acknowledged: list[int] = []
    real_acknowledge = type(broker).acknowledge

    def acknowledge(self: Any, task_id: int) -> None:
        acknowledged.append(task_id)
        real_acknowledge(self, task_id)

    monkeypatch.setattr(type(broker), "acknowledge", acknowledge)
    monkeypatch.setattr(Conf, "BULK", 1)  # one task at a time: the next one
    tasks, results, stop = Queue(), Queue(), Event()
    stop.set()  # the pusher claims once, then stops
    pusher(tasks, stop, broker)
    tasks.put("STOP")
    worker(tasks, results, Value("f", -1))
    results.put("STOP")
    monitor(results, broker)
    return acknowledged


def use_orm_broker(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the ORM broker that DURABLE_BROKER=`name` chooses ("prompt" or "stock") this
    process's broker for the test, whatever the environment chose. Returns it."""
    from django.conf import settings
    from django.utils.module_loading import import_string
    from django_q.conf import Conf

    from durable.transport import taskqueue

    path = settings.ORM_BROKERS[name]
    monkeypatch.setattr(Conf, "BROKER_CLASS", path)
    broker = import_string(path)(list_key=Conf.CLUSTER_NAME)
    monkeypatch.setattr(taskqueue, "broker", lambda: broker)
    return broker

"""The engine's one adapter to django-q2: every use of its internals is here, and each private
behaviour it relies on is pinned by a contract test that fails, naming the behaviour, on a
django-q2 version that changed it.

Public django-q2 (async_task, the pre_execute and post_spawn signals, a broker class) and private
django-q2 (its settings object, the queue table's model, the signed payload, the monitor's
acknowledgement of a task it finds still carrying an "ack_id") alike: the rest of the engine
imports none of django_q.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction
from django_q.brokers.orm import ORM as StockORMBroker
from django_q.conf import Conf

from durable.persistence import sql

__all__ = ["StockORMBroker"]


# --- the queue ----------------------------------------------------------------------------------


@cache
def broker() -> Any:
    """The broker django-q2 is configured with (Q_CLUSTER), one per process."""
    from django_q.brokers import get_broker

    return get_broker()


def queue_is_engine_database() -> bool:
    """Whether the queue is a table of the engine's database (an ORM broker on the default
    alias), so that a task written now commits or rolls back with the current transaction."""
    return bool(Conf.ORM) and Conf.ORM == DEFAULT_DB_ALIAS


def send(func_path: str, *args: Any, task_name: str) -> None:
    """Write a task that calls `func_path(*args)` to the broker."""
    from django_q.tasks import async_task

    async_task(func_path, *args, broker=broker(), task_name=task_name[:100])


def engine_shortcuts_on() -> bool:
    """Whether the engine's tasks take their shortcuts through django-q2's and Django's private
    behaviour (their own acknowledgement, a trusted connection). Off with django-q2's stock ORM
    broker (a broker on the ORM queue that does not declare `supports_engine_shortcuts`, as the
    engine's own does), so that choosing it runs django-q2 as shipped."""
    current = broker()
    if not isinstance(current, StockORMBroker):
        return True  # another broker (Redis): the queue is elsewhere, nothing to choose
    return bool(getattr(current, "supports_engine_shortcuts", False))


# --- what a broker on the ORM queue reads ---------------------------------------------------------


def queue_alias() -> str:
    """The database alias of the ORM queue (Q_CLUSTER["orm"])."""
    return str(Conf.ORM)


def poll_seconds() -> float:
    """How long an idle pusher waits before it looks again (Q_CLUSTER["poll"])."""
    return float(Conf.POLL)


def claim_size() -> int:
    """How many tasks a pusher claims at once (Q_CLUSTER["bulk"])."""
    return int(Conf.BULK)


def task_timeout() -> float | None:
    """How long django-q2 lets one task run before its worker process is stopped
    (Q_CLUSTER["timeout"]); None: no limit."""
    return float(Conf.TIMEOUT) if Conf.TIMEOUT else None


def claim_seconds() -> float:
    """How long a claimed task stays claimed before it is handed out again (Q_CLUSTER["retry"])."""
    return float(Conf.RETRY)


@cache
def queue_table() -> str:
    """The ORM queue's table (django-q2's OrmQ: key, payload, lock)."""
    from django_q.models import OrmQ

    return OrmQ._meta.db_table


def lock_sql(connection: Any, offset: dt.timedelta = dt.timedelta(0)) -> tuple[str, list[Any]]:
    """The database's clock plus `offset`, as SQL for a queue row's lock, and its parameters."""
    from django_q.models import OrmQ

    return sql.placeholder(OrmQ, "lock", sql.DatabaseClock(offset), connection)


def payload_func(payload: Any) -> str | None:
    """The function path of the task in a queue row's signed payload; None if it cannot be read
    (another key, another version, not a task)."""
    from django_q.signing import SignedPackage

    try:
        func = SignedPackage.loads(payload).get("func")
    except Exception:  # unreadable: not ours to judge
        return None
    return func if isinstance(func, str) else None


# --- in the worker process ----------------------------------------------------------------------


def connect_signals(before_task: Callable[..., None], on_worker_start: Callable[..., None]) -> None:
    """Call `before_task(sender, func, task)` in the worker before each task (django-q2's
    pre_execute; `task` is the dict the monitor acknowledges afterwards) and
    `on_worker_start(sender, proc_name)` in each new worker process (post_spawn)."""
    from django_q.signals import post_spawn, pre_execute

    pre_execute.connect(before_task, dispatch_uid="durable.before_task")
    post_spawn.connect(on_worker_start, dispatch_uid="durable.on_worker_start")


def task_func(task: dict[str, Any]) -> Any:
    """The function a pre_execute `task` names, as it was enqueued (a path, for the engine's)."""
    return task.get("func")


# The engine task this worker process is running, when it acknowledges itself.
_own_task: dict[str, Any] | None = None


def take_acknowledgement(task: dict[str, Any] | None) -> None:
    """In pre_execute: the engine task `task` will delete its own queue row (see
    `acknowledge_in_transaction`); None: the next task is django-q2's to acknowledge."""
    global _own_task
    _own_task = task if task is not None and task.get("ack_id") is not None else None


def acknowledge_in_transaction() -> Callable[[], None] | None:
    """For the task that took its acknowledgement: a function that deletes its queue row, to be
    called inside the transaction that records its work. Once that commits, the task no longer
    carries its "ack_id", and django-q2's monitor, which acknowledges only a task that still
    does, is left nothing to do; if it rolls back, the monitor handles the task as it always
    does. None for any other task."""
    global _own_task
    task, _own_task = _own_task, None
    if task is None:
        return None

    def acknowledge() -> None:
        broker().delete(task["ack_id"])
        transaction.on_commit(lambda: task.pop("ack_id", None))

    return acknowledge


def skip_health_check(connection: Any) -> None:
    """Spare `connection` the health check Django would make before its next query (the round
    trip django-q2 asked for by closing old connections before the task)."""
    connection.health_check_done = True

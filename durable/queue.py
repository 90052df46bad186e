"""The one module of the engine that talks to django-q2.

With the ORM broker on the engine's own database, a run's task is written in the same transaction
as the change that makes the run runnable (an outbox: committed together or not at all). With any
other broker (Redis) the task is sent after the transaction commits; the poller re-sends a task
that was lost between the two.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction

logger = logging.getLogger("durable.queue")

TASK_PATH = "durable.queue.advance_task"


@cache
def _broker() -> Any:
    from django_q.brokers import get_broker

    return get_broker()


def _broker_is_our_database() -> bool:
    from django_q.conf import Conf

    return bool(Conf.ORM) and Conf.ORM == DEFAULT_DB_ALIAS


def _send(run_id: str) -> None:
    from django_q.tasks import async_task

    async_task(TASK_PATH, run_id, broker=_broker(), task_name=f"advance {run_id}"[:100])


def enqueue(run_id: str) -> None:
    """Ask a worker to advance `run_id`: atomically with the current transaction where the broker
    allows it, otherwise once it commits. A duplicate task is harmless (the lease admits one)."""
    if _broker_is_our_database():
        _send(run_id)
    else:
        transaction.on_commit(lambda: _send(run_id))


def enqueue_many(run_ids: list[str]) -> None:
    """`enqueue` for each id."""
    for run_id in run_ids:
        enqueue(run_id)


def advance_task(run_id: str) -> str:
    """The django-q2 task: advance one run. Returns what happened, for the task log."""
    from durable.executor import advance

    return advance(run_id).value


def queue_depth() -> int | None:
    """Tasks waiting in the broker, or None when the broker cannot tell."""
    try:
        return int(_broker().queue_size())
    except Exception:  # a broker that cannot count must not break a health check
        logger.warning("broker could not report its queue size", exc_info=True)
        return None

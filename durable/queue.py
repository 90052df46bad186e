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
BATCH_TASK_PATH = "durable.queue.advance_batch_task"
# Runs woken together travel in tasks of up to this many, sparing the broker a round trip per run
# while still spreading them over the workers.
MAX_BATCH = 25
SPREAD = 4


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


def _send_batch(run_ids: list[str]) -> None:
    from django_q.tasks import async_task

    async_task(BATCH_TASK_PATH, run_ids, broker=_broker(), task_name=f"advance {len(run_ids)} runs")


def enqueue_task(task_path: str, task_name: str) -> None:
    """Enqueue a plain django-q2 task of the engine (not tied to a run), e.g. a health probe."""
    from django_q.tasks import async_task

    async_task(task_path, broker=_broker(), task_name=task_name)


def enqueue(run_id: str) -> None:
    """Ask a worker to advance `run_id`: atomically with the current transaction where the broker
    allows it, otherwise once it commits. A duplicate task is harmless (the lease admits one)."""
    if _broker_is_our_database():
        _send(run_id)
    else:
        transaction.on_commit(lambda: _send(run_id))


def enqueue_many(run_ids: list[str]) -> None:
    """Ask the workers to advance all `run_ids`, in a few tasks of several runs each."""
    if len(run_ids) == 1:
        enqueue(run_ids[0])
        return
    size = max(1, min(MAX_BATCH, -(-len(run_ids) // SPREAD)))
    for start in range(0, len(run_ids), size):
        batch = run_ids[start : start + size]
        if _broker_is_our_database():
            _send_batch(batch)
        else:
            transaction.on_commit(lambda batch=batch: _send_batch(batch))


def advance_task(run_id: str) -> str:
    """The django-q2 task: advance one run. Returns what happened, for the task log."""
    from durable.executor import advance

    return advance(run_id).value


def advance_batch_task(run_ids: list[str]) -> dict[str, int]:
    """The django-q2 task for runs woken together: advance each; one failing does not stop the
    rest (the poller finds it again). Returns how many ended each way."""
    from durable.executor import advance

    outcomes: dict[str, int] = {}
    for run_id in run_ids:
        try:
            outcome = advance(run_id).value
        except Exception:
            logger.exception("run %s could not be advanced", run_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def queue_depth() -> int | None:
    """Tasks waiting in the broker, or None when the broker cannot tell."""
    try:
        return int(_broker().queue_size())
    except Exception:  # a broker that cannot count must not break a health check
        logger.warning("broker could not report its queue size", exc_info=True)
        return None

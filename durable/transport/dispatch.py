"""Hand runs to the workers as django-q2 tasks, and the paths of the engine's task functions.

With the queue in the engine's own database (an ORM broker on the default alias), a run's task is
written in the same transaction as the change that makes the run runnable (an outbox: committed
together or not at all). With any other broker (Redis) the task is sent after the transaction
commits; the poller re-sends a task that was lost between the two.
"""

from __future__ import annotations

import logging

from django.db import transaction

from durable.transport import taskqueue

logger = logging.getLogger("durable.transport.dispatch")

# The functions of the engine's django-q2 tasks, by the paths django-q2 stores in each queued task
# (durable/tasks.py keeps them importable under these paths for good).
TASK_PATH = "durable.tasks.advance_task"
BATCH_TASK_PATH = "durable.tasks.advance_batch_task"
PROBE_TASK_PATH = "durable.tasks.worker_probe"
PRUNE_TASK_PATH = "durable.tasks.prune_workflows"  # for a daily django-q2 schedule
# The tasks that advance runs: the engine's broker and worker shortcuts apply to these only.
ENGINE_TASK_PATHS = frozenset((TASK_PATH, BATCH_TASK_PATH))
# Every function path the engine's tasks and schedules name.
ALL_TASK_PATHS = frozenset((*ENGINE_TASK_PATHS, PROBE_TASK_PATH, PRUNE_TASK_PATH))

# Runs woken together travel in tasks of up to this many, sparing the broker a round trip per run
# while still spreading them over the workers.
MAX_BATCH = 25
SPREAD = 4


def _send(run_id: str) -> None:
    taskqueue.send(TASK_PATH, run_id, task_name=f"advance {run_id}")


def _send_batch(run_ids: list[str]) -> None:
    taskqueue.send(BATCH_TASK_PATH, run_ids, task_name=f"advance {len(run_ids)} runs")


def enqueue_task(task_path: str, task_name: str) -> None:
    """Enqueue a plain django-q2 task of the engine (not tied to a run), e.g. a health probe."""
    taskqueue.send(task_path, task_name=task_name)


def enqueue(run_id: str) -> None:
    """Ask a worker to advance `run_id`: atomically with the current transaction where the broker
    allows it, otherwise once it commits. A duplicate task is harmless (the lease admits one)."""
    if taskqueue.queue_is_engine_database():
        _send(run_id)
    else:
        transaction.on_commit(lambda: _send(run_id))


def enqueue_many(run_ids: list[str]) -> None:
    """Ask the workers to advance all `run_ids`, in a few tasks of several runs each, on the same
    terms as `enqueue`."""
    if len(run_ids) == 1:
        enqueue(run_ids[0])
        return
    size = max(1, min(MAX_BATCH, -(-len(run_ids) // SPREAD)))
    for start in range(0, len(run_ids), size):
        batch = run_ids[start : start + size]
        if taskqueue.queue_is_engine_database():
            _send_batch(batch)
        else:
            transaction.on_commit(lambda batch=batch: _send_batch(batch))


def queue_depth() -> int | None:
    """Tasks waiting in the broker, or None when the broker cannot tell."""
    try:
        return int(taskqueue.broker().queue_size())
    except Exception:  # a broker that cannot count must not break a health check
        logger.warning("broker could not report its queue size", exc_info=True)
        return None

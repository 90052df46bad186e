"""The engine's django-q2 tasks: advance one run or several woken together, answer a heartbeat
probe, prune old history.

django-q2 stores a task's function as a dotted path in each queued task and schedule, and finds
it again by that path when a worker runs it: every function here keeps its path
(`durable.tasks.<name>`) for good. A new task is added here, and its path named in
transport/dispatch.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, Error, connections

from durable.ops import retention
from durable.persistence import heartbeats
from durable.persistence.backoff import (
    HEALTH_CHECK_SECONDS,
    Backoff,
    connection_lost,
    current_connection,
)
from durable.runtime import step_pool
from durable.runtime.executor import advance, advance_many
from durable.transport import taskqueue
from durable.transport.dispatch import ENGINE_TASK_PATHS

logger = logging.getLogger("durable.tasks")

# An engine task that lost its database connection tries again for this long (django-q2 stops
# a task after its `timeout`, 60 s in this project's settings).
RECONNECT_FOR_SECONDS = 30.0

# When this process's last engine task ended.
_last_task_ended = -1e9


def before_engine_task(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """django-q2's pre_execute signal, in the worker process, before every task.

    Unless django-q2's stock ORM broker was chosen (taskqueue.engine_shortcuts_on):
    - with the queue in the engine's database, an engine task deletes its own queue row in the
      transaction that records its work, instead of django-q2's monitor deleting it afterwards
      in a transaction (and a disk flush) of its own; a task that fails keeps django-q2's
      handling;
    - django-q2 has just asked for the connection's health check (a round trip before the
      task's first query); a connection that served the previous engine task less than
      HEALTH_CHECK_SECONDS ago is trusted instead, as the pusher's is. Should it have died
      since, the task fails and the poller delivers the run again."""
    taskqueue.take_acknowledgement(None)
    if taskqueue.task_func(task) not in ENGINE_TASK_PATHS or not taskqueue.engine_shortcuts_on():
        return
    if taskqueue.queue_is_engine_database():
        taskqueue.take_acknowledgement(task)
    connection = connections[DEFAULT_DB_ALIAS]
    recent = time.monotonic() - _last_task_ended < HEALTH_CHECK_SECONDS
    if recent and connection.connection is not None and not connection.errors_occurred:
        taskqueue.skip_health_check(connection)


def _engine_task_ended() -> None:
    global _last_task_ended
    _last_task_ended = time.monotonic()


def _reconnecting(work: Callable[[Any], Any]) -> Any:
    """`work(connection)`, done again on a new connection if it failed because `connection` was
    lost (a restart, or a connection that died while idle), with waits that double up to
    backoff.LONGEST_WAIT_SECONDS, for up to RECONNECT_FOR_SECONDS. Safe because advancing a
    run is: its lease admits one executor and what committed is never done twice. Without it
    the run would wait for the poller's redelivery (DURABLE_REDELIVER_AFTER_SECONDS)."""
    give_up = time.monotonic() + RECONNECT_FOR_SECONDS
    backoff = Backoff(taskqueue.poll_seconds())
    while True:
        used = current_connection(DEFAULT_DB_ALIAS)
        try:
            return work(used)
        except (Error, _BatchLostConnection):
            if time.monotonic() > give_up or not connection_lost(DEFAULT_DB_ALIAS, used):
                raise
            logger.warning("engine task lost its database connection; trying again")
        backoff.wait()


def advance_task(run_id: str) -> str:
    """The django-q2 task: advance one run. Returns what happened, for the task log."""
    acknowledge = taskqueue.acknowledge_in_transaction()
    with step_pool.task():
        outcome = _reconnecting(lambda used: advance(run_id, last_write=acknowledge))
    _engine_task_ended()
    return outcome.value


def advance_batch_task(run_ids: list[str]) -> dict[str, int]:
    """The django-q2 task for runs woken together: advance each, committing them in groups; one
    failing does not stop the rest (the poller finds it again). Returns how many ended each way."""
    acknowledge = taskqueue.acknowledge_in_transaction()

    def batch(used: Any) -> dict[str, int]:
        outcomes = advance_many(run_ids, last_write=acknowledge)
        # advance_many logs each run that failed and goes on; a lost connection fails them all.
        if outcomes.get("error") and connection_lost(DEFAULT_DB_ALIAS, used):
            raise _BatchLostConnection(f"{outcomes['error']} run(s) failed")
        return outcomes

    with step_pool.task():
        outcomes = _reconnecting(batch)
    _engine_task_ended()
    return outcomes


def worker_probe() -> str:
    """The django-q2 task a poller enqueues (ops.health.send_worker_probe): the worker that runs
    it records its heartbeat."""
    heartbeats.beat(heartbeats.WORKER)
    return "alive"


def prune_workflows() -> retention.PruneReport:
    """The django-q2 task for a daily schedule: `retention.prune` with DURABLE["RETENTION_DAYS"]
    (what `manage.py prune_workflows` does)."""
    return retention.prune()


class _BatchLostConnection(Exception):
    """Runs of a batch failed because the database connection was lost."""

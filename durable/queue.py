"""The one module of the engine that talks to django-q2.

With the ORM broker on the engine's own database, a run's task is written in the same transaction
as the change that makes the run runnable (an outbox: committed together or not at all). With any
other broker (Redis) the task is sent after the transaction commits; the poller re-sends a task
that was lost between the two.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

from durable import sql

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
    """The django-q2 task for runs woken together: advance each, committing them in groups; one
    failing does not stop the rest (the poller finds it again). Returns how many ended each way."""
    from durable.executor import advance_many

    return advance_many(run_ids)


def queue_depth() -> int | None:
    """Tasks waiting in the broker, or None when the broker cannot tell."""
    try:
        return int(_broker().queue_size())
    except Exception:  # a broker that cannot count must not break a health check
        logger.warning("broker could not report its queue size", exc_info=True)
        return None


class PromptORMBroker(ORM):
    """django-q2's ORM broker, first in first out, prompt while work keeps coming, and cheap.

    The stock broker sleeps its full poll interval whenever the queue is empty, which adds up to
    that interval to every task (a purchase's confirmation, a cancel). On PostgreSQL this one
    LISTENs: every enqueue NOTIFYs in its own transaction, so a waiting pusher wakes the moment a
    task is committed, and polls at the configured interval only as a safety net. Elsewhere it
    polls every BUSY_POLL_SECONDS for a while after it last found work, and at the configured
    interval once idle. Its statements are plain SQL (the stock broker's ORM queries cost more
    CPU than the database's work), and it checks its connection's health once a second rather
    than before every poll."""

    BUSY_POLL_SECONDS = 0.001
    BUSY_FOR_SECONDS = 2.0
    HEALTH_CHECK_SECONDS = 1.0
    CHANNEL = "durable_task_queue"

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        self._last_work = 0.0
        self._last_health_check = 0.0
        self._listening_on: Any = None

    def _connection(self) -> Any:
        from django.db import close_old_connections, connections

        now = time.monotonic()
        if now - self._last_health_check >= self.HEALTH_CHECK_SECONDS:
            self._last_health_check = now
            if transaction.get_autocommit(using=Conf.ORM):
                close_old_connections()
        return connections[Conf.ORM]

    def dequeue(self) -> list[tuple[int, Any]] | None:
        connection = self._connection()
        queue = _queue_table()
        now = _prep_lock(connection, timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, payload, lock FROM {queue} WHERE key = %s AND lock < %s "
                "ORDER BY id LIMIT %s",
                [self.list_key, now, Conf.BULK],
            )
            tasks = cursor.fetchall()
            claimed = []
            for task_id, payload, lock in tasks:
                # Compare-and-set on the lock: another cluster may take the same task first.
                until = _prep_lock(connection, self.timeout(None))
                cursor.execute(
                    f"UPDATE {queue} SET lock = %s WHERE id = %s AND lock = %s",
                    [until, task_id, lock],
                )
                if cursor.rowcount == 1:
                    claimed.append((task_id, payload))
        if claimed:
            self._last_work = time.monotonic()
            return claimed
        if connection.vendor == "postgresql" and transaction.get_autocommit(using=Conf.ORM):
            self._wait_for_notify(connection, Conf.POLL)
        else:
            busy = time.monotonic() - self._last_work < self.BUSY_FOR_SECONDS
            time.sleep(self.BUSY_POLL_SECONDS if busy else Conf.POLL)
        return None

    def _wait_for_notify(self, connection: Any, seconds: float) -> None:
        """Block until a task is enqueued (NOTIFY) or `seconds` pass. LISTEN is issued again
        whenever Django has replaced the connection."""
        if self._listening_on is not connection.connection:
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {self.CHANNEL}")
            self._listening_on = connection.connection
        for _ in self._listening_on.notifies(timeout=seconds, stop_after=1):
            pass

    def enqueue(self, task: str) -> int:
        connection = self._connection()
        now = _prep_lock(connection, timezone.now())
        insert = f"INSERT INTO {_queue_table()} (key, payload, lock) VALUES (%s, %s, %s)"
        params = [self.list_key or Conf.CLUSTER_NAME, task, now]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Delivered when this transaction commits, that is when the task is visible.
                cursor.execute(
                    f"WITH task AS ({insert} RETURNING id) SELECT id, pg_notify(%s, '') FROM task",
                    [*params, self.CHANNEL],
                )
            else:
                cursor.execute(f"{insert} RETURNING id", params)
            return int(cursor.fetchone()[0])

    def delete(self, task_id: int) -> None:
        with self._connection().cursor() as cursor:
            cursor.execute(f"DELETE FROM {_queue_table()} WHERE id = %s", [task_id])


def _prep_lock(connection: Any, moment: Any) -> Any:
    from django_q.models import OrmQ

    return sql.prep(OrmQ, "lock", moment, connection)


@cache
def _queue_table() -> str:
    from django_q.models import OrmQ

    return OrmQ._meta.db_table

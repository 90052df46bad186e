"""The engine's django-q2 broker: the ORM queue, first in first out, prompt and cheap.

django-q2's stock ORM broker sleeps its full poll interval whenever the queue is empty, which
adds up to that interval to every task (a purchase's confirmation, a cancel); this one is woken
by the enqueue
(durable.transport.broker_waits). Its statements are plain SQL (the stock broker's ORM
queries cost more CPU than the database's work), its claims skip the disk flush, it checks its
connection's health at most every HEALTH_CHECK_SECONDS rather than before every poll, and a
pusher that starts hands out again the engine's tasks a killed cluster had claimed.
DURABLE_BROKER=stock (the project's settings) chooses django-q2's own instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.db import Error, close_old_connections, connections

from durable import conf
from durable.persistence.backoff import (
    HEALTH_CHECK_SECONDS,
    Backoff,
    connection_lost,
    current_connection,
)
from durable.transport import taskqueue
from durable.transport.broker_waits import TaskWait, insert_announced
from durable.transport.dispatch import ENGINE_TASK_PATHS

logger = logging.getLogger("durable.transport.broker")


class PromptORMBroker(taskqueue.StockORMBroker):
    """django-q2's ORM broker, with the claims, waits and start-up described in the module."""

    # The engine's tasks may take their shortcuts through django-q2's internals with this broker
    # (see durable.transport.taskqueue.engine_shortcuts_on).
    supports_engine_shortcuts = True

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        self._last_health_check = 0.0
        self._relaxed_on: Any = None
        self._orphans_released = False
        self._reconnect: Backoff | None = None
        self._wait = TaskWait()

    def _connection(self) -> Any:
        now = time.monotonic()
        if now - self._last_health_check >= HEALTH_CHECK_SECONDS:
            self._last_health_check = now
            if connections[taskqueue.queue_alias()].get_autocommit():
                close_old_connections()
        return connections[taskqueue.queue_alias()]

    def dequeue(self) -> list[tuple[int, Any]] | None:
        """Claim up to Q_CLUSTER["bulk"] tasks, or wait a little for one. Never raises for a
        database that went away: django-q2's pusher would sleep 10 s and die (and its cluster
        start a new one); this returns nothing and tries again, a new connection each time,
        with waits that double up to backoff.LONGEST_WAIT_SECONDS."""
        used = None
        try:
            used = current_connection(taskqueue.queue_alias())
            connection = self._connection()
            claimed = self._claim(connection)
            if not claimed:
                self._wait.wait(connection)
        except Error:
            if not connection_lost(taskqueue.queue_alias(), used):
                raise
            if self._reconnect is None:
                logger.warning("the database went away; reconnecting", exc_info=True)
                self._reconnect = Backoff(taskqueue.poll_seconds())
            self._reconnect.wait()
            return None
        if self._reconnect is not None:
            logger.info("reconnected to the database")
            self._reconnect = None
        return claimed or None

    def _claim(self, connection: Any) -> list[tuple[int, Any]]:
        queue = taskqueue.queue_table()
        # A task is free once its lock time has passed by the database's clock (one clock for
        # every machine, see sql.DatabaseClock).
        now, now_params = taskqueue.lock_sql(connection)
        until, until_params = taskqueue.lock_sql(
            connection, dt.timedelta(seconds=taskqueue.claim_seconds())
        )
        # Claiming sets the lock to the retry time, compare-and-set: another cluster may take
        # the same task first.
        claim = f"UPDATE {queue} SET lock = {until} WHERE lock < {now} AND id IN "
        limit = taskqueue.claim_size()
        with connection.cursor() as cursor:
            relax = connection.get_autocommit() and not conf.flag("TRANSACTION_POOLER")
            if relax and self._relaxed_on is not connection.connection:
                _relax_durability(cursor, connection.vendor)
                self._relaxed_on = connection.connection
            if not self._orphans_released:
                self._orphans_released = True
                _release_engine_claims(cursor, connection, self.list_key)
            if connection.vendor == "postgresql":
                # One round trip; SKIP LOCKED lets several pushers claim different tasks.
                cursor.execute(
                    f"{claim}(SELECT id FROM {queue} WHERE key = %s AND lock < {now} "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, payload",
                    [*until_params, *now_params, self.list_key, *now_params, limit],
                )
                claimed = cursor.fetchall()
            else:
                # Read first: an UPDATE would take SQLite's one write lock at every empty poll.
                cursor.execute(
                    f"SELECT id FROM {queue} WHERE key = %s AND lock < {now} ORDER BY id LIMIT %s",
                    [self.list_key, *now_params, limit],
                )
                ids = [task_id for (task_id,) in cursor.fetchall()]
                claimed = []
                if ids:
                    marks = ", ".join(["%s"] * len(ids))
                    cursor.execute(
                        f"{claim}({marks}) RETURNING id, payload",
                        [*until_params, *now_params, *ids],
                    )
                    claimed = cursor.fetchall()
        claimed.sort()  # RETURNING promises no order; django-q2 hands tasks out first in first out
        if claimed:
            self._wait.found_work()
        return claimed

    def enqueue(self, task: str) -> int:
        """Write the signed task `task` in the current transaction; the waiting pushers are woken
        when it commits."""
        connection = self._connection()
        now, now_params = taskqueue.lock_sql(connection)
        queue = taskqueue.queue_table()
        insert = f"INSERT INTO {queue} (key, payload, lock) VALUES (%s, %s, {now})"
        return insert_announced(connection, insert, [self.list_key, task, *now_params])

    def delete(self, task_id: int) -> None:
        """Delete the task's row (django-q2's acknowledgement of the ORM queue is this delete)."""
        with self._connection().cursor() as cursor:
            cursor.execute(f"DELETE FROM {taskqueue.queue_table()} WHERE id = %s", [task_id])


def _release_engine_claims(cursor: Any, connection: Any, list_key: str) -> None:
    """Once, when a pusher starts: the engine's tasks that are claimed (a cluster killed
    with them in hand, as this pusher's may have been a moment ago) are handed out again now,
    not after django-q2's retry time or the poller's redelivery. A cluster that is alive
    may then run such a task twice, which the engine's tasks tolerate (the lease admits one
    executor; a finished run is left as it is). Other tasks keep their claims."""
    queue = taskqueue.queue_table()
    now, now_params = taskqueue.lock_sql(connection)
    cursor.execute(
        f"SELECT id, payload FROM {queue} WHERE key = %s AND lock > {now}",
        [list_key, *now_params],
    )
    ids = [
        task_id
        for task_id, payload in cursor.fetchall()
        if taskqueue.payload_func(payload) in ENGINE_TASK_PATHS
    ]
    if ids:
        marks = ", ".join(["%s"] * len(ids))
        available, available_params = taskqueue.lock_sql(connection, dt.timedelta(seconds=-1))
        cursor.execute(
            f"UPDATE {queue} SET lock = {available} WHERE id IN ({marks}) AND lock > {now}",
            [*available_params, *ids, *now_params],
        )
        logger.info("handed out again %d engine task(s) claimed before this start", len(ids))


def _relax_durability(cursor: Any, vendor: str) -> None:
    """Let this connection's commits return before they reach the disk (PostgreSQL:
    synchronous_commit off; SQLite in WAL mode: synchronous NORMAL, which keeps the database
    consistent). For the pusher's claims only: a claim lost to a power cut just lets the task be
    handed out again, which django-q2 promises anyway (at least once) and the engine's tasks
    tolerate (the lease admits one executor). It spares a disk flush per task, and on SQLite
    the one write lock is held that much shorter."""
    if vendor == "postgresql":
        cursor.execute("SET synchronous_commit = off")
    elif vendor == "sqlite":
        cursor.execute("PRAGMA synchronous = NORMAL")

"""The one module of the engine that talks to django-q2.

With the ORM broker on the engine's own database, a run's task is written in the same transaction
as the change that makes the run runnable (an outbox: committed together or not at all). With any
other broker (Redis) the task is sent after the transaction commits; the poller re-sends a task
that was lost between the two.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from django.db import DEFAULT_DB_ALIAS, Error, connections, transaction
from django_q.brokers.orm import ORM
from django_q.conf import Conf

from durable import conf, sql, wakeup
from durable.backoff import Backoff, connection_lost, current_connection

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


# The engine task this worker process is running, when it acknowledges itself (see
# before_engine_task), and when this process's last engine task ended.
_own_task: dict[str, Any] | None = None
_last_task_ended = -1e9


def before_engine_task(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """django-q2's pre_execute signal, in the worker process, for the engine's tasks.

    An engine task on the ORM broker deletes its own queue row in the transaction that records
    its work, instead of the monitor deleting it afterwards in a transaction (and a disk flush)
    of its own. Once that commits, the monitor is left nothing to acknowledge; a task that fails
    keeps django-q2's handling.

    django-q2 has just asked for the connection's health check (a round trip before the task's
    first query); a connection that served the previous engine task less than
    HEALTH_CHECK_SECONDS ago is trusted instead, as the pusher's is. Should it have died since,
    the task fails and the poller delivers the run again."""
    global _own_task
    _own_task = None
    if task.get("func") not in (TASK_PATH, BATCH_TASK_PATH):
        return
    if task.get("ack_id") is not None and _broker_is_our_database():
        _own_task = task
    connection = connections[DEFAULT_DB_ALIAS]
    recent = time.monotonic() - _last_task_ended < PromptORMBroker.HEALTH_CHECK_SECONDS
    if recent and connection.connection is not None and not connection.errors_occurred:
        connection.health_check_done = True


def _engine_task_ended() -> None:
    global _last_task_ended
    _last_task_ended = time.monotonic()


def _acknowledge_in_transaction() -> Callable[[], None] | None:
    global _own_task
    task, _own_task = _own_task, None
    if task is None:
        return None

    def acknowledge() -> None:
        _broker().delete(task["ack_id"])
        transaction.on_commit(lambda: task.pop("ack_id", None))

    return acknowledge


# An engine task that lost its database connection tries again for this long (django-q2 stops
# a task after its `timeout`, 60 s in this project's settings).
RECONNECT_FOR_SECONDS = 30.0


def _reconnecting(work: Callable[[Any], Any]) -> Any:
    """`work(connection)`, done again on a new connection if it failed because `connection` was
    lost (a restart, or a connection that died while idle), with waits that double up to
    backoff.LONGEST_WAIT_SECONDS, for up to RECONNECT_FOR_SECONDS. Safe because advancing a
    run is: its lease admits one executor and what committed is never done twice. Without it
    the run would wait for the poller's redelivery (DURABLE_REDELIVER_AFTER_SECONDS)."""
    give_up = time.monotonic() + RECONNECT_FOR_SECONDS
    backoff = Backoff(Conf.POLL)
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
    from durable.executor import advance

    acknowledge = _acknowledge_in_transaction()
    outcome = _reconnecting(lambda used: advance(run_id, last_write=acknowledge))
    _engine_task_ended()
    return outcome.value


def advance_batch_task(run_ids: list[str]) -> dict[str, int]:
    """The django-q2 task for runs woken together: advance each, committing them in groups; one
    failing does not stop the rest (the poller finds it again). Returns how many ended each way."""
    from durable.executor import advance_many

    acknowledge = _acknowledge_in_transaction()

    def batch(used: Any) -> dict[str, int]:
        outcomes = advance_many(run_ids, last_write=acknowledge)
        # advance_many logs each run that failed and goes on; a lost connection fails them all.
        if outcomes.get("error") and connection_lost(DEFAULT_DB_ALIAS, used):
            raise _BatchLostConnection(f"{outcomes['error']} run(s) failed")
        return outcomes

    outcomes = _reconnecting(batch)
    _engine_task_ended()
    return outcomes


class _BatchLostConnection(Exception):
    """Runs of a batch failed because the database connection was lost."""


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
    task is committed, and polls at the configured interval only as a safety net; behind a
    transaction pooler (DURABLE["TRANSACTION_POOLER"]) it polls at that interval instead, and
    keeps no session state on its connection. On SQLite it
    waits on a wake-up socket that every enqueue writes to once committed (durable.wakeup); until
    a first wake-up has arrived it also polls every BUSY_POLL_SECONDS for a while after it last
    found work, in case wake-ups cannot reach it. Its statements are plain SQL (the stock
    broker's ORM queries cost more CPU than the database's work), and it checks its connection's
    health once a second rather than before every poll."""

    BUSY_POLL_SECONDS = 0.001
    BUSY_FOR_SECONDS = 2.0
    HEALTH_CHECK_SECONDS = 1.0
    CHANNEL = "durable_task_queue"

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        self._last_work = 0.0
        self._last_health_check = 0.0
        self._listening_on: Any = None
        self._relaxed_on: Any = None
        self._listener: wakeup.Listener | None = None
        self._listener_tried = False
        self._orphans_released = False
        self._reconnect: Backoff | None = None

    def _connection(self) -> Any:
        from django.db import close_old_connections, connections

        now = time.monotonic()
        if now - self._last_health_check >= self.HEALTH_CHECK_SECONDS:
            self._last_health_check = now
            if transaction.get_autocommit(using=Conf.ORM):
                close_old_connections()
        return connections[Conf.ORM]

    def dequeue(self) -> list[tuple[int, Any]] | None:
        """Claim up to Conf.BULK tasks, or wait a little for one. Never raises for a database
        that went away: django-q2's pusher would sleep 10 s and die (and its cluster start a new
        one); this returns nothing and tries again, a new connection each time, with waits that
        double up to backoff.LONGEST_WAIT_SECONDS."""
        used = None
        try:
            used = current_connection(Conf.ORM)
            claimed = self._dequeue()
        except Error:
            if not connection_lost(Conf.ORM, used):
                raise
            if self._reconnect is None:
                logger.warning("the database went away; reconnecting", exc_info=True)
                self._reconnect = Backoff(Conf.POLL)
            self._reconnect.wait()
            return None
        if self._reconnect is not None:
            logger.info("reconnected to the database")
            self._reconnect = None
        return claimed

    def _dequeue(self) -> list[tuple[int, Any]] | None:
        connection = self._connection()
        queue = _queue_table()
        # A task is free once its lock time has passed by the database's clock (one clock for
        # every machine, see sql.DatabaseClock).
        now, now_params = _lock_sql(connection)
        until, until_params = _lock_sql(connection, dt.timedelta(seconds=Conf.RETRY))
        # Claiming sets the lock to the retry time, compare-and-set: another cluster may take
        # the same task first.
        claim = f"UPDATE {queue} SET lock = {until} WHERE lock < {now} AND id IN "
        with connection.cursor() as cursor:
            relax = connection.get_autocommit() and not conf.flag("TRANSACTION_POOLER")
            if relax and self._relaxed_on is not connection.connection:
                _relax_durability(cursor, connection.vendor)
                self._relaxed_on = connection.connection
            if not self._orphans_released:
                self._orphans_released = True
                self._release_engine_claims(cursor, connection)
            if connection.vendor == "postgresql":
                # One round trip; SKIP LOCKED lets several pushers claim different tasks.
                cursor.execute(
                    f"{claim}(SELECT id FROM {queue} WHERE key = %s AND lock < {now} "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, payload",
                    [*until_params, *now_params, self.list_key, *now_params, Conf.BULK],
                )
                claimed = cursor.fetchall()
            else:
                # Read first: an UPDATE would take SQLite's one write lock at every empty poll.
                cursor.execute(
                    f"SELECT id FROM {queue} WHERE key = %s AND lock < {now} ORDER BY id LIMIT %s",
                    [self.list_key, *now_params, Conf.BULK],
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
            self._last_work = time.monotonic()
            return claimed
        if connection.vendor == "postgresql" and conf.flag("TRANSACTION_POOLER"):
            time.sleep(Conf.POLL)  # a LISTEN on a pooled connection would hear nothing
            return None
        if connection.vendor == "postgresql" and transaction.get_autocommit(using=Conf.ORM):
            self._wait_for_notify(connection, Conf.POLL)
            return None
        listener = self._wakeup_listener(connection)
        busy = time.monotonic() - self._last_work < self.BUSY_FOR_SECONDS
        # Once wake-ups have arrived, they are trusted: no need to poll fast while busy.
        fast = busy and not (listener is not None and listener.woken_before)
        seconds = self.BUSY_POLL_SECONDS if fast else Conf.POLL
        if listener is not None:
            listener.wait(seconds)
        else:
            time.sleep(seconds)
        return None

    def _release_engine_claims(self, cursor: Any, connection: Any) -> None:
        """Once, when this pusher starts: the engine's tasks that are claimed (a cluster killed
        with them in hand, as this one may have been a moment ago) are handed out again now,
        not after django-q2's retry time or the poller's redelivery. A cluster that is alive
        may then run such a task twice, which the engine's tasks tolerate (the lease admits one
        executor; a finished run is left as it is). Other tasks keep their claims."""
        queue = _queue_table()
        now, now_params = _lock_sql(connection)
        cursor.execute(
            f"SELECT id, payload FROM {queue} WHERE key = %s AND lock > {now}",
            [self.list_key, *now_params],
        )
        ids = [task_id for task_id, payload in cursor.fetchall() if _is_engine_task(payload)]
        if ids:
            marks = ", ".join(["%s"] * len(ids))
            available, available_params = _lock_sql(connection, dt.timedelta(seconds=-1))
            cursor.execute(
                f"UPDATE {queue} SET lock = {available} WHERE id IN ({marks}) AND lock > {now}",
                [*available_params, *ids, *now_params],
            )
            logger.info("handed out again %d engine task(s) claimed before this start", len(ids))

    def _wakeup_listener(self, connection: Any) -> wakeup.Listener | None:
        """This pusher's wake-up socket on SQLite (made on first use), None where there is none."""
        if not self._listener_tried and connection.vendor == "sqlite":
            self._listener_tried = True
            folder = _wakeup_folder(connection)
            try:
                self._listener = wakeup.Listener(folder) if folder is not None else None
            except OSError:
                logger.warning("no wake-up socket in %s; polling only", folder, exc_info=True)
        return self._listener

    def _wait_for_notify(self, connection: Any, seconds: float) -> None:
        """Block until a task is enqueued (NOTIFY) or `seconds` pass. LISTEN is issued again
        whenever Django has replaced the connection."""
        if self._listening_on is not connection.connection:
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {self.CHANNEL}")
            self._listening_on = connection.connection
        with connection.wrap_database_errors:  # a lost connection raises django.db's errors
            for _ in self._listening_on.notifies(timeout=seconds, stop_after=1):
                pass

    def enqueue(self, task: str) -> int:
        connection = self._connection()
        now, now_params = _lock_sql(connection)
        insert = f"INSERT INTO {_queue_table()} (key, payload, lock) VALUES (%s, %s, {now})"
        params = [self.list_key or Conf.CLUSTER_NAME, task, *now_params]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and not conf.flag("TRANSACTION_POOLER"):
                # Delivered when this transaction commits, that is when the task is visible.
                cursor.execute(
                    f"WITH task AS ({insert} RETURNING id) SELECT id, pg_notify(%s, '') FROM task",
                    [*params, self.CHANNEL],
                )
            else:
                cursor.execute(f"{insert} RETURNING id", params)
            task_id = int(cursor.fetchone()[0])  # on SQLite the statement ends here
        folder = _wakeup_folder(connection)
        if folder is not None:
            # Once the task is visible, that is once this transaction commits.
            transaction.on_commit(lambda: wakeup.wake_all(folder), using=Conf.ORM)
        return task_id

    def delete(self, task_id: int) -> None:
        with self._connection().cursor() as cursor:
            cursor.execute(f"DELETE FROM {_queue_table()} WHERE id = %s", [task_id])


def _is_engine_task(payload: Any) -> bool:
    from django_q.signing import SignedPackage

    try:
        return SignedPackage.loads(payload).get("func") in (TASK_PATH, BATCH_TASK_PATH)
    except Exception:  # unreadable (another key, another version): not ours to touch
        return False


def _wakeup_folder(connection: Any) -> Path | None:
    """Where pushers on this SQLite database wait for wake-ups (see durable.wakeup)."""
    if connection.vendor != "sqlite":
        return None
    return wakeup.folder_for(str(connection.settings_dict["NAME"]))


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


def _lock_sql(connection: Any, offset: dt.timedelta = dt.timedelta(0)) -> tuple[str, list[Any]]:
    """The database's clock plus `offset`, as SQL for a queue row's lock, and its parameters."""
    from django_q.models import OrmQ

    return sql.placeholder(OrmQ, "lock", sql.DatabaseClock(offset), connection)


@cache
def _queue_table() -> str:
    from django_q.models import OrmQ

    return OrmQ._meta.db_table

"""How an idle pusher of the engine's broker waits for the next task, and how an enqueue wakes it.

PostgreSQL: the pusher LISTENs and every enqueue NOTIFYs in its own transaction, so the pusher
wakes the moment a task is committed; behind a transaction pooler (DURABLE["TRANSACTION_POOLER"])
it polls instead, keeping no session state. SQLite: the pusher waits on a wake-up socket that
every enqueue writes to once committed
(durable.transport.wakeup). Either way it also polls at django-q2's
interval (Q_CLUSTER["poll"]), as a safety net.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from django.db import transaction

from durable import conf
from durable.transport import taskqueue, wakeup

logger = logging.getLogger("durable.transport.broker")

CHANNEL = "durable_task_queue"


class NotifyWait:
    """PostgreSQL: block until a task is enqueued (NOTIFY) or the poll interval passes."""

    def __init__(self) -> None:
        self._listening_on: Any = None

    def wait(self, connection: Any, seconds: float) -> None:
        """LISTEN is issued again whenever Django has replaced the connection."""
        if self._listening_on is not connection.connection:
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            self._listening_on = connection.connection
        with connection.wrap_database_errors:  # a lost connection raises django.db's errors
            for _ in self._listening_on.notifies(timeout=seconds, stop_after=1):
                pass


class SocketWait:
    """SQLite: wait on this pusher's wake-up socket (made on first use). Until a first wake-up
    has arrived it polls every BUSY_POLL_SECONDS for BUSY_FOR_SECONDS after it last found work,
    in case wake-ups cannot reach it; once they have, they are trusted."""

    BUSY_POLL_SECONDS = 0.001
    BUSY_FOR_SECONDS = 2.0

    def __init__(self) -> None:
        self._listener: wakeup.Listener | None = None
        self._listener_tried = False
        self._last_work = 0.0

    def found_work(self) -> None:
        self._last_work = time.monotonic()

    def wait(self, connection: Any, seconds: float) -> None:
        listener = self._wakeup_listener(connection)
        busy = time.monotonic() - self._last_work < self.BUSY_FOR_SECONDS
        fast = busy and not (listener is not None and listener.woken_before)
        seconds = self.BUSY_POLL_SECONDS if fast else seconds
        if listener is not None:
            listener.wait(seconds)
        else:
            time.sleep(seconds)

    def _wakeup_listener(self, connection: Any) -> wakeup.Listener | None:
        if not self._listener_tried and connection.vendor == "sqlite":
            self._listener_tried = True
            folder = wakeup_folder(connection)
            try:
                self._listener = wakeup.Listener(folder) if folder is not None else None
            except OSError:
                logger.warning("no wake-up socket in %s; polling only", folder, exc_info=True)
        return self._listener


class TaskWait:
    """A pusher's wait after it found the queue empty, the way its connection allows."""

    def __init__(self) -> None:
        self._notify = NotifyWait()
        self._socket = SocketWait()

    def found_work(self) -> None:
        """The pusher has just claimed tasks (it may poll fast for a while)."""
        self._socket.found_work()

    def wait(self, connection: Any) -> None:
        """Until a task may have been enqueued: woken by an enqueue where the database allows,
        or after the poll interval."""
        seconds = taskqueue.poll_seconds()
        if connection.vendor == "postgresql" and conf.flag("TRANSACTION_POOLER"):
            time.sleep(seconds)  # a LISTEN on a pooled connection would hear nothing
        elif connection.vendor == "postgresql" and connection.get_autocommit():
            self._notify.wait(connection, seconds)
        else:
            self._socket.wait(connection, seconds)


def insert_announced(connection: Any, insert: str, params: list[Any]) -> int:
    """Run `insert` (an INSERT of one queue row, with `params`) and return the new row's id; the
    pushers waiting on this database are woken once the current transaction commits, that is
    when the task is visible."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not conf.flag("TRANSACTION_POOLER"):
            # NOTIFY is delivered when this transaction commits.
            cursor.execute(
                f"WITH task AS ({insert} RETURNING id) SELECT id, pg_notify(%s, '') FROM task",
                [*params, CHANNEL],
            )
        else:
            cursor.execute(f"{insert} RETURNING id", params)
        task_id = int(cursor.fetchone()[0])  # on SQLite the statement ends here
    folder = wakeup_folder(connection)
    if folder is not None:
        transaction.on_commit(lambda: wakeup.wake_all(folder), using=connection.alias)
    return task_id


def wakeup_folder(connection: Any) -> Path | None:
    """Where pushers on this SQLite database wait for wake-ups (see durable.transport.wakeup)."""
    if connection.vendor != "sqlite":
        return None
    return wakeup.folder_for(str(connection.settings_dict["NAME"]))

"""Which database errors are transient: the same work, tried again a moment later, can succeed.

A deadlock victim, a serialization failure, a lock wait that timed out, a connection that was
lost or refused, a server shutting down, still starting or out of connections, SQLite's
"database is locked" once the busy timeout has passed: none of them says anything about the
step that met it. The engine retries the run after them with a short backoff and does not count
them as a step's attempts (`durable.runtime.executor`).
"""

from __future__ import annotations

import sqlite3

import psycopg
from django.db import connection

# SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "53300",  # too_many_connections (the server's max_connections, for now)
        "55P03",  # lock_not_available (lock_timeout, NOWAIT)
        "57P01",  # admin_shutdown (the server is stopping, or pg_terminate_backend)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (the database is starting up or shutting down)
    }
)
_CONNECTION_CLASS = "08"  # connection_exception and its subclasses


def is_transient(exc: BaseException) -> bool:
    """True when `exc`, or an exception it was raised from (Django wraps the driver's errors),
    is a database error that a later retry of the same work may not meet again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate
        if sqlstate is None:
            # No answer from a server: the connection failed or was lost (the server is gone,
            # restarting, or the network dropped). A closed connection is reopened on retry.
            return isinstance(exc, psycopg.OperationalError) or (
                isinstance(exc, psycopg.InterfaceError) and "connection" in str(exc)
            )
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_CONNECTION_CLASS)
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).startswith("database is locked") or (
            getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
        )
    return False


def forget_broken_connection() -> None:
    """After a transient error outside any transaction: close this thread's connection if it is
    lost, so that the next query opens a new one."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()

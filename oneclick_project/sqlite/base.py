"""Django's SQLite backend, with a finer wait for the write lock.

SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between attempts, so a writer that
finds the lock taken for a fraction of a millisecond often sleeps for several; with the engine's
processes all writing (starts, the queue, checkpoints) that left the CPU idle and the latency
high (bench/RESULTS.md). Here SQLite does not wait at all, and a statement that opens a
transaction or runs on its own (BEGIN IMMEDIATE, an autocommit write) is retried after 0.1 ms,
doubling to at most 2 ms, for up to the configured `timeout`. A statement inside a transaction is
never retried: it already holds the lock, so "database is locked" there is a real error.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from django.db.backends.sqlite3 import base

FIRST_PAUSE = 0.0001
LONGEST_PAUSE = 0.002


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    # Set by DatabaseWrapper.create_cursor: how long a statement may wait for the lock, in s.
    lock_timeout: float = 30.0

    def execute(self, query: str, params: Any = None) -> Any:
        give_up_at = None
        pause = FIRST_PAUSE
        while True:
            try:
                return super().execute(query, params)
            except sqlite3.OperationalError as exc:
                if self.connection.in_transaction or not _is_lock_wait(exc):
                    raise
                now = time.monotonic()
                give_up_at = give_up_at or now + self.lock_timeout
                if now >= give_up_at:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)


def _is_lock_wait(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or str(exc).startswith(
        "database is locked"
    )


class DatabaseWrapper(base.DatabaseWrapper):
    """The stock wrapper, but SQLite gives up on a taken lock at once and Python waits instead."""

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        self._lock_timeout = float(conn_params.get("timeout", 5.0))
        # The init commands (journal mode...) still wait SQLite's way; everything after, ours.
        connection = super().get_new_connection(conn_params)
        connection.execute("PRAGMA busy_timeout = 0")
        return connection

    def create_cursor(self, name: str | None = None) -> SQLiteCursorWrapper:
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        cursor.lock_timeout = self._lock_timeout
        return cursor

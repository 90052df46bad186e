"""Real threads for race tests, each with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def in_threads(
    count: int, target: Callable[[int], None], *, connect_first: bool = False
) -> list[BaseException]:
    """Run `target(i)` in `count` threads released together; return their exceptions.

    `connect_first`: each thread opens its database connection before the release."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def body(index: int) -> None:
        try:
            if connect_first:
                connection.ensure_connection()
            barrier.wait()
            target(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def backend_pid() -> int | None:
    """This thread's PostgreSQL backend (connecting if need be); None on SQLite."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def waits_for_a_lock(pid: int) -> bool:
    """PostgreSQL: the backend `pid` is blocked on a lock another transaction holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"

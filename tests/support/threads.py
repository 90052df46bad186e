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

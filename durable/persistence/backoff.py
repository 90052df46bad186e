"""Waits that grow while the database is away, so a process neither hammers a database that is
restarting nor sleeps long after it is back."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from django.db import Error, connections

# A process that lost its database tries again at least this often: the wait between two tries
# is the longest a run due meanwhile waits after the database is back, on this account.
LONGEST_WAIT_SECONDS = 0.5

# A connection used this recently is trusted without a health check (a round trip): the pusher
# checks its own at most this often, and an engine task trusts the one the previous task used.
HEALTH_CHECK_SECONDS = 1.0


class Backoff:
    """Waits that double from `first` seconds up to LONGEST_WAIT_SECONDS, and start over after
    `reset()` (a success)."""

    def __init__(self, first: float) -> None:
        self.first = min(first, LONGEST_WAIT_SECONDS)
        self._next = self.first

    def wait(self) -> None:
        time.sleep(self._next)
        self._next = min(self._next * 2, LONGEST_WAIT_SECONDS)

    def reset(self) -> None:
        self._next = self.first


def current_connection(alias: str) -> Any:
    """The DB-API connection `alias` holds now (opened if none), for `connection_lost`."""
    connection = connections[alias]
    connection.ensure_connection()
    return connection.connection


def connection_lost(alias: str, used: Any) -> bool:
    """After a database error: whether `used`, the DB-API connection `alias` held before the work
    that failed, is gone (the server restarted or went away) rather than a statement failing.
    Django closes a connection it cannot roll back, and the work may have opened another since;
    a lost connection is closed, so the next query opens a new one."""
    connection = connections[alias]
    lost = connection.connection is None or connection.connection is not used
    if not lost:
        try:
            lost = not connection.is_usable()
        except Error:
            lost = True
    if lost and connection.connection is used:
        with contextlib.suppress(Error):
            connection.close()
    return lost

"""The group transaction: one database transaction shared by consecutive database-only commands,
of one run or, in a batch task, of several runs advanced one after another."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from django.db import transaction


class GroupTransaction:
    """An `atomic()` block opened and closed on demand. `generation` counts the openings, so a
    run can tell whether the transaction it fenced in is still the one open."""

    def __init__(self) -> None:
        self._atomic: contextlib.AbstractContextManager[Any] | None = None
        self._opened_at = 0.0
        self.generation = 0

    @property
    def is_open(self) -> bool:
        return self._atomic is not None

    def open(self) -> None:
        """Open it (it must not be open)."""
        assert self._atomic is None, "the group transaction is already open"
        atomic = transaction.atomic()
        atomic.__enter__()
        self._atomic = atomic
        self._opened_at = time.monotonic()
        self.generation += 1

    def age(self) -> float:
        """Seconds since it opened (0 when closed)."""
        return time.monotonic() - self._opened_at if self._atomic is not None else 0.0

    def commit(self) -> None:
        """Commit it, if open."""
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(None, None, None)

    def rollback(self) -> None:
        """Roll it back, if open."""
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            exc_type, exc, tb = sys.exc_info()
            atomic.__exit__(exc_type or RuntimeError, exc or RuntimeError("rollback"), tb)


class RunSavepoint:
    """Where one run's work starts inside a shared group transaction, so that a run that fails
    takes back only its own writes."""

    def __init__(self, group: GroupTransaction) -> None:
        self._group = group
        self._generation = group.generation
        self._id: str | None = transaction.savepoint()

    def _still_open(self) -> bool:
        return self._group.is_open and self._group.generation == self._generation

    def release(self) -> None:
        """Keep the run's writes in the group (they commit with it)."""
        if self._id is not None and self._still_open():
            transaction.savepoint_commit(self._id)
        self._id = None

    def rollback(self) -> None:
        """Undo the run's writes: back to the savepoint, or, if the run committed the group
        since (a plain step), the whole group, which then holds this run's writes only. Only
        the first call does anything."""
        if self._id is None:
            return
        if self._still_open():
            transaction.savepoint_rollback(self._id)
            transaction.savepoint_commit(self._id)
        else:
            self._group.rollback()
        self._id = None

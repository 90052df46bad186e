"""The group transaction: one database transaction shared by consecutive database-only commands,
of one run or, in a batch task, of several runs advanced one after another."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction


class GroupTransaction:
    """An `atomic()` block opened and closed on demand. `generation` counts the openings, so a
    run can tell whether the transaction it fenced in is still the one open. Work can wait for
    its commit (`after_commit`), with what undoes its preparation if it rolls back instead."""

    def __init__(self) -> None:
        self._atomic: contextlib.AbstractContextManager[Any] | None = None
        self._opened_at = 0.0
        self.generation = 0
        # (who registered it, done once committed, done if rolled back instead)
        self._waiting: list[tuple[object, Callable[[], None], Callable[[], None]]] = []

    def after_commit(
        self, owner: object, on_commit: Callable[[], None], on_rollback: Callable[[], None]
    ) -> None:
        """Call `on_commit` once the open transaction has committed, or `on_rollback` if it is
        rolled back, or if `owner` takes its own writes back (`forget`)."""
        assert self._atomic is not None, "the group transaction is not open"
        self._waiting.append((owner, on_commit, on_rollback))

    def forget(self, owner: object) -> None:
        """`owner`'s writes were taken back: what waited on them for the commit is undone."""
        mine = [entry for entry in self._waiting if entry[0] is owner]
        self._waiting = [entry for entry in self._waiting if entry[0] is not owner]
        for _, _, on_rollback in mine:
            on_rollback()

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
        """Commit it, if open; then what waited for the commit runs (or, should the commit
        fail, what undoes it)."""
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            waiting, self._waiting = self._waiting, []
            try:
                atomic.__exit__(None, None, None)
            except BaseException:
                for _, _, on_rollback in waiting:
                    on_rollback()
                raise
            failures = []
            for _, on_commit, _ in waiting:
                try:
                    on_commit()
                except Exception as exc:  # the others still run; the first is raised after
                    failures.append(exc)
            if failures:
                raise failures[0]

    def rollback(self) -> None:
        """Roll it back, if open (what waited for its commit is undone)."""
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            waiting, self._waiting = self._waiting, []
            exc_type, exc, tb = sys.exc_info()
            try:
                atomic.__exit__(exc_type or RuntimeError, exc or RuntimeError("rollback"), tb)
            finally:
                for _, _, on_rollback in waiting:
                    on_rollback()


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

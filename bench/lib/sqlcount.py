"""Counting the SQL statements and transactions of a block of code, by who issued them.

A `connection.execute_wrapper` sees every statement Django sends (also SAVEPOINTs, and SQLite's
BEGIN IMMEDIATE); `connection.commit` is wrapped to count the commits of atomic blocks. A statement
outside any atomic block is its own (autocommit) transaction. Each statement is attributed to the
innermost frame of a module we care about (durable.persistence.store, purchases.services,
django-q2's broker).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_OWNERS = (
    ("/durable/persistence/store.py", "store"),
    ("/durable/runtime/executor.py", "executor"),
    ("/durable/runtime/run_transaction.py", "run_transaction"),
    ("/durable/runtime/handlers/steps.py", "handlers.steps"),
    ("/durable/runtime/handlers/waits.py", "handlers.waits"),
    ("/durable/runtime/handlers/markers.py", "handlers.markers"),
    ("/durable/runtime/handlers/live.py", "handlers.live"),
    ("/durable/engine.py", "engine"),
    ("/durable/transport/dispatch.py", "dispatch"),
    ("/durable/tasks.py", "tasks"),
    ("/durable/transport/broker.py", "broker"),
    ("/durable/transport/broker_waits.py", "broker"),
    ("/durable/transport/taskqueue.py", "taskqueue"),
    ("/purchases/services.py", "services"),
    ("/purchases/selectors.py", "selectors"),
    ("/django_q/brokers/orm.py", "django_q.orm"),
    ("/django_q/tasks.py", "django_q.tasks"),
)


def _owner() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        for suffix, module in _OWNERS:
            if filename.endswith(suffix):
                return f"{module}.{frame.f_code.co_name}"
        frame = frame.f_back
    return "other"


def _kind(sql: str) -> str:
    word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    return word


@dataclass
class SqlCount:
    """Statements by (phase, owner, kind), and transactions by phase."""

    phase: str = "-"
    statements: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    commits: Counter[str] = field(default_factory=Counter)
    autocommit: Counter[str] = field(default_factory=Counter)
    samples: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        from django.db import connection

        kind = _kind(sql)
        key = (self.phase, _owner(), kind)
        self.statements[key] += 1
        self.samples.setdefault(key, " ".join(sql.split())[:160])
        # BEGIN opens an atomic block (counted at its commit), it is not a transaction of its own.
        if not connection.in_atomic_block and kind != "BEGIN":
            self.autocommit[self.phase] += 1
        return execute(sql, params, many, context)

    def install(self) -> Callable[[], None]:
        """Start counting on this thread's connection; returns the function that stops."""
        from django.db import connection

        connection.ensure_connection()
        original_commit = connection.commit

        def commit() -> None:
            self.commits[self.phase] += 1
            original_commit()

        original_is_usable = connection.is_usable

        def is_usable() -> bool:
            # CONN_HEALTH_CHECKS: after close_old_connections() the next query is preceded by
            # this check, a `SELECT 1` on PostgreSQL's raw cursor (SQLite's sends nothing).
            if connection.vendor == "postgresql":
                key = (self.phase, "django.health_check", "SELECT")
                self.statements[key] += 1
                self.samples.setdefault(key, "SELECT 1 (connection health check)")
                self.autocommit[self.phase] += 1
            return original_is_usable()

        connection.commit = commit  # type: ignore[method-assign]
        connection.is_usable = is_usable  # type: ignore[method-assign]
        wrapper = connection.execute_wrapper(self)
        wrapper.__enter__()

        def uninstall() -> None:
            wrapper.__exit__(None, None, None)
            connection.commit = original_commit  # type: ignore[method-assign]
            connection.is_usable = original_is_usable  # type: ignore[method-assign]

        return uninstall

    def by_phase(self) -> dict[str, dict[str, int]]:
        """Per phase: statements (all), of which BEGIN/SAVEPOINT/RELEASE, and transactions
        (commits of atomic blocks + autocommit statements)."""
        out: dict[str, dict[str, int]] = {}
        for (phase, _owner_name, kind), n in self.statements.items():
            row = out.setdefault(phase, {"statements": 0, "control": 0})
            row["statements"] += n
            if kind in ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK"):
                row["control"] += n
        for phase, row in out.items():
            row["commits"] = self.commits[phase]
            row["autocommit"] = self.autocommit[phase]
            row["transactions"] = self.commits[phase] + self.autocommit[phase]
        return out

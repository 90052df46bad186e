"""What the tests of plain steps with real worker processes share: their environment, and the
renewing connection's server process (PostgreSQL)."""

from __future__ import annotations

from django.db import connection

from tests.support.environment import process_env

LEASE_SECONDS = 2


def engine_env(**overrides: str) -> dict[str, str]:
    """The worker processes' environment: the step workflows, a short lease, two workers."""
    return process_env(
        DURABLE_WORKFLOW_MODULES="tests.durable.step_workflows",
        DURABLE_LEASE_SECONDS=str(LEASE_SECONDS),
        **{"Q_WORKERS": "2", **overrides},
    )


def keeper_backend() -> int | None:
    """The server process of the connection that last renewed a lease on its own (autocommit:
    its last statement is the renewal itself; an executor's is a COMMIT or a step's query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE %s",
            ["UPDATE %lease_expires_at%"],
        )
        pids = [row[0] for row in cursor.fetchall()]
    return pids[0] if len(pids) == 1 else None

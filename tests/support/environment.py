"""The environment of the real processes a test starts (devtools/processes.py): the test
database of the running test, production-like settings, fast timers."""

from __future__ import annotations

import os
from pathlib import Path

from django.db import connection

from devtools.environments import FAST_TIMERS, production_env

# Set (to its port) while a PgBouncer stands between the child processes and PostgreSQL
# (ONECLICK_TEST_PGBOUNCER=1, see tests/support/pgbouncer.py).
PGBOUNCER_PORT = "ONECLICK_TEST_PGBOUNCER_PORT"


def current_database_url() -> str:
    """A DATABASE_URL for the database the current test uses (the test database)."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    if os.environ.get(PGBOUNCER_PORT):
        host, port = "127.0.0.1", os.environ[PGBOUNCER_PORT]
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    """Environment for a child process: the test database, production-like settings, fast
    timers (through PgBouncer while one runs), then `overrides`."""
    env = production_env(current_database_url(), **FAST_TIMERS)
    if os.environ.get(PGBOUNCER_PORT) and connection.vendor == "postgresql":
        env["DATABASE_POOLER"] = "pgbouncer"
    env.update(overrides)
    return env

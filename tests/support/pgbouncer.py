"""A real PgBouncer (Debian's `pgbouncer`) in transaction pooling mode in front of the suite's
PostgreSQL, on a port of its own, with its configuration written in a temporary folder.

Set ONECLICK_TEST_PGBOUNCER=1 to have the real processes of the crash tests (tests/support/
processes.py) reach the database through one (CI runs them so once, see .ci/run)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import psycopg

from devtools.ports import free_port
from devtools.processes import Process
from tests.support.services import require_program


def start(
    folder: Path, upstream_host: str, upstream_port: int, pool_size: int = 20
) -> tuple[Process, int]:
    """Start PgBouncer in front of `upstream_host:upstream_port` (every database name, trust),
    each database's pool `pool_size` server connections; returns it and its port once it
    accepts connections."""
    program = require_program("pgbouncer", "pgbouncer")
    port = free_port()  # from the system's ephemeral range, away from the web servers' 87xx
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # it reads them again as `postgres` (it refuses to run as root)
    users = folder / "users.txt"
    users.write_text('"postgres" ""\n')
    config = folder / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n* = host={upstream_host} port={upstream_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 1000\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    for path in (users, config):
        path.chmod(0o644)
    argv = [program, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(config)]
    bouncer = Process(f"pgbouncer-{port}", argv, dict(os.environ)).start()
    deadline = time.monotonic() + 30
    while True:
        try:
            dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
            psycopg.connect(dsn, prepare_threshold=None).close()
            return bouncer, port
        except psycopg.OperationalError:
            if time.monotonic() > deadline or not bouncer.alive:
                bouncer.kill()
                raise AssertionError(f"pgbouncer did not start:\n{bouncer.log()}") from None
            time.sleep(0.05)


# What a transaction pooler breaks: prepared statements, server-side cursors, session state.
POOLING_FAULTS = ("prepared statement", 'cursor "', "LISTEN", "synchronous_commit")


def pooling_faults(logs: Iterable[Path]) -> dict[str, str]:
    """The first line of each log that reports an error a transaction pooler causes."""
    faults = {}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if ("Error" in line or "ERROR" in line) and any(f in line for f in POOLING_FAULTS):
                faults[log.name] = line
                break
    return faults

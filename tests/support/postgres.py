"""A PostgreSQL cluster of the tests' own, on its own port, that a test may restart (the shared
one on 5432 is never touched), and databases on it for real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.support.processes import ROOT
from tests.support.services import require_program, require_root

CLUSTER = "oneclick_restart"
PORT = 5499


def _version() -> str:
    return sorted(os.listdir("/etc/postgresql"), key=float)[-1]


def _ctl(*args: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _version(), CLUSTER, *args],
        check=True, capture_output=True,
    )  # fmt: skip


def restartable_cluster() -> str:
    """The private cluster (created the first time, trust authentication, started if down);
    returns the URL of its `postgres` database."""
    require_root("creating and restarting a PostgreSQL cluster of the test's own")
    require_program("pg_createcluster", "postgresql-common")
    config = Path("/etc/postgresql") / _version() / CLUSTER
    if not config.exists():
        subprocess.run(
            ["pg_createcluster", _version(), CLUSTER, "-p", str(PORT)],
            check=True, capture_output=True,
        )  # fmt: skip
        (config / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        )
    if not is_up():
        _ctl("start")
    return f"postgres://postgres@127.0.0.1:{PORT}/postgres"


def is_up() -> bool:
    try:
        psycopg.connect(f"host=127.0.0.1 port={PORT} user=postgres dbname=postgres").close()
    except psycopg.OperationalError:
        return False
    return True


def stop() -> None:
    """Stop the private cluster at once (fast mode: its clients are disconnected)."""
    _ctl("stop", "-m", "fast")


def start() -> None:
    """Start it again; returns once it accepts connections."""
    _ctl("start")


def restart() -> None:
    """`pg_ctlcluster ... restart -m fast`: down and up again in one command."""
    _ctl("restart", "-m", "fast")


def fresh_database(name: str, env: dict[str, str]) -> str:
    """An empty database `name` on the private cluster, migrated; returns its URL."""
    with psycopg.connect(
        f"host=127.0.0.1 port={PORT} user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://postgres@127.0.0.1:{PORT}/{name}"
    manage_py("migrate", "--noinput", env={**env, "DATABASE_URL": url})
    return url


def manage_py(*args: str, env: dict[str, str]) -> str:
    """Run a management command to its end; returns its output (fails with it on error)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout

"""Fresh databases for tests, benchmarks and chaos runs: an empty SQLite file in a folder of its
own, or an empty PostgreSQL database on a given server, deleted or dropped afterwards whatever
happened in between; and `manage.py migrate` on one, as a deployment runs it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from devtools.processes import ROOT

SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def on_server(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url` (its user, host and port)."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def admin(server_url: str) -> psycopg.Connection:
    """An autocommit connection to the `postgres` database of `server_url`'s server (CREATE and
    DROP DATABASE run outside a transaction)."""
    return psycopg.connect(on_server(server_url, "postgres"), autocommit=True)


def create_postgres(server_url: str, name: str) -> str:
    """An empty database `name` on `server_url`'s server (dropped first, its sessions ended, if
    it existed); returns its URL."""
    with admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return on_server(server_url, name)


def drop_postgres(server_url: str, name: str) -> None:
    """Drop database `name` on `server_url`'s server, ending its sessions; a no-op if missing."""
    with admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(
    vendor: str, name: str, server_url: str = SERVER_URL, keep: bool = False
) -> Iterator[str]:
    """Yields the URL of an empty database: for vendor "sqlite" a file `<name>.sqlite3` in a new
    temporary folder, for "postgres" database `name` on `server_url`'s server (replaced if it
    existed). On exit the folder is deleted or the database dropped, unless `keep`."""
    if vendor == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"{name}_"))
        try:
            yield f"sqlite:///{folder / f'{name}.sqlite3'}"
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
        return
    if vendor != "postgres":
        raise ValueError(f"unknown database {vendor!r} (sqlite or postgres)")
    url = create_postgres(server_url, name)
    try:
        yield url
    finally:
        if not keep:
            drop_postgres(server_url, name)


def migrate(url: str, env: dict[str, str], log: Path | None = None) -> float:
    """Run `manage.py migrate --noinput` on database `url` with environment `env` (its
    DATABASE_URL replaced), its output appended to `log` when given; returns its seconds. Raises
    RuntimeError, with the output, when it fails."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if log is not None:
        with log.open("a") as out:
            out.write(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed on {url}:\n{done.stdout}{done.stderr}")
    return time.monotonic() - started

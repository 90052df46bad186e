"""A fresh database per benchmark: a temporary SQLite file, or bench_<name> on PostgreSQL.

The database is created, migrated with `manage.py migrate` (as a deployment would), and dropped
(or deleted) at the end, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.lib.machine import ROOT

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    )


@dataclass(slots=True)
class BenchDatabase:
    """One benchmark's database. `url` is its DATABASE_URL."""

    vendor: str  # "sqlite" or "postgres"
    name: str
    url: str
    path: Path | None = None  # the SQLite file

    def migrate(self, env: dict[str, str], log: Path) -> float:
        """Run `manage.py migrate --noinput` against this database; returns its seconds."""
        started = time.monotonic()
        with log.open("a") as out:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=ROOT,
                env={**env, "DATABASE_URL": self.url},
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=600,
            )
        return time.monotonic() - started

    # --- PostgreSQL's own counters ------------------------------------------------------------

    def pg_counters(self) -> dict[str, int]:
        """pg_stat_database's counters for this database plus pg_stat_user_tables' per table
        (`<table>.<counter>`), read on a connection of our own. Each read is itself one
        transaction on the database (callers subtract it)."""
        import psycopg

        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.name, autocommit=True
        ) as conn:
            row = conn.execute(
                "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,"
                " tup_updated, tup_deleted FROM pg_stat_database WHERE datname = %s",
                (self.name,),
            ).fetchone()
            keys = [
                "xact_commit",
                "xact_rollback",
                "tup_returned",
                "tup_fetched",
                "tup_inserted",
                "tup_updated",
                "tup_deleted",
            ]
            counters = dict(zip(keys, (int(v or 0) for v in row), strict=True))
            for table, ins, upd, hot, dele, seq, idx in conn.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, seq_scan,"
                " coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            ):
                for key, value in (
                    ("ins", ins),
                    ("upd", upd),
                    ("hot_upd", hot),
                    ("del", dele),
                    ("seq_scan", seq),
                    ("idx_scan", idx),
                ):
                    counters[f"{table}.{key}"] = int(value or 0)
        return counters


def pg_has_stat_statements() -> bool:
    """Whether pg_stat_statements is loaded (it needs shared_preload_libraries and a restart,
    which the benchmarks never do to a shared server)."""
    with _pg_admin() as conn:
        libs = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    return "pg_stat_statements" in libs


@contextlib.contextmanager
def fresh_database(vendor: str, name: str) -> Iterator[BenchDatabase]:
    """Create an empty database for benchmark `name`; drop or delete it on exit."""
    if vendor == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"bench_{name}_"))
        path = folder / "bench.sqlite3"
        try:
            yield BenchDatabase("sqlite", path.name, f"sqlite:///{path}", path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if vendor != "postgres":
        raise ValueError(f"unknown database {vendor!r}")
    db_name = f"bench_{name}"
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        yield BenchDatabase(
            "postgres", db_name, f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{db_name}"
        )
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@contextlib.contextmanager
def bench_process_on(url: str) -> Iterator[None]:
    """Point this process's Django at the PostgreSQL database `url` for the block, then back at
    the benchmark's own: every thread's next connection goes there (each thread closes its
    own; this one's are closed on the way in and out)."""
    import dj_database_url
    from django.db import connections

    # The one dict every thread's connection reads when it connects (as Django's test runner
    # does when it swaps in the test database's NAME).
    target = connections.settings["default"]
    saved = dict(target)
    parsed = dj_database_url.parse(url)
    connections.close_all()
    target.update({key: parsed[key] for key in ("NAME", "HOST", "PORT", "USER", "PASSWORD")})
    try:
        yield
    finally:
        connections.close_all()
        target.clear()
        target.update(saved)

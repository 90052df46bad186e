"""A fresh database per benchmark (devtools/databases.py): a temporary SQLite file, or
bench_<name> on PostgreSQL (BENCH_PG_HOST, BENCH_PG_PORT, BENCH_PG_USER), migrated as a
deployment would, and PostgreSQL's own counters of it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import databases

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
SERVER_URL = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"


def pg_admin() -> Any:
    """An autocommit connection to the benchmarks' PostgreSQL server."""
    return databases.admin(SERVER_URL)


@dataclass(slots=True)
class BenchDatabase:
    """One benchmark's database. `url` is its DATABASE_URL."""

    vendor: str  # "sqlite" or "postgres"
    name: str
    url: str
    path: Path | None = None  # the SQLite file

    def migrate(self, env: dict[str, str], log: Path) -> float:
        """Run `manage.py migrate --noinput` against this database; returns its seconds."""
        return databases.migrate(self.url, env, log)

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
    with pg_admin() as conn:
        libs = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    return "pg_stat_statements" in libs


@contextlib.contextmanager
def fresh_database(vendor: str, name: str) -> Iterator[BenchDatabase]:
    """Create an empty database for benchmark `name`; drop or delete it on exit."""
    db_name = f"bench_{name}"
    with databases.fresh_database(vendor, db_name, SERVER_URL) as url:
        path = Path(url.removeprefix("sqlite:///")) if vendor == "sqlite" else None
        yield BenchDatabase(vendor, db_name, url, path)


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

"""Real transient database errors, provoked on demand: the database raises them, not a test."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from django.db import connection, connections, transaction

LOCK_KEY = 71_170_017  # an advisory lock key no other code of the project takes


def postgres_conninfo() -> str:
    """Connection parameters of the test database, for a second connection beside Django's."""
    settings = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"],
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or "127.0.0.1",
        port=settings.get("PORT") or 5432,
    )


@contextlib.contextmanager
def advisory_lock_held_elsewhere(key: int = LOCK_KEY) -> Iterator[psycopg.Connection]:
    """Another session holds PostgreSQL's advisory lock `key` for the block."""
    with psycopg.connect(postgres_conninfo(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [key])
        yield other


def provoke_lock_timeout() -> None:
    """On Django's connection (PostgreSQL): wait for a lock another session holds, under a
    lock_timeout of 10 ms. Raises the database's lock_not_available (55P03)."""
    with advisory_lock_held_elsewhere(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '10ms'")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


@contextlib.contextmanager
def sqlite_write_lock_held_elsewhere(path: str | Path) -> Iterator[None]:
    """Another connection holds the SQLite database's write lock for the block."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def provoke_sqlite_locked() -> None:
    """SQLite's "database is locked", met by a writer whose busy timeout (none here) passed
    while another connection held the write lock of a scratch database."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scratch.sqlite3"
        with sqlite_write_lock_held_elsewhere(path):
            writer = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                writer.execute("BEGIN IMMEDIATE")
            finally:
                writer.close()


def break_the_next_write(seconds: float = 0.5) -> None:
    """Make the next write of this thread's connection meet a real transient error: on PostgreSQL
    its server process is terminated; on SQLite another connection holds the write lock for
    `seconds`, longer than this connection's busy timeout (shortened meanwhile)."""
    if connection.vendor == "postgresql":
        pid = connection.connection.info.backend_pid
        with psycopg.connect(postgres_conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        return
    own = connections[connection.alias]  # this thread's, not the releasing thread's
    held = contextlib.ExitStack()
    held.enter_context(sqlite_write_lock_held_elsewhere(own.settings_dict["NAME"]))
    busy_timeout, own._lock_timeout = own._lock_timeout, 0.05

    def release() -> None:
        time.sleep(seconds)
        own._lock_timeout = busy_timeout
        held.close()

    threading.Thread(target=release, name="write lock holder", daemon=True).start()


@contextlib.contextmanager
def short_lock_waits_for_new_connections() -> Iterator[None]:
    """For the block, a connection opened from now on gives up waiting for a lock after 50 ms
    (PostgreSQL's lock_timeout; SQLite's busy timeout), with a transient error."""
    if connection.vendor == "postgresql":
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        with psycopg.connect(postgres_conninfo(), autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} SET lock_timeout = '50ms'")
            try:
                yield
            finally:
                admin.execute(f"ALTER DATABASE {name} RESET lock_timeout")
        return
    options = connection.settings_dict.setdefault("OPTIONS", {})
    before = options.get("timeout")
    options["timeout"] = 0.05
    try:
        yield
    finally:
        if before is None:
            options.pop("timeout")
        else:
            options["timeout"] = before


def lock_the_run_for_a_moment(run_id: str, seconds: float = 0.5) -> None:
    """Another connection holds the run's row lock (PostgreSQL) or the database's write lock
    (SQLite) for `seconds`, from before this returns."""
    from durable.models import WorkflowRun

    held = threading.Event()

    def hold() -> None:
        if connection.vendor == "postgresql":
            with psycopg.connect(postgres_conninfo()) as other:
                other.execute(
                    f"SELECT 1 FROM {WorkflowRun._meta.db_table} WHERE id = %s FOR UPDATE",
                    [run_id],
                )
                held.set()
                time.sleep(seconds)
            return
        with sqlite_write_lock_held_elsewhere(connection.settings_dict["NAME"]):
            held.set()
            time.sleep(seconds)

    threading.Thread(target=hold, name="run lock holder", daemon=True).start()
    held.wait(10)


def provoke_transient_error() -> None:
    """A real transient error from the database the test runs on."""
    if connection.vendor == "postgresql":
        provoke_lock_timeout()
    else:
        provoke_sqlite_locked()
    raise AssertionError("the database raised nothing")


def provoke_deadlock() -> list[BaseException]:
    """Two PostgreSQL sessions (Django's, and another) take two advisory locks in opposite
    orders; returns what they raised (the deadlock detector aborts one of them)."""
    errors: list[BaseException] = []
    both_hold_one = threading.Barrier(2, timeout=60)

    with psycopg.connect(postgres_conninfo()) as other:

        def other_side() -> None:
            try:
                other.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY + 1])
                both_hold_one.wait()
                other.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            except BaseException as exc:
                errors.append(exc)
            finally:
                other.rollback()

        thread = threading.Thread(target=other_side)
        thread.start()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                both_hold_one.wait()
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY + 1])
        except Exception as exc:
            errors.append(exc)
        thread.join()
    return errors

"""devtools/databases.py: a fresh database is empty, replaced if it existed, gone afterwards
(unless kept), and migrate runs `manage.py migrate` on it or says why it failed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from devtools import databases
from devtools.environments import production_env
from devtools.ports import free_port
from tests.support.environment import current_database_url


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def test_a_fresh_sqlite_database_is_migrated_then_deleted_with_its_folder():
    with databases.fresh_database("sqlite", "devtools_fresh") as url:
        seconds = databases.migrate(url, production_env(url, DJANGO_SECRET_KEY="x" * 50))
        with sqlite3.connect(sqlite_path(url)) as db:
            applied = db.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
        folder = sqlite_path(url).parent
    assert seconds > 0 and applied > 0
    assert not folder.exists()


def test_a_kept_database_stays():
    with databases.fresh_database("sqlite", "devtools_kept", keep=True) as url:
        sqlite3.connect(sqlite_path(url)).close()
    try:
        assert sqlite_path(url).exists()
    finally:
        sqlite_path(url).unlink()
        sqlite_path(url).parent.rmdir()


def test_a_failed_migrate_says_why():
    url = f"postgres://nobody@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(RuntimeError, match="migrate failed on"):
        databases.migrate(url, production_env(url, DJANGO_SECRET_KEY="x" * 50))


@pytest.mark.django_db
def test_a_fresh_postgres_database_replaces_an_old_one_and_is_dropped_after():
    if connection.vendor != "postgresql":
        pytest.skip("needs the PostgreSQL server of the suite's PostgreSQL run")
    server = current_database_url()
    name = f"{connection.settings_dict['NAME']}_devtools_fresh"
    old = databases.create_postgres(server, name)
    with psycopg.connect(old, autocommit=True) as conn:
        conn.execute("CREATE TABLE left_over (id int)")
    with databases.fresh_database("postgres", name, server) as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('left_over')").fetchone()[0] is None
    with databases.admin(server) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert found is None
